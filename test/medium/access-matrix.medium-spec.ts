import type { LoggerService } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { apiRoutes, buildOpenApiDocument, pageRoutes } from '../../src/controller/app.module';
import { allows, rolesOf } from '../../src/controller/auth/access';
import { DENIALS_PER_SOURCE_PER_SECOND } from '../../src/controller/auth/authenticator';
import { ROLES, type Role } from '../../src/controller/auth/principal';
import { routeKey, type Route } from '../../src/controller/auth/route-table';
import { RedisStore } from '../../src/controller/store/redis-store';
import { waitUntil } from '../support/agents';
import { api, dropPrefix, startController, TEST_ADMIN_TOKEN, uniquePrefix, type ApiResponse, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';

/*
 * Who may call what, checked against the route table (auth/route-table.ts) for every route and
 * every kind of caller: without a token, with a malformed, unknown, expired or revoked one (401),
 * and with a token of each role (403 unless the route's @Allow names the role; otherwise the
 * route's normal answer). Every route needs a fixture below: a new route fails this test until
 * it has one. A refused call changes nothing but the audit trail, where it leaves one `denied`
 * entry. A tenant token must not reach another tenant's objects (404, as if they did not exist).
 */

const UNAUTHENTICATED = ['no token', 'malformed', 'unknown', 'expired', 'revoked'] as const;
type Caller = (typeof UNAUTHENTICATED)[number] | Role;
const CALLERS: readonly Caller[] = [...UNAUTHENTICATED, ...ROLES];

/** One tenant's objects: A's token is the tenant token; B is the other tenant. */
interface Side {
  tenant: any;
  segment: any;
  group: any;
  port: any;
  /** A mirror session of `port` to an analyzer port. */
  session: any;
  /** Every object made for this tenant, fresh ones included: none of B's may show in A's lists. */
  ids: Set<string>;
}

interface Request {
  /** With the query, if any. */
  path: string;
  body?: unknown;
}

interface Fixture {
  /** The request of one call on `side`'s objects: fresh objects for a call that changes or deletes them. */
  request: (side: Side) => Promise<Request> | Request;
  /** What a caller the route allows gets: a status (and code when it is not a success). */
  allowed: number | { status: number; code: string };
  /**
   * Required on routes the tenant role may call. 'object': the request names a tenant's objects
   * (B's answer 404 to A's token); 'list': it lists, and A's token sees nothing of B's.
   */
  tenant?: 'object' | 'list';
}

interface DeniedEntry {
  type: string;
  code: string;
  actor: Record<string, unknown>;
  reason: string;
}

describe('the route x role access matrix', () => {
  const prefix = uniquePrefix('access-matrix');
  const routes = apiRoutes();
  let h: Harness;
  let admin: ReturnType<typeof api>;
  let f: ReturnType<typeof factories>;
  const clients = new Map<Caller, ReturnType<typeof api>>();
  /** Token ids of the role tokens, for the actor of their refusals. */
  const tokenIds = new Map<Role, string>();
  /** Every token text the test used: none may appear in the log. */
  const secrets: string[] = [TEST_ADMIN_TOKEN];
  const logged: { level: string; message: string }[] = [];
  let A: Side;
  let B: Side;
  let src: any;
  let dst: any;
  let migration: any;
  let auditorTokenId: string;
  let n = 0;
  /** Names of the test's own, apart from the factories' (`tenant-1`...). */
  const unique = (what: string) => `${what}-m${++n}`;
  /** Route -> caller -> what it answered (`!` marks an answer this test refuses), printed at the end. */
  const table = new Map<string, Map<string, string>>();

  const logger: LoggerService = {
    log: (message: unknown) => void logged.push({ level: 'log', message: String(message) }),
    error: (message: unknown) => void logged.push({ level: 'error', message: String(message) }),
    warn: (message: unknown) => void logged.push({ level: 'warn', message: String(message) }),
    debug: (message: unknown) => void logged.push({ level: 'debug', message: String(message) }),
    verbose: (message: unknown) => void logged.push({ level: 'verbose', message: String(message) }),
  };

  // Fresh objects, made with the bootstrap admin token; each is remembered as its tenant's.
  const mine = <T extends { id: string }>(side: Side, object: T): T => (side.ids.add(object.id), object);
  const freshSegment = async (side: Side) => mine(side, await f.segment(side.tenant.id));
  const freshGroup = async (side: Side) => mine(side, await f.securityGroup(side.tenant.id, { rules: [] }));
  const freshPort = async (side: Side, fields: Record<string, unknown> = {}) => mine(side, await f.port(side.segment.id, fields));
  /** A session of a fresh port to a VXLAN collector (no overlap with any other). */
  const freshSession = async (side: Side) =>
    mine(side, await created(admin.post('/v1/mirror-sessions', { tenantId: side.tenant.id, name: unique('mirror'), sources: [{ portId: (await freshPort(side)).id }], sink: { type: 'vxlan', remoteIp: '192.0.2.50' } })));
  /** Without an agent on the destination the migration stays `preparing` (202). */
  const freshMigration = async () => {
    const port = await freshPort(A, { hostId: src.id });
    const res = await admin.post('/v1/migrations?timeout=0', { portIds: [port.id], sourceHostId: src.id, destinationHostId: dst.id });
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 202, body: { state: 'preparing' } });
    return res.body;
  };

  /** Every route's call. Keyed like the route table (`METHOD /path/:id`). */
  const FIXTURES: Record<string, Fixture> = {
    'GET /healthz': { request: () => ({ path: '/healthz' }), allowed: 200 },
    'GET /readyz': { request: () => ({ path: '/readyz' }), allowed: 200 },

    'POST /v1/tenants': { request: () => ({ path: '/v1/tenants', body: { name: unique('tenant') } }), allowed: 201 },
    'GET /v1/tenants': { request: () => ({ path: '/v1/tenants?limit=1000' }), allowed: 200, tenant: 'list' },
    'GET /v1/tenants/:id': { request: (s) => ({ path: `/v1/tenants/${s.tenant.id}` }), allowed: 200, tenant: 'object' },
    'DELETE /v1/tenants/:id': { request: async () => ({ path: `/v1/tenants/${(await f.tenant()).id}` }), allowed: 204 },

    'POST /v1/segments': { request: (s) => ({ path: '/v1/segments', body: { tenantId: s.tenant.id, name: unique('segment') } }), allowed: 201, tenant: 'object' },
    'GET /v1/segments': { request: () => ({ path: '/v1/segments?limit=1000' }), allowed: 200, tenant: 'list' },
    'GET /v1/segments/:id': { request: (s) => ({ path: `/v1/segments/${s.segment.id}` }), allowed: 200, tenant: 'object' },
    'DELETE /v1/segments/:id': { request: async (s) => ({ path: `/v1/segments/${(await freshSegment(s)).id}` }), allowed: 204, tenant: 'object' },
    'GET /v1/segments/:id/mappings': { request: (s) => ({ path: `/v1/segments/${s.segment.id}/mappings` }), allowed: 200 },

    'POST /v1/hosts': { request: () => ({ path: '/v1/hosts', body: { name: unique('hv'), vtepIp: `203.0.113.${(n % 250) + 1}` } }), allowed: 201 },
    'GET /v1/hosts': { request: () => ({ path: '/v1/hosts' }), allowed: 200 },
    'GET /v1/hosts/:id': { request: () => ({ path: `/v1/hosts/${src.id}` }), allowed: 200 },
    'PATCH /v1/hosts/:id': { request: async () => ({ path: `/v1/hosts/${(await f.host()).id}`, body: { name: unique('renamed') } }), allowed: 200 },
    'DELETE /v1/hosts/:id': { request: async () => ({ path: `/v1/hosts/${(await f.host()).id}` }), allowed: 204 },

    'POST /v1/ports': { request: (s) => ({ path: '/v1/ports', body: { segmentId: s.segment.id } }), allowed: 201, tenant: 'object' },
    'POST /v1/ports/batch': { request: (s) => ({ path: '/v1/ports/batch', body: { ports: [{ segmentId: s.segment.id }, { segmentId: s.segment.id }] } }), allowed: 201, tenant: 'object' },
    'GET /v1/ports': { request: () => ({ path: '/v1/ports?limit=1000' }), allowed: 200, tenant: 'list' },
    'GET /v1/ports/:id': { request: (s) => ({ path: `/v1/ports/${s.port.id}` }), allowed: 200, tenant: 'object' },
    'PATCH /v1/ports/:id': { request: async (s) => ({ path: `/v1/ports/${(await freshPort(s)).id}`, body: { vmId: unique('vm') } }), allowed: 200, tenant: 'object' },
    'DELETE /v1/ports/:id': { request: async (s) => ({ path: `/v1/ports/${(await freshPort(s)).id}` }), allowed: 204, tenant: 'object' },

    'POST /v1/security-groups': { request: (s) => ({ path: '/v1/security-groups', body: { tenantId: s.tenant.id, name: unique('group') } }), allowed: 201, tenant: 'object' },
    'GET /v1/security-groups': { request: () => ({ path: '/v1/security-groups?limit=1000' }), allowed: 200, tenant: 'list' },
    'GET /v1/security-groups/:id': { request: (s) => ({ path: `/v1/security-groups/${s.group.id}` }), allowed: 200, tenant: 'object' },
    'PUT /v1/security-groups/:id': { request: async (s) => ({ path: `/v1/security-groups/${(await freshGroup(s)).id}`, body: { name: unique('group'), rules: [] } }), allowed: 200, tenant: 'object' },
    'PATCH /v1/security-groups/:id': { request: async (s) => ({ path: `/v1/security-groups/${(await freshGroup(s)).id}`, body: { description: 'changed' } }), allowed: 200, tenant: 'object' },
    'DELETE /v1/security-groups/:id': { request: async (s) => ({ path: `/v1/security-groups/${(await freshGroup(s)).id}` }), allowed: 204, tenant: 'object' },

    'POST /v1/mirror-sessions': {
      request: async (s) => ({ path: '/v1/mirror-sessions', body: { tenantId: s.tenant.id, name: unique('mirror'), sources: [{ portId: (await freshPort(s)).id }], sink: { type: 'vxlan', remoteIp: '192.0.2.51' } } }),
      allowed: 201,
      tenant: 'object',
    },
    'GET /v1/mirror-sessions': { request: () => ({ path: '/v1/mirror-sessions?limit=1000' }), allowed: 200, tenant: 'list' },
    'GET /v1/mirror-sessions/:id': { request: (s) => ({ path: `/v1/mirror-sessions/${s.session.id}` }), allowed: 200, tenant: 'object' },
    'PATCH /v1/mirror-sessions/:id': { request: async (s) => ({ path: `/v1/mirror-sessions/${(await freshSession(s)).id}`, body: { enabled: false } }), allowed: 200, tenant: 'object' },
    'DELETE /v1/mirror-sessions/:id': { request: async (s) => ({ path: `/v1/mirror-sessions/${(await freshSession(s)).id}` }), allowed: 204, tenant: 'object' },

    'POST /v1/migrations': {
      request: async () => ({ path: '/v1/migrations?timeout=0', body: { portIds: [(await freshPort(A, { hostId: src.id })).id], sourceHostId: src.id, destinationHostId: dst.id } }),
      allowed: 202,
    },
    'GET /v1/migrations': { request: () => ({ path: '/v1/migrations?limit=5' }), allowed: 200 },
    'GET /v1/migrations/:id': { request: () => ({ path: `/v1/migrations/${migration.id}` }), allowed: 200 },
    // No agent acknowledges the prepare: the commit reaches the service, which refuses it for that.
    'POST /v1/migrations/:id/commit': { request: async () => ({ path: `/v1/migrations/${(await freshMigration()).id}/commit` }), allowed: { status: 409, code: 'MIGRATION_NOT_READY' } },
    'POST /v1/migrations/:id/abort': { request: async () => ({ path: `/v1/migrations/${(await freshMigration()).id}/abort` }), allowed: 200 },

    'POST /v1/tokens': { request: () => ({ path: '/v1/tokens', body: { name: unique('token'), role: 'auditor' } }), allowed: 201 },
    'GET /v1/tokens': { request: () => ({ path: '/v1/tokens' }), allowed: 200 },
    'GET /v1/tokens/:id': { request: () => ({ path: `/v1/tokens/${auditorTokenId}` }), allowed: 200 },
    'DELETE /v1/tokens/:id': { request: async () => ({ path: `/v1/tokens/${(await created(admin.post('/v1/tokens', { name: unique('doomed'), role: 'auditor' }))).id}` }), allowed: 204 },

    'GET /v1/events': { request: () => ({ path: '/v1/events?limit=5' }), allowed: 200 },
    'GET /v1/audit': { request: () => ({ path: '/v1/audit' }), allowed: 200 },
    'GET /v1/audit/findings': { request: () => ({ path: '/v1/audit/findings?limit=5' }), allowed: 200 },

    'GET /v1/admin/recovery': { request: () => ({ path: '/v1/admin/recovery' }), allowed: 200 },
    // The store is not in recovery here: an admin's accept is refused as such (store-recovery.medium-spec.ts accepts one).
    'POST /v1/admin/recovery/accept': { request: () => ({ path: '/v1/admin/recovery/accept' }), allowed: { status: 409, code: 'NOT_IN_RECOVERY' } },

    'GET /metrics': { request: () => ({ path: '/metrics' }), allowed: 200 },
  };

  const fixtureOf = (route: Route): Fixture => {
    const fixture = FIXTURES[routeKey(route)];
    if (!fixture) {
      throw new Error(`no fixture for ${routeKey(route)} (${route.name}): add one to FIXTURES in access-matrix.medium-spec.ts`);
    }
    return fixture;
  };

  /** 'allowed', or the status the caller must get. */
  const expectation = (route: Route, caller: Caller): 'allowed' | 401 | 403 => {
    if (route.access?.public) {
      return 'allowed';
    }
    if ((UNAUTHENTICATED as readonly string[]).includes(caller)) {
      return 401;
    }
    return allows(route.access, caller as Role) ? 'allowed' : 403;
  };

  // The authenticator writes at most DENIALS_PER_SOURCE_PER_SECOND refusals a second from one
  // address to the trail (the rest are only counted): the test, one address, stays under that,
  // so every refusal's entry must be there. A call
  // counts in each second it spans.
  const perSecond = new Map<number, number>();
  const second = (ms: number) => Math.floor(ms / 1000);
  async function paced<T>(call: () => Promise<T>): Promise<T> {
    const now = second(Date.now());
    if ((perSecond.get(now) ?? 0) >= DENIALS_PER_SOURCE_PER_SECOND - 5) {
      await waitUntil(() => second(Date.now()) > now, 2_000);
    }
    const start = Date.now();
    const result = await call();
    for (let s = second(start); s <= second(Date.now()); s++) {
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    }
    return result;
  }

  const eventsKey = () => h.app.get(RedisStore).keys.deniedEvents();
  const lastEventId = async (): Promise<string> => (await h.redis.xrevrange(eventsKey(), '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
  const deniedAfter = async (id: string): Promise<DeniedEntry[]> =>
    (await h.redis.xrange(eventsKey(), `(${id}`, '+'))
      .map(([, fields]) => Object.fromEntries(fields.flatMap((v, i) => (i % 2 ? [] : [[v, fields[i + 1]]]))) as Record<string, string>)
      .filter((e) => e.type === 'denied')
      .map((e) => ({ type: e.type, code: e.code, actor: JSON.parse(e.actor) as Record<string, unknown>, reason: e.reason }));

  /** One call, and the `denied` entries it left in the trail (waited for when it was refused: they are written after the answer). */
  async function send(caller: Caller, method: string, request: Request): Promise<ApiResponse & { denied: DeniedEntry[] }> {
    const marker = await lastEventId();
    const res = await paced(() => clients.get(caller)!.raw(method, request.path, request.body));
    if (res.status === 401 || res.status === 403) {
      // Missing after the deadline: check() reports it with the rest of the route's answers.
      await waitUntil(async () => (await deniedAfter(marker)).length > 0, 2_000).catch(() => undefined);
    }
    return { ...res, denied: await deniedAfter(marker) };
  }

  /** The store but the audit trail, which refusals append to. */
  const state = async () => {
    const dump = await h.dump();
    delete dump[eventsKey()];
    return dump;
  };
  const changedKeys = (before: Record<string, string>, after: Record<string, string>) => [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]);

  /** What is wrong with an answer, given what was expected ([] when right); records the cell of the table. */
  function check(route: Route, caller: Caller, column: string, res: ApiResponse & { denied: DeniedEntry[] }, want: 'allowed' | 401 | 403 | 404): string[] {
    const problems: string[] = [];
    const at = `${routeKey(route)} as ${column}`;
    const answer = `${res.status} ${JSON.stringify(res.body)?.slice(0, 200)}`;
    if (want === 'allowed') {
      const allowed = fixtureOf(route).allowed;
      const status = typeof allowed === 'number' ? allowed : allowed.status;
      if (res.status !== status || (typeof allowed !== 'number' && res.body?.code !== allowed.code)) {
        problems.push(`${at}: want ${JSON.stringify(allowed)}, got ${answer}`);
      }
    } else if (want === 401) {
      if (res.status !== 401 || res.body?.code !== 'UNAUTHENTICATED') {
        problems.push(`${at}: want 401 UNAUTHENTICATED, got ${answer}`);
      }
    } else if (want === 403) {
      const named = /needs role (.+?); /.exec(res.body?.message ?? '')?.[1].split(' or ');
      if (res.status !== 403 || res.body?.code !== 'FORBIDDEN' || JSON.stringify(named) !== JSON.stringify(rolesOf(route.access))) {
        problems.push(`${at}: want 403 FORBIDDEN naming ${rolesOf(route.access).join(' or ')}, got ${answer}`);
      }
    } else if (res.status !== 404 || !/_NOT_FOUND$/.test(res.body?.code ?? '')) {
      problems.push(`${at}: want 404 *_NOT_FOUND (another tenant's object), got ${answer}`);
    }
    // The trail: one `denied` entry per refusal, naming the caller (or its address) and the route pattern.
    if (res.status === 401 || res.status === 403) {
      const code = res.status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN';
      const actor =
        res.status === 401
          ? { kind: 'anonymous', source: '127.0.0.1', method: route.method, route: route.path }
          : { kind: 'token', tokenId: tokenIds.get(caller as Role), role: caller, source: '127.0.0.1', method: route.method, route: route.path };
      const ok = res.denied.length === 1 && res.denied[0].code === code && Object.entries(actor).every(([k, v]) => res.denied[0].actor[k] === v);
      if (!ok) {
        problems.push(`${at}: want one denied entry ${code} by ${JSON.stringify(actor)}, the trail has ${JSON.stringify(res.denied)}`);
      }
    } else if (res.denied.length) {
      problems.push(`${at}: answered ${res.status} but the trail has denied entries ${JSON.stringify(res.denied)}`);
    }
    table.get(routeKey(route))!.set(column, `${res.status}${problems.length ? '!' : ''}`);
    return problems;
  }

  beforeAll(async () => {
    h = await startController({ prefix, logger });
    admin = api(h.url);
    f = factories(admin);
    const token = async (body: Record<string, unknown>) => {
      const made = await created(admin.post('/v1/tokens', body));
      secrets.push(made.token);
      return made;
    };
    // First, so that it expires while the rest is made.
    const expiresAtMs = Date.now() + 3_000;
    const expiring = await token({ name: 'expiring-admin', role: 'admin', expiresAt: new Date(expiresAtMs).toISOString() });
    expect((await api(h.url, expiring.token).get('/v1/tokens')).status).toBe(200);

    const side = async (label: 'A' | 'B'): Promise<Side> => {
      const tenant = await f.tenant({ name: `tenant-${label}` });
      const s: Side = { tenant, segment: undefined, group: undefined, port: undefined, session: undefined, ids: new Set([tenant.id, tenant.defaultSecurityGroupId]) };
      s.segment = await freshSegment(s);
      s.group = await freshGroup(s);
      s.port = await freshPort(s, { hostId: src.id, securityGroupIds: [s.group.id] });
      const analyzer = await freshPort(s, { role: 'analyzer', hostId: dst.id });
      s.session = mine(s, await created(admin.post('/v1/mirror-sessions', { tenantId: tenant.id, name: `mirror-${label}`, sources: [{ portId: s.port.id }], sink: { type: 'port', portId: analyzer.id } })));
      return s;
    };
    src = await f.host({ name: 'source' });
    dst = await f.host({ name: 'destination' });
    A = await side('A');
    B = await side('B');
    migration = await freshMigration();

    const roleTokens: Record<Role, Record<string, unknown>> = {
      admin: { name: 'second-admin', role: 'admin' },
      operator: { name: 'operator', role: 'operator' },
      tenant: { name: 'tenant-a', role: 'tenant', tenantId: A.tenant.id },
      'migration-hook': { name: 'hook', role: 'migration-hook' },
      auditor: { name: 'auditor', role: 'auditor' },
      metrics: { name: 'scraper', role: 'metrics' },
    };
    for (const role of ROLES) {
      const made = await token(roleTokens[role]);
      tokenIds.set(role, made.id);
      clients.set(role, api(h.url, made.token));
    }
    auditorTokenId = tokenIds.get('auditor')!;
    const unknown = `ovl_${randomBytes(32).toString('base64url')}`;
    secrets.push(unknown);
    clients.set('no token', api(h.url, null));
    clients.set('malformed', api(h.url, 'not-a-token'));
    clients.set('unknown', api(h.url, unknown));
    clients.set('expired', api(h.url, expiring.token));

    // Revoked: it worked, then it is deleted; every replica refuses it within the token cache's period.
    const revoked = await token({ name: 'revoked-admin', role: 'admin' });
    clients.set('revoked', api(h.url, revoked.token));
    expect((await clients.get('revoked')!.get('/v1/tokens')).status).toBe(200);
    expect((await admin.delete(`/v1/tokens/${revoked.id}`)).status).toBe(204);
    await waitUntil(async () => (await send('revoked', 'GET', { path: '/v1/tokens' })).status === 401, 2_000, () => 'the revoked token refused');
    await waitUntil(async () => Date.now() >= expiresAtMs && (await send('expired', 'GET', { path: '/v1/tokens' })).status === 401, 10_000, () => 'the expired token refused');
  });

  afterAll(async () => {
    const columns = [...CALLERS, 'tenant on B'];
    const width = Math.max(...routes.map((r) => routeKey(r).length)) + 2;
    const cell = (c: string) => c.padEnd(Math.max(c.length, 8) + 1);
    const lines = [
      cell('').padEnd(width) + columns.map(cell).join(''),
      ...routes.map((r) => routeKey(r).padEnd(width) + columns.map((c) => cell(table.get(routeKey(r))?.get(c) ?? (c === 'tenant on B' ? '' : '?'))).join('')),
    ];
    console.log(`route x caller -> status (! = not what the route table and fixture want)\n${lines.join('\n')}`);
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  it('has a fixture for every route, and declares how each route the tenant role may call is scoped', () => {
    const keys = routes.map(routeKey);
    expect({
      routesWithoutFixture: keys.filter((k) => !FIXTURES[k]),
      fixturesWithoutRoute: Object.keys(FIXTURES).filter((k) => !keys.includes(k)),
      tenantRoutesWithoutScope: routes.filter((r) => allows(r.access, 'tenant') && !r.access?.public && FIXTURES[routeKey(r)] && !FIXTURES[routeKey(r)].tenant).map(routeKey),
    }).toEqual({ routesWithoutFixture: [], fixturesWithoutRoute: [], tenantRoutesWithoutScope: [] });
  });

  it('serves exactly the routes of the route table (as Nest mapped them), and the status page', () => {
    const served = logged.map((l) => /^Mapped \{(.+), (\w+)\} route$/.exec(l.message)).flatMap((m) => (m ? [`${m[2]} ${m[1]}`] : []));
    expect(served.sort()).toEqual([...routes, ...pageRoutes()].map(routeKey).sort());
  });

  it('serves the OpenAPI document, with every operation’s roles, without a token', async () => {
    const res = await api(h.url, null).get('/docs-json');
    expect(res.status).toBe(200);
    expect(res.body.paths).toEqual(JSON.parse(JSON.stringify((buildOpenApiDocument(h.config.maxBatchSize) as { paths: unknown }).paths)));
    expect(res.body.paths['/v1/ports/{id}'].delete['x-roles']).toEqual(['admin', 'operator', 'tenant']);
  });

  it.each(routes.map((r) => [routeKey(r), r] as const))('%s answers every caller as its declaration says; refusals change nothing but the trail', async (_key, route) => {
    const fixture = fixtureOf(route);
    table.set(routeKey(route), new Map());
    const problems: string[] = [];
    const refused = CALLERS.filter((c) => expectation(route, c) !== 'allowed');
    const allowed = CALLERS.filter((c) => expectation(route, c) === 'allowed');

    // The refused calls, on objects made before the store is read: afterwards it must be the same.
    const requests: Request[] = [];
    for (let i = 0; i < refused.length; i++) {
      requests.push(await fixture.request(A));
    }
    const before = await state();
    for (const [i, caller] of refused.entries()) {
      problems.push(...check(route, caller, caller, await send(caller, route.method, requests[i]), expectation(route, caller)));
    }
    const changed = changedKeys(before, await state());
    if (changed.length) {
      problems.push(`${routeKey(route)}: refused calls changed ${changed.join(', ')}`);
    }

    // The allowed calls, each on its own objects (tenant A's, which the tenant token may use).
    for (const caller of allowed) {
      problems.push(...check(route, caller, caller, await send(caller, route.method, await fixture.request(A)), 'allowed'));
    }
    expect(problems).toEqual([]);
  });

  const tenantRoutes = routes.filter((r) => allows(r.access, 'tenant') && !r.access?.public && FIXTURES[routeKey(r)]?.tenant);
  it.each(tenantRoutes.map((r) => [routeKey(r), r] as const))("%s: tenant A's token gets nothing of tenant B's (404, or absent from the list)", async (_key, route) => {
    const fixture = fixtureOf(route);
    if (!table.has(routeKey(route))) {
      table.set(routeKey(route), new Map());
    }
    const request = await fixture.request(B);
    const before = await state();
    const res = await send('tenant', route.method, request);
    const problems: string[] = [];
    if (fixture.tenant === 'object') {
      problems.push(...check(route, 'tenant', 'tenant on B', res, 404));
      const changed = changedKeys(before, await state());
      if (changed.length) {
        problems.push(`${routeKey(route)} as tenant on B's objects changed ${changed.join(', ')}`);
      }
    } else {
      problems.push(...check(route, 'tenant', 'tenant on B', res, 'allowed'));
      const text = JSON.stringify(res.body);
      const leaked = [...B.ids].filter((id) => text.includes(id));
      if (leaked.length) {
        problems.push(`${routeKey(route)} as tenant A lists ${leaked.length} of tenant B's objects: ${leaked.join(', ')}`);
        table.get(routeKey(route))!.set('tenant on B', `${res.status}!`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('logs every refusal at warn with the source address, and never a token', () => {
    const refusals = logged.filter((l) => l.level === 'warn' && /^refused /.test(l.message));
    expect(refusals.length).toBeGreaterThan(routes.length);
    expect(refusals.every((l) => l.message.includes(' from 127.0.0.1: '))).toBe(true);
    expect(logged.filter((l) => secrets.some((s) => l.message.includes(s)))).toEqual([]);
  });
});
