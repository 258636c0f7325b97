import type Redis from 'ioredis';
import { parseStreamEntry } from '../../src/controller/store/change-log';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import { RedisStore } from '../../src/controller/store/redis-store';
import { applyChange, emptyViewState, type ViewState } from '../../src/controller/store/view-state';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { prng } from '../support/prng';

function comparable(state: ViewState) {
  const sorted = (m: Map<string, unknown>) => [...m.entries()].sort(([x], [y]) => (x < y ? -1 : 1));
  return { revision: state.revision, tenants: sorted(state.tenants), segments: sorted(state.segments), hosts: sorted(state.hosts), ports: sorted(state.ports), securityGroups: sorted(state.securityGroups) };
}

async function waitFor(view: MaterializedView, revision: number): Promise<void> {
  await view.waitForRevision(revision, 10_000);
}

describe('change log and materialized view', () => {
  const prefix = uniquePrefix('changelog');
  const seed = Number(process.env.OVERLAY_TEST_SEED ?? 20261127);
  let first: Harness;
  let late: Harness | undefined;
  let mutations = 0;

  beforeAll(async () => {
    first = await startController({ prefix });
  });

  afterAll(async () => {
    await late?.close();
    await first?.close();
    await dropPrefix(first.config.redisUrl, prefix);
  });

  it(`logs every mutation once, in revision order, and views built any way agree (seed ${seed})`, async () => {
    const random = prng(seed);
    const pick = <T>(xs: T[]): T | undefined => (xs.length ? xs[Math.floor(random() * xs.length)] : undefined);
    const client = api(first.url);
    const tenants: string[] = [];
    const segments: { id: string; tenantId: string; ports: number }[] = [];
    const hosts: string[] = [];
    const ports: { id: string; segmentId: string; hostId: string | null }[] = [];
    let refusals = 0;
    const count = (status: number) => {
      if (status >= 200 && status < 300) {
        mutations++;
        return true;
      }
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
      refusals++;
      return false;
    };

    for (let i = 0; i < 1000; i++) {
      if (i === 500) {
        // A second replica joins mid-stream: its view starts from a snapshot, then tails.
        late = await startController({ prefix });
      }
      const roll = random();
      if (roll < 0.05 || tenants.length === 0) {
        const res = await client.post('/v1/tenants', { name: `t${i}` });
        if (count(res.status)) {
          tenants.push(res.body.id);
        }
      } else if (roll < 0.15 || segments.length === 0) {
        const tenantId = pick(tenants)!;
        const res = await client.post('/v1/segments', { tenantId, name: `s${i}`, cidr: `10.${i % 256}.0.0/16` });
        if (count(res.status)) {
          segments.push({ id: res.body.id, tenantId, ports: 0 });
        }
      } else if (roll < 0.2 || hosts.length === 0) {
        const res = await client.post('/v1/hosts', { name: `h${i}`, vtepIp: `192.0.${Math.floor(i / 250)}.${(i % 250) + 1}` });
        if (count(res.status)) {
          hosts.push(res.body.id);
        }
      } else if (roll < 0.5) {
        const segment = pick(segments)!;
        const n = 1 + Math.floor(random() * 5);
        const batch = Array.from({ length: n }, () => ({
          segmentId: segment.id,
          hostId: random() < 0.7 ? pick(hosts) : null,
          // Occasionally collide on purpose: a refused batch must leave no trace in the log.
          ips: [`10.${segments.indexOf(segment) % 256}.${Math.floor(random() * 4)}.${1 + Math.floor(random() * 200)}`],
        }));
        const res = await client.post('/v1/ports/batch', { ports: batch });
        if (count(res.status)) {
          for (const p of res.body.items) {
            ports.push({ id: p.id, segmentId: p.segmentId, hostId: p.hostId });
          }
          segment.ports += n;
        }
      } else if (roll < 0.7) {
        const port = pick(ports);
        if (port) {
          const hostId = random() < 0.8 ? pick(hosts)! : null;
          if (count((await client.patch(`/v1/ports/${port.id}`, { hostId })).status)) {
            port.hostId = hostId;
          }
        }
      } else if (roll < 0.85) {
        const port = pick(ports);
        if (port && count((await client.delete(`/v1/ports/${port.id}`)).status)) {
          ports.splice(ports.indexOf(port), 1);
          segments.find((s) => s.id === port.segmentId)!.ports--;
        }
      } else if (roll < 0.92) {
        const segment = pick(segments);
        if (segment && count((await client.delete(`/v1/segments/${segment.id}`)).status)) {
          segments.splice(segments.indexOf(segment), 1);
        }
      } else if (roll < 0.96) {
        const host = pick(hosts);
        if (host && count((await client.patch(`/v1/hosts/${host}`, { inventory: { trunkedVlans: [1 + (i % 4094)] } })).status)) {
          // updated
        }
      } else {
        const host = pick(hosts);
        if (host && count((await client.delete(`/v1/hosts/${host}`)).status)) {
          hosts.splice(hosts.indexOf(host), 1);
        }
      }
    }
    expect(refusals).toBeGreaterThan(0); // the sequence did exercise refusals

    const store = first.app.get(RedisStore);
    const entries = (await first.redis.xrange(store.keys.changeLog(), '-', '+')) as [string, string[]][];
    const records = entries.map((entry) => parseStreamEntry(entry));
    // Once each, in order, nothing for refusals.
    expect(records.map((r) => r.revision)).toEqual(Array.from({ length: mutations }, (_, i) => i + 1));
    expect(Number(await first.redis.get(store.keys.revision()))).toBe(mutations);

    const snapshot = await MaterializedView.readSnapshot(first.redis, store);
    const fromScratch = emptyViewState();
    for (const record of records) {
      applyChange(fromScratch, record);
    }
    expect(comparable(fromScratch)).toEqual(comparable(snapshot));

    const tailedFromStart = first.app.get(MaterializedView);
    await waitFor(tailedFromStart, mutations);
    expect(comparable(tailedFromStart.current)).toEqual(comparable(snapshot));

    const joinedLate = late!.app.get(MaterializedView);
    await waitFor(joinedLate, mutations);
    expect(comparable(joinedLate.current)).toEqual(comparable(snapshot));

    // The tail read the log in many XREADs: none of them is still waited for (each wait leaves the
    // stop's waiters when it ends, instead of keeping its reply for the process's life).
    for (const view of [tailedFromStart, joinedLate]) {
      expect((view as unknown as { stopWaiters: Set<unknown> }).stopWaiters.size).toBeLessThanOrEqual(1);
    }
  });

  it('goes on tailing after a failed read: no reload of the whole state, no snapshot for every agent', async () => {
    const view = first.app.get(MaterializedView);
    let resets = 0;
    const off = view.onReset(() => resets++);
    try {
      const tail = (view as unknown as { tail: Redis }).tail;
      const id = String(await tail.client('ID'));
      // The tail's connection dies under its blocking XREAD (killed idle, ioredis would just send the next one after
      // reconnecting): the read fails, as one timed out on a busy Redis does.
      const deadline = Date.now() + 10_000;
      while (!/ flags=b /.test(String(await first.redis.call('CLIENT', 'LIST', 'ID', id)))) {
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(await first.redis.client('KILL', 'ID', id)).toBe(1);
      const created = await api(first.url).post('/v1/tenants', { name: 'after-a-failed-read' });
      expect(created.status).toBe(201);
      const revision = Number(await first.redis.get(first.app.get(RedisStore).keys.revision()));
      await waitFor(view, revision);
      expect(view.current.tenants.has(created.body.id)).toBe(true);
      expect(String(await (view as unknown as { tail: Redis }).tail.client('ID'))).not.toBe(id); // it did reconnect
      expect(resets).toBe(0);
    } finally {
      off();
    }
  });

  it('ignores a record it has already applied (replays are harmless)', () => {
    const state = emptyViewState();
    const record = { revision: 1, entryId: '1-1', at: 0, ops: [{ k: 'tenant' as const, id: 'a', v: { id: 'a' }, o: null }] };
    expect(applyChange(state, record)).toBe(true);
    expect(applyChange(state, { ...record, ops: [{ k: 'tenant' as const, id: 'a', v: null, o: { id: 'a' } }] })).toBe(false);
    expect(state.tenants.get('a')).toEqual({ id: 'a' });
  });
});
