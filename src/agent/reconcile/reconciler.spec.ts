import type { HostInventory } from '../../generated/overlay/v1/HostInventory';
import { MemoryDataplane } from '../dataplane/memory/memory.dataplane';
import { tapName } from '../dataplane/names';
import type { Logger } from '../../common/logger';
import { emptyDesiredState, type DesiredState } from '../sync/state-cache';
import type { HostObservation } from '../../generated/overlay/v1/HostObservation';
import type { AwaitedTaps, HostKernelState } from '../dataplane/dataplane';
import type { PortFailure } from '../../generated/overlay/v1/PortFailure';
import type { TapChoice, TapClaim } from '../dataplane/taps';
import { desiredDataplane } from './plan';
import { HOST_OBSERVATION_EVERY, hostObservation, Reconciler } from './reconciler';

const quiet: Logger = { info: () => undefined, warn: () => undefined };
const P1 = '0190aaaa-0000-7000-8000-000000000001';
const P2 = '0190aaaa-0000-7000-8000-000000000002';
const [T1, T2] = [tapName(P1), tapName(P2)];

/** A host with segment s1 (VNI 5000) and local ports p1 and p2 with policies (p2's: `p2Rules` ingress rules). */
function hostState(revision: number, opts: { p2Rules?: number; p2Policy?: boolean } = {}): DesiredState {
  const state: DesiredState = { ...emptyDesiredState(), epoch: 'e1', revision, hostId: 'h', vtepIp: '192.0.2.1' };
  state.segments.set('s1', { id: 's1', tenantId: 't', vni: 5000, vteps: ['192.0.2.1'] });
  for (const [id, mac] of [
    [P1, '02:00:00:00:00:01'],
    [P2, '02:00:00:00:00:02'],
  ]) {
    state.ports.set(id, { id, segmentId: 's1', mac, ips: [], hostId: 'h', vtepIp: '192.0.2.1', vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false, tapName: '' });
  }
  const policy = (portId: string, rules: number) => ({
    portId,
    portSecurity: true,
    mac: state.ports.get(portId)!.mac,
    ips: [],
    allowedAddressPairs: [],
    ingress: Array.from({ length: rules }, (_, i) => ({ ethertype: 'IPv4', protocol: '6', portMin: 20 + i, portMax: 20 + i, icmpType: -1, icmpCode: -1, remoteCidr: '0.0.0.0/0', remoteGroupId: '' })),
    egress: [],
  });
  state.policies.set(P1, policy(P1, 1));
  if (opts.p2Policy !== false) {
    state.policies.set(P2, policy(P2, opts.p2Rules ?? 1));
  }
  return state;
}

describe('reconciler', () => {
  let reconciler: Reconciler | undefined;
  afterEach(() => reconciler?.stop());

  function setup(desired: { state: DesiredState; inSync: boolean }, firewall = true, backoffMs = 20) {
    const dataplane = new MemoryDataplane();
    const reports: { revision: number; error?: string; failedPorts?: PortFailure[] }[] = [];
    let queue = Promise.resolve();
    reconciler = new Reconciler(
      { firewall, backoffBaseMs: backoffMs, backoffMaxMs: backoffMs, reconcileIntervalMs: 3_600_000 },
      dataplane,
      desired,
      { report: (revision, error, failedPorts = []) => reports.push(error === undefined ? { revision, ...(failedPorts.length && { failedPorts }) } : { revision, error }) > 0, linked: async () => undefined },
      (task) => {
        queue = queue.then(task);
      },
      quiet,
      () => 1,
    );
    void reconciler.start();
    /** Waits (5 s at most) until `condition` holds once the queued work ran: for the retry, which a timer queues. */
    const until = async (condition: () => boolean): Promise<void> => {
      for (const deadline = Date.now() + 5_000; ; ) {
        await queue;
        if (condition()) {
          return;
        }
        if (Date.now() > deadline) {
          throw new Error('condition not reached within 5 s');
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    return { dataplane, reports, reconciler, until };
  }

  it('times every pass by kind and result, and counts the kernel changes periodic passes make as drift repairs', async () => {
    const { dataplane, reconciler } = setup({ state: hostState(1), inSync: true });
    await reconciler.realize(1);
    await reconciler.realize(1, 'periodic');
    expect((await reconciler.linkDriftRepairs.get()).values[0].value).toBe(0);
    await dataplane.apply([{ op: 'remove-port', tap: T1 }]); // someone deleted a tap behind the agent's back
    await reconciler.realize(1, 'periodic');
    expect((await reconciler.linkDriftRepairs.get()).values[0].value).toBe(1);
    expect(reconciler.ackedRevision).toBe(1);
    const counts = (await reconciler.passSeconds.get()).values.filter((v) => v.metricName === 'overlay_agent_apply_seconds_count').map((v) => [v.labels.pass, v.labels.result, v.value]);
    expect(counts).toEqual([
      ['change', 'ok', 1],
      ['periodic', 'ok', 2],
    ]);
  });

  it('calls passDone after each pass of the work queue (a change, a periodic one), not after one run directly', async () => {
    let done = 0;
    let queue = Promise.resolve();
    const r = new Reconciler(
      { firewall: true, backoffBaseMs: 20, backoffMaxMs: 20, reconcileIntervalMs: 100 },
      new MemoryDataplane(),
      { state: hostState(1), inSync: true },
      { report: () => true, linked: async () => undefined, passDone: () => done++ },
      (task) => {
        queue = queue.then(task);
      },
      quiet,
      () => 1,
    );
    reconciler = r; // stopped after the test, failed or not
    const passes = async () => (await r.passSeconds.get()).values.filter((v) => v.metricName === 'overlay_agent_apply_seconds_count').reduce((n, v) => n + v.value, 0);
    await r.realize(1);
    expect(done).toBe(0); // a pass run directly (the restore at start) is not the queue's
    // Two changes before the queue runs: one pass for both.
    await Promise.all([r.changed({ outcome: 'updated', revision: 2, marker: false, wasInSync: true }), r.changed({ outcome: 'updated', revision: 3, marker: false, wasInSync: true })]);
    await queue;
    expect(done).toBe(1);
    await r.start();
    for (const deadline = Date.now() + 5_000; done < 3 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    r.stop();
    await queue;
    const periodic = (await r.passSeconds.get()).values.find((v) => v.metricName === 'overlay_agent_apply_seconds_count' && v.labels.pass === 'periodic')?.value;
    expect(periodic).toBeGreaterThanOrEqual(2);
    expect(done).toBe((await passes()) - 1);
  });

  it('loads the ruleset, then attaches each tap whose policy it holds, and acks', async () => {
    const { dataplane, reports, reconciler } = setup({ state: hostState(1), inSync: true });
    await reconciler.realize(1);
    expect(dataplane.firewallLoads).toBe(1);
    expect([dataplane.isOpen(T1), dataplane.isOpen(T2)]).toEqual([true, true]);
    expect(reports).toEqual([{ revision: 1 }]);
  });

  it('keys the links and the firewall by each port’s tap as the dataplane resolves it, and keeps a port without one closed', async () => {
    const { dataplane, reconciler } = setup({ state: hostState(1), inSync: true });
    const warnings: string[] = [];
    (reconciler as unknown as { logger: Logger }).logger = { info: () => undefined, warn: (m: string) => void warnings.push(m) };
    let choices = new Map<string, TapChoice>([
      [P1, { tap: 'vnet0', by: 'MAC' }],
      [P2, { problem: 'links vnet1, vnet2 all carry MAC fe:00:00:00:00:02: none is taken' }],
    ]);
    const claims: TapClaim[][] = [];
    Object.assign(dataplane, {
      resolveTaps: async (c: readonly TapClaim[]) => {
        claims.push([...c]);
        return choices;
      },
    });
    await reconciler.realize(1);
    expect(claims[0]).toEqual([
      { portId: P1, mac: '02:00:00:00:00:01', tapName: '' },
      { portId: P2, mac: '02:00:00:00:00:02', tapName: '' },
    ]);
    expect([...dataplane.dump().ports.keys()]).toEqual(['vnet0']);
    expect(dataplane.isOpen('vnet0')).toBe(true);
    expect([...dataplane.firewallInForce()!.ports.keys()]).toEqual(['vnet0']);
    // Said once as the resolution's problem, and once as the port NACK the Ack carries.
    expect(warnings).toEqual([
      `ports kept closed, without a tap: port ${P2}: links vnet1, vnet2 all carry MAC fe:00:00:00:00:02: none is taken`,
      `port ${P2} not programmed at revision 1, kept closed: no tap: links vnet1, vnet2 all carry MAC fe:00:00:00:00:02: none is taken`,
    ]);
    // The second link goes: the next pass finds P2's tap.
    choices = new Map<string, TapChoice>([
      [P1, { tap: 'vnet0', by: 'MAC' }],
      [P2, { tap: 'vnet1', by: 'MAC' }],
    ]);
    await reconciler.realize(1);
    expect([...dataplane.dump().ports.keys()].sort()).toEqual(['vnet0', 'vnet1']);
    expect([...dataplane.firewallInForce()!.ports.keys()].sort()).toEqual(['vnet0', 'vnet1']);
    expect(reconciler.tapOf(P2)).toBe('vnet1');
  });

  it('without a dataplane that resolves taps, uses the name a port gives, else its port-id name', async () => {
    const state = hostState(1);
    state.ports.set(P2, { ...state.ports.get(P2)!, tapName: 'vnet9' });
    const { dataplane, reconciler } = setup({ state, inSync: true });
    await reconciler.realize(1);
    expect([...dataplane.dump().ports.keys()].sort()).toEqual([T1, 'vnet9'].sort());
  });

  it('keeps a tap without a policy detached', async () => {
    const { dataplane, reconciler } = setup({ state: hostState(1, { p2Policy: false }), inSync: true });
    await reconciler.realize(1);
    expect(dataplane.dump().ports.has(T1)).toBe(true);
    expect(dataplane.dump().ports.has(T2)).toBe(false);
  });

  it('attaches nothing while no ruleset loads, nacks, and opens the ports by the retry once loads work', async () => {
    const { dataplane, reports, reconciler, until } = setup({ state: hostState(1), inSync: true });
    dataplane.firewallBroken = 'nft: refused';
    await reconciler.realize(1);
    expect(dataplane.dump().ports.size).toBe(0);
    expect(dataplane.dump().segments.has(5000)).toBe(true); // the links without taps are programmed
    expect(reports).toEqual([{ revision: 1, error: 'firewall: nft: refused' }]);
    dataplane.firewallBroken = undefined;
    await until(() => reports.length > 1);
    expect([dataplane.isOpen(T1), dataplane.isOpen(T2)]).toEqual([true, true]);
    expect(reports.at(-1)).toEqual({ revision: 1 });
  });

  it('closes only the tap whose new policy failed to load; the others keep the ruleset in force', async () => {
    const desired = { state: hostState(1), inSync: true };
    const { dataplane, reports, reconciler } = setup(desired);
    await reconciler.realize(1);
    const inForce = dataplane.firewall?.text;
    desired.state = hostState(2, { p2Rules: 2 });
    dataplane.failNextFirewall('nft: injected');
    await reconciler.realize(2);
    expect(dataplane.firewall?.text).toBe(inForce);
    expect([dataplane.isOpen(T1), dataplane.isOpen(T2)]).toEqual([true, false]);
    expect(dataplane.dump().ports.has(T2)).toBe(false);
    expect(reports.at(-1)).toEqual({ revision: 2, error: 'firewall: nft: injected' });
  });

  it('detaches every tap when the ruleset in force is gone, even before the state is whole (closing is not sweeping)', async () => {
    const desired = { state: hostState(1), inSync: false };
    const { dataplane, reports, reconciler } = setup(desired);
    await reconciler.realize(1);
    expect([dataplane.isOpen(T1), dataplane.isOpen(T2)]).toEqual([true, true]);
    expect(reports).toEqual([]); // a restored state is not acked
    dataplane.flushFirewall();
    await reconciler.realize(1); // same text: not loaded again outside a repair, so nothing is in force
    expect(dataplane.dump().ports.size).toBe(0);
  });

  it('does not retry a failing pass on a revision marker, but on a real change', async () => {
    const desired = { state: hostState(1), inSync: true };
    // A retry an hour away: every attempt here is the change's.
    const { dataplane, reconciler, until } = setup(desired, true, 3_600_000);
    dataplane.firewallBroken = 'nft: refused';
    await reconciler.realize(1);
    const attempts = dataplane.firewallAttempts;
    desired.state = { ...desired.state, revision: 2 };
    await reconciler.changed({ outcome: 'updated', revision: 2, marker: true, wasInSync: true });
    await until(() => true);
    expect(dataplane.firewallAttempts).toBe(attempts);
    desired.state = hostState(3, { p2Rules: 2 });
    await reconciler.changed({ outcome: 'updated', revision: 3, marker: false, wasInSync: true });
    await until(() => dataplane.firewallAttempts > attempts);
    expect(dataplane.firewallAttempts).toBe(attempts + 1);
  });

  it('programs the changes received before their pass could run in one pass, reported as the last revision', async () => {
    const desired = { state: hostState(1), inSync: true };
    const { dataplane, reconciler, reports, until } = setup(desired);
    await reconciler.realize(1);
    const loads = dataplane.firewallAttempts;
    // Three messages handled before the work queue runs again (as the agent's queue runs them, one after the other).
    const handled = [2, 3, 4].map((revision) => {
      desired.state = hostState(revision, { p2Rules: revision });
      return reconciler.changed({ outcome: 'updated', revision, marker: false, wasInSync: true });
    });
    await Promise.all(handled);
    await until(() => reports.length >= 2);
    expect(reports).toEqual([{ revision: 1 }, { revision: 4 }]);
    expect(dataplane.firewallAttempts).toBe(loads + 1);
    expect(reconciler.ackedRevision).toBe(4);
    // And the next change, after that pass, gets a pass of its own.
    desired.state = hostState(5, { p2Rules: 5 });
    await reconciler.changed({ outcome: 'updated', revision: 5, marker: false, wasInSync: true });
    await until(() => reports.length >= 3);
    expect(reports[2]).toEqual({ revision: 5 });
  });

  it('acks a pass that failed for one port with that port, keeps it closed, acks markers meanwhile without a pass, retries it with backoff, and acks without it once it is in place', async () => {
    const desired = { state: hostState(1), inSync: true };
    const { dataplane, reconciler, reports, until } = setup(desired);
    dataplane.brokenTaps.set(T2, 'ip refused "link set dev tap up": busy');
    await reconciler.realize(1);
    expect(reports).toEqual([{ revision: 1, failedPorts: [{ portId: P2, reason: 'ip refused "link set dev tap up": busy' }] }]);
    expect(reconciler.ackedRevision).toBe(1);
    expect(dataplane.isOpen(T1)).toBe(true);
    expect(dataplane.isOpen(T2)).toBe(false);
    expect(reconciler.isFailing).toBe(false);
    const applied = dataplane.applied;
    desired.state = { ...desired.state, revision: 2 };
    await reconciler.changed({ outcome: 'updated', revision: 2, marker: true, wasInSync: true });
    expect(dataplane.applied).toBe(applied); // no pass: the retry (with backoff) is the next attempt
    expect(reports[1]).toEqual({ revision: 2, failedPorts: [{ portId: P2, reason: 'ip refused "link set dev tap up": busy' }] });
    dataplane.brokenTaps.clear();
    await until(() => reports.length === 3);
    expect(reports[2]).toEqual({ revision: 2 });
    expect(dataplane.isOpen(T2)).toBe(true);
    expect(reconciler.failedPorts).toEqual([]);
  });

  it('puts a port in place as soon as its tap shows up (the dataplane says so), not at the retry, whatever its backoff', async () => {
    const { dataplane, reconciler, reports, until } = setup({ state: hostState(1), inSync: true }, true, 3_600_000);
    const missing = `tap ${T2} does not exist (the hypervisor has not created it yet)`;
    let p2: TapChoice = { tap: T2, by: 'pending' };
    dataplane.brokenTaps.set(T2, missing);
    const watches: { names: string[]; macs: string[]; since: number; appeared: () => void }[] = [];
    Object.assign(dataplane, {
      resolveTaps: async () =>
        new Map<string, TapChoice>([
          [P1, { tap: T1, by: 'port id' }],
          [P2, p2],
        ]),
      watchTaps: (awaited: AwaitedTaps, since: number, appeared: () => void) => watches.push({ names: [...awaited.names], macs: [...awaited.macs], since, appeared }),
    });
    const before = Date.now();
    await reconciler.realize(1);
    expect(reports).toEqual([{ revision: 1, failedPorts: [{ portId: P2, reason: missing }] }]);
    // Awaited by its name, and by the MAC libvirt gives the host side of a tap of the port's MAC.
    expect(watches.map(({ names, macs }) => ({ names, macs }))).toEqual([{ names: [T2], macs: ['fe:00:00:00:00:02'] }]);
    expect(watches[0].since).toBeGreaterThanOrEqual(before);
    // The hypervisor creates the tap: the dataplane calls back (twice: created, then set up); one pass runs.
    p2 = { tap: T2, by: 'port id' };
    dataplane.brokenTaps.clear();
    watches[0].appeared();
    watches[0].appeared();
    await until(() => reports.length === 2);
    expect(reports[1]).toEqual({ revision: 1 });
    expect(dataplane.isOpen(T2)).toBe(true);
    expect(watches.at(-1)).toMatchObject({ names: [], macs: [] });
    const retries = (await reconciler.passSeconds.get()).values.find((v) => v.metricName === 'overlay_agent_apply_seconds_count' && v.labels.pass === 'retry')?.value;
    expect(retries).toBe(1);
  });

  it('attaches every tap when the firewall is off', async () => {
    const { dataplane, reconciler } = setup({ state: hostState(1, { p2Policy: false }), inSync: true }, false);
    await reconciler.realize(1);
    expect(dataplane.firewallAttempts).toBe(0);
    expect([...dataplane.dump().ports.keys()].sort()).toEqual([T1, T2].sort());
  });
});

describe('reconciler: the change pass fast path', () => {
  /** A memory dataplane that counts its kernel reads. */
  class CountingDataplane extends MemoryDataplane {
    observes = 0;
    override observe() {
      this.observes++;
      return super.observe();
    }
  }
  const R1 = 'remote-1';
  /** hostState with remote port R1 on 192.0.2.2. */
  function withRemote(revision: number): DesiredState {
    const state = hostState(revision);
    state.ports.set(R1, { id: R1, segmentId: 's1', mac: '02:00:00:00:01:01', ips: [], hostId: 'h2', vtepIp: '192.0.2.2', vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false, tapName: '' });
    return state;
  }
  /** `state` at `revision` as a delta leaves it: new maps of ports and policies, the others the same objects. */
  const delta = (state: DesiredState, revision: number): DesiredState => ({ ...state, revision, ports: new Map(state.ports), policies: new Map(state.policies) });

  function setup(firewall = true) {
    const dataplane = new CountingDataplane();
    const desired = { state: withRemote(1), inSync: true };
    const reports: { revision: number; error?: string }[] = [];
    const released = { stages: 0 };
    const r = new Reconciler(
      { firewall, backoffBaseMs: 3_600_000, backoffMaxMs: 3_600_000, reconcileIntervalMs: 3_600_000 },
      dataplane,
      desired,
      { report: (revision, error) => reports.push(error === undefined ? { revision } : { revision, error }) > 0, linked: async () => undefined, stageDone: () => released.stages++ },
      () => undefined,
      quiet,
      () => 1,
    );
    reconciler = r;
    return { dataplane, desired, reports, released, reconciler: r };
  }
  let reconciler: Reconciler | undefined;
  afterEach(() => reconciler?.stop());

  it('puts a change of remote ports alone without reading the kernel, acks it, and leaves periodic passes the full way', async () => {
    const { dataplane, desired, reports, reconciler } = setup();
    await reconciler.realize(1);
    expect([dataplane.observes, dataplane.applied, reconciler.counts.fastPasses]).toEqual([1, 1, 0]);
    const next = delta(desired.state, 2);
    next.ports.set(R1, { ...next.ports.get(R1)!, hostId: 'h3', vtepIp: '192.0.2.3' });
    next.ports.set('remote-2', { ...next.ports.get(R1)!, id: 'remote-2', mac: '02:00:00:00:01:02' });
    desired.state = next;
    await reconciler.realize(2);
    expect([dataplane.observes, dataplane.applied, dataplane.forwardingUpdates, reconciler.counts.fastPasses]).toEqual([1, 1, 1, 1]);
    expect(dataplane.dump().fdb).toEqual(desiredDataplane(next).fdb);
    expect([dataplane.isOpen(T1), dataplane.isOpen(T2)]).toEqual([true, true]);
    expect(reports.at(-1)).toEqual({ revision: 2 });
    // A marker (the same maps): no step at all.
    desired.state = { ...next, revision: 3 };
    await reconciler.realize(3);
    expect([dataplane.observes, dataplane.forwardingUpdates, reconciler.counts.fastPasses]).toEqual([1, 1, 2]);
    await reconciler.realize(3, 'periodic');
    expect([dataplane.observes, reconciler.counts.fastPasses]).toEqual([2, 2]);
    expect(reports.at(-1)).toEqual({ revision: 3 });
  });

  it('releases memory between the stages of a full pass (kernel read, desired links, firewall), never in a fast pass', async () => {
    for (const firewall of [true, false]) {
      const { desired, released, reconciler } = setup(firewall);
      await reconciler.realize(1);
      const perFullPass = firewall ? 3 : 2;
      expect(released.stages).toBe(perFullPass);
      const next = delta(desired.state, 2);
      next.ports.set(R1, { ...next.ports.get(R1)!, hostId: 'h3', vtepIp: '192.0.2.3' });
      desired.state = next;
      await reconciler.realize(2);
      expect([reconciler.counts.fastPasses, released.stages]).toEqual([1, perFullPass]);
      await reconciler.realize(2, 'periodic');
      expect(released.stages).toBe(2 * perFullPass);
      reconciler.stop();
    }
  });

  it('takes the full pass when the kernel refuses a step (an entry gone behind its back), and puts all of it', async () => {
    const { dataplane, desired, reports, reconciler } = setup();
    await reconciler.realize(1);
    await dataplane.apply([{ op: 'remove-fdb', vni: 5000, mac: '02:00:00:00:01:01' }]);
    const next = delta(desired.state, 2);
    next.ports.delete(R1);
    next.ports.set('remote-2', { ...desired.state.ports.get(R1)!, id: 'remote-2', mac: '02:00:00:00:01:02' });
    desired.state = next;
    await reconciler.realize(2);
    expect([dataplane.observes, dataplane.forwardingUpdates, reconciler.counts.fastPasses]).toEqual([2, 0, 0]);
    expect(dataplane.dump().fdb).toEqual(desiredDataplane(next).fdb);
    expect(reports.at(-1)).toEqual({ revision: 2 });
    // A refusal of the batch itself, the same.
    dataplane.forwardingBroken = 'bridge: refused';
    const later = delta(next, 3);
    later.ports.set('remote-2', { ...later.ports.get('remote-2')!, vtepIp: '192.0.2.4' });
    desired.state = later;
    await reconciler.realize(3);
    expect([dataplane.observes, reconciler.counts.fastPasses]).toEqual([3, 0]);
    expect(dataplane.dump().fdb).toEqual(desiredDataplane(later).fdb);
  });

  it('takes the full pass for a local port whose links change, and for every change after a pass that failed', async () => {
    const { dataplane, desired, reports, reconciler } = setup();
    await reconciler.realize(1);
    const moved = delta(desired.state, 2);
    moved.ports.set(P1, { ...moved.ports.get(P1)!, hostId: 'h2', vtepIp: '192.0.2.2' }); // migrated away
    desired.state = moved;
    await reconciler.realize(2);
    expect([dataplane.observes, reconciler.counts.fastPasses]).toEqual([2, 0]);
    expect(dataplane.dump().ports.has(T1)).toBe(false);
    expect(dataplane.dump().fdb.get('5000 02:00:00:00:00:01')).toEqual({ vni: 5000, mac: '02:00:00:00:00:01', vtep: '192.0.2.2' });
    const back = delta(moved, 3);
    back.ports.set(P1, { ...back.ports.get(P1)!, hostId: 'h', vtepIp: '192.0.2.1' });
    desired.state = back;
    dataplane.applyBroken = 'ip: refused';
    await reconciler.realize(3);
    expect(reports.at(-1)).toEqual({ revision: 3, error: 'ip: refused' });
    dataplane.applyBroken = undefined;
    const remoteOnly = delta(back, 4);
    remoteOnly.ports.set(R1, { ...remoteOnly.ports.get(R1)!, vtepIp: '192.0.2.6' });
    desired.state = remoteOnly;
    await reconciler.realize(4);
    expect([dataplane.observes, reconciler.counts.fastPasses]).toEqual([4, 0]);
    expect(dataplane.dump().fdb).toEqual(desiredDataplane(remoteOnly).fdb);
    expect(dataplane.isOpen(T1)).toBe(true);
    expect(reports.at(-1)).toEqual({ revision: 4 });
  });

  it('loads a local port\'s new security group rules and keeps its tap attached once they are in force; fails closed through the full pass when they are not', async () => {
    const { dataplane, desired, reports, reconciler } = setup();
    await reconciler.realize(1);
    const loads = dataplane.firewallLoads;
    const swapped = delta(desired.state, 2);
    swapped.ports.set(P2, { ...swapped.ports.get(P2)! });
    swapped.policies.set(P2, { ...hostState(2, { p2Rules: 2 }).policies.get(P2)! });
    desired.state = swapped;
    await reconciler.realize(2);
    expect([dataplane.observes, reconciler.counts.fastPasses, dataplane.firewallLoads]).toEqual([1, 1, loads + 1]);
    expect([dataplane.isOpen(T1), dataplane.isOpen(T2)]).toEqual([true, true]);
    expect(reports.at(-1)).toEqual({ revision: 2 });
    // The next swap does not load: the pass goes the full way, which detaches that tap alone.
    const again = delta(swapped, 3);
    again.policies.set(P2, { ...hostState(3, { p2Rules: 3 }).policies.get(P2)! });
    desired.state = again;
    dataplane.firewallBroken = 'nft: refused';
    const attempts = dataplane.firewallAttempts;
    await reconciler.realize(3);
    expect([dataplane.observes, reconciler.counts.fastPasses]).toEqual([2, 1]);
    expect(dataplane.firewallAttempts).toBe(attempts + 1); // one load a pass: the full pass does not try it again
    expect([dataplane.isOpen(T1), dataplane.isOpen(T2)]).toEqual([true, false]);
    expect(dataplane.dump().ports.has(T2)).toBe(false);
    expect(reports.at(-1)).toEqual({ revision: 3, error: 'firewall: nft: refused' });
    // While a port is kept closed every change pass is full.
    const remoteOnly = delta(again, 4);
    remoteOnly.ports.set(R1, { ...remoteOnly.ports.get(R1)!, vtepIp: '192.0.2.9' });
    desired.state = remoteOnly;
    await reconciler.realize(4);
    expect([dataplane.observes, reconciler.counts.fastPasses]).toEqual([3, 1]);
    expect(dataplane.dump().ports.has(T2)).toBe(false);
  });

  it('takes the full pass when the ruleset in force is found gone: no tap stays attached without its rules', async () => {
    const { dataplane, desired, reconciler } = setup();
    await reconciler.realize(1);
    const loads = dataplane.firewallLoads;
    dataplane.flushFirewall();
    const next = delta(desired.state, 2);
    next.ports.set(R1, { ...next.ports.get(R1)!, vtepIp: '192.0.2.3' });
    desired.state = next;
    dataplane.firewallBroken = 'nft: refused';
    await reconciler.realize(2);
    expect([dataplane.observes, reconciler.counts.fastPasses]).toEqual([2, 0]);
    expect(dataplane.dump().ports.size).toBe(0);
    dataplane.firewallBroken = undefined;
    await reconciler.realize(2); // after a failed pass: the full way, which loads the rules and attaches the taps
    expect([dataplane.observes, reconciler.counts.fastPasses, dataplane.firewallLoads]).toEqual([3, 0, loads + 1]);
    expect([dataplane.isOpen(T1), dataplane.isOpen(T2)]).toEqual([true, true]);
  });

  it('works the same with the firewall off', async () => {
    const { dataplane, desired, reconciler } = setup(false);
    await reconciler.realize(1);
    const next = delta(desired.state, 2);
    next.ports.set(R1, { ...next.ports.get(R1)!, vtepIp: '192.0.2.3' });
    desired.state = next;
    await reconciler.realize(2);
    expect([dataplane.observes, reconciler.counts.fastPasses]).toEqual([1, 1]);
    expect(dataplane.dump().fdb).toEqual(desiredDataplane(next).fdb);
    expect(dataplane.dump().ports.size).toBe(2);
  });
});

describe('reconciler: the host observation', () => {
  /** A memory dataplane whose kernel shows `host` (what the last observe saw). */
  class ObservedDataplane extends MemoryDataplane {
    host: HostKernelState = { taps: new Map(), bridgeAgeing: new Map() };
    observeHost(): HostKernelState {
      return { taps: new Map(this.host.taps), bridgeAgeing: new Map(this.host.bridgeAgeing) };
    }
  }

  function setup(opts: { stream?: () => boolean; inventory?: () => HostInventory | undefined } = {}) {
    const dataplane = new ObservedDataplane();
    const sent: HostObservation[] = [];
    const desired = { state: hostState(1), inSync: true };
    const reconciler = new Reconciler(
      { firewall: false, backoffBaseMs: 20, backoffMaxMs: 20, reconcileIntervalMs: 3_600_000 },
      dataplane,
      desired,
      { report: () => true, linked: async () => undefined, hostObserved: (o) => (opts.stream?.() ?? true) && sent.push(o) > 0, inventory: () => opts.inventory?.() },
      () => undefined,
      quiet,
      () => 1,
    );
    return { dataplane, sent, desired, reconciler };
  }

  it('names the local ports by id and the segments by VNI, leaving out the taps and bridges of others', () => {
    const state = hostState(1);
    state.ports.set('elsewhere', { ...state.ports.get(P1)!, id: 'elsewhere', hostId: 'h2' });
    state.ports.set('arriving', { ...state.ports.get(P1)!, id: 'arriving', hostId: 'h2', preparedHostId: 'h' });
    const taps = new Map([T1, tapName('elsewhere'), tapName('arriving'), 'tapstranger00'].map((t, i) => [t, { promiscuity: i, bridged: i % 2 === 0 }]));
    expect(hostObservation(state, { taps, bridgeAgeing: new Map([[5000, 0], [6000, 300]]) })).toEqual({
      // P2's tap is not in the kernel: left out.
      taps: [
        { portId: P1, promiscuity: 0, bridged: true },
        { portId: 'arriving', promiscuity: 2, bridged: true },
      ],
      bridges: [{ vni: 5000, ageingSeconds: 0 }],
    });
  });

  it('is sent after a pass when it changed, again every HOST_OBSERVATION_EVERY-th periodic pass, and retried while there is no stream', async () => {
    let stream = false;
    const { dataplane, sent, reconciler } = setup({ stream: () => stream });
    dataplane.host.taps.set(T1, { promiscuity: 1, bridged: true });
    await reconciler.realize(1);
    expect(sent).toHaveLength(0); // no stream: not sent, so still due
    stream = true;
    await reconciler.realize(1);
    expect(sent).toEqual([{ taps: [{ portId: P1, promiscuity: 1, bridged: true }], bridges: [] }]);
    await reconciler.realize(1);
    expect(sent).toHaveLength(1); // unchanged
    dataplane.host.taps.set(T1, { promiscuity: 2, bridged: true });
    dataplane.host.bridgeAgeing.set(5000, 0);
    await reconciler.realize(1);
    expect(sent.at(-1)).toEqual({ taps: [{ portId: P1, promiscuity: 2, bridged: true }], bridges: [{ vni: 5000, ageingSeconds: 0 }] });
    for (let i = 1; i < HOST_OBSERVATION_EVERY; i++) {
      await reconciler.realize(1, 'periodic');
    }
    expect(sent).toHaveLength(2);
    await reconciler.realize(1, 'periodic');
    expect(sent).toHaveLength(3);
    expect(sent[2]).toEqual(sent[1]);
  });

  it('joins the inventory last collected, and sends again when it changed', async () => {
    const collected: { last?: HostInventory } = {};
    const { dataplane, sent, reconciler } = setup({ inventory: () => collected.last });
    dataplane.host.taps.set(T1, { promiscuity: 1, bridged: true });
    await reconciler.realize(1);
    expect(sent.at(-1)).not.toHaveProperty('inventory');
    const inventory: HostInventory = { links: [{ name: 'eno1', kind: 'physical', up: true, team: null, nic: null, lldp: null }], vtepRoutes: [] };
    collected.last = inventory;
    await reconciler.realize(1);
    expect(sent).toHaveLength(2);
    expect(sent.at(-1)).toEqual({ taps: [{ portId: P1, promiscuity: 1, bridged: true }], bridges: [], inventory });
    await reconciler.realize(1);
    expect(sent).toHaveLength(2);
  });

  it('sends nothing from a dataplane that observes no host (the memory one)', async () => {
    const sent: HostObservation[] = [];
    const reconciler = new Reconciler(
      { firewall: false, backoffBaseMs: 20, backoffMaxMs: 20, reconcileIntervalMs: 3_600_000 },
      new MemoryDataplane(),
      { state: hostState(1), inSync: true },
      { report: () => true, linked: async () => undefined, hostObserved: (o) => sent.push(o) > 0 },
      () => undefined,
      quiet,
      () => 1,
    );
    await reconciler.realize(1);
    await reconciler.realize(1, 'periodic');
    expect(sent).toEqual([]);
  });
});
