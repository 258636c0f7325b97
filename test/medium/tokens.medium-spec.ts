import type { LoggerService } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { TOKEN_CACHE_MS } from '../../src/controller/auth/authenticator';
import { waitUntil } from '../support/agents';
import { api, dropPrefix, startController, TEST_ADMIN_TOKEN, uniquePrefix, type Harness } from '../support/controller-harness';

/**
 * API tokens against a real overlayd and Redis: making them (each role, every refusal), reading
 * them (never the token nor its hash), listing, revoking (on this replica at once, on another
 * within the 1 s the issue promises), expiry, last use, that Redis never holds a token in
 * clear, and the first admin token (bootstrap).
 */

const TOKEN_RE = /^ovl_[A-Za-z0-9_-]{43}$/;
const UNKNOWN_ID = '01900000-0000-7000-8000-000000000000';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

type Client = ReturnType<typeof api>;

/** A LoggerService that keeps every line (level, context, message), for tests that read the log. */
function recordingLogger(): LoggerService & { lines: string[] } {
  const lines: string[] = [];
  const keep =
    (level: string) =>
    (message: unknown, ...rest: unknown[]) =>
      lines.push(`${level} ${[message, ...rest].map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(' ')}`);
  return { lines, log: keep('log'), warn: keep('warn'), error: keep('error'), debug: keep('debug'), verbose: keep('verbose'), fatal: keep('fatal') };
}

/** Every key under the prefix and everything in it (key names, members, fields, values, stream ids), as strings. */
async function everything(redis: Redis, prefix: string): Promise<{ keys: number; strings: string[] }> {
  const strings: string[] = [];
  let keys = 0;
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of batch) {
      keys++;
      strings.push(key);
      const type = await redis.type(key);
      switch (type) {
        case 'string':
          strings.push((await redis.get(key)) ?? '');
          break;
        case 'hash':
          strings.push(...Object.entries(await redis.hgetall(key)).flat());
          break;
        case 'set':
          strings.push(...(await redis.smembers(key)));
          break;
        case 'zset':
          strings.push(...(await redis.zrange(key, 0, -1, 'WITHSCORES')));
          break;
        case 'list':
          strings.push(...(await redis.lrange(key, 0, -1)));
          break;
        case 'stream':
          for (const [id, fields] of await redis.xrange(key, '-', '+')) {
            strings.push(id, ...fields);
          }
          break;
        case 'none':
          break; // deleted meanwhile
        default:
          throw new Error(`key ${key} has type ${type}: teach this scan to read it`);
      }
    }
  } while (cursor !== '0');
  return { keys, strings };
}

describe('tokens: the API', () => {
  const prefix = uniquePrefix('tokens');
  let ctl: Harness;
  let admin: Client;
  let bootstrapId: string;
  let tenantId: string;
  let otherTenantId: string;
  let hostId: string;
  let otherHostId: string;

  /** Makes a token (201) and returns the answer. */
  async function make(body: Record<string, unknown>, by: Client = admin): Promise<any> {
    const res = await by.post('/v1/tokens', body);
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 201 });
    return res.body;
  }

  beforeAll(async () => {
    ctl = await startController({ prefix });
    admin = api(ctl.url);
    tenantId = (await admin.post('/v1/tenants', { name: 'acme' })).body.id;
    otherTenantId = (await admin.post('/v1/tenants', { name: 'globex' })).body.id;
    hostId = (await admin.post('/v1/hosts', { name: 'hv1', vtepIp: '192.0.2.1' })).body.id;
    otherHostId = (await admin.post('/v1/hosts', { name: 'hv2', vtepIp: '192.0.2.2' })).body.id;
    const admins = await admin.get('/v1/tokens?role=admin');
    expect(admins.body.items).toHaveLength(1);
    bootstrapId = admins.body.items[0].id;
  });

  afterAll(async () => {
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  // Each role, the body that makes one, and a route that role may read.
  const roles: [string, () => Record<string, unknown>, string][] = [
    ['admin', () => ({ role: 'admin' }), '/v1/tokens'],
    ['operator', () => ({ role: 'operator', expiresAt: '2099-01-01T00:00:00+02:00' }), '/v1/hosts'],
    ['tenant', () => ({ role: 'tenant', tenantId, allowVniPinning: true }), '/v1/segments'],
    ['migration-hook', () => ({ role: 'migration-hook', hostIds: [hostId, otherHostId] }), '/v1/hosts'],
    ['auditor', () => ({ role: 'auditor' }), '/v1/events'],
  ];

  it.each(roles)('makes a %s token: the answer shows the token once; reads never show it nor its hash; it works', async (role, body, route) => {
    const before = Date.now();
    const made = await make({ name: `a-${role}`, ...body() });
    const { token, ...record } = made;
    expect(token).toMatch(TOKEN_RE);
    expect(record).toEqual({
      id: expect.any(String),
      name: `a-${role}`,
      role,
      tenantId: role === 'tenant' ? tenantId : null,
      hostIds: role === 'migration-hook' ? [hostId, otherHostId] : null,
      allowVniPinning: role === 'tenant',
      createdAt: expect.any(String),
      expiresAt: role === 'operator' ? '2098-12-31T22:00:00.000Z' : null,
      createdBy: { tokenId: bootstrapId, name: 'bootstrap' },
      lastUsedAt: null,
    });
    expect(Date.parse(record.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    const read = await admin.get(`/v1/tokens/${made.id}`);
    expect(read).toEqual({ status: 200, body: record });
    const list = await admin.get('/v1/tokens?limit=1000');
    for (const text of [JSON.stringify(read.body), JSON.stringify(list.body)]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(sha256(token));
      expect(text).not.toMatch(/sha256|"token"/);
    }
    expect((await api(ctl.url, token).get(route)).status).toBe(200);
  });

  it('lets an auditor read tokens but not make or delete them; an operator may not even read them (403 naming the role)', async () => {
    const auditor = api(ctl.url, (await make({ name: 'reader', role: 'auditor' })).token);
    const operator = api(ctl.url, (await make({ name: 'ops', role: 'operator' })).token);
    expect((await auditor.get('/v1/tokens')).status).toBe(200);
    expect((await auditor.get(`/v1/tokens/${bootstrapId}`)).status).toBe(200);
    const refused = [await auditor.post('/v1/tokens', { name: 'x', role: 'admin' }), await auditor.delete(`/v1/tokens/${bootstrapId}`), await operator.get('/v1/tokens'), await operator.post('/v1/tokens', { name: 'x', role: 'operator' })];
    for (const res of refused) {
      expect(res.status).toBe(403);
      expect(res.body).toMatchObject({ code: 'FORBIDDEN', message: expect.stringMatching(/needs role admin/) });
    }
    expect((await admin.get(`/v1/tokens/${bootstrapId}`)).status).toBe(200); // not deleted
  });

  describe('refuses a bad token request, naming the field, and writes nothing', () => {
    // [what, body, status, code, field]
    const cases: [string, () => unknown, number, string, string | undefined][] = [
      ['no name', () => ({ role: 'operator' }), 400, 'MISSING_FIELD', 'name'],
      ['a bad name', () => ({ name: 'a b', role: 'operator' }), 400, 'INVALID_NAME', 'name'],
      ['no role', () => ({ name: 'x' }), 400, 'MISSING_FIELD', 'role'],
      ['an unknown role', () => ({ name: 'x', role: 'root' }), 400, 'INVALID_VALUE', 'role'],
      ['a tenant token without tenantId', () => ({ name: 'x', role: 'tenant' }), 400, 'MISSING_FIELD', 'tenantId'],
      ['a tenant token with tenantId null', () => ({ name: 'x', role: 'tenant', tenantId: null }), 400, 'MISSING_FIELD', 'tenantId'],
      ['tenantId on an operator token', () => ({ name: 'x', role: 'operator', tenantId }), 400, 'INVALID_VALUE', 'tenantId'],
      ['tenantId on a migration-hook token', () => ({ name: 'x', role: 'migration-hook', tenantId }), 400, 'INVALID_VALUE', 'tenantId'],
      ['allowVniPinning on an operator token', () => ({ name: 'x', role: 'operator', allowVniPinning: true }), 400, 'INVALID_VALUE', 'allowVniPinning'],
      ['allowVniPinning false on an auditor token', () => ({ name: 'x', role: 'auditor', allowVniPinning: false }), 400, 'INVALID_VALUE', 'allowVniPinning'],
      ['hostIds on a tenant token', () => ({ name: 'x', role: 'tenant', tenantId, hostIds: [hostId] }), 400, 'INVALID_VALUE', 'hostIds'],
      ['hostIds on an operator token', () => ({ name: 'x', role: 'operator', hostIds: [hostId] }), 400, 'INVALID_VALUE', 'hostIds'],
      ['an empty hostIds', () => ({ name: 'x', role: 'migration-hook', hostIds: [] }), 400, 'INVALID_VALUE', 'hostIds'],
      ['a host listed twice', () => ({ name: 'x', role: 'migration-hook', hostIds: [hostId, hostId] }), 400, 'INVALID_VALUE', 'hostIds[1]'],
      ['a malformed host id', () => ({ name: 'x', role: 'migration-hook', hostIds: [hostId, 'hv2'] }), 400, 'INVALID_ID', 'hostIds[1]'],
      ['a malformed tenant id', () => ({ name: 'x', role: 'tenant', tenantId: 'acme' }), 400, 'INVALID_ID', 'tenantId'],
      ['an unknown tenant', () => ({ name: 'x', role: 'tenant', tenantId: UNKNOWN_ID }), 404, 'TENANT_NOT_FOUND', 'tenantId'],
      ['an unknown host', () => ({ name: 'x', role: 'migration-hook', hostIds: [hostId, UNKNOWN_ID] }), 404, 'HOST_NOT_FOUND', 'hostIds[1]'],
      ['allowVniPinning not a boolean', () => ({ name: 'x', role: 'tenant', tenantId, allowVniPinning: 'yes' }), 400, 'INVALID_TYPE', 'allowVniPinning'],
      ['expiresAt in the past', () => ({ name: 'x', role: 'operator', expiresAt: '2020-01-01T00:00:00Z' }), 400, 'INVALID_VALUE', 'expiresAt'],
      ['expiresAt now-ish (a second ago)', () => ({ name: 'x', role: 'operator', expiresAt: new Date(Date.now() - 1000).toISOString() }), 400, 'INVALID_VALUE', 'expiresAt'],
      ['expiresAt without its zone', () => ({ name: 'x', role: 'operator', expiresAt: '2099-01-01T00:00:00' }), 400, 'INVALID_VALUE', 'expiresAt'],
      ['expiresAt on a day that does not exist', () => ({ name: 'x', role: 'operator', expiresAt: '2099-02-30T00:00:00Z' }), 400, 'INVALID_VALUE', 'expiresAt'],
      ['expiresAt not a time', () => ({ name: 'x', role: 'operator', expiresAt: 'tomorrow' }), 400, 'INVALID_VALUE', 'expiresAt'],
      ['expiresAt a number', () => ({ name: 'x', role: 'operator', expiresAt: 4102444800000 }), 400, 'INVALID_TYPE', 'expiresAt'],
      ['a token of ones own choosing', () => ({ name: 'x', role: 'admin', token: `ovl_${'a'.repeat(43)}` }), 400, 'UNKNOWN_FIELD', 'token'],
      ['a hash of ones own choosing', () => ({ name: 'x', role: 'admin', sha256: sha256('x') }), 400, 'UNKNOWN_FIELD', 'sha256'],
      ['createdBy', () => ({ name: 'x', role: 'admin', createdBy: { tokenId: null, name: 'bootstrap' } }), 400, 'UNKNOWN_FIELD', 'createdBy'],
      ['not an object', () => '[]', 400, 'INVALID_TYPE', undefined],
    ];

    it.each(cases.map((c, i) => [c[0], i] as const))('%s', async (_what, i) => {
      const [, body, status, code, field] = cases[i];
      const before = await ctl.dump();
      const res = await admin.post('/v1/tokens', body());
      expect({ status: res.status, code: res.body?.code, field: res.body?.field }).toEqual({ status, code, field });
      // Nothing stored: no token, no audit event.
      expect(await ctl.dump()).toStrictEqual(before);
    });
  });

  it('lists tokens by role and by tenant, a page at a time, in creation order', async () => {
    const acme = [];
    const globex = [];
    for (let i = 0; i < 5; i++) {
      acme.push((await make({ name: `acme-${i}`, role: 'tenant', tenantId })).id);
    }
    for (let i = 0; i < 2; i++) {
      globex.push((await make({ name: `globex-${i}`, role: 'tenant', tenantId: otherTenantId })).id);
    }
    /** Every page of a list, following nextCursor; checks each page's size. */
    const pages = async (query: string, limit: number): Promise<any[]> => {
      const all: any[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await admin.get(`/v1/tokens?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        expect(res.body.items.length).toBeLessThanOrEqual(limit);
        all.push(...res.body.items);
        cursor = res.body.nextCursor;
      } while (cursor !== null);
      return all;
    };
    const ids = (items: any[]) => items.map((t) => t.id);
    const everyToken = await pages('', 1000);
    expect(ids(await pages('', 3))).toEqual(ids(everyToken));
    expect(ids(everyToken)).toEqual([...ids(everyToken)].sort());
    expect(ids(await pages('role=tenant&tenantId=' + tenantId, 2))).toEqual(ids(everyToken.filter((t) => t.tenantId === tenantId)));
    expect(ids(await pages(`tenantId=${tenantId}`, 2)).slice(-5)).toEqual(acme);
    expect(ids(await pages(`tenantId=${otherTenantId}`, 1))).toEqual(globex);
    expect(ids(await pages('role=tenant', 4))).toEqual(ids(everyToken.filter((t) => t.role === 'tenant')));
    expect((await pages('role=tenant', 4)).length).toBeGreaterThanOrEqual(7);
    expect(ids(await pages('role=admin', 2))).toEqual(ids(everyToken.filter((t) => t.role === 'admin')));
    expect(await pages(`role=operator&tenantId=${tenantId}`, 10)).toEqual([]);
    // Exactly a page's worth: no cursor to an empty page.
    const two = await admin.get(`/v1/tokens?tenantId=${otherTenantId}&limit=2`);
    expect(two.body).toMatchObject({ nextCursor: null });
    for (const [query, code, field] of [
      ['role=root', 'INVALID_VALUE', 'role'],
      ['tenantId=acme', 'INVALID_ID', 'tenantId'],
      ['cursor=nope', 'INVALID_CURSOR', 'cursor'],
      ['limit=0', 'INVALID_VALUE', 'limit'],
      ['hostId=' + hostId, 'UNKNOWN_PARAMETER', 'hostId'],
    ]) {
      const res = await admin.get(`/v1/tokens?${query}`);
      expect({ query, status: res.status, code: res.body.code, field: res.body.field }).toEqual({ query, status: 400, code, field });
    }
  });

  it('revokes a token on DELETE: refused at once by the replica that deleted it, then unknown', async () => {
    const made = await make({ name: 'short-lived', role: 'operator' });
    const user = api(ctl.url, made.token);
    expect((await user.get('/v1/hosts')).status).toBe(200); // cached on this replica now
    expect((await admin.delete(`/v1/tokens/${made.id}`)).status).toBe(204);
    const after = await user.get('/v1/hosts');
    expect(after).toEqual({ status: 401, body: { code: 'UNAUTHENTICATED', message: 'unknown or revoked token' } });
    expect((await admin.get(`/v1/tokens/${made.id}`)).body).toMatchObject({ code: 'TOKEN_NOT_FOUND', field: 'id' });
    expect((await admin.delete(`/v1/tokens/${made.id}`)).body).toMatchObject({ code: 'TOKEN_NOT_FOUND', field: 'id' });
    expect((await admin.delete(`/v1/tokens/not-an-id`)).body).toMatchObject({ code: 'INVALID_ID', field: 'id' });
    const keys = ctl.config.keyPrefix;
    expect(await ctl.redis.hexists(`{${keys}}:tokens:by-hash`, sha256(made.token))).toBe(0);
    expect(await ctl.redis.hexists(`{${keys}}:tokens:last-used`, made.id)).toBe(0);
    expect(await ctl.redis.zscore(`{${keys}}:tokens:index`, made.id)).toBeNull();
  });

  it("deletes a tenant's tokens with the tenant, in the same step, and records them in the trail", async () => {
    const gone = (await admin.post('/v1/tenants', { name: 'short-lived-tenant' })).body.id as string;
    const mine = await make({ name: 'gone-with-it', role: 'tenant', tenantId: gone });
    const kept = await make({ name: 'stays', role: 'tenant', tenantId });
    expect((await api(ctl.url, mine.token).get(`/v1/tenants/${gone}`)).status).toBe(200);
    expect((await admin.delete(`/v1/tenants/${gone}`)).status).toBe(204);
    expect((await admin.get(`/v1/tokens/${mine.id}`)).body).toMatchObject({ code: 'TOKEN_NOT_FOUND' });
    expect((await admin.get(`/v1/tokens/${kept.id}`)).status).toBe(200);
    const keys = ctl.config.keyPrefix;
    expect(await ctl.redis.hexists(`{${keys}}:tokens:by-hash`, sha256(mine.token))).toBe(0);
    // Refused within the cache's bound on this replica too.
    await waitUntil(async () => (await api(ctl.url, mine.token).get('/v1/segments')).status === 401, 2_000, () => 'the tenant token refused');
    const trail = (await admin.get(`/v1/events?resourceId=${mine.id}`)).body.items;
    expect(trail).toHaveLength(2); // made, then deleted with its tenant
    expect(trail[0].resources).toEqual(expect.arrayContaining([{ kind: 'tenant', id: gone }, { kind: 'token', id: mine.id }]));
  });

  it('refuses an expired token with 401 saying it expired; it stays listed', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const made = await make({ name: 'expiring', role: 'operator', expiresAt });
    const user = api(ctl.url, made.token);
    expect((await user.get('/v1/hosts')).status).toBe(200);
    // Polled: it works until its expiry (a call sent before it may pass), then never again.
    let res;
    for (;;) {
      const sentAt = Date.now();
      res = await user.get('/v1/hosts');
      if (res.status === 401) {
        break;
      }
      expect({ status: res.status, sentBeforeExpiry: sentAt <= Date.parse(expiresAt) }).toEqual({ status: 200, sentBeforeExpiry: true });
    }
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expiresAt));
    expect(res.body).toEqual({ code: 'UNAUTHENTICATED', message: `the token expired at ${made.expiresAt}` });
    expect((await admin.get(`/v1/tokens/${made.id}`)).body).toMatchObject({ id: made.id, expiresAt });
  });

  it('records when a token was last used', async () => {
    const made = await make({ name: 'used', role: 'auditor' });
    expect((await admin.get(`/v1/tokens/${made.id}`)).body.lastUsedAt).toBeNull();
    const before = Date.now();
    expect((await api(ctl.url, made.token).get('/v1/hosts')).status).toBe(200);
    const after = Date.now();
    let lastUsedAt: string | null = null;
    await waitUntil(async () => (lastUsedAt = (await admin.get(`/v1/tokens/${made.id}`)).body.lastUsedAt) !== null, 3000, () => 'lastUsedAt set');
    expect(Date.parse(lastUsedAt!)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(lastUsedAt!)).toBeLessThanOrEqual(after);
    const listed = (await admin.get('/v1/tokens?role=auditor&limit=1000')).body.items.find((t: any) => t.id === made.id);
    expect(listed.lastUsedAt).toBe(lastUsedAt);
  });

  it('never deletes the last admin token that works (expired ones do not count); deletes it once another works', async () => {
    // Every admin token but the bootstrap one goes first.
    for (const t of (await admin.get('/v1/tokens?role=admin&limit=1000')).body.items) {
      if (t.id !== bootstrapId) {
        expect((await admin.delete(`/v1/tokens/${t.id}`)).status).toBe(204);
      }
    }
    const last = await admin.delete(`/v1/tokens/${bootstrapId}`);
    expect(last).toEqual({ status: 409, body: { code: 'LAST_ADMIN_TOKEN', message: expect.stringMatching(/last admin token/), field: 'id' } });
    // An admin token that expired does not count.
    const expiresAt = new Date(Date.now() + 1000).toISOString();
    const expiring = await make({ name: 'admin-expiring', role: 'admin', expiresAt });
    await waitUntil(async () => (await api(ctl.url, expiring.token).get('/v1/tokens')).status === 401, 5000, () => 'the admin token expired');
    expect((await admin.delete(`/v1/tokens/${bootstrapId}`)).body).toMatchObject({ code: 'LAST_ADMIN_TOKEN' });
    expect((await admin.get('/v1/tokens/' + bootstrapId)).status).toBe(200);
    // With a second admin token that works, the first may go (even by itself).
    const second = await make({ name: 'admin-2', role: 'admin' });
    expect((await admin.delete(`/v1/tokens/${bootstrapId}`)).status).toBe(204);
    expect((await admin.get('/v1/tokens')).status).toBe(401);
    const next = api(ctl.url, second.token);
    expect((await next.delete(`/v1/tokens/${second.id}`)).body).toMatchObject({ code: 'LAST_ADMIN_TOKEN' });
    expect((await next.delete(`/v1/tokens/${expiring.id}`)).status).toBe(204);
  });
});

describe('tokens: revocation on another replica', () => {
  const prefix = uniquePrefix('revoke');
  let one: Harness;
  let two: Harness;

  beforeAll(async () => {
    one = await startController({ prefix });
    two = await startController({ prefix });
  });

  afterAll(async () => {
    await two?.close();
    await one?.close();
    await dropPrefix(one.config.redisUrl, prefix);
  });

  it('is refused by a second replica within 1 s of the DELETE answer', async () => {
    const delays: number[] = [];
    for (let round = 0; round < 3; round++) {
      const made = (await api(one.url).post('/v1/tokens', { name: `r${round}`, role: 'operator' })).body;
      const onTwo = api(two.url, made.token);
      // Used on replica 2 (so it holds the token in its cache), then deleted through replica 1.
      expect((await onTwo.get('/v1/hosts')).status).toBe(200);
      expect((await api(one.url).delete(`/v1/tokens/${made.id}`)).status).toBe(204);
      const deleted = performance.now();
      let acceptedAfter = 0;
      let refusedAt = 0;
      // The cache promises TOKEN_CACHE_MS (500 ms) plus one read; the issue promises 1 s. The
      // deadline is that promise, not a guess: the margin (~500 ms) absorbs a loaded machine.
      for (;;) {
        const res = await onTwo.get('/v1/hosts');
        if (res.status === 401) {
          refusedAt = performance.now();
          break;
        }
        expect(res.status).toBe(200);
        acceptedAfter++;
        if (performance.now() - deleted > 1000) {
          throw new Error(`replica 2 still accepts a token deleted ${Math.round(performance.now() - deleted)} ms ago`);
        }
      }
      delays.push(refusedAt - deleted);
      // And never again.
      for (let i = 0; i < 5; i++) {
        expect((await onTwo.get('/v1/hosts')).status).toBe(401);
      }
      console.log(`revocation seen by replica 2 after ${(refusedAt - deleted).toFixed(1)} ms (${acceptedAfter} calls still accepted meanwhile; cache ${TOKEN_CACHE_MS} ms)`);
    }
    expect(Math.max(...delays)).toBeLessThan(1000);
  });
});

describe('tokens: no token in clear anywhere in Redis', () => {
  const prefix = uniquePrefix('plaintext');
  let ctl: Harness;

  beforeAll(async () => {
    ctl = await startController({ prefix });
  });

  afterAll(async () => {
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('holds tokens of every role, used, refused and revoked, only as hashes', async () => {
    const admin = api(ctl.url);
    const tenantId = (await admin.post('/v1/tenants', { name: 'acme' })).body.id;
    const hostId = (await admin.post('/v1/hosts', { name: 'hv1', vtepIp: '192.0.2.1' })).body.id;
    const bodies = [
      { role: 'admin' },
      { role: 'operator', expiresAt: '2099-01-01T00:00:00Z' },
      { role: 'tenant', tenantId, allowVniPinning: true },
      { role: 'migration-hook', hostIds: [hostId] },
      { role: 'auditor' },
    ];
    const secrets: string[] = [TEST_ADMIN_TOKEN];
    const ids: string[] = [];
    for (const [i, body] of bodies.entries()) {
      const made = (await admin.post('/v1/tokens', { name: `t${i}`, ...body })).body;
      secrets.push(made.token);
      ids.push(made.id);
    }
    // Each one used: reads, writes, refusals (403), so the trail and last use name them.
    const [, adminT, operatorT, tenantT, hookT, auditorT] = secrets;
    expect((await api(ctl.url, adminT).post('/v1/tenants', { name: 'by-admin' })).status).toBe(201);
    const segment = await api(ctl.url, operatorT).post('/v1/segments', { tenantId, name: 'web', cidr: '10.0.0.0/24' });
    expect(segment.status).toBe(201);
    expect((await api(ctl.url, tenantT).get('/v1/segments')).status).toBe(200);
    expect((await api(ctl.url, hookT).get('/v1/hosts')).status).toBe(200);
    expect((await api(ctl.url, auditorT).get('/v1/events')).status).toBe(200);
    expect((await api(ctl.url, auditorT).post('/v1/tenants', { name: 'nope' })).status).toBe(403);
    expect((await api(ctl.url, hookT).get('/v1/tokens')).status).toBe(403);
    // Refused: a token that never existed, one in a header with another scheme, one revoked.
    const unknown = `ovl_${'Z'.repeat(43)}`;
    secrets.push(unknown);
    expect((await api(ctl.url, unknown).get('/v1/hosts')).status).toBe(401);
    expect((await api(ctl.url, null).get('/v1/hosts')).status).toBe(401);
    expect((await api(ctl.url, null).raw('GET', '/v1/hosts', undefined, { authorization: `Basic ${operatorT}` })).status).toBe(401);
    expect((await admin.delete(`/v1/tokens/${ids[4]}`)).status).toBe(204);
    expect((await api(ctl.url, auditorT).get('/v1/hosts')).status).toBe(401);
    await waitUntil(async () => (await ctl.redis.hlen(`{${prefix}}:tokens:last-used`)) >= 4, 3000, () => 'uses recorded');
    // The refusals are recorded in the trail (asynchronously): wait for them before scanning.
    await waitUntil(async () => (await admin.get('/v1/events?type=denied')).body.items.length >= 6, 3000, () => 'refusals recorded');

    const { keys, strings } = await everything(ctl.redis, prefix);
    expect(keys).toBeGreaterThan(10);
    const all = strings.join('\n');
    for (const secret of secrets) {
      expect(all).not.toContain(secret);
      expect(all).not.toContain(secret.replace(/^ovl_/, ''));
      expect(all).not.toContain(Buffer.from(secret).toString('base64'));
    }
    // The hashes are there (the scan does see the token records).
    expect(all).toContain(sha256(operatorT));
  });
});

describe('tokens: the first admin token (bootstrap)', () => {
  const prefixes: string[] = [];
  const dirs: string[] = [];
  const harnesses: Harness[] = [];
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(redisUrl);
  });

  async function start(prefix: string, env: Record<string, string>, logger?: LoggerService): Promise<Harness> {
    const h = await startController({ prefix, env, logger });
    harnesses.push(h);
    return h;
  }
  async function stop(h: Harness): Promise<void> {
    harnesses.splice(harnesses.indexOf(h), 1);
    await h.close();
  }
  function newPrefix(name: string): string {
    const p = uniquePrefix(name);
    prefixes.push(p);
    return p;
  }
  function tempDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'overlay-bootstrap-'));
    dirs.push(d);
    return d;
  }

  afterAll(async () => {
    await Promise.all(harnesses.map((h) => h.close()));
    for (const p of prefixes) {
      await dropPrefix(redisUrl, p);
    }
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
    redis?.disconnect();
  });

  it('makes OVERLAY_BOOTSTRAP_TOKEN the first admin token, and ignores another one once an admin exists', async () => {
    const prefix = newPrefix('boot-given');
    const dir = tempDir();
    const file = join(dir, 'token');
    const log = recordingLogger();
    const given = `given-${'x'.repeat(40)}`;
    const h = await start(prefix, { OVERLAY_BOOTSTRAP_TOKEN: given, OVERLAY_BOOTSTRAP_TOKEN_FILE: file }, log);
    const admin = api(h.url, given);
    const list = await admin.get('/v1/tokens');
    expect(list.body.items).toEqual([expect.objectContaining({ name: 'bootstrap', role: 'admin', expiresAt: null, createdBy: { tokenId: null, name: 'bootstrap' } })]);
    expect((await admin.post('/v1/tokens', { name: 'ops', role: 'operator' })).status).toBe(201);
    expect(readdirSync(dir)).toEqual([]); // a given token is not written anywhere
    expect(log.lines.join('\n')).toMatch(/OVERLAY_BOOTSTRAP_TOKEN is now admin token 'bootstrap'/);
    await stop(h);

    const log2 = recordingLogger();
    const other = `other-${'y'.repeat(40)}`;
    const again = await start(prefix, { OVERLAY_BOOTSTRAP_TOKEN: other, OVERLAY_BOOTSTRAP_TOKEN_FILE: file }, log2);
    expect((await api(again.url, other).get('/v1/tokens')).status).toBe(401);
    expect((await api(again.url, given).get('/v1/tokens')).body.items).toHaveLength(2);
    expect(log2.lines.join('\n')).toMatch(/admin tokens exist: OVERLAY_BOOTSTRAP_TOKEN is not used/);
    for (const line of [...log.lines, ...log2.lines]) {
      expect(line).not.toContain(given);
      expect(line).not.toContain(other);
    }
    await stop(again);
  });

  it.each([
    ['too short', 'x'.repeat(31)],
    ['a character a header cannot carry', `${'x'.repeat(40)} y`],
    ['too long', 'x'.repeat(257)],
  ])('refuses an OVERLAY_BOOTSTRAP_TOKEN %s at start, without echoing it', async (_what, token) => {
    const prefix = newPrefix('boot-bad');
    const err = await startController({ prefix, env: { OVERLAY_BOOTSTRAP_TOKEN: token } }).then(
      (h) => {
        harnesses.push(h);
        return undefined;
      },
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/OVERLAY_BOOTSTRAP_TOKEN must be 32-256 characters/);
    expect(err?.message).not.toContain(token);
    expect(await redis.keys(`{${prefix}}:*`)).toEqual([]);
  });

  it('without OVERLAY_BOOTSTRAP_TOKEN writes a new admin token to OVERLAY_BOOTSTRAP_TOKEN_FILE (0600), logs the path and never the token; a restart writes nothing', async () => {
    const prefix = newPrefix('boot-file');
    const dir = tempDir();
    const file = join(dir, 'overlayd-bootstrap-token');
    const log = recordingLogger();
    const h = await start(prefix, { OVERLAY_BOOTSTRAP_TOKEN: '', OVERLAY_BOOTSTRAP_TOKEN_FILE: file }, log);
    expect(readdirSync(dir)).toEqual(['overlayd-bootstrap-token']); // no draft left behind
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const token = readFileSync(file, 'utf8').trim();
    expect(token).toMatch(TOKEN_RE);
    const text = log.lines.join('\n');
    expect(text).toContain(file);
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.slice(4));
    const admin = api(h.url, token);
    expect((await admin.get('/v1/tokens')).body.items).toEqual([expect.objectContaining({ name: 'bootstrap', role: 'admin' })]);
    expect((await admin.post('/v1/tokens', { name: 'ops', role: 'operator' })).status).toBe(201);
    expect((await api(h.url).get('/v1/tokens')).status).toBe(401); // the tests' usual token is not this deployment's
    await stop(h);

    // A restart with an admin token: no file written, not even a draft: the file may point
    // where nothing can be written (a read-only volume) and the start must not care.
    const mtime = statSync(file).mtimeMs;
    const log2 = recordingLogger();
    const again = await start(prefix, { OVERLAY_BOOTSTRAP_TOKEN: '', OVERLAY_BOOTSTRAP_TOKEN_FILE: join(dir, 'missing-dir', 'token') }, log2);
    expect(readdirSync(dir)).toEqual(['overlayd-bootstrap-token']);
    expect(statSync(file).mtimeMs).toBe(mtime);
    expect(readFileSync(file, 'utf8').trim()).toBe(token);
    expect((await api(again.url, token).get('/v1/tokens')).body.items).toHaveLength(2);
    expect(log2.lines.join('\n')).not.toMatch(/made admin token/);
    await stop(again);
  });

  it('refuses to start, saying why, when no admin token exists and the file cannot be written', async () => {
    const prefix = newPrefix('boot-unwritable');
    const dir = tempDir();
    const err = await startController({ prefix, env: { OVERLAY_BOOTSTRAP_TOKEN: '', OVERLAY_BOOTSTRAP_TOKEN_FILE: join(dir, 'missing-dir', 'token') } }).then(
      (h) => {
        harnesses.push(h);
        return undefined;
      },
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/OVERLAY_BOOTSTRAP_TOKEN_FILE .*missing-dir.*(ENOENT|no such file)/);
    expect(err?.message).toMatch(/OVERLAY_BOOTSTRAP_TOKEN/);
    // Nothing stored: a token nobody can read would lock everyone out.
    expect(await redis.zcard(`{${prefix}}:tokens:admins`)).toBe(0);
  });

  it('makes a new one when every admin token has expired', async () => {
    const prefix = newPrefix('boot-expired');
    const dir = tempDir();
    const file = join(dir, 'token');
    const h = await start(prefix, { OVERLAY_BOOTSTRAP_TOKEN: '', OVERLAY_BOOTSTRAP_TOKEN_FILE: file });
    const first = readFileSync(file, 'utf8').trim();
    const expiresAt = new Date(Date.now() + 2000).toISOString();
    const short = (await api(h.url, first).post('/v1/tokens', { name: 'short', role: 'admin', expiresAt })).body;
    expect((await api(h.url, short.token).delete(`/v1/tokens/${(await api(h.url, first).get('/v1/tokens?role=admin')).body.items[0].id}`)).status).toBe(204);
    await waitUntil(async () => (await api(h.url, short.token).get('/v1/tokens')).status === 401, 5000, () => 'the last admin token expired');
    await stop(h);
    const again = await start(prefix, { OVERLAY_BOOTSTRAP_TOKEN: '', OVERLAY_BOOTSTRAP_TOKEN_FILE: file });
    const second = readFileSync(file, 'utf8').trim();
    expect(second).not.toBe(first);
    expect((await api(again.url, second).get('/v1/tokens?role=admin')).body.items.map((t: any) => t.name)).toEqual(['short', 'bootstrap']);
    await stop(again);
  });

  it.each([1, 2, 3])('makes exactly one admin token when two replicas start at once on an empty deployment, sharing the file path (round %i)', async () => {
    const prefix = newPrefix('boot-race');
    const dir = tempDir();
    const file = join(dir, 'token');
    const env = { OVERLAY_BOOTSTRAP_TOKEN: '', OVERLAY_BOOTSTRAP_TOKEN_FILE: file };
    const [a, b] = await Promise.all([start(prefix, env), start(prefix, env)]);
    expect(readdirSync(dir)).toEqual(['token']);
    const token = readFileSync(file, 'utf8').trim();
    for (const h of [a, b]) {
      expect((await api(h.url, token).get('/v1/tokens')).body.items).toEqual([expect.objectContaining({ name: 'bootstrap', role: 'admin' })]);
    }
    expect(await a.redis.hlen(`{${prefix}}:tokens`)).toBe(1);
    expect(await a.redis.zcard(`{${prefix}}:tokens:admins`)).toBe(1);
    await Promise.all([stop(a), stop(b)]);
  });

  it('makes exactly one admin token and one file when two replicas with files of their own start at once', async () => {
    const prefix = newPrefix('boot-race2');
    const [dirA, dirB] = [tempDir(), tempDir()];
    const [a, b] = await Promise.all([
      start(prefix, { OVERLAY_BOOTSTRAP_TOKEN: '', OVERLAY_BOOTSTRAP_TOKEN_FILE: join(dirA, 'token') }),
      start(prefix, { OVERLAY_BOOTSTRAP_TOKEN: '', OVERLAY_BOOTSTRAP_TOKEN_FILE: join(dirB, 'token') }),
    ]);
    const files = [...readdirSync(dirA).map((f) => join(dirA, f)), ...readdirSync(dirB).map((f) => join(dirB, f))];
    expect(files).toHaveLength(1);
    const token = readFileSync(files[0], 'utf8').trim();
    expect((await api(b.url, token).get('/v1/tokens')).body.items).toHaveLength(1);
    expect(await a.redis.zcard(`{${prefix}}:tokens:admins`)).toBe(1);
    await Promise.all([stop(a), stop(b)]);
  });
});
