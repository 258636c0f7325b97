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
