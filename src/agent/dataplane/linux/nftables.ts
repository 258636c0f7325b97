import { createHash } from 'node:crypto';
import type { FirewallRule__Output } from '../../../generated/overlay/v1/FirewallRule';
import type { IpSetMember__Output } from '../../../generated/overlay/v1/IpSetMember';
import type { PortPolicy__Output } from '../../../generated/overlay/v1/PortPolicy';
import type { FirewallRuleset } from '../dataplane';
import { bridgeName, vxlanName } from '../names';
import { printRuleset, type NftChain, type NftRuleset, type NftSet, type NftTable } from './nft-ruleset';

/**
 * The firewall renderer: (the policies of this host's ports, the members of the sets they
 * reference, this host's segments) -> the whole firewall as an NftRuleset (nft-ruleset.ts),
 * printed as nft text for one `nft -f -` transaction. Pure and deterministic: the same input, in
 * any order, renders the same bytes, so the agent can compare texts and skip an unchanged reload.
 *
 * The ruleset adds each of its tables, deletes them, then defines them: loading is atomic (one
 * transaction) and idempotent (works whether or not the tables exist), and leaves nothing stale.
 *
 * Layout (bridge family; taps are bridge ports, so filtering happens on bridge hooks):
 *  - `vm_egress`, hooked on prerouting: frames *from* a VM, dispatched by `iifname` through the
 *    verdict map `eg_ports` (tap -> `jump p_<hash>_eg`). Prerouting runs before the bridge
 *    learns the source MAC, so spoofed frames never pollute the FDB nor reach anything.
 *  - `vm_ingress`, hooked on postrouting: frames *to* a VM (run once per output port, also for
 *    flooded frames), dispatched by `oifname` through `in_ports` to `p_<hash>_in`.
 *  - A tap (`tap*`) with no policy drops everything in both directions: a port is closed
 *    until its rules are applied. So does a tap named otherwise (as the hypervisor named it, see
 *    taps.ts) that is, or is to be, attached to an overlay bridge: the set `named_taps`
 *    (`RulesetInput.namedTaps`; this kernel's bridge family may lack `meta ibrname`, so the
 *    bridges' ports cannot be told apart otherwise). Non-tap bridge ports (VXLAN devices) are not
 *    filtered here; the remote end filters on its own host.
 *  - `portSecurity: false`: the maps' verdict is `jump open_eg`/`jump open_in` (allow all, no
 *    source check).
 *  - Every frame the firewall lets through to or from a tap is stamped: `MARK_EGRESS_OK` when a
 *    port's egress policy accepted it, `MARK_INGRESS_OK` when the policy of the tap it goes to
 *    accepted it (postrouting runs once per output port, on that port's copy of a flooded frame).
 *    `vm_egress` clears both bits on every frame first. The Linux dataplane's tc gate (see
 *    tc-gate.ts) drops, on a tap's egress, every frame without MARK_INGRESS_OK and, on a
 *    VXLAN device's egress, every frame without MARK_EGRESS_OK: if these tables are gone (a
 *    `nft flush ruleset` by hand) or were never loaded, nothing reaches or leaves a VM.
 *  - Otherwise a policy chain per direction: `jump eg_basics` (anti-spoofing, address basics,
 *    stateful; shared) or `jump in_basics` (stateful, address basics; shared), the allow rules,
 *    `drop`. A policy chain is named by a hash of its lines, so the ports whose rules render
 *    the same share one.
 *  - Anti-spoofing is one lookup per check in sets keyed by the tap: `port_macs`
 *    (`"<tap>" . <MAC>`), `port_ips4` and `port_ips6` (`"<tap>" . <address or prefix>`,
 *    interval sets; an address inside a prefix of the same port is left out, as an interval set
 *    refuses overlaps). No chain holds a per-port anonymous set: their load cost grows faster
 *    than linearly with their number (13 s of kernel time for 1,000 ports), while named sets
 *    and maps load in time linear in their elements. Everything per port is thus an element,
 *    and a port that changes addresses, or comes or goes with the rules of another port, is a
 *    set update (setUpdate in nft-ruleset.ts).
 *
 * Connection tracking, two modes (`RulesetInput.conntrack`):
 *  - `bridge`: native bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE). A bridge chain at raw
 *    priority (-300, before conntrack at -200) puts each segment's frames in a conntrack zone of
 *    their own (`meta ibrname`), and the port chains test `ct state`.
 *  - `br_netfilter`: for kernels without bridge conntrack. With br_netfilter loaded and
 *    `net.bridge.bridge-nf-call-ip{,6}tables=1` (the agent sets them), bridged IPv4/IPv6 frames
 *    also traverse the inet hooks, where the in-device is the bridge (`br<vni>`) and conntrack
 *    works. A second table, `inet overlay`, then: at raw priority sets the zone of the segment
 *    (`iifname "br<vni>"`), and after conntrack (prerouting, priority filter) turns the ct state
 *    into mark bits (MARK_ESTABLISHED for established/related, MARK_INVALID for invalid). The
 *    bridge port chains test those bits instead of `ct state`. br_netfilter runs the inet
 *    prerouting hooks from its bridge prerouting hook at priority 0 and then only the bridge
 *    hooks *above* 0, so `vm_egress` is at priority 10 here; postrouting (`vm_ingress`, 0) runs
 *    before br_netfilter's own postrouting hook (last), long after the mark was set. A frame a
 *    VXLAN device decapsulated keeps the mark of the outer UDP packet (same namespace: the skb
 *    is not scrubbed), so `mark_clear` clears the bits of frames from our VXLAN devices before
 *    br_netfilter runs; and the inet chain clears them before setting them.
 *  A frame that a port chain drops never confirms its conntrack entry (confirmation happens at
 *  postrouting, after the bridge chains), so refused traffic leaves no entry behind.
 *
 * Zones: a segment's zone is its VNI modulo 65536 (zone 0, the host's own, is skipped), the
 * next free one upward on a collision, VNIs taken in ascending order (see conntrackZones).
 *
 * Migration: a TCP flow whose first packet on this host is mid-stream (its VM just migrated
 * here) is picked up by conntrack as long as net.netfilter.nf_conntrack_tcp_loose is 1 (the
 * default): that packet counts as new, so it passes only if the rules allow it in its direction
 * (a reply-direction packet is judged by the rules of the other end, e.g. the server VM's
 * egress), and from then on the flow is established. With tcp_loose=0 such packets are invalid
 * and dropped: migrated connections must reconnect.
 *
 * Address basics allowed (after anti-spoofing):
 *  - egress: ARP (sender MAC/IP checked), DHCPv4 client (incl. DISCOVER from 0.0.0.0), DHCPv6
 *    client, ICMPv6 router solicitation, neighbour solicitation/advertisement and MLD reports
 *    (from `::` only NS for DAD and MLD reports); a VM may not answer as a DHCP server or send
 *    router advertisements. Its EUI-64 link-local addresses (of its MAC and pair MACs) count as
 *    its own. RARP from its own MAC passes (a migrated VM announcing itself); ethertypes other than
 *    ARP/RARP/IPv4/IPv6 are dropped.
 *  - ingress: ARP, ICMPv6 NS/NA/RA, DHCPv4/DHCPv6 server replies.
 * Not checked: MAC-IP pairing (a port's MACs and IPs are checked separately) and ND target
 * addresses.
 */
export type ConntrackMode = 'bridge' | 'br_netfilter';

export interface RulesetInput {
  policies: PortPolicy__Output[];
  members: IpSetMember__Output[];
  tapOf: (portId: string) => string;
  /** VNIs of this host's segments: their bridges `br<vni>` get a conntrack zone each. */
  vnis: number[];
  conntrack: ConntrackMode;
  /** Each port's VNI, when known: its conntrack zone then counts in its digest (see FirewallRuleset). */
  portVnis?: ReadonlyMap<string, number>;
  /**
   * The taps not named `tap*` that are attached to an overlay bridge, or are to be: closed, as
   * `tap*` are, while they have no policy (a port just deleted, whose tap is detached after this
   * ruleset is loaded). `tap*` names here are left out: the wildcard closes them.
   */
  namedTaps?: readonly string[];
}

/** The set of `RulesetInput.namedTaps`. */
const NAMED_TAPS = 'named_taps';

/** Packet mark bits owned by the firewall in `br_netfilter` mode (see the module comment). */
export const MARK_ESTABLISHED = 0x01000000;
export const MARK_INVALID = 0x02000000;
const MARK_MASK = MARK_ESTABLISHED | MARK_INVALID;
/** Stamped on a frame a port's egress policy accepted; the VXLAN devices' tc gate requires it. */
export const MARK_EGRESS_OK = 0x04000000;
/** Stamped on a frame the policy of the tap it goes to accepted; the taps' tc gate requires it. */
export const MARK_INGRESS_OK = 0x08000000;
const MARK_GATE = MARK_EGRESS_OK | MARK_INGRESS_OK;
const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;
type Direction = 'ingress' | 'egress';
/** The verdict of every rule that lets a frame through to (ingress) or from (egress) a tap: stamp, then accept. */
const pass = (direction: Direction): string => `meta mark set meta mark | ${hex(direction === 'egress' ? MARK_EGRESS_OK : MARK_INGRESS_OK)} accept`;

/**
 * The conntrack zone of each VNI: VNI mod 65536, skipping 0 (the host's own zone); on a
 * collision the next free zone upward (wrapping, skipping 0), VNIs taken in ascending order.
 * Pure: depends only on the set of VNIs. A zone changes only when a lower VNI with the same
 * low 16 bits appears on the host, which restarts the tracking of that segment's flows.
 */
export function conntrackZones(vnis: Iterable<number>): Map<number, number> {
  const zones = new Map<number, number>();
  const used = new Set<number>();
  for (const vni of [...new Set(vnis)].sort((a, b) => a - b)) {
    let zone = vni % 65536;
    for (let tries = 0; zone === 0 || used.has(zone); tries++) {
      if (tries > 65536) {
        throw new Error('more than 65535 segments on one host: no conntrack zone left');
      }
      zone = (zone + 1) % 65536;
    }
    used.add(zone);
    zones.set(vni, zone);
  }
  return zones;
}

/** Each segment's conntrack zone on this host (conntrackZones of the segments' VNIs), by segment id. */
export function segmentZones(segments: Iterable<{ id: string; vni: number }>): Map<string, number> {
  const list = [...segments];
  const byVni = conntrackZones(list.map((s) => s.vni));
  return new Map(list.map((s) => [s.id, byVni.get(s.vni)!]));
}

export const TABLE = 'overlay';
/** Set names of the anti-spoofing lookups (`"<tap>" . <address>` elements, ports with port security). */
const PORT_MACS = 'port_macs';
const PORT_IPS4 = 'port_ips4';
const PORT_IPS6 = 'port_ips6';
/** Verdict maps of the dispatch: tap -> `jump <policy chain>`, or `jump open_eg|open_in` (no port security). */
const EGRESS_PORTS = 'eg_ports';
const INGRESS_PORTS = 'in_ports';
/** The shared chains every policy chain jumps to first. */
const EGRESS_BASICS = 'eg_basics';
const INGRESS_BASICS = 'in_basics';
/** The verdicts of ports without port security: stamp and accept everything. */
const OPEN_EGRESS = 'open_eg';
const OPEN_INGRESS = 'open_in';
const FAMILIES = { IPv4: '4', IPv6: '6' } as const;
type Family = keyof typeof FAMILIES;

const isFamily = (f: string): f is Family => f === 'IPv4' || f === 'IPv6';
const uniqSorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();
const hexOf = (id: string): string => id.toLowerCase().replace(/[^0-9a-z]/g, '');

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

function ruleLine(rule: FirewallRule__Output, direction: Direction, setName: (g: string, f: Family) => string): string | undefined {
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
  return [...parts, pass(direction)].join(' ');
}

function ruleLines(rules: FirewallRule__Output[], direction: Direction, setName: (g: string, f: Family) => string): string[] {
  return uniqSorted(rules.flatMap((r) => ruleLine(r, direction, setName) ?? []));
}

function stateful(mode: ConntrackMode, direction: Direction): string[] {
  switch (mode) {
    case 'bridge':
      return [`ct state established,related ${pass(direction)}`, 'ct state invalid drop'];
    case 'br_netfilter':
      // Invalid wins over established: test both bits.
      return [`meta mark & ${hex(MARK_MASK)} == ${hex(MARK_ESTABLISHED)} ${pass(direction)}`, `meta mark & ${hex(MARK_INVALID)} == ${hex(MARK_INVALID)} drop`];
  }
}

/** Addresses of one port: the ones contained in another of them (same family) left out, as an interval set needs. */
function withoutContained(cidrs: string[]): string[] {
  const ranges = cidrs.map((c) => ({ c, r: cidrRange(c) }));
  return ranges
    .filter(({ c, r }) => !ranges.some((o) => o.c !== c && o.r.lo <= r.lo && r.hi <= o.r.hi && (o.r.hi - o.r.lo > r.hi - r.lo || o.c < c)))
    .map(({ c }) => c);
}

/** The first and last address of an IPv4/IPv6 address or prefix, as numbers. */
function cidrRange(cidr: string): { lo: bigint; hi: bigint } {
  const [addr, len] = cidr.split('/');
  const v6 = addr.includes(':');
  const bits = v6 ? 128 : 32;
  let value = 0n;
  if (v6) {
    const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
    const groups = (x: string): string[] => (x ? x.split(':') : []);
    const words = (g: string[]): number[] =>
      g.flatMap((w) => {
        if (w.includes('.')) {
          const b = w.split('.').map(Number);
          return [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
        }
        return [parseInt(w, 16)];
      });
    const h = words(groups(head));
    const t = tail === undefined ? [] : words(groups(tail));
    const all = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
    for (const w of all) {
      value = (value << 16n) | BigInt(w);
    }
  } else {
    for (const o of addr.split('.')) {
      value = (value << 8n) | BigInt(Number(o));
    }
  }
  const prefix = len === undefined ? bits : Number(len);
  const host = (1n << BigInt(bits - prefix)) - 1n;
  return { lo: value & ~host, hi: value | host };
}

/**
 * Shared by every policy chain of ports with port security, port independent (no anonymous set
 * per port): anti-spoofing by lookups keyed by the tap (`iifname . <address>`) in the sets
 * PORT_MACS, PORT_IPS4 and PORT_IPS6, address basics, stateful. Returns to the policy chain
 * for the allow rules.
 */
function egressBasics(mode: ConntrackMode): string[] {
  return [
    `iifname . ether saddr != @${PORT_MACS} drop`,
    `ether type arp iifname . arp saddr ether != @${PORT_MACS} drop`,
    `ether type arp arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @${PORT_IPS4} drop`,
    `ether type arp ${pass('egress')}`,
    // RARP from its own MAC: the announcement a hypervisor sends for a VM that just migrated here
    // (QEMU's self-announce); the agent watches for that first frame to commit the migration.
    `ether type 0x8035 ${pass('egress')}`,
    `ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 ${pass('egress')}`,
    `ether type ip iifname . ip saddr != @${PORT_IPS4} drop`,
    `ether type ip6 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } ${pass('egress')}`,
    `ether type ip6 iifname . ip6 saddr != @${PORT_IPS6} drop`,
    'ether type != { ip, ip6 } drop',
    'ether type ip udp sport 67 udp dport 68 drop',
    'ether type ip6 udp sport 547 udp dport 546 drop',
    'ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop',
    `ether type ip udp sport 68 udp dport 67 ${pass('egress')}`,
    `ether type ip6 udp sport 546 udp dport 547 ${pass('egress')}`,
    `ether type ip6 icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } ${pass('egress')}`,
    ...stateful(mode, 'egress'),
  ];
}

/** Shared by every ingress policy chain: stateful, then address basics. */
function ingressBasics(mode: ConntrackMode): string[] {
  return [
    ...stateful(mode, 'ingress'),
    `ether type arp ${pass('ingress')}`,
    `ether type ip6 icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ${pass('ingress')}`,
    `ether type ip udp sport 67 udp dport 68 ${pass('ingress')}`,
    `ether type ip6 udp sport 547 udp dport 546 ${pass('ingress')}`,
  ];
}

/** The addresses a port may send from, as `"<tap>" . <address>` set elements. */
function portAddresses(p: PortPolicy__Output, tap: string): { macs: string[]; v4: string[]; v6: string[] } {
  const pairs = p.allowedAddressPairs ?? [];
  const macs = uniqSorted([p.mac, ...pairs.map((a) => a.mac || p.mac)].map((m) => m.toLowerCase()));
  const addresses = [...(p.ips ?? []), ...pairs.map((a) => a.ip)];
  const v4 = withoutContained(uniqSorted(addresses.filter((a) => familyOf(a) === 'IPv4')));
  const v6 = withoutContained(uniqSorted([...addresses.filter((a) => familyOf(a) === 'IPv6'), ...macs.map(linkLocalOf)]));
  const key = (xs: string[]) => xs.map((x) => `"${tap}" . ${x}`);
  return { macs: key(macs), v4: key(v4), v6: key(v6) };
}

const chain = (name: string, rules: string[], hook?: NftChain['hook']): NftChain => ({ name, ...(hook ? { hook } : {}), rules });

/**
 * A policy chain's name: `p_` + 16 hex digits of the hash of its lines + `_eg`/`_in`. Ports whose
 * rules render the same lines share one chain, so a port joining or leaving with the rules of
 * another port on the host changes only set and map elements.
 */
const policyChainName = (lines: string[], suffix: 'eg' | 'in'): string => `p_${createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16)}_${suffix}`;

/** What renderFirewall makes of one port's policy with port security (see policyMemo). */
interface RenderedPolicy {
  tap: string;
  egressChain: string;
  ingressChain: string;
  /** Its elements of the dispatch maps and of the address sets. */
  egressEntry: string;
  ingressEntry: string;
  macs: string[];
  v4: string[];
  v6: string[];
  /** The sets its rules name. */
  named: string[];
  /** Of everything of its own that decides its filtering (the shared chains, its lines, its addresses). */
  ownDigest: string;
  /** Its tap's digest (see renderFirewall) as last made, and what it was made from besides ownDigest. */
  digest: string;
  digestKey?: string;
}

/**
 * The renders of the policies last rendered, by policy object, with their chains' lines by name:
 * kept while the mode and the groups (hence the set names) stay the same. The desired state never
 * changes a policy in place (a delta replaces it), so a policy object renders the same for the
 * same tap: a render after a membership change, the common one (a port created or deleted
 * anywhere in a group), redoes only the sets and the digests that name them, not 1,000 ports'
 * lines, addresses and hashes (31 MB allocated and ~100 ms per render at 1,000 ports before).
 */
let renderedPolicies: { key: string; byPolicy: WeakMap<PortPolicy__Output, RenderedPolicy>; chains: Map<string, string[]> } | undefined;

function policyMemo(mode: ConntrackMode, setName: (g: string, f: Family) => string, groupsKey: string) {
  const key = `${mode}\n${groupsKey}`;
  if (renderedPolicies?.key !== key) {
    renderedPolicies = { key, byPolicy: new WeakMap(), chains: new Map() };
  }
  const memo = renderedPolicies;
  return {
    chains: memo.chains,
    of(p: PortPolicy__Output, tap: string, shared: string): RenderedPolicy {
      const known = memo.byPolicy.get(p);
      if (known && known.tap === tap && memo.chains.has(known.egressChain) && memo.chains.has(known.ingressChain)) {
        return known;
      }
      const egress = [`jump ${EGRESS_BASICS}`, ...ruleLines(p.egress ?? [], 'egress', setName), 'drop'];
      const ingress = [`jump ${INGRESS_BASICS}`, ...ruleLines(p.ingress ?? [], 'ingress', setName), 'drop'];
      const egressChain = policyChainName(egress, 'eg');
      const ingressChain = policyChainName(ingress, 'in');
      // One copy of a chain's lines for all the ports that share it.
      if (!memo.chains.has(egressChain)) {
        memo.chains.set(egressChain, egress);
      }
      if (!memo.chains.has(ingressChain)) {
        memo.chains.set(ingressChain, ingress);
      }
      const own = portAddresses(p, tap);
      const rendered: RenderedPolicy = {
        tap,
        egressChain,
        ingressChain,
        egressEntry: `"${tap}" : jump ${egressChain}`,
        ingressEntry: `"${tap}" : jump ${ingressChain}`,
        ...own,
        named: uniqSorted([...(p.ingress ?? []), ...(p.egress ?? [])].flatMap((r) => (r.remoteGroupId && isFamily(r.ethertype) ? [setName(r.remoteGroupId, r.ethertype)] : []))),
        ownDigest: digestOf([shared, egress, ingress, own]),
        digest: '',
      };
      memo.byPolicy.set(p, rendered);
      return rendered;
    },
    /** Keeps the lines of the chains this render used, and only those. */
    keep(used: Map<string, string[]>): void {
      memo.chains = used;
    },
  };
}

/** Renders the whole firewall text; see the module comment. */
export function renderRuleset(input: RulesetInput): string {
  return renderFirewall(input).text;
}

/**
 * Renders the whole firewall: its text, and for each tap with a policy a digest of everything in
 * the text that decides what passes that tap (its chains' lines, its addresses, the elements of
 * the sets its rules name, its segment's zone, the shared chains). Two renders give a tap the
 * same digest exactly when loading either leaves that tap's filtering the same, so the agent can
 * tell, after a load failed, which taps the ruleset still in the kernel protects as wanted.
 */
export function renderFirewall(input: RulesetInput): FirewallRuleset {
  // One policy per port (the last given wins, as in a map), in port id order.
  const byPort = new Map<string, PortPolicy__Output>();
  for (const p of input.policies) {
    byPort.set(p.portId, p);
  }
  const policies = [...byPort.values()].sort((a, b) => (a.portId < b.portId ? -1 : a.portId > b.portId ? 1 : 0));
  const secured = policies.filter((p) => p.portSecurity);

  // Sets: every (group, family) that has members or that a rule names (an empty set matches nothing).
  // By group, then family (no key string made per member: 10,000 of them at every render).
  const elements = new Map<string, Partial<Record<Family, { group: string; family: Family; cidrs: Set<string> }>>>();
  const touch = (group: string, family: Family) => {
    let byFamily = elements.get(group);
    if (!byFamily) {
      byFamily = {};
      elements.set(group, byFamily);
    }
    return (byFamily[family] ??= { group, family, cidrs: new Set() });
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
  const bySet = [...elements.values()].flatMap((f) => [f.IPv4, f.IPv6].filter((e) => e !== undefined));
  const groups = uniqSorted(elements.keys());
  const setName = setNamer(groups);
  const namedSet = (name: string, type: string, items: string[], flags: Pick<NftSet, 'interval' | 'autoMerge'> = {}): NftSet => ({ kind: 'set', name, type, ...flags, elements: items });
  const verdictMap = (name: string, items: string[]): NftSet => ({ kind: 'map', name, type: 'ifname : verdict', elements: items });
  const sets = bySet
    .map((e) => ({ name: setName(e.group, e.family), ...e }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) => namedSet(e.name, e.family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr', uniqSorted(e.cidrs), { interval: true, autoMerge: true }));

  const mode = input.conntrack;
  // Policy chains, shared by the ports whose rules render the same lines; the per-port parts
  // (addresses, the dispatch) are elements of the named sets and maps.
  const policyChains = new Map<string, string[]>();
  const egressMap: string[] = [];
  const ingressMap: string[] = [];
  const macs: string[] = [];
  const ips4: string[] = [];
  const ips6: string[] = [];
  const zoneOf = conntrackZones(input.vnis);
  // Digested once each, then named in the digests of the taps they concern: a set's elements,
  // and what decides every tap's filtering besides its own lines (the mode, the shared chains).
  const setDigests = new Map(sets.map((s) => [s.name, digestOf(s.elements)]));
  const shared = digestOf([mode, egressBasics(mode), ingressBasics(mode)]);
  const memo = policyMemo(mode, setName, groups.join(' '));
  const portDigests = new Map<string, string>();
  for (const p of policies) {
    const tap = input.tapOf(p.portId);
    const vni = input.portVnis?.get(p.portId);
    const zone = vni === undefined ? null : (zoneOf.get(vni) ?? null);
    if (!p.portSecurity) {
      egressMap.push(`"${tap}" : jump ${OPEN_EGRESS}`);
      ingressMap.push(`"${tap}" : jump ${OPEN_INGRESS}`);
      portDigests.set(tap, digestOf([shared, 'open', zone]));
      continue;
    }
    const own = memo.of(p, tap, shared);
    policyChains.set(own.egressChain, memo.chains.get(own.egressChain)!);
    policyChains.set(own.ingressChain, memo.chains.get(own.ingressChain)!);
    egressMap.push(own.egressEntry);
    ingressMap.push(own.ingressEntry);
    macs.push(...own.macs);
    ips4.push(...own.v4);
    ips6.push(...own.v6);
    // The tap's own lines and addresses (digested once per policy), its zone, and the elements of the sets its rules name.
    const key = `${zone} ${own.named.map((n) => setDigests.get(n) ?? '').join(' ')}`;
    if (own.digestKey !== key) {
      own.digestKey = key;
      own.digest = digestOf([own.ownDigest, zone, own.named.map((n) => [n, setDigests.get(n) ?? ''])]);
    }
    portDigests.set(tap, own.digest);
  }
  memo.keep(policyChains);

  const zones = [...zoneOf];
  const ifnameSet = (name: string, names: string[]): NftSet => namedSet(name, 'ifname', names.map((n) => `"${n}"`));
  const zoneMap = (key: string): string[] => (zones.length ? [`ct zone set ${key} map { ${zones.map(([vni, zone]) => `"${bridgeName(vni)}" : ${zone}`).join(', ')} }`] : []);
  const clearMark = `meta mark set meta mark & ${hex(~MARK_MASK >>> 0)}`;
  // No frame enters the bridge stamped: only this table's verdicts stamp (see the module comment).
  const clearGate = `meta mark set meta mark & ${hex(~MARK_GATE >>> 0)}`;

  const bridgeTable: NftTable = {
    family: 'bridge',
    name: TABLE,
    sets: [
      ...(mode === 'br_netfilter' ? [ifnameSet('vxlans', zones.map(([vni]) => vxlanName(vni)))] : []),
      ...sets,
      namedSet(PORT_MACS, 'ifname . ether_addr', uniqSorted(macs)),
      namedSet(PORT_IPS4, 'ifname . ipv4_addr', uniqSorted(ips4), { interval: true }),
      namedSet(PORT_IPS6, 'ifname . ipv6_addr', uniqSorted(ips6), { interval: true }),
      verdictMap(EGRESS_PORTS, uniqSorted(egressMap)),
      verdictMap(INGRESS_PORTS, uniqSorted(ingressMap)),
      ifnameSet(NAMED_TAPS, uniqSorted((input.namedTaps ?? []).filter((n) => !n.startsWith('tap')))),
    ],
    chains: [
      mode === 'bridge' ? chain('ct_zone', zoneMap('meta ibrname'), { hook: 'prerouting', priority: -300 }) : chain('mark_clear', [`iifname @vxlans ${clearMark}`], { hook: 'prerouting', priority: -300 }),
      chain('vm_egress', [clearGate, `iifname vmap @${EGRESS_PORTS}`, 'iifname "tap*" drop', `iifname @${NAMED_TAPS} drop`], { hook: 'prerouting', priority: mode === 'bridge' ? 0 : 10 }),
      chain('vm_ingress', [`oifname vmap @${INGRESS_PORTS}`, 'oifname "tap*" drop', `oifname @${NAMED_TAPS} drop`], { hook: 'postrouting', priority: 0 }),
      chain(EGRESS_BASICS, egressBasics(mode)),
      chain(INGRESS_BASICS, ingressBasics(mode)),
      chain(OPEN_EGRESS, [pass('egress')]),
      chain(OPEN_INGRESS, [pass('ingress')]),
      ...[...policyChains].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, lines]) => chain(name, lines)),
    ],
  };
  const inetTable: NftTable = {
    family: 'inet',
    name: TABLE,
    sets: [ifnameSet('bridges', zones.map(([vni]) => bridgeName(vni)))],
    chains: [
      chain('ct_zone', zoneMap('iifname'), { hook: 'prerouting', priority: 'raw' }),
      chain(
        'ct_mark',
        [
          'iifname != @bridges return',
          clearMark,
          `ct state established,related meta mark set meta mark | ${hex(MARK_ESTABLISHED)}`,
          `ct state invalid meta mark set meta mark | ${hex(MARK_INVALID)}`,
        ],
        { hook: 'prerouting', priority: 'filter' },
      ),
    ],
  };
  // Both tables are always added and deleted, so a switch of mode leaves no stale inet table.
  const ruleset: NftRuleset = {
    replaces: [inetTable, bridgeTable].map(({ family, name }) => ({ family, name })),
    tables: mode === 'br_netfilter' ? [inetTable, bridgeTable] : [bridgeTable],
  };
  return { text: printRuleset(ruleset), ports: portDigests, ruleset };
}

const digestOf = (parts: unknown): string => createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
