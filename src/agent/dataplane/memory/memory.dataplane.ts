import { emptyDataplaneState, fdbKey, type Dataplane, type DataplanePlan, type DataplaneState, type DataplaneStateDraft, type FirewallRuleset, type ForwardingStep, type InsertedConnections, type TrackedConnection } from '../dataplane';
import { connectionKey, isCarriable } from '../../../common/tracked-connection';

function clone(state: DataplaneState): DataplaneStateDraft {
  return {
    segments: new Map([...state.segments].map(([k, v]) => [k, { ...v, floodVteps: [...v.floodVteps] }])),
    fdb: new Map([...state.fdb].map(([k, v]) => [k, { ...v }])),
    ports: new Map([...state.ports].map(([k, v]) => [k, { ...v }])),
    mirrorDevices: new Map([...state.mirrorDevices].map(([k, v]) => [k, { ...v }])),
    erspanDevices: new Map([...state.erspanDevices].map(([k, v]) => [k, { ...v }])),
    mirrorFilters: new Map([...state.mirrorFilters].map(([k, v]) => [k, { ...v, match: { ...v.match } }])),
    analyzers: new Map([...state.analyzers].map(([k, v]) => [k, { ...v }])),
  };
}

/**
 * A faithful in-memory dataplane for unit, medium and scale tests: same contract as the Linux
 * one (a plan applies whole or not at all), its state can be dumped, and failures can be
 * injected.
 */
export class MemoryDataplane implements Dataplane {
  private state: DataplaneState = emptyDataplaneState();
  /** Plans applied, for tests. */
  applied = 0;
  private failures: string[] = [];
  /** While set, every `apply` throws with this message (a host whose kernel refuses the links). */
  applyBroken?: string;

  /** Taps the kernel refuses to attach, with what it says (a tap's own failure: the rest of each plan applies). Tests set and clear it. */
  readonly brokenTaps = new Map<string, string>();
  private portFailed = new Map<string, string>();

  /** The put-port steps of the last apply that `brokenTaps` refused (tap -> reason). */
  portFailures(): ReadonlyMap<string, string> {
    return this.portFailed;
  }

  /** The next `apply` throws with this message (once per call of this method). */
  failNext(message: string): void {
    this.failures.push(message);
  }

  /** A copy of the current state. */
  dump(): DataplaneState {
    return clone(this.state);
  }

  async observe(): Promise<DataplaneState> {
    return clone(this.state);
  }

  async apply(plan: DataplanePlan): Promise<void> {
    const failure = this.failures.shift() ?? this.applyBroken;
    if (failure !== undefined) {
      throw new Error(failure);
    }
    const next = clone(this.state);
    const refused = new Map<string, string>();
    for (const step of plan) {
      switch (step.op) {
        case 'remove-port':
          next.ports.delete(step.tap);
          break;
        case 'remove-fdb':
          next.fdb.delete(fdbKey(step.vni, step.mac));
          break;
        case 'remove-segment':
          next.segments.delete(step.vni);
          break;
        case 'put-segment':
          next.segments.set(step.segment.vni, { ...step.segment, floodVteps: [...step.segment.floodVteps] });
          break;
        case 'put-fdb':
          next.fdb.set(fdbKey(step.entry.vni, step.entry.mac), { ...step.entry });
          break;
        case 'put-port': {
          const broken = this.brokenTaps.get(step.port.tap);
          if (broken !== undefined) {
            refused.set(step.port.tap, broken);
            next.ports.delete(step.port.tap); // closed, as the Linux dataplane leaves it
          } else {
            next.ports.set(step.port.tap, { ...step.port });
          }
          break;
        }
        // Mirrors are kept as state only: nothing is copied in memory (no counters move).
        case 'remove-mirror-filter':
          next.mirrorFilters.delete(step.filter.cookie);
          break;
        case 'remove-mirror-device':
          next.mirrorDevices.delete(step.vni);
          break;
        case 'remove-erspan-mirror-device':
          next.erspanDevices.delete(step.erspanId);
          break;
        case 'remove-analyzer':
          next.analyzers.delete(step.tap);
          break;
        case 'put-analyzer':
          next.analyzers.set(step.analyzer.tap, { ...step.analyzer });
          break;
        case 'put-mirror-device':
          next.mirrorDevices.set(step.device.vni, { ...step.device });
          break;
        case 'put-erspan-mirror-device':
          next.erspanDevices.set(step.device.erspanId, { ...step.device });
          break;
        case 'put-mirror-filter':
          next.mirrorFilters.set(step.filter.cookie, { ...step.filter, match: { ...step.filter.match }, packets: 0, bytes: 0 });
          break;
      }
    }
    this.state = next;
    this.portFailed = refused;
    this.applied++;
  }

  /** Forwarding updates (the reconciler's fast path) applied, for tests. */
  forwardingUpdates = 0;
  /** While set, every `updateForwarding` throws with this message. */
  forwardingBroken?: string;

  /** As the Linux dataplane: all of it, or nothing here (a batch that stops halfway is repaired by the full pass); removing an entry that is not there fails. */
  async updateForwarding(steps: ForwardingStep[]): Promise<void> {
    if (this.forwardingBroken !== undefined) {
      throw new Error(this.forwardingBroken);
    }
    const next = clone(this.state);
    for (const step of steps) {
      if (step.op === 'remove-fdb' && !next.fdb.delete(fdbKey(step.vni, step.mac))) {
        throw new Error(`no forwarding entry ${step.mac} on VNI ${step.vni}`);
      }
    }
    for (const step of steps) {
      if (step.op === 'put-fdb') {
        if (!next.segments.has(step.entry.vni)) {
          throw new Error(`no segment ${step.entry.vni}`);
        }
        next.fdb.set(fdbKey(step.entry.vni, step.entry.mac), { ...step.entry });
      }
    }
    this.state = next;
    this.forwardingUpdates++;
  }

  /** The ruleset in force: the last one loaded; undefined = none. */
  firewall?: FirewallRuleset;
  /** Firewall loads, for tests. */
  firewallLoads = 0;
  /** Firewall loads attempted, failed ones included, for tests. */
  firewallAttempts = 0;
  private firewallFailures: string[] = [];
  /** While set, every `applyFirewall` throws with this message (a host whose nft cannot load anything). */
  firewallBroken?: string;

  /** The next `applyFirewall` throws with this message (once per call of this method). */
  failNextFirewall(message: string): void {
    this.firewallFailures.push(message);
  }

  async applyFirewall(ruleset: FirewallRuleset): Promise<void> {
    this.firewallAttempts++;
    const failure = this.firewallFailures.shift() ?? this.firewallBroken;
    if (failure !== undefined) {
      throw new Error(failure);
    }
    this.firewall = ruleset;
    this.firewallLoads++;
  }

  firewallInForce(): FirewallRuleset | undefined {
    return this.firewall;
  }

  /** The tables vanish (a `nft flush ruleset` by hand): nothing is in force any more. */
  flushFirewall(): void {
    this.firewall = undefined;
  }

  /**
   * Whether traffic may pass a local port, with the Linux semantics: the tap is attached and the
   * ruleset in force holds a policy for it (the tables drop every tap they do not name, so a port
   * is closed until its rules are loaded, and stays closed if loading them failed).
   */
  isOpen(tap: string): boolean {
    return this.state.ports.has(tap) && (this.firewall?.ports.has(tap) ?? false);
  }

  private watched = new Map<string, string>();
  private onArrival?: (tap: string) => void;

  watchArrivals(ports: ReadonlyMap<string, string>, arrived: (tap: string) => void): void {
    this.watched = new Map(ports);
    this.onArrival = arrived;
  }

  /** A frame from `mac` enters through `tap` (a test's VM landing here): reported if watched. */
  frameFrom(tap: string, mac: string): void {
    if (this.state.ports.has(tap) && this.watched.get(tap) === mac.toLowerCase()) {
      this.watched.delete(tap);
      this.onArrival?.(tap);
    }
  }

  /** forgetConnections calls, for tests. */
  readonly forgotten: { zone: number; ips: string[] }[] = [];

  async forgetConnections(zone: number, ips: string[]): Promise<void> {
    this.forgotten.push({ zone, ips: [...ips] });
    const table = this.conntrack.get(zone);
    for (const [key, c] of table ?? []) {
      if (ips.includes(c.src) || ips.includes(c.dst)) {
        table!.delete(key);
      }
    }
  }

  /** The connection tracking table: zone -> connection key -> connection. Tests add with `track`. */
  readonly conntrack = new Map<number, Map<string, TrackedConnection>>();

  /** A connection the host tracks (a test's VM talking). */
  track(zone: number, c: TrackedConnection): void {
    const table = this.conntrack.get(zone) ?? new Map<string, TrackedConnection>();
    this.conntrack.set(zone, table);
    table.set(connectionKey(c), { ...c });
  }

  async listConnections(zone: number, ips: string[], limit: number): Promise<TrackedConnection[]> {
    return [...(this.conntrack.get(zone)?.values() ?? [])].filter((c) => ips.includes(c.src) || ips.includes(c.dst)).slice(0, limit);
  }

  /** Same checks as the Linux dataplane: what it could not render is failed. */
  async insertConnections(zone: number, _ips: string[], connections: TrackedConnection[]): Promise<InsertedConnections> {
    let failed = 0;
    for (const c of connections) {
      if (isCarriable(c)) {
        this.track(zone, c);
      } else {
        failed++;
      }
    }
    return { installed: connections.length - failed, failed, error: failed ? `${failed} connection(s) not valid` : '' };
  }

  async close(): Promise<void> {}
}
