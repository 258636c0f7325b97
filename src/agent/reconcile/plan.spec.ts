import { emptyDataplaneState, fdbKey } from '../dataplane/dataplane';
import { tapName } from '../dataplane/names';
import { closedPorts, desiredDataplane, planChanges, type SpanView } from './plan';

const own = 'host-own';

function span(): SpanView {
  return {
    hostId: own,
    vtepIp: '192.0.2.1',
    segments: new Map([['s1', { id: 's1', tenantId: 't', vni: 5000, vteps: ['192.0.2.3', '192.0.2.1', '192.0.2.2'] }]]),
    ports: new Map([
      ['p-local', { id: '0190aaaa-0000-7000-8000-00000000000a', segmentId: 's1', mac: '02:00:00:00:00:0a', ips: ['10.0.0.10'], hostId: own, vtepIp: '192.0.2.1', vmId: 'vm1', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false }],
      ['p-remote', { id: 'p-remote', segmentId: 's1', mac: '02:00:00:00:00:0b', ips: ['10.0.0.11'], hostId: 'host-2', vtepIp: '192.0.2.2', vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false }],
      ['p-orphan', { id: 'p-orphan', segmentId: 'missing', mac: '02:00:00:00:00:0c', ips: [], hostId: 'host-3', vtepIp: '192.0.2.3', vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false }],
    ]),
    mirrors: new Map(),
    mirrorSinks: new Map(),
  };
}

describe('desired dataplane', () => {
  it('floods to every remote VTEP of the segment but its own, sorted', () => {
    expect(desiredDataplane(span()).segments.get(5000)).toEqual({ vni: 5000, localVtep: '192.0.2.1', floodVteps: ['192.0.2.2', '192.0.2.3'] });
  });

  it('attaches local ports by tap name and maps remote MACs to their VTEP', () => {
    const state = desiredDataplane(span());
    expect([...state.ports.values()]).toEqual([{ tap: tapName('0190aaaa-0000-7000-8000-00000000000a'), vni: 5000 }]);
    expect(state.fdb.get(fdbKey(5000, '02:00:00:00:00:0b'))).toEqual({ vni: 5000, mac: '02:00:00:00:00:0b', vtep: '192.0.2.2' });
  });

  it('installs a port prepared here for a migration and keeps its MAC pointing at the source until the commit', () => {
    const view = span();
    view.ports.set('p-remote', { ...view.ports.get('p-remote')!, preparedHostId: own, migrationId: 'm1' });
    const state = desiredDataplane(view);
    expect(state.ports.get(tapName('p-remote'))).toEqual({ tap: tapName('p-remote'), vni: 5000 });
    expect(state.fdb.get(fdbKey(5000, '02:00:00:00:00:0b'))).toEqual({ vni: 5000, mac: '02:00:00:00:00:0b', vtep: '192.0.2.2' });
    // Committed: bound here, no VTEP entry any more.
    view.ports.set('p-remote', { ...view.ports.get('p-remote')!, hostId: own, vtepIp: '192.0.2.1', preparedHostId: '', migrationId: '' });
    const committed = desiredDataplane(view);
    expect(committed.ports.has(tapName('p-remote'))).toBe(true);
    expect(committed.fdb.has(fdbKey(5000, '02:00:00:00:00:0b'))).toBe(false);
  });

  it('while a port migrates between two other hosts, floods its frames (no entry), and on its source points it at the destination', () => {
    const view = span();
    const migrating = { ...view.ports.get('p-remote')!, preparedHostId: 'host-3', preparedVtepIp: '192.0.2.3', migrationId: 'm1' };
    view.ports.set('p-remote', migrating);
    expect(desiredDataplane(view).fdb.has(fdbKey(5000, '02:00:00:00:00:0b'))).toBe(false);
    // Seen from the source (this host): its tap stays, and the MAC goes to the destination once the VM left the tap.
    view.ports.set('p-remote', { ...migrating, hostId: own, vtepIp: '192.0.2.1' });
    const source = desiredDataplane(view);
    expect(source.ports.has(tapName('p-remote'))).toBe(true);
    expect(source.fdb.get(fdbKey(5000, '02:00:00:00:00:0b'))).toEqual({ vni: 5000, mac: '02:00:00:00:00:0b', vtep: '192.0.2.3' });
  });

  it('never programs an entry whose segment it does not hold', () => {
    expect([...desiredDataplane(span()).fdb.values()].some((e) => e.mac === '02:00:00:00:00:0c')).toBe(false);
  });
});

describe('plan', () => {
  it('is empty when the dataplane already matches', () => {
    const desired = desiredDataplane(span());
    expect(planChanges(desired, desiredDataplane(span()), true)).toEqual([]);
  });

  it('removes stale objects only when allowed to sweep, and removals come first', () => {
    const desired = desiredDataplane(span());
    const observed = emptyDataplaneState();
    observed.segments.set(7000, { vni: 7000, localVtep: '192.0.2.1', floodVteps: [] });
    observed.fdb.set(fdbKey(7000, '02:00:00:00:00:ff'), { vni: 7000, mac: '02:00:00:00:00:ff', vtep: '192.0.2.9' });
    const noSweep = planChanges(desired, observed, false);
    expect(noSweep.some((s) => s.op.startsWith('remove'))).toBe(false);
    const sweep = planChanges(desired, observed, true);
    const firstPut = sweep.findIndex((s) => s.op.startsWith('put'));
    const lastRemove = sweep.map((s) => s.op.startsWith('remove')).lastIndexOf(true);
    expect(lastRemove).toBeLessThan(firstPut);
    expect(sweep.filter((s) => s.op.startsWith('remove'))).toEqual([
      { op: 'remove-fdb', vni: 7000, mac: '02:00:00:00:00:ff' },
      { op: 'remove-segment', vni: 7000 },
    ]);
  });

  it('detaches the taps it is told to close even before the first full sync (closing is not sweeping)', () => {
    const observed = desiredDataplane(span());
    const tap = tapName('0190aaaa-0000-7000-8000-00000000000a');
    const desired = desiredDataplane(span());
    desired.ports.delete(tap);
    observed.ports.set('tapstale00000', { tap: 'tapstale00000', vni: 5000 });
    for (const sweep of [false, true]) {
      const plan = planChanges(desired, observed, sweep, new Set([tap]));
      expect(plan.filter((s) => s.op === 'remove-port')).toEqual([{ op: 'remove-port', tap }, ...(sweep ? [{ op: 'remove-port', tap: 'tapstale00000' }] : [])]);
    }
  });

  it('re-points a MAC that moved to another VTEP', () => {
    const desired = desiredDataplane(span());
    const observed = desiredDataplane(span());
    observed.fdb.set(fdbKey(5000, '02:00:00:00:00:0b'), { vni: 5000, mac: '02:00:00:00:00:0b', vtep: '192.0.2.9' });
    expect(planChanges(desired, observed, true)).toEqual([{ op: 'put-fdb', entry: { vni: 5000, mac: '02:00:00:00:00:0b', vtep: '192.0.2.2' } }]);
  });

  it('closes the taps whose wanted policy the ruleset in force does not hold, and those without a policy', () => {
    const [a, b] = ['tap-a', 'tap-b'];
    const desired = emptyDataplaneState();
    desired.ports.set(a, { tap: a, vni: 5000 }).set(b, { tap: b, vni: 5000 });
    const wanted = { text: 'new', ports: new Map([[a, 'digest-a2']]) };
    expect(closedPorts(desired, wanted, undefined)).toEqual(new Set([a, b]));
    expect(closedPorts(desired, wanted, { text: 'old', ports: new Map([[a, 'digest-a1'], [b, 'digest-b']]) })).toEqual(new Set([a, b]));
    expect(closedPorts(desired, wanted, { text: 'new', ports: new Map([[a, 'digest-a2']]) })).toEqual(new Set([b]));
  });
});
