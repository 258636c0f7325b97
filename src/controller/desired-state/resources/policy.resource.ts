import type { ResourceOf } from '../../../common/span/span-kind';
import { encodePolicyRules } from '../../../common/span/policy.kind';
import type { CompiledPolicy, CompiledRule, CompiledRules } from '../firewall';

export type PolicyResource = ResourceOf<'policy'>;
/** A rule as it travels: protocol 'any' or a number as text, ports 0 = any, ICMP type/code -1 = any. */
export type RuleResource = PolicyResource['ingress'][number];

function toRule(rule: CompiledRule): RuleResource {
  return {
    ethertype: rule.ethertype,
    protocol: rule.protocol === 'any' ? 'any' : String(rule.protocol),
    portMin: rule.ports?.[0] ?? 0,
    portMax: rule.ports?.[1] ?? 0,
    icmpType: rule.icmp ? rule.icmp.type : -1,
    icmpCode: rule.icmp?.code ?? -1,
    remoteCidr: 'cidr' in rule.remote ? rule.remote.cidr : '',
    remoteGroupId: 'group' in rule.remote ? rule.remote.group : '',
  };
}

/** A port's compiled policy (firewall.ts) as its host's span holds it. */
export function toPolicyResource(policy: CompiledPolicy): PolicyResource {
  return {
    portId: policy.portId,
    portSecurity: policy.portSecurity,
    mac: policy.mac,
    ips: policy.ips,
    allowedAddressPairs: policy.allowedAddressPairs.map((pair) => ({ ip: pair.ip, mac: pair.mac })),
    ingress: policy.ingress.map(toRule),
    egress: policy.egress.map(toRule),
  };
}

/** The rules of a group set as every policy with those groups carries them (encodePolicyRules). */
export function encodeCompiledRules(rules: Pick<CompiledRules, 'ingress' | 'egress'>): Uint8Array {
  return encodePolicyRules(rules.ingress.map(toRule), rules.egress.map(toRule));
}
