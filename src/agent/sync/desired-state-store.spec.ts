import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Delta__Output } from '../../generated/overlay/v1/Delta';
import type { Resource__Output } from '../../generated/overlay/v1/Resource';
import { DesiredStateStore } from './desired-state-store';
import { StateCache } from './state-cache';

const segment = (id: string, vni: number): Resource__Output => ({ resource: 'segment', segment: { id, tenantId: 't', vni, vteps: ['192.0.2.1'] } });
const port = (id: string, mac: string): Resource__Output => ({
  resource: 'port',
  port: { id, segmentId: 's1', mac, ips: [], hostId: 'h', vtepIp: '192.0.2.1', vmId: '', preparedHostId: '', migrationId: '', preparedVtepIp: '', analyzer: false, tapName: '' },
});
const member = (cidr: string): Resource__Output => ({ resource: 'member', member: { groupId: 'g', family: 'IPv4', cidr } });
/** Records are named as the controller names them: `<revision>-<nonce>` (any nonce here). */
const delta = (revision: number, upserts: Resource__Output[], removals: Delta__Output['removals'] = []): Delta__Output => ({ revision, upserts, removals, record: `${revision}-7` });
const end = (revision: number, resourceCount: number) => ({ revision, epoch: 'e1', resourceCount, hostId: 'h', vtepIp: '192.0.2.1', record: `${revision}-7` });

describe('desired-state store', () => {
  const made: { dir: string; store: DesiredStateStore }[] = [];
  const store = () => {
    const dir = mkdtempSync(join(tmpdir(), 'overlay-store-'));
    made.push({ dir, store: new DesiredStateStore(new StateCache(dir)) });
    return made[made.length - 1];
  };
  afterAll(async () => {
    for (const { dir, store: s } of made) {
      await s.flush(); // no write left to land in a removed directory
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** A store holding a snapshot at revision 10: segment s1 and port p1. */
  function synced(): DesiredStateStore {
    const { store: s } = store();
    s.stage({ revision: 10, epoch: 'e1', resources: [segment('s1', 5000), port('p1', '02:00:00:00:00:01')] });
    expect(s.endSnapshot(end(10, 2))).toEqual({ outcome: 'replaced', revision: 10 });
    return s;
  }

  it('stages a snapshot chunk by chunk and replaces the state only at its end marker', () => {
    const { store: s } = store();
    expect(s.stage({ revision: 10, epoch: 'e1', resources: [segment('s1', 5000)] })).toEqual({ outcome: 'staged' });
    expect(s.stage({ revision: 10, epoch: 'e1', resources: [port('p1', '02:00:00:00:00:01')] })).toEqual({ outcome: 'staged' });
    expect(s.state.segments.size).toBe(0);
    expect(s.inSync).toBe(false);
    expect(s.endSnapshot(end(10, 2))).toEqual({ outcome: 'replaced', revision: 10 });
    expect([...s.state.segments.keys(), ...s.state.ports.keys()]).toEqual(['s1', 'p1']);
    expect(s.state).toMatchObject({ epoch: 'e1', revision: 10, hostId: 'h', vtepIp: '192.0.2.1' });
    expect(s.inSync).toBe(true);
    expect(s.resumeFrom).toEqual({ appliedRevision: 10, appliedRecord: '10-7', epoch: 'e1' });
  });

  it('refuses a snapshot whose end counts other resources than were staged, keeping the state, and asks for a fresh one', () => {
    const s = synced();
    const before = s.state;
    s.stage({ revision: 11, epoch: 'e1', resources: [segment('s2', 5001)] });
    expect(s.endSnapshot(end(11, 2))).toEqual({ outcome: 'refused', revision: 11, reason: 'snapshot incomplete: got 1 of 2 resources', resync: true });
    expect(s.state).toBe(before);
    // A chunk of another revision starts the staging over; a new stream discards it.
    s.stage({ revision: 12, epoch: 'e1', resources: [segment('s2', 5001)] });
    s.stage({ revision: 13, epoch: 'e1', resources: [segment('s3', 5002)] });
    expect(s.endSnapshot(end(13, 2))).toMatchObject({ outcome: 'refused', reason: 'snapshot incomplete: got 1 of 2 resources' });
    s.stage({ revision: 14, epoch: 'e1', resources: [segment('s3', 5002)] });
    s.discardStaging();
    expect(s.endSnapshot(end(14, 1))).toMatchObject({ outcome: 'refused', reason: 'snapshot incomplete: got 0 of 1 resources' });
    expect(s.state).toBe(before);
  });

  it('refuses a delta before any snapshot, without asking for a fresh stream', () => {
    const { store: s } = store();
    expect(s.applyDelta(delta(3, [segment('s1', 5000)]))).toEqual({ outcome: 'refused', revision: 3, reason: 'delta received before any snapshot', resync: false });
    expect(s.state.segments.size).toBe(0);
  });

  it('applies a delta to copies of the maps and counts what it received by kind', () => {
    const s = synced();
    const before = s.state;
    const change = s.applyDelta(delta(11, [member('10.0.0.1'), port('p2', '02:00:00:00:00:02')], [{ kind: 'RESOURCE_KIND_PORT', id: 'p1' }]));
    expect(change).toEqual({ outcome: 'updated', revision: 11, marker: false, wasInSync: true });
    expect([...s.state.ports.keys()]).toEqual(['p2']);
    expect([...s.state.members.keys()]).toEqual(['g/IPv4/10.0.0.1']);
    expect([...before.ports.keys()]).toEqual(['p1']); // the maps handed out before did not change
    expect(s.received.upserts).toEqual({ segment: 0, port: 1, policy: 0, member: 1, mirror: 0, mirrorSink: 0 });
    expect(s.received.removals).toEqual({ segment: 0, port: 1, policy: 0, member: 0, mirror: 0, mirrorSink: 0 });
    expect(s.counts).toEqual({ snapshots: 1, deltas: 1, emptyDeltas: 0 });
  });

  it('copies only the maps a delta changes, and never one handed out by a read of the state', () => {
    const s = synced();
    const before = s.state;
    s.applyDelta(delta(11, [port('p2', '02:00:00:00:00:02')]));
    s.applyDelta(delta(12, [port('p3', '02:00:00:00:00:03')], [{ kind: 'RESOURCE_KIND_PORT', id: 'p1' }]));
    const after = s.state;
    expect(after.segments).toBe(before.segments); // not changed: shared
    expect(after.ports).not.toBe(before.ports);
    expect([...before.ports.keys()]).toEqual(['p1']); // read before the deltas: never changed
    expect([...after.ports.keys()]).toEqual(['p2', 'p3']);
    expect(after.revision).toBe(12);
    // Read since: the next delta copies again rather than change what was handed out.
    s.applyDelta(delta(13, [], [{ kind: 'RESOURCE_KIND_PORT', id: 'p2' }]));
    expect([...after.ports.keys()]).toEqual(['p2', 'p3']);
    expect([...s.state.ports.keys()]).toEqual(['p3']);
  });

  it('takes a revision marker as a change of revision only: the same maps', () => {
    const s = synced();
    const ports = s.state.ports;
    expect(s.applyDelta(delta(12, []))).toEqual({ outcome: 'updated', revision: 12, marker: true, wasInSync: true });
    expect(s.state.ports).toBe(ports);
    expect(s.state.revision).toBe(12);
    expect(s.resumeFrom).toEqual({ appliedRevision: 12, appliedRecord: '12-7', epoch: 'e1' });
    expect(s.counts.emptyDeltas).toBe(1);
  });

  it('ends with the same state whether deltas come one by one, reordered where they commute, or squashed into one', () => {
    const steps = [delta(11, [segment('s2', 5001)]), delta(12, [member('10.0.0.1'), member('10.0.0.2')]), delta(13, [], [{ kind: 'RESOURCE_KIND_MEMBER', id: 'g/IPv4/10.0.0.1' }])];
    const squashed = delta(13, [segment('s2', 5001), member('10.0.0.2')]);
    const view = (s: DesiredStateStore) => JSON.stringify([s.state.revision, ...[s.state.segments, s.state.ports, s.state.members].map((m) => [...m].sort())]);
    const inOrder = synced();
    steps.forEach((d) => inOrder.applyDelta(d));
    const reordered = synced();
    [steps[1], steps[0], steps[2]].forEach((d) => reordered.applyDelta(d));
    const once = synced();
    once.applyDelta(squashed);
    expect(view(reordered)).toBe(view(inOrder));
    expect(view(once)).toBe(view(inOrder));
  });

  it('persists every state, and a restored one resumes: not in sync until a delta lands on top of it', async () => {
    const { store: s, dir } = store();
    s.stage({ revision: 10, epoch: 'e1', resources: [segment('s1', 5000)] });
    s.endSnapshot(end(10, 1));
    s.applyDelta(delta(11, [port('p1', '02:00:00:00:00:01')]));
    await s.flush();
    const restarted = new DesiredStateStore(new StateCache(dir));
    expect(restarted.resumeFrom).toEqual({ appliedRevision: 0, appliedRecord: '', epoch: '' });
    expect((await restarted.restore())?.revision).toBe(11);
    expect(restarted.inSync).toBe(false);
    expect(restarted.resumeFrom).toEqual({ appliedRevision: 11, appliedRecord: '11-7', epoch: 'e1' });
    expect(restarted.applyDelta(delta(12, []))).toEqual({ outcome: 'updated', revision: 12, marker: true, wasInSync: false });
    expect(restarted.inSync).toBe(true);
    expect([...restarted.state.ports.keys()]).toEqual(['p1']);
  });
});
