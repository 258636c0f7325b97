import { emptyDataplaneState, fdbKey } from '../dataplane/dataplane';
import { tapName } from '../dataplane/names';
import type { MirrorTap__Output } from '../../generated/overlay/v1/MirrorTap';
import { mirrorTap } from '../../common/span/mirror.kind';
import { closedPorts, desiredDataplane, forwardingDelta, mirrorCookie, planChanges, type SpanState, type SpanView } from './plan';
import { mirrorCounters } from './reconciler';

const own = 'host-own';

function span(): SpanView {
  return {
    hostId: own,
    vtepIp: '192.0.2.1',
    segments: new Map([['s1', { id: 's1', tenantId: 't', vni: 5000, vteps: ['192.0.2.3', '192.0.2.1', '192.0.2.2'] }]]),
    ports: new Map([
      ['p-local', { id: '0190aaaa-0000-7000-8000-00000000000a', segmentId: 's1', mac: '02:00:00:00:00:0a', ips: ['10.0.0.10'], hostId: own, vtepIp: '192.0.2.1', vmId: 'vm1', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false, tapName: '' }],
      ['p-remote', { id: 'p-remote', segmentId: 's1', mac: '02:00:00:00:00:0b', ips: ['10.0.0.11'], hostId: 'host-2', vtepIp: '192.0.2.2', vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false, tapName: '' }],
      ['p-orphan', { id: 'p-orphan', segmentId: 'missing', mac: '02:00:00:00:00:0c', ips: [], hostId: 'host-3', vtepIp: '192.0.2.3', vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false, tapName: '' }],
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

describe('desired mirrors', () => {
  const SRC = '0190aaaa-0000-7000-8000-00000000000a';
  const ANALYZER = '0190aaaa-0000-7000-8000-0000000000an';
  const tap = (m: Partial<MirrorTap__Output>): MirrorTap__Output => mirrorTap({ sessionId: 'ses1', portId: SRC, ingress: true, egress: true, ...m });
  function mirrored(...taps: MirrorTap__Output[]): SpanView {
    const view = span();
    const base = view.ports.get('p-local')!;
    view.ports.delete('p-local'); // by id, as the span keeps them
    view.ports.set(SRC, base);
    view.ports.set(ANALYZER, { ...base, id: ANALYZER, mac: '02:00:00:00:00:a0', analyzer: true });
    view.ports.set('p-remote-analyzer', { ...view.ports.get('p-remote')!, id: 'p-remote-analyzer', mac: '02:00:00:00:00:a1', analyzer: true });
    taps.forEach((t) => view.mirrors.set(`${t.sessionId}/${t.portId}`, t));
    return view;
  }

  it('sets a local analyzer up apart: no bridge port, and no forwarding entry for any analyzer', () => {
    const state = desiredDataplane(mirrored());
    expect([...state.analyzers.keys()]).toEqual([tapName(ANALYZER)]);
    expect(state.ports.has(tapName(ANALYZER))).toBe(false);
    expect([...state.fdb.values()].map((e) => e.mac)).toEqual(['02:00:00:00:00:0b']);
  });

  it('copies both directions of a local port to a remote sink through its mirror device, and to a local analyzer directly', () => {
    const state = desiredDataplane(mirrored(tap({ vni: 7001, remoteIp: '192.0.2.9', udpPort: 4789, filterEthertype: 'IPv4', filterProtocol: 6 }), tap({ sessionId: 'ses2', ingress: false, sinkPortId: ANALYZER })));
    expect(Object.fromEntries(state.mirrorDevices)).toEqual({ 7001: { vni: 7001, localVtep: '192.0.2.1', remote: '192.0.2.9', dstport: 4789, redirect: '' } });
    const match = { ethertype: 'IPv4', protocol: 6, remoteCidr: '' };
    expect([...state.mirrorFilters.values()].map((f) => [f.tapId, f.direction, f.dev, f.target, f.match])).toEqual([
      [`ses1/${SRC}`, 'ingress', tapName(SRC), 'mx7001', match],
      [`ses1/${SRC}`, 'egress', tapName(SRC), 'mx7001', match],
      [`ses2/${SRC}`, 'egress', tapName(SRC), tapName(ANALYZER), { ethertype: '', protocol: 0, remoteCidr: '' }],
    ]);
    for (const [cookie, f] of state.mirrorFilters) {
      expect(cookie).toBe(mirrorCookie(f));
      expect(cookie).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it('reports per mirror tap what cannot be programmed, and programs the rest', () => {
    const errors = new Map<string, string>();
    const state = desiredDataplane(
      mirrored(
        tap({ sessionId: 'a', sinkPortId: 'p-remote-analyzer' }),
        tap({ sessionId: 'b', sinkPortId: SRC }),
        tap({ sessionId: 'c', portId: 'p-remote', sinkInterface: 'eth1' }),
        tap({ sessionId: 'd', filterProtocol: 6, sinkInterface: 'eth1' }),
        tap({ sessionId: 'e', filterEthertype: 'IPv4', filterRemoteCidr: 'fd00::/8', sinkInterface: 'eth1' }),
        tap({ sessionId: 'f' }),
        tap({ sessionId: 'g', sinkInterface: 'eth1' }),
      ),
      errors,
    );
    expect(Object.fromEntries(errors)).toEqual({
      [`a/${SRC}`]: 'sink port p-remote-analyzer is not on this host',
      [`b/${SRC}`]: `sink port ${SRC} is not an analyzer port`,
      'c/p-remote': 'source port p-remote is not on this host',
      [`d/${SRC}`]: 'a filter protocol or remote CIDR needs an ethertype',
      [`e/${SRC}`]: 'filter remote CIDR "fd00::/8" is not an IPv4 prefix',
      [`f/${SRC}`]: 'no sink',
    });
    expect([...state.mirrorFilters.values()].map((f) => f.tapId)).toEqual([`g/${SRC}`, `g/${SRC}`]);
  });

  it('sets the sink side up: a mirror device without remote that redirects to the local analyzer', () => {
    const view = mirrored();
    view.mirrorSinks.set('ses9', { sessionId: 'ses9', vni: 7009, portId: ANALYZER, interface: '' });
    view.mirrorSinks.set('ses8', { sessionId: 'ses8', vni: 7008, portId: 'p-remote-analyzer', interface: '' });
    const errors = new Map<string, string>();
    const state = desiredDataplane(view, errors);
    expect(Object.fromEntries(state.mirrorDevices)).toEqual({ 7009: { vni: 7009, localVtep: '192.0.2.1', remote: '', dstport: 4789, redirect: tapName(ANALYZER) } });
    expect(Object.fromEntries(errors)).toEqual({ ses8: 'sink port p-remote-analyzer is not on this host' });
  });

  it('plans mirrors: puts what is missing, removes what is stale only when sweeping, removals first; detaches an attached analyzer even before', () => {
    const desired = desiredDataplane(mirrored(tap({ vni: 7001, remoteIp: '192.0.2.9', udpPort: 4789 })));
    const observed = desiredDataplane(span());
    observed.ports.set(tapName(ANALYZER), { tap: tapName(ANALYZER), vni: 5000 });
    const stale = { cookie: 'f'.repeat(32), tapId: '', direction: 'egress' as const, dev: 'tapold', target: 'mx1', match: { ethertype: '' as const, protocol: 0, remoteCidr: '' } };
    observed.mirrorFilters.set(stale.cookie, stale);
    observed.mirrorDevices.set(1, { vni: 1, localVtep: '192.0.2.1', remote: '192.0.2.8', dstport: 4789, redirect: '' });
    observed.analyzers.set('tapoldanalyzer', { tap: 'tapoldanalyzer' });
    const puts = ['put-analyzer', 'put-mirror-device', 'put-mirror-filter', 'put-mirror-filter'];
    expect(planChanges(desired, observed, false).map((s) => s.op)).toEqual(['remove-port', ...puts]);
    const sweep = planChanges(desired, observed, true);
    expect(sweep.map((s) => s.op)).toEqual(['remove-port', 'remove-mirror-filter', 'remove-mirror-device', 'remove-analyzer', ...puts]);
    // Once in place, nothing more; a filter pointing elsewhere (the tap created anew) is put again.
    const inPlace = desiredDataplane(mirrored(tap({ vni: 7001, remoteIp: '192.0.2.9', udpPort: 4789 })));
    expect(planChanges(desired, inPlace, true)).toEqual([]);
    const [first] = inPlace.mirrorFilters.values();
    inPlace.mirrorFilters.set(first.cookie, { ...first, dev: '' });
    expect(planChanges(desired, inPlace, true)).toEqual([{ op: 'put-mirror-filter', filter: desired.mirrorFilters.get(first.cookie) }]);
  });

  it('counts per mirror tap over both directions, and says why one is not programmed', () => {
    const view = mirrored(tap({ vni: 7001, remoteIp: '192.0.2.9', udpPort: 4789 }), tap({ sessionId: 'ses2', sinkInterface: 'eth1' }), tap({ sessionId: 'ses3' }));
    const errors = new Map<string, string>();
    const desired = desiredDataplane(view, errors);
    const observed = desiredDataplane(view);
    const [a, b, c] = [...observed.mirrorFilters.values()];
    observed.mirrorFilters.set(a.cookie, { ...a, packets: 3, bytes: 300 });
    observed.mirrorFilters.set(b.cookie, { ...b, packets: 2, bytes: 200 });
    observed.mirrorFilters.delete(c.cookie);
    expect(mirrorCounters(view.mirrors.keys(), desired, observed, errors, new Map([[c.cookie, 'tc refused it']]))).toEqual([
      { id: `ses1/${SRC}`, packets: 5, bytes: 500, error: '' },
      { id: `ses2/${SRC}`, packets: 0, bytes: 0, error: 'tc refused it' },
      { id: `ses3/${SRC}`, packets: 0, bytes: 0, error: 'no sink' },
    ]);
    observed.mirrorDevices.delete(7001);
    expect(mirrorCounters([`ses1/${SRC}`], desired, observed, errors)[0].error).toBe('not programmed: mirror device mx7001 is not in place');
  });
  it('copies to an ERSPAN collector through one ms<id> device per session id, in no bridge: its direction (v2) as the switch port sees it', () => {
    const collector = { remoteIp: '203.0.113.9', erspanId: 5, erspanVersion: 2 };
    const both = desiredDataplane(mirrored(tap(collector)));
    expect(Object.fromEntries(both.erspanDevices)).toEqual({ 5: { erspanId: 5, localVtep: '192.0.2.1', remote: '203.0.113.9', version: 2, dir: 'ingress' } });
    expect(both.mirrorDevices.size).toBe(0);
    expect([...both.mirrorFilters.values()].map((f) => [f.direction, f.dev, f.target])).toEqual([
      ['ingress', tapName(SRC), 'ms5'],
      ['egress', tapName(SRC), 'ms5'],
    ]);
    // Only what the VM receives: it leaves the switch port, egress; version 1 has no direction.
    expect(desiredDataplane(mirrored(tap({ ...collector, egress: false }))).erspanDevices.get(5)?.dir).toBe('egress');
    expect(desiredDataplane(mirrored(tap({ ...collector, ingress: false }))).erspanDevices.get(5)?.dir).toBe('ingress');
    expect(desiredDataplane(mirrored(tap({ ...collector, erspanVersion: 1, egress: false }))).erspanDevices.get(5)).toEqual({ erspanId: 5, localVtep: '192.0.2.1', remote: '203.0.113.9', version: 1, dir: '' });
  });

  it('refuses per mirror tap an ERSPAN sink it cannot create: out of range, another family, a session id another session uses otherwise here', () => {
    const errors = new Map<string, string>();
    const collector = { remoteIp: '203.0.113.9', erspanId: 5, erspanVersion: 2 };
    const state = desiredDataplane(
      mirrored(
        tap({ sessionId: 'a', ...collector }),
        tap({ sessionId: 'b', ...collector, remoteIp: '203.0.113.10' }),
        tap({ sessionId: 'c', ...collector, erspanVersion: 1 }),
        tap({ sessionId: 'd', ...collector, erspanId: 1024 }),
        tap({ sessionId: 'e', ...collector, erspanVersion: 3 }),
        tap({ sessionId: 'f', ...collector, erspanId: 6, remoteIp: '2001:db8::9' }),
        tap({ sessionId: 'g', ...collector, ingress: false }),
      ),
      errors,
    );
    const taken = 'ERSPAN session id 5 is already used on this host by another mirror session (to 203.0.113.9, version 2); a host has one ERSPAN device per session id';
    expect(Object.fromEntries(errors)).toEqual({
      [`b/${SRC}`]: taken,
      [`c/${SRC}`]: taken,
      [`d/${SRC}`]: 'ERSPAN session id 1024 out of range (1-1023)',
      [`e/${SRC}`]: 'ERSPAN version 3 is not 1 or 2',
      [`f/${SRC}`]: "the ERSPAN collector 2001:db8::9 is not of this host's VTEP family (192.0.2.1)",
    });
    // Session g shares a's device (same collector and version): both ways go in, so the device says ingress.
    expect([...state.erspanDevices.keys()]).toEqual([5]);
    expect(state.erspanDevices.get(5)?.dir).toBe('ingress');
    expect([...state.mirrorFilters.values()].map((f) => f.tapId)).toEqual([`a/${SRC}`, `a/${SRC}`, `g/${SRC}`]);
  });

  it('plans ERSPAN devices: put when missing or different, removed only when sweeping; a missing one is a tap error', () => {
    const view = mirrored(tap({ remoteIp: '203.0.113.9', erspanId: 5, erspanVersion: 2 }));
    const errors = new Map<string, string>();
    const desired = desiredDataplane(view, errors);
    const observed = desiredDataplane(span());
    observed.erspanDevices.set(9, { erspanId: 9, localVtep: '192.0.2.1', remote: '203.0.113.1', version: 1, dir: '' });
    const puts = ['put-analyzer', 'put-erspan-mirror-device', 'put-mirror-filter', 'put-mirror-filter'];
    expect(planChanges(desired, observed, false).map((s) => s.op)).toEqual(puts);
    expect(planChanges(desired, observed, true).map((s) => s.op)).toEqual(['remove-erspan-mirror-device', ...puts]);
    const inPlace = desiredDataplane(view);
    expect(planChanges(desired, inPlace, true)).toEqual([]);
    inPlace.erspanDevices.set(5, { ...inPlace.erspanDevices.get(5)!, dir: 'egress' });
    expect(planChanges(desired, inPlace, true)).toEqual([{ op: 'put-erspan-mirror-device', device: desired.erspanDevices.get(5) }]);
    // The device missing: the dataplane's reason when it has one (a kernel without ERSPAN), else "not in place".
    inPlace.erspanDevices.delete(5);
    const [f] = desired.mirrorFilters.values();
    const noErspan = 'this kernel has no ERSPAN (ip link add name ms5 type erspan ...: Error: Unknown device type.)';
    expect(mirrorCounters(view.mirrors.keys(), desired, inPlace, errors, new Map([[f.cookie, noErspan]]))).toEqual([{ id: `ses1/${SRC}`, packets: 0, bytes: 0, error: noErspan }]);
    expect(mirrorCounters(view.mirrors.keys(), desired, inPlace, errors)[0].error).toBe('not programmed: ERSPAN device ms5 is not in place');
  });
});

describe('forwardingDelta (the change pass fast path: what it may do, or why the full pass)', () => {
  /** The span with policies, as a pass reads it; `next` a copy of it whose ports (and policies) a delta may replace. */
  const state = (): SpanState & { policies: Map<string, unknown> } => ({ ...span(), policies: new Map([['0190aaaa-0000-7000-8000-00000000000a', {}]]) });
  const next = (prev: SpanState): SpanState & { ports: SpanView['ports']; policies: Map<string, unknown> } => ({ ...prev, ports: new Map(prev.ports), policies: new Map(prev.policies) });
  const remote = (prev: SpanState, id: string) => prev.ports.get(id)!;

  it('moves a rebound remote port\'s entry, puts a created one\'s, removes a deleted one\'s, removals first', () => {
    const prev = state();
    const now = next(prev);
    now.ports.set('p-remote', { ...remote(prev, 'p-remote'), hostId: 'host-3', vtepIp: '192.0.2.3' });
    now.ports.set('p-new', { ...remote(prev, 'p-remote'), id: 'p-new', mac: '02:00:00:00:00:0d' });
    expect(forwardingDelta(prev, now)).toEqual({
      steps: [
        { op: 'put-fdb', entry: { vni: 5000, mac: '02:00:00:00:00:0b', vtep: '192.0.2.3' } },
        { op: 'put-fdb', entry: { vni: 5000, mac: '02:00:00:00:00:0d', vtep: '192.0.2.2' } },
      ],
    });
    const later = next(now);
    later.ports.delete('p-new');
    later.ports.set('p-remote', { ...remote(now, 'p-remote'), mac: '02:00:00:00:00:0e' });
    expect(forwardingDelta(now, later)).toEqual({
      steps: [
        { op: 'remove-fdb', vni: 5000, mac: '02:00:00:00:00:0b' },
        { op: 'remove-fdb', vni: 5000, mac: '02:00:00:00:00:0d' },
        { op: 'put-fdb', entry: { vni: 5000, mac: '02:00:00:00:00:0e', vtep: '192.0.2.3' } },
      ],
    });
  });

  it('puts what desiredDataplane would: the steps turn the last desired entries into the new ones', () => {
    let prev: SpanState = state();
    for (let k = 0; k < 40; k++) {
      const now = next(prev);
      const id = `p-${k % 7}`;
      const was = now.ports.get(id);
      if (was && k % 3 === 0) {
        now.ports.delete(id);
      } else {
        // Created, rebound, migrating between two other hosts (no entry), into another segment's MAC space.
        const base = remote(state(), 'p-remote');
        now.ports.set(id, { ...base, id, mac: `02:00:00:00:01:0${k % 7}`, hostId: `host-${k % 4}`, vtepIp: `192.0.2.${10 + (k % 4)}`, preparedHostId: k % 5 === 0 ? 'host-9' : '', preparedVtepIp: k % 5 === 0 ? '192.0.2.99' : '' });
      }
      const delta = forwardingDelta(prev, now);
      if (!('steps' in delta)) {
        throw new Error(`full pass: ${delta.full}`);
      }
      const fdb = desiredDataplane(prev).fdb;
      for (const step of delta.steps) {
        if (step.op === 'remove-fdb') {
          expect(fdb.delete(fdbKey(step.vni, step.mac))).toBe(true);
        } else {
          fdb.set(fdbKey(step.entry.vni, step.entry.mac), step.entry);
        }
      }
      expect(new Map([...fdb].sort())).toEqual(new Map([...desiredDataplane(now).fdb].sort()));
      prev = now;
    }
  });

  it('lets a local port change what leaves its links as they are (its security groups), with no step', () => {
    const prev = state();
    const now = next(prev);
    const local = remote(prev, 'p-local');
    now.ports.set('p-local', { ...local, ips: ['10.0.0.99'] });
    now.policies.set(local.id, {});
    expect(forwardingDelta(prev, now)).toEqual({ steps: [] });
    expect(forwardingDelta(prev, prev)).toEqual({ steps: [] });
  });

  it('takes the full pass for anything else', () => {
    const prev = state();
    const local = remote(prev, 'p-local');
    const cases: [string, (now: ReturnType<typeof next>) => SpanState][] = [
      ['host changed', (now) => ({ ...now, vtepIp: '192.0.2.7' })],
      ['segments or mirrors changed', (now) => ({ ...now, segments: new Map(now.segments) })],
      ['segments or mirrors changed', (now) => ({ ...now, mirrors: new Map() })],
      ['local port p-local changed', (now) => (now.ports.set('p-local', { ...local, segmentId: 's2' }), now)],
      ['local port p-local changed', (now) => (now.ports.set('p-local', { ...local, tapName: 'vnet3' }), now)],
      ['local port p-local changed', (now) => (now.ports.set('p-local', { ...local, preparedHostId: 'host-2', migrationId: 'm' }), now)],
      ['local port p-local changed', (now) => (now.ports.delete('p-local'), now)],
      ['local port p-remote changed', (now) => (now.ports.set('p-remote', { ...remote(prev, 'p-remote'), hostId: own, vtepIp: '192.0.2.1' }), now)],
      ['local port p-remote changed', (now) => (now.ports.set('p-remote', { ...remote(prev, 'p-remote'), preparedHostId: own, preparedVtepIp: '192.0.2.1' }), now)],
      ['local port p-new changed', (now) => (now.ports.set('p-new', { ...local, id: 'p-new' }), now)],
      ['remote port p-remote has a policy', (now) => (now.policies.set('p-remote', {}), now.ports.set('p-remote', { ...remote(prev, 'p-remote'), vtepIp: '192.0.2.3' }), now)],
      ['two changed ports on one forwarding entry', (now) => (now.ports.set('p-remote', { ...remote(prev, 'p-remote'), mac: '02:00:00:00:00:0f' }), now.ports.set('p-x', { ...remote(prev, 'p-remote'), id: 'p-x' }), now)],
      ['port p-remote holds a forwarding entry a changed port touches', (now) => (now.ports.set('p-x', { ...remote(prev, 'p-remote'), id: 'p-x', vtepIp: '192.0.2.3' }), now)],
    ];
    for (const [why, change] of cases) {
      expect([why, forwardingDelta(prev, change(next(prev)))]).toEqual([why, { full: why }]);
    }
  });
});
