import { createHash } from 'node:crypto';
import type { FirewallRule__Output } from '../../../generated/overlay/v1/FirewallRule';
import type { IpSetMember__Output } from '../../../generated/overlay/v1/IpSetMember';
import type { PortPolicy__Output } from '../../../generated/overlay/v1/PortPolicy';

/**
 * The firewall renderer: (the policies of this host's ports, the members of the sets they
 * reference) -> the whole `table bridge overlay` as nft text, for one `nft -f -` transaction.
 * Pure and deterministic: the same input, in any order, renders the same bytes, so the agent
 * can compare texts and skip an unchanged reload.
 *
 * The text adds the table, deletes it, then defines it: loading is atomic (one transaction)
 * and idempotent (works whether or not the table exists), and leaves nothing stale behind.
 *
 * Layout (bridge family; taps are bridge ports, so filtering happens on bridge hooks):
 *  - `vm_egress`, hooked on prerouting: frames *from* a VM, dispatched by `iifname` to the
 *    port's `<chain>_eg`. Prerouting runs before the bridge learns the source MAC, so spoofed
 *    frames never pollute the FDB nor reach anything.
 *  - `vm_ingress`, hooked on postrouting: frames *to* a VM (run once per output port, also for
 *    flooded frames), dispatched by `oifname` to `<chain>_in`.
 *  - A tap (`tap*`) with no policy drops everything in both directions: a port is closed
 *    until its rules are applied. Non-tap bridge ports (VXLAN devices) are not filtered here;
 *    the remote end filters on its own host.
 *  - `portSecurity: false`: the dispatch accepts (allow all, no source check).
 *  - Otherwise each port chain: anti-spoofing (egress only), address basics, stateful
 *    (`ct state established,related accept`, `ct state invalid drop`), the allow rules, `drop`.
 *
 * Address basics allowed (after anti-spoofing):
 *  - egress: ARP (sender MAC/IP checked), DHCPv4 client (incl. DISCOVER from 0.0.0.0), DHCPv6
 *    client, ICMPv6 router solicitation, neighbour solicitation/advertisement and MLD reports
 *    (from `::` only NS for DAD and MLD reports); a VM may not answer as a DHCP server or send
 *    router advertisements. Its EUI-64 link-local addresses (of its MAC and pair MACs) count as
 *    its own. Ethertypes other than ARP/IPv4/IPv6 are dropped.
 *  - ingress: ARP, ICMPv6 NS/NA/RA, DHCPv4/DHCPv6 server replies.
 * Not checked: MAC-IP pairing (a port's MACs and IPs are checked separately) and ND target
 * addresses.
 */
export interface RulesetInput {
  policies: PortPolicy__Output[];
  members: IpSetMember__Output[];
  tapOf: (portId: string) => string;
}

export const TABLE = 'overlay';
const FAMILIES = { IPv4: '4', IPv6: '6' } as const;
type Family = keyof typeof FAMILIES;

const isFamily = (f: string): f is Family => f === 'IPv4' || f === 'IPv6';
const uniqSorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();
const hexOf = (id: string): string => id.toLowerCase().replace(/[^0-9a-z]/g, '');

/** The port's chain base name: `p_` + the last 11 hex digits of its id, like its tap. */
export function portChainName(portId: string): string {
  return `p_${hexOf(portId).slice(-11)}`;
}

/**
 * Set names per group: `g_` + the last 12 characters of the id (the random part of a UUIDv7)
 * + `_4`/`_6`. If two groups would share a name, both use a hash of their id instead.
 */
function setNamer(groupIds: string[]): (groupId: string, family: Family) => string {
  const short = new Map<string, string>();
  const byShort = new Map<string, string[]>();
  for (const id of groupIds) {
    const s = hexOf(id).slice(-12);
    byShort.set(s, [...(byShort.get(s) ?? []), id]);
  }
  for (const [s, ids] of byShort) {
    for (const id of ids) {
      short.set(id, ids.length === 1 && s.length > 0 ? s : `h${createHash('sha256').update(id).digest('hex').slice(0, 11)}`);
    }
  }
  return (groupId, family) => `g_${short.get(groupId)}_${FAMILIES[family]}`;
}

const familyOf = (address: string): Family => (address.includes(':') ? 'IPv6' : 'IPv4');
const isAnyPrefix = (cidr: string): boolean => cidr === '' || cidr === '0.0.0.0/0' || cidr === '::/0';
const set = (xs: string[]): string => (xs.length === 1 ? xs[0] : `{ ${xs.join(', ')} }`);

/** The EUI-64 link-local address of a MAC (fe80::/64 + the MAC with ff:fe inserted, U/L bit flipped). */
export function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  if (b.length !== 6 || b.some((x) => Number.isNaN(x))) {
    throw new Error(`bad MAC address: ${mac}`);
  }
  b[0] ^= 0x02;
  const groups = [(b[0] << 8) | b[1], (b[2] << 8) | 0xff, 0xfe00 | b[3], (b[4] << 8) | b[5]];
  return `fe80::${groups.map((g) => g.toString(16)).join(':')}`;
}

function ruleLine(rule: FirewallRule__Output, direction: 'ingress' | 'egress', setName: (g: string, f: Family) => string): string | undefined {
  if (!isFamily(rule.ethertype)) {
    return undefined; // unknown family: allows nothing (fail closed)
  }
  const v6 = rule.ethertype === 'IPv6';
  const ip = v6 ? 'ip6' : 'ip';
  const parts = [`ether type ${ip}`];
  const addr = direction === 'ingress' ? 'saddr' : 'daddr';
  if (rule.remoteGroupId) {
    parts.push(`${ip} ${addr} @${setName(rule.remoteGroupId, rule.ethertype)}`);
  } else if (!isAnyPrefix(rule.remoteCidr)) {
    if (familyOf(rule.remoteCidr) !== rule.ethertype) {
      return undefined;
    }
    parts.push(`${ip} ${addr} ${rule.remoteCidr}`);
  }
  if (rule.protocol !== 'any' && rule.protocol !== '') {
    const proto = Number(rule.protocol);
    if (!Number.isInteger(proto) || proto < 0 || proto > 255) {
      return undefined;
    }
    parts.push(`meta l4proto ${proto}`);
    const icmp = (proto === 1 && !v6) || (proto === 58 && v6) ? (v6 ? 'icmpv6' : 'icmp') : undefined;
    if (icmp && rule.icmpType >= 0) {
      parts.push(`${icmp} type ${rule.icmpType}`);
      if (rule.icmpCode >= 0) {
        parts.push(`${icmp} code ${rule.icmpCode}`);
      }
    } else if (!icmp && rule.portMin > 0) {
      const max = Math.max(rule.portMax, rule.portMin);
      parts.push(`th dport ${max === rule.portMin ? rule.portMin : `${rule.portMin}-${max}`}`);
    }
  }
  return [...parts, 'accept'].join(' ');
}

function ruleLines(rules: FirewallRule__Output[], direction: 'ingress' | 'egress', setName: (g: string, f: Family) => string): string[] {
  return uniqSorted(rules.flatMap((r) => ruleLine(r, direction, setName) ?? []));
}

const STATEFUL = ['ct state established,related accept', 'ct state invalid drop'];

function egressChain(p: PortPolicy__Output, setName: (g: string, f: Family) => string): string[] {
  const pairs = p.allowedAddressPairs ?? [];
  const macs = uniqSorted([p.mac, ...pairs.map((a) => a.mac || p.mac)].map((m) => m.toLowerCase()));
  const addresses = [...(p.ips ?? []), ...pairs.map((a) => a.ip)];
  const v4 = uniqSorted(addresses.filter((a) => familyOf(a) === 'IPv4'));
  const v6 = uniqSorted([...addresses.filter((a) => familyOf(a) === 'IPv6'), ...macs.map(linkLocalOf)]);
  return [
    `ether saddr != ${set(macs)} drop`,
    `ether type arp arp saddr ether != ${set(macs)} drop`,
    `ether type arp arp saddr ip != ${set(uniqSorted(['0.0.0.0', ...v4]))} drop`,
    'ether type arp accept',
    'ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept',
    v4.length ? `ether type ip ip saddr != ${set(v4)} drop` : 'ether type ip drop',
    'ether type ip6 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } accept',
    `ether type ip6 ip6 saddr != ${set(v6)} drop`,
    'ether type != { ip, ip6 } drop',
    'ether type ip udp sport 67 udp dport 68 drop',
    'ether type ip6 udp sport 547 udp dport 546 drop',
    'ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop',
    'ether type ip udp sport 68 udp dport 67 accept',
    'ether type ip6 udp sport 546 udp dport 547 accept',
    'ether type ip6 icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } accept',
    ...STATEFUL,
    ...ruleLines(p.egress ?? [], 'egress', setName),
    'drop',
  ];
}

function ingressChain(p: PortPolicy__Output, setName: (g: string, f: Family) => string): string[] {
  return [
    ...STATEFUL,
    'ether type arp accept',
    'ether type ip6 icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept',
    'ether type ip udp sport 67 udp dport 68 accept',
    'ether type ip6 udp sport 547 udp dport 546 accept',
    ...ruleLines(p.ingress ?? [], 'ingress', setName),
    'drop',
  ];
}

const chain = (name: string, lines: string[]): string => [`\tchain ${name} {`, ...lines.map((l) => `\t\t${l}`), '\t}'].join('\n');

/** Renders the whole table; see the module comment. */
export function renderRuleset(input: RulesetInput): string {
  // One policy per port (the last given wins, as in a map), in port id order.
  const byPort = new Map<string, PortPolicy__Output>();
  for (const p of input.policies) {
    byPort.set(p.portId, p);
  }
  const policies = [...byPort.values()].sort((a, b) => (a.portId < b.portId ? -1 : a.portId > b.portId ? 1 : 0));
  const secured = policies.filter((p) => p.portSecurity);

  // Sets: every (group, family) that has members or that a rule names (an empty set matches nothing).
  const elements = new Map<string, { group: string; family: Family; cidrs: Set<string> }>();
  const touch = (group: string, family: Family) => {
    const key = `${group}\n${family}`;
    let e = elements.get(key);
    if (!e) {
      e = { group, family, cidrs: new Set() };
      elements.set(key, e);
    }
    return e;
  };
  for (const m of input.members) {
    if (isFamily(m.family) && familyOf(m.cidr) === m.family) {
      touch(m.groupId, m.family).cidrs.add(m.cidr);
    }
  }
  for (const p of secured) {
    for (const r of [...(p.ingress ?? []), ...(p.egress ?? [])]) {
      if (r.remoteGroupId && isFamily(r.ethertype)) {
        touch(r.remoteGroupId, r.ethertype);
      }
    }
  }
  const setName = setNamer(uniqSorted([...elements.values()].map((e) => e.group)));
  const sets = [...elements.values()]
    .map((e) => ({ name: setName(e.group, e.family), ...e }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) => {
      const cidrs = uniqSorted(e.cidrs);
      return [
        `\tset ${e.name} {`,
        `\t\ttype ${e.family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr'}`,
        '\t\tflags interval',
        '\t\tauto-merge',
        ...(cidrs.length ? [`\t\telements = { ${cidrs.join(', ')} }`] : []),
        '\t}',
      ].join('\n');
    });

  const dispatch = (dir: 'iifname' | 'oifname', suffix: string): string[] => {
    const entries = policies.map((p) => `"${input.tapOf(p.portId)}" : ${p.portSecurity ? `jump ${portChainName(p.portId)}_${suffix}` : 'accept'}`);
    return [...(entries.length ? [`${dir} vmap { ${entries.join(', ')} }`] : []), `${dir} "tap*" drop`];
  };

  const blocks = [
    ...sets,
    chain('vm_egress', ['type filter hook prerouting priority 0; policy accept;', ...dispatch('iifname', 'eg')]),
    chain('vm_ingress', ['type filter hook postrouting priority 0; policy accept;', ...dispatch('oifname', 'in')]),
    ...secured.flatMap((p) => [chain(`${portChainName(p.portId)}_eg`, egressChain(p, setName)), chain(`${portChainName(p.portId)}_in`, ingressChain(p, setName))]),
  ];
  return [`table bridge ${TABLE}`, `delete table bridge ${TABLE}`, `table bridge ${TABLE} {`, blocks.join('\n\n'), '}', ''].join('\n');
}
