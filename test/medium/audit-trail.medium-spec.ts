import Redis from 'ioredis';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { EventRepository } from '../../src/controller/events/event.repository';
import { api, dropPrefix, startController, uniquePrefix, type ApiResponse, type Harness } from '../support/controller-harness';

/**
 * The audit trail against a real overlayd, Redis and in-memory agents: every accepted write
 * (tenants, segments, ports, migration steps, tokens) names its actor, revision and resources,
 * in the trail and in the change record; refused calls (401, 403) are `denied` events; refused
 * input writes nothing; the list's filters and pages; retention.
 */

type Client = ReturnType<typeof api>;

interface Event {
  id: string;
  at: string;
  type: 'write' | 'denied';
  actor: any;
  revision: number | null;
  resources: { kind: string; id: string }[];
  code?: string;
  reason?: string;
}

/** Event ids compared as (ms, seq) numbers; at one id (two streams), the write comes before the refusal (`-d`). */
const idKey = (id: string): [bigint, bigint] => id.replace(/-d$/, '').split('-').map(BigInt) as [bigint, bigint];
const newerFirst = (a: string, b: string): boolean => {
  const [x, y] = [idKey(a), idKey(b)];
  return x[0] > y[0] || (x[0] === y[0] && (x[1] > y[1] || (x[1] === y[1] && !a.endsWith('-d') && b.endsWith('-d'))));
};

describe('the audit trail', () => {
  const prefix = uniquePrefix('audit');
  let ctl: Harness;
  let admin: Client;
  let auditor: Client;
  const agents: TestAgent[] = [];
  const tokens: Record<string, { id: string; token: string; client: Client }> = {};
  const ids: Record<string, string> = {};

  async function ok(res: Promise<{ status: number; body: any }>, status = 201): Promise<any> {
    const r = await res;
    expect({ status: r.status, body: r.body }).toMatchObject({ status });
    return r.body;
  }

  /** The whole trail (one page of up to 1000), newest first, as the auditor reads it. */
  async function trail(query = ''): Promise<Event[]> {
    const res = await auditor.get(`/v1/events?limit=1000${query ? `&${query}` : ''}`);
    expect(res.status).toBe(200);
    expect(res.body.nextCursor).toBeNull();
    return res.body.items;
  }

  /** Every page of a query, following nextCursor. */
  async function pages(query: string, limit: number): Promise<{ items: Event[]; sizes: number[] }> {
    const items: Event[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const res: any = await auditor.get(`/v1/events?limit=${limit}${query ? `&${query}` : ''}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      items.push(...res.body.items);
      sizes.push(res.body.items.length);
      cursor = res.body.nextCursor;
    } while (cursor !== null);
    return { items, sizes };
  }

  const actorOf = (name: string, method: string, route: string) => ({ kind: 'token', tokenId: tokens[name].id, name, role: expect.any(String), source: '127.0.0.1', method, route });

  beforeAll(async () => {
    ctl = await startController({ prefix });
    admin = api(ctl.url);
    for (const [name, body] of [
      ['ops', { role: 'operator' }],
      ['ops2', { role: 'operator' }],
      ['hook', { role: 'migration-hook' }],
      ['reader', { role: 'auditor' }],
    ] as const) {
      const made = await ok(admin.post('/v1/tokens', { name, ...body }));
      tokens[name] = { id: made.id, token: made.token, client: api(ctl.url, made.token) };
    }
    auditor = tokens.reader.client;
    // The writes the trail must hold, by different tokens.
    const ops = tokens.ops.client;
    const ops2 = tokens.ops2.client;
    ids.tenant = (await ok(ops.post('/v1/tenants', { name: 'acme' }))).id;
    ids.segment = (await ok(ops2.post('/v1/segments', { tenantId: ids.tenant, name: 'web', cidr: '10.0.0.0/24' }))).id;
    ids.src = (await ok(ops.post('/v1/hosts', { name: 'audit-src', vtepIp: '192.0.2.1' }))).id;
    ids.dst = (await ok(ops.post('/v1/hosts', { name: 'audit-dst', vtepIp: '192.0.2.2' }))).id;
    for (const [name, vtepIp] of [
      ['audit-src', '192.0.2.1'],
      ['audit-dst', '192.0.2.2'],
    ]) {
      const a = makeAgent(name, ctl.grpcTarget, { vtepIp });
      agents.push(a);
      await a.agent.start();
    }
    await waitUntil(() => agents.every((a) => a.agent.synced), 10_000, () => 'agents synced');
    for (const n of [1, 2, 3]) {
      ids[`port${n}`] = (await ok(ops.post('/v1/ports', { segmentId: ids.segment, hostId: ids.src, ips: [`10.0.0.${10 + n}`] }))).id;
    }
    // Migrations: prepared and committed by the hook; prepared by ops and aborted by admin; one left to expire.
    const hook = tokens.hook.client;
    const move = (port: string, extra = {}) => ({ portIds: [ids[port]], sourceHostId: ids.src, destinationHostId: ids.dst, ...extra });
    ids.committed = (await ok(hook.post('/v1/migrations?timeout=10000', move('port1')))).id;
    await ok(hook.post(`/v1/migrations/${ids.committed}/commit`), 200);
    ids.aborted = (await ok(ops.post('/v1/migrations?timeout=10000', move('port2')))).id;
    await ok(admin.post(`/v1/migrations/${ids.aborted}/abort`), 200);
    ids.expired = (await ok(ops.post('/v1/migrations?timeout=10000', move('port3', { ttlMs: 1000 })))).id;
    await waitUntil(async () => (await ops.get(`/v1/migrations/${ids.expired}`)).body.state === 'expired', 10_000, () => 'the migration expired');
    // Settled: the monitor writes nothing more for them (the tests compare dumps).
    await waitUntil(async () => (await ops.get(`/v1/migrations/${ids.committed}`)).body.state === 'completed', 10_000, () => 'the migration completed');
    // Refused calls: no token, an unknown one, and a role that may not.
    expect((await api(ctl.url, null).get('/v1/tenants')).status).toBe(401);
    expect((await api(ctl.url, `ovl_${'Q'.repeat(43)}`).delete(`/v1/tenants/${ids.tenant}`)).status).toBe(401);
    expect((await auditor.post('/v1/tenants', { name: 'nope' })).status).toBe(403);
    // Refusals are recorded after the answer: wait for the three.
    await waitUntil(async () => (await trail('type=denied')).length === 3, 5000, () => 'refusals recorded');
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('lists every accepted write newest first, with its actor, revision and resources', async () => {
    const all = await trail();
    for (let i = 1; i < all.length; i++) {
      expect(newerFirst(all[i - 1].id, all[i].id)).toBe(true);
    }
    const writes = all.filter((e) => e.type === 'write');
    const revisions = writes.map((e) => e.revision).filter((r): r is number => r !== null);
    expect(revisions).toEqual([...revisions].sort((a, b) => b - a));
    const touching = (kind: string, id: string) => writes.filter((e) => e.resources.some((r) => r.kind === kind && r.id === id));

    expect(touching('tenant', ids.tenant).at(-1)).toMatchObject({ actor: actorOf('ops', 'POST', '/v1/tenants'), revision: expect.any(Number) });
    expect(touching('segment', ids.segment).at(-1)).toMatchObject({ actor: actorOf('ops2', 'POST', '/v1/segments'), revision: expect.any(Number) });
    expect(touching('host', ids.src).at(-1)).toMatchObject({ actor: actorOf('ops', 'POST', '/v1/hosts') });
    expect(touching('port', ids.port1).at(-1)).toMatchObject({ actor: actorOf('ops', 'POST', '/v1/ports') });
    // Each migration step, by whoever took it; the expiry by the controller itself.
    expect(touching('migration', ids.committed).map((e) => [e.actor.name, e.actor.route, e.resources.some((r) => r.id === ids.port1)]).reverse()).toEqual([
      ['hook', '/v1/migrations', true],
      ['hook', '/v1/migrations/:id/commit', true],
    ]);
    expect(touching('migration', ids.aborted).map((e) => [e.actor.name, e.actor.route]).reverse()).toEqual([
      ['ops', '/v1/migrations'],
      ['bootstrap', '/v1/migrations/:id/abort'],
    ]);
    expect(touching('migration', ids.expired).map((e) => e.actor).reverse()).toEqual([actorOf('ops', 'POST', '/v1/migrations'), { kind: 'system', name: 'migration-monitor' }]);
    // Token writes: no revision (not desired state), the admin as actor.
    expect(touching('token', tokens.hook.id)).toEqual([expect.objectContaining({ revision: null, actor: expect.objectContaining({ kind: 'token', name: 'bootstrap', role: 'admin', method: 'POST', route: '/v1/tokens' }) })]);
    // The very first write: the bootstrap token, by the controller.
    expect(all.at(-1)).toMatchObject({ type: 'write', actor: { kind: 'system', name: 'bootstrap' }, revision: null, resources: [{ kind: 'token' }] });
    for (const e of all) {
      expect(Date.parse(e.at)).toBe(Number(e.id.split('-')[0]));
    }
  });

  it('puts the same actor in the change record of each revision', async () => {
    const writes = (await trail('type=write')).filter((e) => e.revision !== null);
    expect(writes.length).toBeGreaterThan(10);
    for (const e of writes) {
      // An incomplete id is every entry of that revision: `<revision>-<nonce>`.
      const [[id, fields], ...others] = await ctl.redis.xrange(`{${prefix}}:log`, `${e.revision}`, `${e.revision}`);
      expect(others).toEqual([]);
      expect(id).toMatch(new RegExp(`^${e.revision}-[1-9][0-9]*$`));
      const record: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) {
        record[fields[i]] = fields[i + 1];
      }
      expect(JSON.parse(record.actor)).toEqual(e.actor);
    }
  });

  it("names who took each step in a migration's timeline: a token, or the controller for an expiry", async () => {
    const by = async (id: string) => Object.fromEntries((await tokens.ops.client.get(`/v1/migrations/${id}`)).body.timeline.filter((t: any) => t.by).map((t: any) => [t.event, t.by]));
    const hook = { tokenId: tokens.hook.id, name: 'hook', role: 'migration-hook' };
    const ops = { tokenId: tokens.ops.id, name: 'ops', role: 'operator' };
    const bootstrap = (await admin.get('/v1/tokens?role=admin')).body.items[0];
    expect(await by(ids.committed)).toEqual({ prepared: hook, committed: hook });
    expect(await by(ids.aborted)).toEqual({ prepared: ops, aborted: { tokenId: bootstrap.id, name: 'bootstrap', role: 'admin' } });
    expect(await by(ids.expired)).toEqual({ prepared: ops, expired: { system: 'migration-monitor' } });
  });

  it('records refused calls as denied events: 401 with the source and route, 403 with the token', async () => {
    const denied = await trail('type=denied');
    expect(denied.map(({ actor, code, reason, revision, resources }) => ({ actor, code, reason, revision, resources })).reverse()).toEqual([
      { actor: { kind: 'anonymous', source: '127.0.0.1', method: 'GET', route: '/v1/tenants' }, code: 'UNAUTHENTICATED', reason: expect.stringMatching(/send a token/), revision: null, resources: [] },
      { actor: { kind: 'anonymous', source: '127.0.0.1', method: 'DELETE', route: '/v1/tenants/:id' }, code: 'UNAUTHENTICATED', reason: 'unknown or revoked token', revision: null, resources: [] },
      { actor: actorOf('reader', 'POST', '/v1/tenants'), code: 'FORBIDDEN', reason: expect.stringMatching(/needs role admin or operator/), revision: null, resources: [] },
    ]);
  });

  describe('filters', () => {
    let all: Event[];
    beforeAll(async () => {
      all = await trail();
    });

    /** The filter's answer is exactly the full trail narrowed by `keep`, and narrower than it. */
    async function narrows(query: string, keep: (e: Event) => boolean): Promise<void> {
      const expected = all.filter(keep);
      expect(expected.length).toBeGreaterThan(0);
      expect(expected.length).toBeLessThan(all.length);
      const got = await trail(query);
      expect(got.map((e) => e.id)).toEqual(expected.map((e) => e.id));
    }

    it('since and until: inclusive, to the millisecond, alone and together', async () => {
      const at = (e: Event) => Date.parse(e.at);
      const middle = all[Math.floor(all.length / 2)];
      const later = all[Math.floor(all.length / 4)];
      await narrows(`since=${middle.at}`, (e) => at(e) >= at(middle));
      await narrows(`until=${middle.at}`, (e) => at(e) <= at(middle));
      await narrows(`since=${middle.at}&until=${later.at}`, (e) => at(e) >= at(middle) && at(e) <= at(later));
      // With an offset: the same instant.
      const local = new Date(at(middle) + 2 * 3600_000).toISOString().replace('Z', '+02:00');
      expect((await trail(`since=${encodeURIComponent(local)}`)).length).toBe(all.filter((e) => at(e) >= at(middle)).length);
      expect(await trail(`since=${later.at}&until=${middle.at}`)).toEqual(at(later) > at(middle) ? [] : expect.any(Array));
      expect(await trail('until=1970-01-01T00:00:00Z')).toEqual([]);
      expect(await trail('since=2999-01-01T00:00:00Z')).toEqual([]);
    });

    it('actor: by token id or name, or a system actor', async () => {
      await narrows(`actor=${tokens.ops.id}`, (e) => e.actor.tokenId === tokens.ops.id);
      await narrows('actor=ops2', (e) => e.actor.name === 'ops2' && e.actor.kind === 'token');
      await narrows('actor=migration-monitor', (e) => e.actor.kind === 'system' && e.actor.name === 'migration-monitor');
      await narrows('actor=reader', (e) => e.actor.name === 'reader');
      expect(await trail('actor=nobody')).toEqual([]);
    });

    it('resourceId, kind and type', async () => {
      await narrows(`resourceId=${ids.port1}`, (e) => e.resources.some((r) => r.id === ids.port1));
      await narrows(`resourceId=${ids.tenant}`, (e) => e.resources.some((r) => r.id === ids.tenant));
      await narrows('kind=migration', (e) => e.resources.some((r) => r.kind === 'migration'));
      await narrows('kind=token', (e) => e.resources.some((r) => r.kind === 'token'));
      await narrows('type=denied', (e) => e.type === 'denied');
      await narrows('type=write', (e) => e.type === 'write');
      await narrows(`kind=port&actor=hook`, (e) => e.actor.name === 'hook' && e.resources.some((r) => r.kind === 'port'));
    });

    it('pages with a cursor: the same events, a page at a time, null at the end (also after an exactly full page)', async () => {
      for (const limit of [1, 3, 7]) {
        const { items, sizes } = await pages('', limit);
        expect(items.map((e) => e.id)).toEqual(all.map((e) => e.id));
        expect(sizes.slice(0, -1).every((n) => n === limit)).toBe(true);
        expect(sizes.at(-1)).toBeGreaterThan(0); // never a cursor to an empty page
      }
      const writesByOps = all.filter((e) => e.actor.name === 'ops');
      const { items, sizes } = await pages('actor=ops', 2);
      expect(items.map((e) => e.id)).toEqual(writesByOps.map((e) => e.id));
      expect(sizes.at(-1)).toBeGreaterThan(0);
      const exact = await auditor.get(`/v1/events?type=denied&limit=3`);
      expect(exact.body.items).toHaveLength(3);
      expect(exact.body.nextCursor).toBeNull();
      // A cursor with until: the page goes on below both.
      const middle = all[Math.floor(all.length / 2)];
      const newest = all[2];
      const res = await auditor.get(`/v1/events?limit=1000&until=${middle.at}&cursor=${newest.id}`);
      expect(res.body.items.map((e: Event) => e.id)).toEqual(all.filter((e) => Date.parse(e.at) <= Date.parse(middle.at)).map((e) => e.id));
      const below = await auditor.get(`/v1/events?limit=1000&cursor=${middle.id}`);
      expect(below.body.items.map((e: Event) => e.id)).toEqual(all.slice(all.indexOf(middle) + 1).map((e) => e.id));
    });

    it.each([
      ['since before 1970', 'since=1969-12-31T23:59:59Z', 'INVALID_VALUE', 'since'],
      ['since without its zone', 'since=2026-01-01T00:00:00', 'INVALID_VALUE', 'since'],
      ['until on a day that does not exist', 'until=2026-02-30T00:00:00Z', 'INVALID_VALUE', 'until'],
      ['until at 24:00', 'until=2026-01-01T24:00:00Z', 'INVALID_VALUE', 'until'],
      ['a cursor that is not an id', 'cursor=abc', 'INVALID_CURSOR', 'cursor'],
      ['a cursor past what Redis ids hold', 'cursor=99999999999999999999-0', 'INVALID_CURSOR', 'cursor'],
      ['the cursor 0-0', 'cursor=0-0', 'INVALID_CURSOR', 'cursor'],
      ['an unknown kind', 'kind=vm', 'INVALID_VALUE', 'kind'],
      ['an unknown type', 'type=read', 'INVALID_VALUE', 'type'],
      ['an actor that is no name', 'actor=a%20b', 'INVALID_VALUE', 'actor'],
      ['a resourceId that is no id', 'resourceId=acme', 'INVALID_ID', 'resourceId'],
      ['limit 0', 'limit=0', 'INVALID_VALUE', 'limit'],
      ['an unknown parameter', 'tokenId=x', 'UNKNOWN_PARAMETER', 'tokenId'],
    ])('refuses %s (400, naming it)', async (_what, query, code, field) => {
      const res = await auditor.get(`/v1/events?${query}`);
      expect({ status: res.status, code: res.body.code, field: res.body.field }).toEqual({ status: 400, code, field });
    });

    it('is for admin and auditor only', async () => {
      expect((await admin.get('/v1/events?limit=1')).status).toBe(200);
      for (const name of ['ops', 'hook']) {
        expect((await tokens[name].client.get('/v1/events')).body).toMatchObject({ code: 'FORBIDDEN' });
      }
      // Recorded after the answers: settled before the next test compares dumps.
      await waitUntil(async () => (await trail('type=denied')).length === 5, 5000, () => 'refusals recorded');
    });
  });

  it('writes nothing, not even an event, for a refused write (400, 404, 409)', async () => {
    const ops = tokens.ops.client;
    const refused: [() => Promise<{ status: number }>, number][] = [
      [() => ops.post('/v1/tenants', { name: 'a b' }), 400],
      [() => ops.post('/v1/tenants', { name: 'acme' }), 409],
      [() => ops.post('/v1/segments', { tenantId: '01900000-0000-7000-8000-000000000000', name: 'x', cidr: '10.9.0.0/24' }), 404],
      [() => ops.delete(`/v1/hosts/${ids.dst}`), 409],
      [() => ops.post(`/v1/migrations/${ids.committed}/abort`), 409],
      [() => admin.post('/v1/tokens', { name: 'x', role: 'tenant' }), 400],
      [() => admin.delete('/v1/tokens/01900000-0000-7000-8000-000000000000'), 404],
    ];
    for (const [send, status] of refused) {
      const before = await ctl.dump();
      expect((await send()).status).toBe(status);
      expect(await ctl.dump()).toStrictEqual(before);
    }
  });
});

describe('the audit trail: retention', () => {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const RETENTION_S = 3600;
  const harnesses: Harness[] = [];
  const prefixes: string[] = [];
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(redisUrl);
  });

  afterAll(async () => {
    await Promise.all(harnesses.map((h) => h.close()));
    for (const p of prefixes) {
      await dropPrefix(redisUrl, p);
    }
    redis.disconnect();
  });

  /** Entries written straight into a new deployment's trail before it starts (ids: their times, increasing). */
  async function seed(name: string, times: number[]): Promise<string> {
    const prefix = uniquePrefix(name);
    prefixes.push(prefix);
    for (const [i, ms] of times.entries()) {
      await redis.xadd(`{${prefix}}:events`, `${ms}-${i}`, 'type', 'write', 'actor', JSON.stringify({ kind: 'system', name: 'seeded' }), 'rev', '', 'res', `tenant:seeded-${i}`);
    }
    return prefix;
  }

  async function start(prefix: string): Promise<Harness> {
    const h = await startController({ prefix, env: { OVERLAY_EVENTS_RETENTION_SECONDS: String(RETENTION_S) } });
    harnesses.push(h);
    return h;
  }

  it('trims events past OVERLAY_EVENTS_RETENTION_SECONDS as new ones are written', async () => {
    const old = Date.now() - 2 * RETENTION_S * 1000;
    const prefix = await seed('retention-trim', Array.from({ length: 1000 }, (_, i) => old + i));
    expect(await redis.xlen(`{${prefix}}:events`)).toBe(1000);
    const h = await start(prefix); // the bootstrap token is a write: it trims
    const left = await redis.xrange(`{${prefix}}:events`, '-', '+');
    // Approximate trimming (whole stream nodes): most are gone, whatever the node size.
    expect(left.filter(([id]) => Number(id.split('-')[0]) < old + 1000).length).toBeLessThan(250);
    expect((await api(h.url).get('/v1/events?limit=1000')).body.items.map((e: Event) => e.actor.name)).toEqual(['bootstrap']);
  });

  it('never lists an event past retention, even while it is still in the stream', async () => {
    const now = Date.now();
    // A few old entries and recent ones in one stream node: trimming cannot remove them yet.
    const times = [now - 2 * RETENTION_S * 1000, now - 2 * RETENTION_S * 1000 + 1, now - RETENTION_S * 1000 - 60_000, now - RETENTION_S * 1000 + 60_000, now - 1000];
    const prefix = await seed('retention-read', times);
    const h = await start(prefix);
    expect(await redis.xlen(`{${prefix}}:events`)).toBe(6); // still there
    const listed = (await api(h.url).get('/v1/events?limit=1000')).body.items as Event[];
    expect(listed.map((e) => (e.actor.name === 'seeded' ? e.resources[0].id : e.actor.name))).toEqual(['bootstrap', 'seeded-4', 'seeded-3']);
    // Nor with since/until or a cursor that reach back.
    expect((await api(h.url).get(`/v1/events?since=${new Date(times[0]).toISOString()}`)).body.items).toHaveLength(3);
    expect((await api(h.url).get(`/v1/events?until=${new Date(times[2]).toISOString()}`)).body.items).toEqual([]);
    expect((await api(h.url).get(`/v1/events?cursor=${times[3]}-3`)).body).toEqual({ items: [], nextCursor: null });
  });
});

describe('the audit trail: refused calls kept apart', () => {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = uniquePrefix('denied-cap');
  let h: Harness;
  let redis: Redis;

  beforeAll(async () => {
    h = await startController({ prefix, env: { OVERLAY_DENIED_EVENTS_MAX_LENGTH: '1000' } });
    redis = new Redis(redisUrl);
  });

  afterAll(async () => {
    await h?.close();
    redis.disconnect();
    await dropPrefix(redisUrl, prefix);
  });

  it('caps the refused calls it keeps (OVERLAY_DENIED_EVENTS_MAX_LENGTH), and a flood of them pushes out no write', async () => {
    const tenant = (await api(h.url).post('/v1/tenants', { name: 'before-the-flood' })).body.id as string;
    const events = h.app.get(EventRepository);
    for (let i = 0; i < 5000; i++) {
      await events.recordDenied({ kind: 'anonymous', source: '192.0.2.1', method: 'GET', route: '/v1/tenants' }, 'UNAUTHENTICATED', 'unknown or revoked token');
    }
    // Approximate trimming (whole stream nodes of 100 entries).
    expect(await redis.xlen(`{${prefix}}:events:denied`)).toBeLessThanOrEqual(1100);
    const writes = (await api(h.url).get(`/v1/events?type=write&resourceId=${tenant}`)).body.items as Event[];
    expect(writes).toHaveLength(1);
  });

  it('pages through both streams newest first, once each, when their entry ids are equal', async () => {
    const p = uniquePrefix('denied-merge');
    const now = Date.now();
    // Three ms, each with a write and a refusal of the same entry id.
    for (let i = 0; i < 3; i++) {
      await redis.xadd(`{${p}}:events`, `${now - 3000 + i}-0`, 'type', 'write', 'actor', JSON.stringify({ kind: 'system', name: `w${i}` }), 'rev', '', 'res', '');
      await redis.xadd(`{${p}}:events:denied`, `${now - 3000 + i}-0`, 'type', 'denied', 'actor', JSON.stringify({ kind: 'system', name: `d${i}` }), 'code', 'FORBIDDEN', 'reason', 'r');
    }
    const other = await startController({ prefix: p });
    try {
      const client = api(other.url);
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 20; pages++) {
        const res: ApiResponse = await client.get(`/v1/events?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...(res.body.items as Event[]).map((e) => e.actor.name));
        cursor = res.body.nextCursor;
        if (!cursor) {
          break;
        }
      }
      expect(seen).toEqual(['bootstrap', 'w2', 'd2', 'w1', 'd1', 'w0', 'd0']);
    } finally {
      await other.close();
      await dropPrefix(redisUrl, p);
    }
  });
});
