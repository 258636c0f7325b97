import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';
import { newId } from '../../src/controller/model/value-parsers';
import { RedisStore } from '../../src/controller/store/redis-store';

/**
 * GET /v1/migrations: newest first, filtered by state, VM and host, paged, and confined to its
 * hosts for a host-scoped hook token. No agent runs: prepares answer 202 preparing at once
 * (`?timeout=0`), aborts close them.
 */
describe('GET /v1/migrations', () => {
  const prefix = uniquePrefix('migration-list');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  const hosts: string[] = [];
  /** Migration ids in creation order. */
  const made: { id: string; vmId: string; source: string; destination: string }[] = [];

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    const f = factories(client);
    const tenant = await f.tenant();
    const segment = await f.segment(tenant.id);
    for (let i = 0; i < 3; i++) {
      hosts.push((await f.host()).id);
    }
    // vm-0 and vm-1 go from host 0 to host 1, vm-2 from host 1 to host 2; vm-1's is aborted.
    for (const [vm, source, destination] of [
      [0, 0, 1],
      [1, 0, 1],
      [2, 1, 2],
    ]) {
      await f.port(segment.id, { vmId: `vm-${vm}`, hostId: hosts[source] });
      const res = await client.post('/v1/migrations?timeout=0', { vmId: `vm-${vm}`, sourceHostId: hosts[source], destinationHostId: hosts[destination] });
      expect(res.status).toBe(202);
      made.push({ id: res.body.id, vmId: `vm-${vm}`, source: hosts[source], destination: hosts[destination] });
    }
    expect((await client.post(`/v1/migrations/${made[1].id}/abort`, {})).status).toBe(200);
  });

  afterAll(async () => {
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  const list = async (query: string, c = client): Promise<any> => {
    const res = await c.get(`/v1/migrations${query}`);
    expect(res.status).toBe(200);
    return res.body;
  };
  const ids = (page: any): string[] => page.items.map((m: any) => m.id);

  it('lists every migration newest first, with state and timeline, and pages by cursor', async () => {
    const all = await list('');
    expect(ids(all)).toEqual([made[2].id, made[1].id, made[0].id]);
    expect(all.nextCursor).toBeNull();
    expect(all.items.map((m: any) => m.state)).toEqual(['preparing', 'aborted', 'preparing']);
    expect(all.items[1].timeline.map((e: any) => e.event)).toEqual(['prepared', 'aborted']);
    const first = await list('?limit=2');
    expect(ids(first)).toEqual([made[2].id, made[1].id]);
    const second = await list(`?limit=2&cursor=${first.nextCursor}`);
    expect(ids(second)).toEqual([made[0].id]);
    expect(second.nextCursor).toBeNull();
  });

  it('filters by state, VM and host (source or destination), all combined', async () => {
    expect(ids(await list('?state=aborted'))).toEqual([made[1].id]);
    expect(ids(await list('?state=preparing'))).toEqual([made[2].id, made[0].id]);
    expect(ids(await list('?vmId=vm-0'))).toEqual([made[0].id]);
    expect(ids(await list(`?hostId=${hosts[2]}`))).toEqual([made[2].id]);
    expect(ids(await list(`?hostId=${hosts[1]}`))).toEqual([made[2].id, made[1].id, made[0].id]);
    expect(ids(await list(`?hostId=${hosts[1]}&state=preparing&vmId=vm-2`))).toEqual([made[2].id]);
    expect(ids(await list('?state=committed'))).toEqual([]);
  });

  it('shows a host-scoped hook only the migrations from or to its hosts', async () => {
    const hook = await created(client.post('/v1/tokens', { name: 'list-hook', role: 'migration-hook', hostIds: [hosts[2]] }));
    expect(ids(await list('', api(ctl.url, hook.token)))).toEqual([made[2].id]);
    const unscoped = await created(client.post('/v1/tokens', { name: 'list-hook-all', role: 'migration-hook' }));
    expect(ids(await list('', api(ctl.url, unscoped.token)))).toHaveLength(3);
  });

  it('forgets index entries whose migration is gone: on listing, and by age when a migration closes', async () => {
    const store = ctl.app.get(RedisStore);
    const index = store.keys.migrationIndex();
    // Gone but recent (its retention passed early, say): dropped when a list meets it.
    const recentGone = newId();
    // Older than any migration still kept can be: dropped when one closes.
    const ancient = '00000000-0001-7000-8000-000000000000';
    await store.redis.zadd(index, 0, ancient);
    expect((await client.post(`/v1/migrations/${made[0].id}/abort`, {})).status).toBe(200);
    expect(await store.redis.zscore(index, ancient)).toBeNull();
    await store.redis.zadd(index, 0, recentGone);
    expect(ids(await list(''))).toEqual([made[2].id, made[1].id, made[0].id]);
    expect(await store.redis.zscore(index, recentGone)).toBeNull();
    expect(await store.redis.zscore(index, made[0].id)).toBe('0');
  });

  it('refuses a bad filter naming it, and an unknown one', async () => {
    for (const [query, code, field] of [
      ['?state=moving', 'INVALID_VALUE', 'state'],
      ['?hostId=hv1', 'INVALID_ID', 'hostId'],
      ['?vmId=a%20b', 'INVALID_VALUE', 'vmId'],
      ['?cursor=nope', 'INVALID_CURSOR', 'cursor'],
      ['?limit=1001', 'INVALID_VALUE', 'limit'],
      ['?portId=x', 'UNKNOWN_PARAMETER', 'portId'],
    ] as const) {
      const res = await client.get(`/v1/migrations${query}`);
      expect([query, res.status, res.body.code, res.body.field]).toEqual([query, 400, code, field]);
    }
  });
});
