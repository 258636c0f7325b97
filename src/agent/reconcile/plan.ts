import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { MirrorSink__Output } from '../../generated/overlay/v1/MirrorSink';
import type { MirrorTap__Output } from '../../generated/overlay/v1/MirrorTap';
import type { Port__Output } from '../../generated/overlay/v1/Port';
import type { Segment__Output } from '../../generated/overlay/v1/Segment';
import { emptyDataplaneState, fdbKey, type DataplanePlan, type DataplaneState, type DataplaneStateDraft, type ErspanDeviceState, type FdbEntry, type FirewallRuleset, type ForwardingStep, type MirrorDeviceState, type MirrorDirection, type MirrorFilterState, type MirrorMatch } from '../dataplane/dataplane';
import { mirrorErspanName, mirrorVxlanName, tapName } from '../dataplane/names';

/** What the reconciler reads of the span: this host, its segments and ports by id, and its mirror taps and sinks by id. */
export interface SpanView {
  hostId: string;
  vtepIp: string;
  segments: Map<string, Segment__Output>;
  ports: Map<string, Port__Output>;
  mirrors: Map<string, MirrorTap__Output>;
  mirrorSinks: Map<string, MirrorSink__Output>;
}

/**
 * A local port's tap as resolved (see dataplane/taps.ts); undefined when it has none (two ports
 * claim one link...): the port then stays closed. The default, the port-id name, is for callers
 * that know no host links.
 */
export type TapOf = (portId: string) => string | undefined;
const byPortId: TapOf = tapName;

/** Whether a port's tap is on this host: bound here, or prepared here for a migration. */
export const isLocal = (port: Port__Output, hostId: string): boolean => port.hostId === hostId || port.preparedHostId === hostId;

/**
 * Pure: the dataplane state a span asks for on this host. What cannot be programmed of a mirror
 * tap or sink (its port not here, its sink not a local analyzer, a malformed filter) is left
 * out and said in `mirrorErrors` (by mirror tap id; a sink's by its session id): it never
 * stands in the way of the rest. A local port without a tap (`tapOf`) is left out: closed.
 */
export function desiredDataplane(span: SpanView, mirrorErrors: Map<string, string> = new Map(), tapOf: TapOf = byPortId): DataplaneStateDraft {
  const state = emptyDataplaneState();
  for (const segment of span.segments.values()) {
    state.segments.set(segment.vni, {
      vni: segment.vni,
      localVtep: span.vtepIp,
      floodVteps: segment.vteps.filter((v) => v !== span.vtepIp).sort(),
    });
  }
  for (const port of span.ports.values()) {
    const segment = span.segments.get(port.segmentId);
    if (!segment) {
      continue; // cannot happen in a consistent span; never program an entry without its segment
    }
    // While a port migrates (preparedHostId set) the VM may run on either host:
    //  - the destination attaches its tap (closed but for its rules) and points its MAC at the
    //    source VTEP;
    //  - the source keeps its tap and points its MAC at the destination VTEP;
    //  - every other host holds no entry for it: its frames are flooded, and the flood list (the
    //    segment's VTEPs) holds both hosts.
    // VTEP entries live on the VXLAN device only (`self`): a bridge sends a frame there only when
    // it has not learned the MAC on a local tap, so the host where the VM runs delivers locally,
    // and the other forwards what reaches it to where the VM may be.
    const here = span.hostId;
    if (port.analyzer) {
      // An analyzer receives mirrored copies only: its tap is in no bridge, and no forwarding
      // entry anywhere points at it (nothing is ever sent to its MAC through the overlay).
      const tap = isLocal(port, here) ? tapOf(port.id) : undefined;
      if (tap !== undefined) {
        state.analyzers.set(tap, { tap });
      }
      continue;
    }
    const tap = isLocal(port, here) ? tapOf(port.id) : undefined;
    if (tap !== undefined) {
      state.ports.set(tap, { tap, vni: segment.vni });
    }
    const entry = fdbEntryOf(port, segment.vni, here);
    if (entry) {
      state.fdb.set(fdbKey(entry.vni, entry.mac), entry);
    }
  }
  addMirrors(span, state, mirrorErrors, tapOf);
  return state;
}

/** Pure: the forwarding entry a (non-analyzer) port of segment `vni` asks for on host `here`, if any (see desiredDataplane). */
function fdbEntryOf(port: Port__Output, vni: number, here: string): FdbEntry | undefined {
  const vtep = port.preparedHostId === '' ? (port.hostId === here ? '' : port.vtepIp) : port.preparedHostId === here ? port.vtepIp : port.hostId === here ? port.preparedVtepIp : '';
  return vtep ? { vni, mac: port.mac, vtep } : undefined;
}

/** What a port's links depend on, beside its segment's VNI: a local port whose fields these are not changed keeps its tap, segment and entries. */
const samePortLinks = (a: Port__Output, b: Port__Output): boolean =>
  a.segmentId === b.segmentId &&
  a.mac === b.mac &&
  a.hostId === b.hostId &&
  a.vtepIp === b.vtepIp &&
  a.preparedHostId === b.preparedHostId &&
  a.preparedVtepIp === b.preparedVtepIp &&
  a.tapName === b.tapName &&
  a.analyzer === b.analyzer;

/** What a change pass's fast path may do (Reconciler.fastPass): the forwarding steps, or why it takes the full pass. */
export type ForwardingDelta = { steps: ForwardingStep[] } | { full: string };

/** The span's maps a pass is made from (the desired state's; each map is never changed once read, see DesiredStateStore.state). */
export type SpanState = SpanView & { policies: ReadonlyMap<string, unknown> };

/**
 * Pure: how the links `next` asks for differ from those `prev` asked for, when that can be put
 * without reading the kernel: only remote ports changed (created, deleted, rebound: their
 * forwarding entries put or removed), and local ports only in what leaves their links as they
 * are (a security group: the firewall's business). Anything else is `full`, said why: the host
 * or its VTEP, segments or mirrors changed (a map that is not the same object), a port became
 * or stopped being local or changed its links, a changed remote port has a policy (the render
 * counts its segment), or an entry touched is another port's too (which one wins is the full
 * plan's business). Compares the maps' values by identity: a delta replaces the resources it
 * changes, the others are the same objects.
 */
export function forwardingDelta(prev: SpanState, next: SpanState): ForwardingDelta {
  if (prev.hostId !== next.hostId || prev.vtepIp !== next.vtepIp) {
    return { full: 'host changed' };
  }
  if (prev.segments !== next.segments || prev.mirrors !== next.mirrors || prev.mirrorSinks !== next.mirrorSinks) {
    return { full: 'segments or mirrors changed' };
  }
  const here = next.hostId;
  const removals: ForwardingStep[] = [];
  const puts: ForwardingStep[] = [];
  /** The ports changed, and the MACs of the entries they touch. */
  const changed = new Set<string>();
  const macs = new Set<string>();
  const visit = (id: string, a: Port__Output | undefined, b: Port__Output | undefined): string | undefined => {
    if (a === b) {
      return undefined;
    }
    changed.add(id);
    const localA = a !== undefined && isLocal(a, here);
    const localB = b !== undefined && isLocal(b, here);
    if (localA || localB) {
      return localA && localB && samePortLinks(a, b) ? undefined : `local port ${id} changed`;
    }
    if (prev.policies.has(id) || next.policies.has(id)) {
      return `remote port ${id} has a policy`;
    }
    const vniOf = (p: Port__Output | undefined) => (p === undefined || p.analyzer ? undefined : next.segments.get(p.segmentId)?.vni);
    const vniA = vniOf(a);
    const vniB = vniOf(b);
    const was = a === undefined || vniA === undefined ? undefined : fdbEntryOf(a, vniA, here);
    const now = b === undefined || vniB === undefined ? undefined : fdbEntryOf(b, vniB, here);
    if (was && (!now || now.vni !== was.vni || now.mac !== was.mac)) {
      removals.push({ op: 'remove-fdb', vni: was.vni, mac: was.mac });
      macs.add(was.mac);
    }
    if (now && (!was || now.vni !== was.vni || now.mac !== was.mac || now.vtep !== was.vtep)) {
      puts.push({ op: 'put-fdb', entry: now });
      macs.add(now.mac);
    }
    return undefined;
  };
  for (const [id, b] of next.ports) {
    const why = visit(id, prev.ports.get(id), b);
    if (why) {
      return { full: why };
    }
  }
  for (const [id, a] of prev.ports) {
    if (!next.ports.has(id)) {
      const why = visit(id, a, undefined);
      if (why) {
        return { full: why };
      }
    }
  }
  if (macs.size > 0) {
    // Two ports on one entry (a MAC in a segment twice): the full plan decides which one it holds.
    const touched = new Set([...removals, ...puts].map((s) => (s.op === 'put-fdb' ? fdbKey(s.entry.vni, s.entry.mac) : fdbKey(s.vni, s.mac))));
    if (touched.size < removals.length + puts.length) {
      return { full: 'two changed ports on one forwarding entry' };
    }
    for (const [id, port] of next.ports) {
      if (macs.has(port.mac) && !changed.has(id) && !port.analyzer) {
        const vni = next.segments.get(port.segmentId)?.vni;
        if (vni !== undefined && touched.has(fdbKey(vni, port.mac)) && fdbEntryOf(port, vni, here)) {
          return { full: `port ${id} holds a forwarding entry a changed port touches` };
        }
      }
    }
  }
  return { steps: [...removals, ...puts] };
}

/** The digest that keys a mirror filter (16 bytes, hex): of everything it is made of, so a changed filter is another one. */
export function mirrorCookie(f: Pick<MirrorFilterState, 'tapId' | 'direction' | 'dev' | 'target' | 'match'>): string {
  const text = JSON.stringify([f.tapId, f.direction, f.dev, f.target, f.match.ethertype, f.match.protocol, f.match.remoteCidr]);
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

const VNI_MAX = 16_777_215;
/** An interface name the kernel takes (IFNAMSIZ 16 with its NUL), safe in a batch line. */
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/** A MirrorTap's filter, checked; a string says what is wrong with it. */
function mirrorMatch(m: MirrorTap__Output): MirrorMatch | string {
  const ethertype = m.filterEthertype;
  if (ethertype !== '' && ethertype !== 'IPv4' && ethertype !== 'IPv6') {
    return `filter ethertype ${JSON.stringify(ethertype)} is not IPv4, IPv6 or empty`;
  }
  if ((m.filterProtocol || m.filterRemoteCidr) && !ethertype) {
    return 'a filter protocol or remote CIDR needs an ethertype';
  }
  if (!Number.isInteger(m.filterProtocol) || m.filterProtocol < 0 || m.filterProtocol > 255) {
    return `filter protocol ${m.filterProtocol} is not an IP protocol number`;
  }
  if (m.filterRemoteCidr) {
    const [ip, len, extra] = m.filterRemoteCidr.split('/');
    const family = isIP(ip ?? '');
    const bits = len === undefined ? (family === 6 ? 128 : 32) : Number(len);
    if (extra !== undefined || family !== (ethertype === 'IPv6' ? 6 : 4) || !/^\d{1,3}$/.test(len ?? '0') || bits > (family === 6 ? 128 : 32)) {
      return `filter remote CIDR ${JSON.stringify(m.filterRemoteCidr)} is not an ${ethertype} prefix`;
    }
  }
  return { ethertype, protocol: m.filterProtocol, remoteCidr: m.filterRemoteCidr };
}

/** The local analyzer port `portId`'s tap, or why it cannot be a sink here. */
function analyzerTap(span: SpanView, portId: string, tapOf: TapOf): { tap: string } | string {
  const port = span.ports.get(portId);
  if (!port || !isLocal(port, span.hostId)) {
    return `sink port ${portId} is not on this host`;
  }
  if (!port.analyzer) {
    return `sink port ${portId} is not an analyzer port`;
  }
  const tap = tapOf(port.id);
  return tap === undefined ? `sink port ${portId} has no tap here` : { tap };
}

/** Registers a mirror device a tap sends into; a string says why it cannot (another tap wants it otherwise). */
interface DeviceRegistry {
  vxlan(d: MirrorDeviceState): string | undefined;
  erspan(d: ErspanDeviceState): string | undefined;
}

/**
 * The mirror part of the desired state: sink-side devices first (MirrorSinks), then each mirror
 * tap's filters and the source-side devices they send into. Two uses of one mirror VNI, or of one
 * ERSPAN session ID, that disagree keep the first and report the other (for a VNI it cannot happen
 * in a consistent span; two sessions may name one ERSPAN session ID towards two collectors, and a
 * host has one `ms<id>` device per ID).
 */
function addMirrors(span: SpanView, state: DataplaneState, errors: Map<string, string>, tapOf: TapOf): void {
  const device = (want: MirrorDeviceState): string | undefined => {
    const have = state.mirrorDevices.get(want.vni);
    if (have && JSON.stringify(have) !== JSON.stringify(want)) {
      return `mirror VNI ${want.vni} is already used here by another session`;
    }
    state.mirrorDevices.set(want.vni, want);
    return undefined;
  };
  const erspan = (want: ErspanDeviceState): string | undefined => {
    const have = state.erspanDevices.get(want.erspanId);
    if (have && (have.remote !== want.remote || have.version !== want.version || have.localVtep !== want.localVtep)) {
      return `ERSPAN session id ${want.erspanId} is already used on this host by another mirror session (to ${have.remote}, version ${have.version}); a host has one ERSPAN device per session id`;
    }
    state.erspanDevices.set(want.erspanId, want);
    return undefined;
  };
  const sinks = [...(span.mirrorSinks.values())].sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1));
  for (const sink of sinks) {
    const target = sink.portId ? analyzerTap(span, sink.portId, tapOf) : IFNAME_RE.test(sink.interface) ? { tap: sink.interface } : `sink interface ${JSON.stringify(sink.interface)} is not an interface name`;
    const problem =
      !Number.isInteger(sink.vni) || sink.vni < 1 || sink.vni > VNI_MAX
        ? `mirror VNI ${sink.vni} out of range`
        : typeof target === 'string'
          ? target
          : device({ vni: sink.vni, localVtep: span.vtepIp, remote: '', dstport: MIRROR_SINK_PORT, redirect: target.tap });
    if (problem) {
      errors.set(sink.sessionId, problem);
    }
  }
  const taps = [...(span.mirrors.entries())].sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [id, m] of taps) {
    const problem = addMirrorTap(span, state, id, m, { vxlan: device, erspan }, tapOf);
    if (problem) {
      errors.set(id, problem);
    }
  }
  erspanDirections(state);
}

/**
 * An ERSPAN version 2 (type III) header says whether a frame was copied as it entered or as it
 * left the switch port it was copied at; here that is the VM's tap, so what the VM sends is
 * `ingress` and what it receives is `egress` (the reverse of the VM's own directions). The
 * direction is a property of the device, which carries every tap of the session on this host:
 * `egress` when all of them copy only what their VMs receive, `ingress` otherwise (both ways
 * included: a collector then tells the two apart by the frames' addresses).
 */
function erspanDirections(state: DataplaneState): void {
  const received = new Map<string, boolean>();
  for (const f of state.mirrorFilters.values()) {
    received.set(f.target, (received.get(f.target) ?? true) && f.direction === 'ingress');
  }
  for (const d of state.erspanDevices.values()) {
    d.dir = d.version === 2 ? (received.get(mirrorErspanName(d.erspanId)) ? 'egress' : 'ingress') : '';
  }
}

/** ERSPAN's session ID (10 bits) and versions the agent creates (1 = type II, 2 = type III). */
const ERSPAN_ID_MAX = 1023;
const ERSPAN_VERSIONS = [1, 2];

/** VXLAN's port: copies between hosts travel to it (MIRROR_UDP_PORT on the controller). */
const MIRROR_SINK_PORT = 4789;

function addMirrorTap(span: SpanView, state: DataplaneState, id: string, m: MirrorTap__Output, devices: DeviceRegistry, tapOf: TapOf): string | undefined {
  const port = span.ports.get(m.portId);
  if (!port || !isLocal(port, span.hostId)) {
    return `source port ${m.portId} is not on this host`;
  }
  if (port.analyzer) {
    return `source port ${m.portId} is an analyzer port`;
  }
  const dev = tapOf(port.id);
  if (dev === undefined) {
    return `source port ${m.portId} has no tap here`;
  }
  const match = mirrorMatch(m);
  if (typeof match === 'string') {
    return match;
  }
  let target: string;
  if (m.sinkPortId) {
    const sink = analyzerTap(span, m.sinkPortId, tapOf);
    if (typeof sink === 'string') {
      return sink;
    }
    target = sink.tap;
  } else if (m.sinkInterface) {
    if (!IFNAME_RE.test(m.sinkInterface)) {
      return `sink interface ${JSON.stringify(m.sinkInterface)} is not an interface name`;
    }
    target = m.sinkInterface;
  } else if (m.erspanId || m.erspanVersion) {
    if (!Number.isInteger(m.erspanId) || m.erspanId < 1 || m.erspanId > ERSPAN_ID_MAX) {
      return `ERSPAN session id ${m.erspanId} out of range (1-${ERSPAN_ID_MAX})`;
    }
    if (!ERSPAN_VERSIONS.includes(m.erspanVersion)) {
      return `ERSPAN version ${m.erspanVersion} is not 1 or 2`;
    }
    if (!isIP(m.remoteIp)) {
      return `sink address ${JSON.stringify(m.remoteIp)} is not an IP address`;
    }
    if (isIP(m.remoteIp) !== isIP(span.vtepIp)) {
      return `the ERSPAN collector ${m.remoteIp} is not of this host's VTEP family (${span.vtepIp})`;
    }
    const clash = devices.erspan({ erspanId: m.erspanId, localVtep: span.vtepIp, remote: m.remoteIp, version: m.erspanVersion, dir: '' });
    if (clash) {
      return clash;
    }
    target = mirrorErspanName(m.erspanId);
  } else if (m.vni || m.remoteIp) {
    if (!Number.isInteger(m.vni) || m.vni < 1 || m.vni > VNI_MAX) {
      return `mirror VNI ${m.vni} out of range`;
    }
    if (!isIP(m.remoteIp)) {
      return `sink address ${JSON.stringify(m.remoteIp)} is not an IP address`;
    }
    if (!Number.isInteger(m.udpPort) || m.udpPort < 1 || m.udpPort > 65_535) {
      return `sink UDP port ${m.udpPort} out of range`;
    }
    const clash = devices.vxlan({ vni: m.vni, localVtep: span.vtepIp, remote: m.remoteIp, dstport: m.udpPort, redirect: '' });
    if (clash) {
      return clash;
    }
    target = mirrorVxlanName(m.vni);
  } else {
    return 'no sink';
  }
  const directions: MirrorDirection[] = [...(m.ingress ? ['ingress' as const] : []), ...(m.egress ? ['egress' as const] : [])];
  for (const direction of directions) {
    const filter = { tapId: id, direction, dev, target, match };
    const cookie = mirrorCookie(filter);
    state.mirrorFilters.set(cookie, { cookie, ...filter });
  }
  return undefined;
}

/**
 * Pure, fail closed: the taps of `desired` to keep detached, those whose policy in `wanted` (its
 * digest) the ruleset in force does not hold: never loaded, a change that failed to load, tables
 * found gone. A tap `wanted` gives no policy is closed as well (the ruleset drops its frames).
 */
export function closedPorts(desired: { ports: ReadonlyMap<string, unknown> }, wanted: FirewallRuleset, inForce: FirewallRuleset | undefined): Set<string> {
  const closed = new Set<string>();
  for (const tap of desired.ports.keys()) {
    const digest = wanted.ports.get(tap);
    if (digest === undefined || inForce?.ports.get(tap) !== digest) {
      closed.add(tap);
    }
  }
  return closed;
}

const sameList = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Pure: the steps that turn `observed` into `desired`. With `sweep` false (after a restart,
 * before the first full sync) nothing is removed: stale objects are swept only once the agent
 * knows the whole desired state. The taps in `close` are detached whatever `sweep` says: closing
 * a port is not sweeping, it keeps a VM whose rules are not in force from sending or receiving.
 * Removals come first, so a MAC that moved is never briefly in two places. An analyzer's tap
 * found attached to a bridge is detached like a closed one: it must never send into the network.
 *
 * Mirrors: filters are keyed by their digest (a changed one is removed and put anew, the removal
 * waiting for the sweep like any other); a mirror device (VXLAN or ERSPAN) is put again when it
 * differs, an analyzer's tap when it is not ready.
 */
export function planChanges(desired: DataplaneState, observed: DataplaneState, sweep: boolean, close: ReadonlySet<string> = new Set()): DataplanePlan {
  const plan: DataplanePlan = [];
  if (!sweep) {
    for (const tap of observed.ports.keys()) {
      if (close.has(tap) || desired.analyzers.has(tap)) {
        plan.push({ op: 'remove-port', tap });
      }
    }
  }
  if (sweep) {
    for (const [tap, port] of observed.ports) {
      const want = desired.ports.get(tap);
      if (!want || want.vni !== port.vni) {
        plan.push({ op: 'remove-port', tap });
      }
    }
    for (const [cookie, filter] of observed.mirrorFilters) {
      if (!desired.mirrorFilters.has(cookie)) {
        plan.push({ op: 'remove-mirror-filter', filter });
      }
    }
    for (const [vni, device] of observed.mirrorDevices) {
      const want = desired.mirrorDevices.get(vni);
      if (!want || (want.remote === '') !== (device.remote === '')) {
        plan.push({ op: 'remove-mirror-device', vni });
      }
    }
    for (const erspanId of observed.erspanDevices.keys()) {
      if (!desired.erspanDevices.has(erspanId)) {
        plan.push({ op: 'remove-erspan-mirror-device', erspanId });
      }
    }
    for (const tap of observed.analyzers.keys()) {
      if (!desired.analyzers.has(tap)) {
        plan.push({ op: 'remove-analyzer', tap });
      }
    }
    for (const [key, entry] of observed.fdb) {
      if (!desired.fdb.has(key)) {
        plan.push({ op: 'remove-fdb', vni: entry.vni, mac: entry.mac });
      }
    }
    for (const vni of observed.segments.keys()) {
      if (!desired.segments.has(vni)) {
        plan.push({ op: 'remove-segment', vni });
      }
    }
  }
  for (const [vni, segment] of desired.segments) {
    const have = observed.segments.get(vni);
    if (!have || have.localVtep !== segment.localVtep || !sameList(have.floodVteps, segment.floodVteps)) {
      plan.push({ op: 'put-segment', segment });
    }
  }
  for (const [key, entry] of desired.fdb) {
    const have = observed.fdb.get(key);
    if (!have || have.vtep !== entry.vtep) {
      plan.push({ op: 'put-fdb', entry });
    }
  }
  for (const [tap, port] of desired.ports) {
    const have = observed.ports.get(tap);
    if (!have || have.vni !== port.vni) {
      plan.push({ op: 'put-port', port });
    }
  }
  for (const [tap, analyzer] of desired.analyzers) {
    if (!observed.analyzers.has(tap)) {
      plan.push({ op: 'put-analyzer', analyzer });
    }
  }
  for (const [vni, device] of desired.mirrorDevices) {
    const have = observed.mirrorDevices.get(vni);
    if (!have || have.localVtep !== device.localVtep || have.remote !== device.remote || have.dstport !== device.dstport || have.redirect !== device.redirect) {
      plan.push({ op: 'put-mirror-device', device });
    }
  }
  for (const [erspanId, device] of desired.erspanDevices) {
    const have = observed.erspanDevices.get(erspanId);
    if (!have || have.localVtep !== device.localVtep || have.remote !== device.remote || have.version !== device.version || have.dir !== device.dir) {
      plan.push({ op: 'put-erspan-mirror-device', device });
    }
  }
  for (const [cookie, filter] of desired.mirrorFilters) {
    const have = observed.mirrorFilters.get(cookie);
    if (!have || have.dev !== filter.dev || have.target !== filter.target || have.direction !== filter.direction) {
      plan.push({ op: 'put-mirror-filter', filter });
    }
  }
  return plan;
}
