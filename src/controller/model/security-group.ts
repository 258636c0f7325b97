import { newId } from './value-parsers';

/**
 * Security groups: named sets of allow rules attached to ports (NIST SP 800-125B VM-FW-R4).
 *
 * Semantics (as Neutron's): every rule allows; what no rule of a port's groups allows is
 * dropped, in each direction, except replies of allowed connections (stateful). A port's
 * effective groups are the ones it lists, or its tenant's default group when it lists none, or
 * none at all when its port security is off (then nothing is filtered).
 */
export const DIRECTIONS = ['ingress', 'egress'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export const ETHERTYPES = ['IPv4', 'IPv6'] as const;
export type Ethertype = (typeof ETHERTYPES)[number];

export const PROTOCOL_NAMES = ['tcp', 'udp', 'icmp', 'icmpv6', 'any'] as const;
export type ProtocolName = (typeof PROTOCOL_NAMES)[number];

/** A protocol by name, or by IP protocol number (0-255) when it has no name here. */
export type Protocol = ProtocolName | number;

/** IP protocol numbers of the named protocols ('any' has none). */
export const PROTOCOL_NUMBERS: Readonly<Record<Exclude<ProtocolName, 'any'>, number>> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 };

/** SCTP: the one protocol given by number that also takes port ranges. */
export const SCTP = 132;

/**
 * One allow rule. Stored in one canonical shape: every field present (null when unused), the
 * protocol by name when it has one (6 is stored as 'tcp'), a single port as min = max.
 */
export interface SecurityGroupRule {
  /** Stable: a rule keeps its id across updates of its group as long as it is kept. */
  id: string;
  direction: Direction;
  ethertype: Ethertype;
  protocol: Protocol;
  /** Only for tcp, udp and sctp (132); both null = every port. */
  portRangeMin: number | null;
  portRangeMax: number | null;
  /** Only for icmp/icmpv6; null = every type (and every code). */
  icmpType: number | null;
  icmpCode: number | null;
  /** The peer's prefix (the source for ingress, the destination for egress); of the rule's ethertype. */
  remoteCidr: string | null;
  /** The peer is any member of this group (same tenant). Never set together with remoteCidr; both null = any peer. */
  remoteGroupId: string | null;
  description: string | null;
}

export interface SecurityGroup {
  id: string;
  tenantId: string;
  /** Unique per tenant; `default` is the tenant's default group. */
  name: string;
  description: string | null;
  /** The tenant's default group: created with the tenant, deleted with it, never before. */
  isDefault: boolean;
  rules: SecurityGroupRule[];
  createdAt: string;
  updatedAt: string;
}

export const DEFAULT_GROUP_NAME = 'default';

const NAME_OF_NUMBER = new Map<number, Protocol>(Object.entries(PROTOCOL_NUMBERS).map(([name, n]) => [n, name as Protocol]));

/** 6 -> 'tcp', 'tcp' -> 'tcp', 132 -> 132: one spelling per protocol. */
export function canonicalProtocol(protocol: Protocol): Protocol {
  return typeof protocol === 'number' ? (NAME_OF_NUMBER.get(protocol) ?? protocol) : protocol;
}

/** The IP protocol number, or 'any'. */
export function protocolNumber(protocol: Protocol): number | 'any' {
  if (typeof protocol === 'number' || protocol === 'any') {
    return protocol;
  }
  return PROTOCOL_NUMBERS[protocol];
}

export function takesPorts(protocol: Protocol): boolean {
  const n = protocolNumber(protocol);
  return n === PROTOCOL_NUMBERS.tcp || n === PROTOCOL_NUMBERS.udp || n === SCTP;
}

export function isIcmp(protocol: Protocol): boolean {
  const n = protocolNumber(protocol);
  return n === PROTOCOL_NUMBERS.icmp || n === PROTOCOL_NUMBERS.icmpv6;
}

export const ANY_CIDR: Readonly<Record<Ethertype, string>> = { IPv4: '0.0.0.0/0', IPv6: '::/0' };

const rule = (id: string, fields: Partial<SecurityGroupRule> & Pick<SecurityGroupRule, 'direction' | 'ethertype'>): SecurityGroupRule => ({
  id,
  protocol: 'any',
  portRangeMin: null,
  portRangeMax: null,
  icmpType: null,
  icmpCode: null,
  remoteCidr: null,
  remoteGroupId: null,
  description: null,
  ...fields,
});

/** The rules of a group created without any: everything out, nothing in (Neutron's and AWS's default). */
export function defaultEgressRules(newRuleId: () => string = () => newId()): SecurityGroupRule[] {
  return [
    rule(newRuleId(), { direction: 'egress', ethertype: 'IPv4', remoteCidr: ANY_CIDR.IPv4 }),
    rule(newRuleId(), { direction: 'egress', ethertype: 'IPv6', remoteCidr: ANY_CIDR.IPv6 }),
  ];
}

/**
 * A tenant's default group: its members talk freely to each other (ingress from the group
 * itself), and reach anything out (egress 0.0.0.0/0 and ::/0); nothing else comes in.
 */
export function defaultSecurityGroup(id: string, tenantId: string, now: string, newRuleId: () => string = () => newId()): SecurityGroup {
  return {
    id,
    tenantId,
    name: DEFAULT_GROUP_NAME,
    description: "the tenant's default group: members reach each other, and anything out",
    isDefault: true,
    rules: [
      rule(newRuleId(), { direction: 'ingress', ethertype: 'IPv4', remoteGroupId: id }),
      rule(newRuleId(), { direction: 'ingress', ethertype: 'IPv6', remoteGroupId: id }),
      ...defaultEgressRules(newRuleId),
    ],
    createdAt: now,
    updatedAt: now,
  };
}
