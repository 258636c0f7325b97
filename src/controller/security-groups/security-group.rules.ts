import { ErrorCode, OverlayError } from '../errors';
import { parseCidrText } from '../../common/ip';
import { newId } from '../model/value-parsers';
import { ANY_CIDR, canonicalProtocol, isIcmp, protocolNumber, takesPorts, type Ethertype, type SecurityGroupRule } from '../model/security-group';
import type { RuleInput } from './security-group.schemas';

/**
 * Rule validation for the service: a client's rules checked and brought to the stored form, their
 * ids kept across updates, and what makes two rules the same.
 */

/** What a rule allows, without its id and description: two rules with the same key are the same rule. */
export function ruleKey(rule: Omit<SecurityGroupRule, 'id' | 'description'>): string {
  const remote = rule.remoteGroupId !== null ? `group:${rule.remoteGroupId}` : `cidr:${rule.remoteCidr ?? ANY_CIDR[rule.ethertype]}`;
  return [rule.direction, rule.ethertype, protocolNumber(rule.protocol), rule.portRangeMin ?? '', rule.portRangeMax ?? '', rule.icmpType ?? '', rule.icmpCode ?? '', remote].join(' ');
}

const familyOf = (ethertype: Ethertype): 4 | 6 => (ethertype === 'IPv4' ? 4 : 6);

/** Checks one rule beyond its shape and brings it to the stored form (without its id). */
export function normalizeRule(input: RuleInput, field: string): Omit<SecurityGroupRule, 'id'> {
  const protocol = canonicalProtocol(input.protocol);
  const remoteCidr = input.remoteCidr ?? null;
  const remoteGroupId = input.remoteGroupId ?? null;
  if (remoteCidr !== null && remoteGroupId !== null) {
    throw new OverlayError(ErrorCode.ConflictingRemotes, `${field}: give remoteCidr or remoteGroupId, not both`, { field: `${field}.remoteGroupId` });
  }
  if (remoteCidr !== null) {
    const cidr = parseCidrText(remoteCidr);
    if (typeof cidr === 'object' && cidr.family !== familyOf(input.ethertype)) {
      throw new OverlayError(ErrorCode.CidrFamilyMismatch, `${field}.remoteCidr ${remoteCidr} is IPv${cidr.family} but the rule's ethertype is ${input.ethertype}`, {
        field: `${field}.remoteCidr`,
      });
    }
  }
  if ((protocol === 'icmp' && input.ethertype === 'IPv6') || (protocol === 'icmpv6' && input.ethertype === 'IPv4')) {
    const right = protocol === 'icmp' ? 'icmpv6' : 'icmp';
    throw new OverlayError(ErrorCode.ProtocolFamilyMismatch, `${field}.protocol ${protocol} does not exist over ${input.ethertype}; use ${right}`, { field: `${field}.protocol` });
  }
  let portRangeMin = input.portRangeMin ?? null;
  let portRangeMax = input.portRangeMax ?? null;
  if (portRangeMin !== null || portRangeMax !== null) {
    if (!takesPorts(protocol)) {
      throw new OverlayError(ErrorCode.PortRangeNotAllowed, `${field}: port ranges apply to tcp, udp and sctp (132) only, not to ${protocol}`, {
        field: `${field}.${portRangeMin !== null ? 'portRangeMin' : 'portRangeMax'}`,
      });
    }
    if (portRangeMin === null) {
      throw new OverlayError(ErrorCode.InvalidPortRange, `${field}: portRangeMax needs portRangeMin`, { field: `${field}.portRangeMin` });
    }
    portRangeMax ??= portRangeMin;
    if (portRangeMin > portRangeMax) {
      throw new OverlayError(ErrorCode.InvalidPortRange, `${field}: portRangeMin ${portRangeMin} is above portRangeMax ${portRangeMax}`, { field: `${field}.portRangeMax` });
    }
    if (portRangeMin === 1 && portRangeMax === 65535) {
      // Every port: the same rule as no range, so it must compare equal to it.
      portRangeMin = portRangeMax = null;
    }
  }
  const icmpType = input.icmpType ?? null;
  const icmpCode = input.icmpCode ?? null;
  if (icmpType !== null || icmpCode !== null) {
    if (!isIcmp(protocol)) {
      throw new OverlayError(ErrorCode.IcmpNotAllowed, `${field}: icmpType and icmpCode apply to icmp and icmpv6 only, not to ${protocol}`, {
        field: `${field}.${icmpType !== null ? 'icmpType' : 'icmpCode'}`,
      });
    }
    if (icmpType === null) {
      throw new OverlayError(ErrorCode.IcmpNotAllowed, `${field}: icmpCode needs icmpType`, { field: `${field}.icmpCode` });
    }
  }
  return {
    direction: input.direction,
    ethertype: input.ethertype,
    protocol,
    portRangeMin,
    portRangeMax,
    icmpType,
    icmpCode,
    remoteCidr,
    remoteGroupId,
    description: input.description ?? null,
  };
}

/**
 * Validates and normalizes a group's whole rule list and gives every rule its id. `current` is
 * the group's rules before an update (absent on create): a rule sent back with its `id` keeps
 * it (even if edited); a rule sent without one that equals a current rule takes that rule's id;
 * any other rule gets a new id. Remote groups are checked by the store, not here.
 */
export function normalizeRules(inputs: RuleInput[], current?: SecurityGroupRule[], newRuleId: () => string = () => newId()): SecurityGroupRule[] {
  const normalized = inputs.map((input, i) => normalizeRule(input, `rules[${i}]`));
  const seen = new Map<string, number>();
  normalized.forEach((rule, i) => {
    const key = ruleKey(rule);
    const first = seen.get(key);
    if (first !== undefined) {
      throw new OverlayError(ErrorCode.DuplicateRule, `rules[${i}] allows the same traffic as rules[${first}]`, { field: `rules[${i}]` });
    }
    seen.set(key, i);
  });

  const currentById = new Map((current ?? []).map((r) => [r.id, r]));
  const claimed = new Set<string>();
  inputs.forEach((input, i) => {
    const id = input.id ?? null;
    if (id === null) {
      return;
    }
    if (!currentById.has(id)) {
      const why = current ? 'this group has no rule with that id' : 'a new group has no rules yet; leave ids out';
      throw new OverlayError(ErrorCode.InvalidValue, `rules[${i}].id ${id}: ${why}`, { field: `rules[${i}].id` });
    }
    if (claimed.has(id)) {
      throw new OverlayError(ErrorCode.InvalidValue, `rules[${i}].id ${id} is given to two rules`, { field: `rules[${i}].id` });
    }
    claimed.add(id);
  });
  const unclaimedByKey = new Map<string, string>();
  for (const rule of current ?? []) {
    if (!claimed.has(rule.id)) {
      unclaimedByKey.set(ruleKey(rule), rule.id);
    }
  }
  return normalized.map((rule, i) => {
    const given = inputs[i].id ?? null;
    const id = given ?? unclaimedByKey.get(ruleKey(rule)) ?? newRuleId();
    unclaimedByKey.delete(ruleKey(rule));
    return { id, ...rule };
  });
}

/** The remote groups a rule list names, other than `selfId`, each once, sorted. */
export function remoteGroupsOf(rules: SecurityGroupRule[], selfId: string): string[] {
  return [...new Set(rules.map((r) => r.remoteGroupId).filter((g): g is string => g !== null && g !== selfId))].sort();
}
