import { parseCidrText, parseIpText, formatCidr, formatIp, type IpFamily, type ParsedCidr } from '../../common/ip';
import { withSecurityDefaults, type Port } from '../model/port';
import { ANY_CIDR, isIcmp, protocolNumber, takesPorts, type Ethertype, type SecurityGroup, type SecurityGroupRule } from '../model/security-group';

/**
 * The firewall compiler: (a port, the security groups) -> the port's policy. Pure: no I/O, no
 * clock, and canonical: the output depends only on what the rules allow, never on the order in
 * which rules, groups, addresses or members were written, nor on rule ids or descriptions, so
 * an unchanged policy compares equal (byte for byte once serialized) and need not be resent.
 *
 * Rules whose peer is a security group are not expanded into one rule per member: they name a
 * set (the group id and the rule's ethertype), whose members `ipSetMembers` computes. A policy
 * therefore does not depend on membership at all: a port joining or leaving a group changes the
 * group's sets, never the policies that reference them (the agent updates an nftables set).
 *
 * Semantics the renderer must keep (nftables, bridge family, one chain per port):
 *  - `portSecurity: false`: nothing is filtered and no source is checked; the policy then has
 *    no rules, no pairs and no sets, which here means *allow all*, not deny all.
 *  - otherwise each direction is an allow list (a direction with no rule drops everything),
 *    stateful: replies of allowed connections pass (ct state established,related), invalid drops.
 *  - anti-spoofing: the port sends only from `mac` with `ips`, or from an allowed address pair
 *    (ip may be a prefix); ARP/ND claiming another address is dropped. What a port needs to get
 *    its addresses (DHCP, ND/RA) is the renderer's business, not a rule here.
 *  - ingress rules match the source (remote = who sends to the port), egress the destination.
 */
export type CompiledRemote = { cidr: string } | { group: string };

export interface CompiledRule {
  ethertype: Ethertype;
  /** IP protocol number (6 for tcp...) or 'any'. */
  protocol: number | 'any';
  /** Destination port range, inclusive; only for tcp, udp, sctp; absent = every port. */
  ports?: [number, number];
  /** ICMP (v4 or v6 per ethertype) type and code; absent = every type, no code = every code. */
  icmp?: { type: number; code?: number };
  /** Peer prefix, or peer set: the members of `group` of this rule's ethertype (see ipSetMembers). */
  remote: CompiledRemote;
}

export interface CompiledAddressPair {
  /** An IP or a prefix. */
  ip: string;
  mac: string;
}

export interface CompiledPolicy {
  portId: string;
  mac: string;
  ips: string[];
  allowedAddressPairs: CompiledAddressPair[];
  portSecurity: boolean;
  ingress: CompiledRule[];
  egress: CompiledRule[];
  /** Every group whose sets the rules reference, sorted: the agent needs their members. */
  remoteGroups: string[];
}

/** What compilation reads: groups by id, and which group is a tenant's default. */
export interface GroupCatalog {
  group(id: string): SecurityGroup | undefined;
  defaultGroupOf(tenantId: string): string | undefined;
}

/**
 * A catalog over groups by id. With the tenants (the view's), a tenant's default group is read
 * from the tenant (O(1)); without, it is the group marked `isDefault` (indexed once, O(groups)).
 */
export function groupCatalog(groups: ReadonlyMap<string, SecurityGroup>, tenants?: ReadonlyMap<string, { defaultSecurityGroupId?: string }>): GroupCatalog {
  let defaults: Map<string, string> | undefined;
  return {
    group: (id) => groups.get(id),
    defaultGroupOf(tenantId) {
      if (tenants) {
        return tenants.get(tenantId)?.defaultSecurityGroupId;
      }
      if (!defaults) {
        defaults = new Map([...groups.values()].filter((g) => g.isDefault).map((g) => [g.tenantId, g.id]));
      }
      return defaults.get(tenantId);
    },
  };
}

const asCatalog = (groups: GroupCatalog | ReadonlyMap<string, SecurityGroup>): GroupCatalog => ('defaultGroupOf' in groups ? groups : groupCatalog(groups));

/**
 * The groups whose rules apply to the port, sorted: none without port security, else the ones
 * it lists, else its tenant's default group. The store's member index (`sg:<id>:ports`) follows
 * the same rule (security-group.lua.ts).
 */
export function effectiveGroupIds(port: Port, groups: GroupCatalog | ReadonlyMap<string, SecurityGroup>): string[] {
  const p = withSecurityDefaults(port);
  if (!p.portSecurity) {
    return [];
  }
  if (p.securityGroupIds.length) {
    return [...new Set(p.securityGroupIds)].sort();
  }
  const fallback = asCatalog(groups).defaultGroupOf(p.tenantId);
  return fallback === undefined ? [] : [fallback];
}

/** One rule in compiled form. Fields a rule's protocol cannot use (never stored) are left out. */
export function compileRule(rule: SecurityGroupRule): CompiledRule {
  let ports: [number, number] | undefined;
  if (rule.portRangeMin !== null && takesPorts(rule.protocol)) {
    const max = rule.portRangeMax ?? rule.portRangeMin;
    ports = rule.portRangeMin === 1 && max === 65535 ? undefined : [rule.portRangeMin, max];
  }
  const icmp = rule.icmpType !== null && isIcmp(rule.protocol) ? (rule.icmpCode === null ? { type: rule.icmpType } : { type: rule.icmpType, code: rule.icmpCode }) : undefined;
  const remote: CompiledRemote = rule.remoteGroupId !== null ? { group: rule.remoteGroupId } : { cidr: canonicalPrefix(rule.remoteCidr ?? ANY_CIDR[rule.ethertype]) };
  // Always the same key order, so that serialized policies compare byte for byte.
  return { ethertype: rule.ethertype, protocol: protocolNumber(rule.protocol), ...(ports ? { ports } : {}), ...(icmp ? { icmp } : {}), remote };
}

/** The rules of a set of groups, compiled: what every port with those effective groups shares. */
export interface CompiledRules {
  ingress: CompiledRule[];
  egress: CompiledRule[];
  /** Every group whose sets the rules reference, sorted. */
  remoteGroups: string[];
}

/** The rules of `groupIds` (sorted effective groups), deduplicated and in canonical order. A group missing from `catalog` contributes nothing (fail closed). */
export function compileRules(groupIds: readonly string[], catalog: GroupCatalog): CompiledRules {
  const ingress = new Map<string, CompiledRule>();
  const egress = new Map<string, CompiledRule>();
  for (const id of groupIds) {
    for (const rule of catalog.group(id)?.rules ?? []) {
      const compiled = compileRule(rule);
      (rule.direction === 'ingress' ? ingress : egress).set(JSON.stringify(compiled), compiled);
    }
  }
  const sortedIngress = [...ingress.values()].sort(compareRules);
  const sortedEgress = [...egress.values()].sort(compareRules);
  const remoteGroups = [...new Set([...sortedIngress, ...sortedEgress].flatMap((r) => ('group' in r.remote ? [r.remote.group] : [])))].sort();
  return { ingress: sortedIngress, egress: sortedEgress, remoteGroups };
}

/** A compiled policy's own fields: what differs between ports whose groups are the same. */
export type CompiledPolicyHead = Pick<CompiledPolicy, 'portId' | 'mac' | 'ips' | 'allowedAddressPairs' | 'portSecurity'>;

/** The port's own part of its policy: its addresses, and its allowed address pairs (none without port security). */
export function policyHead(port: Port): CompiledPolicyHead {
  const p = withSecurityDefaults(port);
  const base = { portId: p.id, mac: p.mac, ips: sortAddresses(p.ips) };
  if (!p.portSecurity) {
    return { ...base, allowedAddressPairs: [], portSecurity: false };
  }
  const pairs = new Map<string, CompiledAddressPair>();
  for (const pair of p.allowedAddressPairs) {
    const compiled = { ip: canonicalAddress(pair.ip), mac: pair.mac ?? p.mac };
    pairs.set(`${compiled.ip} ${compiled.mac}`, compiled);
  }
  return { ...base, allowedAddressPairs: [...pairs.values()].sort((a, b) => compareAddresses(a.ip, b.ip) || compareText(a.mac, b.mac)), portSecurity: true };
}

/**
 * Compiles a port's policy from its effective groups. `rulesOf`: how the groups' rules are
 * compiled (compileRules; a caller compiling many ports may share the result between ports with
 * the same groups, as long as the groups do not change: PolicyIndex).
 */
export function compile(port: Port, groups: GroupCatalog | ReadonlyMap<string, SecurityGroup>, rulesOf: (groupIds: string[], catalog: GroupCatalog) => CompiledRules = compileRules): CompiledPolicy {
  const head = policyHead(port);
  if (!head.portSecurity) {
    return { ...head, ingress: [], egress: [], remoteGroups: [] };
  }
  const catalog = asCatalog(groups);
  const rules = rulesOf(effectiveGroupIds(port, catalog), catalog);
  return { ...head, ingress: rules.ingress, egress: rules.egress, remoteGroups: rules.remoteGroups };
}

/** The sets a policy references: each (group, ethertype) once, sorted. */
export function referencedSets(policy: CompiledPolicy): { group: string; ethertype: Ethertype }[] {
  const keys = new Set<string>();
  for (const rule of [...policy.ingress, ...policy.egress]) {
    if ('group' in rule.remote) {
      keys.add(`${rule.remote.group} ${rule.ethertype}`);
    }
  }
  return [...keys].sort().map((key) => {
    const [group, ethertype] = key.split(' ');
    return { group, ethertype: ethertype as Ethertype };
  });
}

/**
 * The members of one set: the addresses, of `family`, of every port among `ports` whose
 * effective groups include `groupId`, *and their allowed address pairs* (as Neutron does: a
 * member may send from those, so a peer group must admit them, e.g. a keepalived VIP). Entries
 * are IPs or prefixes; an entry inside another entry is left out, so the list has no overlaps
 * (an nftables interval set refuses overlapping elements) and is sorted by address.
 *
 * Membership does not depend on binding: an unbound port is a member too (its addresses are
 * still its own), so binding and migrating ports never changes a set.
 *
 * `ports` may be every port, or any superset of the members (the store's `sg:<id>:ports`).
 */
export function ipSetMembers(groupId: string, family: Ethertype, ports: Iterable<Port>, groups: GroupCatalog | ReadonlyMap<string, SecurityGroup>): string[] {
  const catalog = asCatalog(groups);
  const want: IpFamily = family === 'IPv4' ? 4 : 6;
  const entries: ParsedCidr[] = [];
  for (const port of ports) {
    const p = withSecurityDefaults(port);
    if (!effectiveGroupIds(p, catalog).includes(groupId)) {
      continue;
    }
    for (const text of [...p.ips, ...p.allowedAddressPairs.map((pair) => pair.ip)]) {
      const entry = parsePrefix(text);
      if (entry && entry.family === want) {
        entries.push(entry);
      }
    }
  }
  entries.sort((a, b) => compareBig(a.network, b.network) || a.prefix - b.prefix);
  const out: ParsedCidr[] = [];
  for (const entry of entries) {
    const last = out[out.length - 1];
    // Prefixes nest or are disjoint, and a container sorts before what it contains: only the last kept can contain this one.
    if (last && entry.prefix >= last.prefix && entry.network >> BigInt(bits(want) - last.prefix) === last.network >> BigInt(bits(want) - last.prefix)) {
      continue;
    }
    out.push(entry);
  }
  return out.map(formatPrefix);
}

/**
 * The raw IP-set entries a port contributes to each of its effective groups' sets: its IPs and
 * its allowed address pairs' IPs or prefixes, canonical, each once (the same addresses
 * `ipSetMembers` reads, before it leaves out nested entries). Distribution counts these per
 * group, so a port joining or leaving a group changes a set by exactly these entries.
 */
export function memberEntries(port: Port): { family: Ethertype; cidr: string }[] {
  const p = withSecurityDefaults(port);
  if (!p.portSecurity) {
    return [];
  }
  const out = new Map<string, { family: Ethertype; cidr: string }>();
  for (const text of [...p.ips, ...p.allowedAddressPairs.map((pair) => pair.ip)]) {
    const entry = parsePrefix(text);
    if (entry) {
      const cidr = formatPrefix(entry);
      out.set(cidr, { family: entry.family === 4 ? 'IPv4' : 'IPv6', cidr });
    }
  }
  return [...out.values()];
}

// --- canonical order ----------------------------------------------------------------------

const bits = (family: IpFamily): number => (family === 4 ? 32 : 128);

/** An IP as a full-length prefix, or a prefix; undefined for neither. */
function parsePrefix(text: string): ParsedCidr | undefined {
  const ip = parseIpText(text);
  if (ip) {
    return { family: ip.family, network: ip.value, prefix: bits(ip.family) };
  }
  const cidr = parseCidrText(text);
  return typeof cidr === 'object' ? cidr : undefined;
}

function formatPrefix(entry: ParsedCidr): string {
  return entry.prefix === bits(entry.family) ? formatIp({ family: entry.family, value: entry.network }) : formatCidr(entry);
}

/** An IP or prefix in its one spelling (`10.0.0.5/32` -> `10.0.0.5`). */
function canonicalAddress(text: string): string {
  const entry = parsePrefix(text);
  return entry ? formatPrefix(entry) : text;
}

/** A prefix in its one spelling, always with its length (`0.0.0.0/0`, `10.0.0.5/32`). */
function canonicalPrefix(text: string): string {
  const entry = parsePrefix(text);
  return entry ? formatCidr(entry) : text;
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const compareBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** IPv4 before IPv6, then by address, then a wider prefix first. */
function compareAddresses(a: string, b: string): number {
  const x = parsePrefix(a);
  const y = parsePrefix(b);
  if (!x || !y) {
    return compareText(a, b);
  }
  return x.family - y.family || compareBig(x.network, y.network) || x.prefix - y.prefix;
}

function sortAddresses(addresses: string[]): string[] {
  return [...new Set(addresses.map(canonicalAddress))].sort(compareAddresses);
}

const compareOptional = <T>(a: T | undefined, b: T | undefined, compare: (x: T, y: T) => number): number =>
  a === undefined ? (b === undefined ? 0 : -1) : b === undefined ? 1 : compare(a, b);

function compareRemotes(a: CompiledRemote, b: CompiledRemote): number {
  if ('cidr' in a) {
    return 'cidr' in b ? compareAddresses(a.cidr, b.cidr) : -1;
  }
  return 'cidr' in b ? 1 : compareText(a.group, b.group);
}

/** By ethertype, protocol ('any' first), ports, ICMP type and code, then remote (prefixes before sets). */
export function compareRules(a: CompiledRule, b: CompiledRule): number {
  return (
    compareText(a.ethertype, b.ethertype) ||
    compareOptional(a.protocol === 'any' ? undefined : a.protocol, b.protocol === 'any' ? undefined : b.protocol, (x, y) => x - y) ||
    compareOptional(a.ports, b.ports, (x, y) => x[0] - y[0] || x[1] - y[1]) ||
    compareOptional(a.icmp, b.icmp, (x, y) => x.type - y.type || compareOptional(x.code, y.code, (c, d) => c - d)) ||
    compareRemotes(a.remote, b.remote)
  );
}
