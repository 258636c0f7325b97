import type { Port__Output } from '../../generated/overlay/v1/Port';
import type { Segment__Output } from '../../generated/overlay/v1/Segment';
import { emptyDataplaneState, fdbKey, type DataplanePlan, type DataplaneState, type FirewallRuleset } from '../dataplane/dataplane';
import { tapName } from '../dataplane/names';

/** What the reconciler reads of the span: this host, and its segments and ports by id. */
export interface SpanView {
  hostId: string;
  vtepIp: string;
  segments: Map<string, Segment__Output>;
  ports: Map<string, Port__Output>;
}

/** Pure: the dataplane state a span asks for on this host. */
export function desiredDataplane(span: SpanView): DataplaneState {
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
    if (port.hostId === here || port.preparedHostId === here) {
      const tap = tapName(port.id);
      state.ports.set(tap, { tap, vni: segment.vni });
    }
    const vtep = port.preparedHostId === '' ? (port.hostId === here ? '' : port.vtepIp) : port.preparedHostId === here ? port.vtepIp : port.hostId === here ? port.preparedVtepIp : '';
    if (vtep) {
      state.fdb.set(fdbKey(segment.vni, port.mac), { vni: segment.vni, mac: port.mac, vtep });
    }
  }
  return state;
}

/**
 * Pure, fail closed: the taps of `desired` to keep detached, those whose policy in `wanted` (its
 * digest) the ruleset in force does not hold: never loaded, a change that failed to load, tables
 * found gone. A tap `wanted` gives no policy is closed as well (the ruleset drops its frames).
 */
export function closedPorts(desired: DataplaneState, wanted: FirewallRuleset, inForce: FirewallRuleset | undefined): Set<string> {
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
 * Removals come first, so a MAC that moved is never briefly in two places.
 */
export function planChanges(desired: DataplaneState, observed: DataplaneState, sweep: boolean, close: ReadonlySet<string> = new Set()): DataplanePlan {
  const plan: DataplanePlan = [];
  if (!sweep) {
    for (const tap of observed.ports.keys()) {
      if (close.has(tap)) {
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
  return plan;
}
