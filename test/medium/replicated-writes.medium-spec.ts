import Redis from 'ioredis';
import { apiRoutes } from '../../src/controller/app.module';
import { routeKey } from '../../src/controller/auth/route-table';
import { keysFor } from '../../src/controller/store/keys';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';

/*
 * "Acknowledged means replicated" (OVERLAY_REDIS_MIN_REPLICAS=1) on a private master and replica:
 * a write answers 2xx only once the replica has it, and when the replica cannot confirm it (here
 * SIGSTOPped: connected, silent) every write route of the API answers 503 STORE_UNAVAILABLE,
 * its outcome unknown, while reads go on. Every write route needs a request below: a new one
 * fails this test until it has one, so that no write path can skip the wait.
 *
 * Two controllers share the deployment: `setup` (no replica required) makes the objects each
 * request needs; `strict` (one replica required, 300 ms) is the one under test.
 */

interface Request {
  path: string;
  body?: unknown;
}

describe('acknowledged means replicated (OVERLAY_REDIS_MIN_REPLICAS=1)', () => {
  const prefix = uniquePrefix('replicated-writes');
  let master: PrivateRedis;
  let replica: PrivateRedis | undefined;
  let replicaClient: Redis;
  let setup: Harness;
  let strict: Harness;
  const agents: TestAgent[] = [];
  let n = 0;
  const unique = (what: string) => `${what}-r${++n}`;

  beforeAll(async () => {
    master = await startPrivateRedis();
    replica = await startPrivateRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    replicaClient = new Redis(replica.url);
    await waitUntil(async () => (await replicaClient.info('replication')).includes('master_link_status:up'), 15_000, () => 'replica not in sync');
    setup = await startController({ prefix, redisUrl: master.url, env: { OVERLAY_MIGRATION_MAX_CONNECTIONS: '0' } });
    strict = await startController({ prefix, redisUrl: master.url, env: { OVERLAY_REDIS_MIN_REPLICAS: '1', OVERLAY_REDIS_REPLICA_TIMEOUT_MS: '300', OVERLAY_MIGRATION_MAX_CONNECTIONS: '0' } });
  });

  afterAll(async () => {
    replica?.resume();
    await Promise.all(agents.map((t) => t.cleanup()));
    await Promise.all([setup?.close(), strict?.close()]);
    replicaClient?.disconnect();
    await replica?.destroy();
    await master?.destroy();
  });

  it('answers a write once the replica has it', async () => {
    const res = await api(strict.url).post('/v1/tenants', { name: unique('tenant') });
    expect(res.status).toBe(201);
    // No wait here: the write was on the replica before the answer.
    expect(await replicaClient.hexists(keysFor(prefix).tenants(), res.body.id)).toBe(1);
  });

  it('refuses every write route 503 STORE_UNAVAILABLE when the replica cannot confirm, and keeps serving reads', async () => {
    const admin = api(setup.url);
    const f = factories(admin);
    const tenant = await f.tenant();
    const segment = await f.segment(tenant.id);
    const src = await f.host({ name: 'mig-src', vtepIp: '192.0.2.61' });
    const dst = await f.host({ name: 'mig-dst', vtepIp: '192.0.2.62' });
    for (const [name, vtepIp] of [
      ['mig-src', '192.0.2.61'],
      ['mig-dst', '192.0.2.62'],
    ]) {
      const agent = makeAgent(name, setup.grpcTarget, { vtepIp });
      agents.push(agent);
      await agent.agent.start();
    }
    const freshPort = (fields: Record<string, unknown> = {}) => f.port(segment.id, fields);
    const freshGroup = () => f.securityGroup(tenant.id, { rules: [] });
    const freshSession = async () =>
      created(admin.post('/v1/mirror-sessions', { tenantId: tenant.id, name: unique('mirror'), sources: [{ portId: (await freshPort()).id }], sink: { type: 'vxlan', remoteIp: '192.0.2.50' } }));
    /** Prepared, and acknowledged by the destination's agent: ready to commit. */
    const readyMigration = async () => {
      const port = await freshPort({ hostId: src.id });
      const res = await admin.post('/v1/migrations', { portIds: [port.id], sourceHostId: src.id, destinationHostId: dst.id });
      expect({ status: res.status, body: res.body }).toMatchObject({ status: 201, body: { state: 'prepared' } });
      return res.body;
    };

    /** Every write route's request, keyed like the route table. */
    const WRITES: Record<string, () => Promise<Request>> = {
      'POST /v1/tenants': async () => ({ path: '/v1/tenants', body: { name: unique('tenant') } }),
      'DELETE /v1/tenants/:id': async () => ({ path: `/v1/tenants/${(await f.tenant()).id}` }),
      'POST /v1/segments': async () => ({ path: '/v1/segments', body: { tenantId: tenant.id, name: unique('segment') } }),
      'DELETE /v1/segments/:id': async () => ({ path: `/v1/segments/${(await f.segment(tenant.id)).id}` }),
      'POST /v1/hosts': async () => ({ path: '/v1/hosts', body: { name: unique('hv'), vtepIp: '203.0.113.7' } }),
      'PATCH /v1/hosts/:id': async () => ({ path: `/v1/hosts/${(await f.host()).id}`, body: { name: unique('renamed') } }),
      'DELETE /v1/hosts/:id': async () => ({ path: `/v1/hosts/${(await f.host()).id}` }),
      'POST /v1/ports': async () => ({ path: '/v1/ports', body: { segmentId: segment.id } }),
      'POST /v1/ports/batch': async () => ({ path: '/v1/ports/batch', body: { ports: [{ segmentId: segment.id }, { segmentId: segment.id }] } }),
      'PATCH /v1/ports/:id': async () => ({ path: `/v1/ports/${(await freshPort()).id}`, body: { vmId: unique('vm') } }),
      'DELETE /v1/ports/:id': async () => ({ path: `/v1/ports/${(await freshPort()).id}` }),
      'POST /v1/security-groups': async () => ({ path: '/v1/security-groups', body: { tenantId: tenant.id, name: unique('group') } }),
      'PUT /v1/security-groups/:id': async () => ({ path: `/v1/security-groups/${(await freshGroup()).id}`, body: { name: unique('group'), rules: [] } }),
      'PATCH /v1/security-groups/:id': async () => ({ path: `/v1/security-groups/${(await freshGroup()).id}`, body: { description: 'changed' } }),
      'DELETE /v1/security-groups/:id': async () => ({ path: `/v1/security-groups/${(await freshGroup()).id}` }),
      'POST /v1/mirror-sessions': async () => ({
        path: '/v1/mirror-sessions',
        body: { tenantId: tenant.id, name: unique('mirror'), sources: [{ portId: (await freshPort()).id }], sink: { type: 'vxlan', remoteIp: '192.0.2.51' } },
      }),
      'PATCH /v1/mirror-sessions/:id': async () => ({ path: `/v1/mirror-sessions/${(await freshSession()).id}`, body: { enabled: false } }),
      'DELETE /v1/mirror-sessions/:id': async () => ({ path: `/v1/mirror-sessions/${(await freshSession()).id}` }),
      'POST /v1/migrations': async () => ({ path: '/v1/migrations?timeout=0', body: { portIds: [(await freshPort({ hostId: src.id })).id], sourceHostId: src.id, destinationHostId: dst.id } }),
      'POST /v1/migrations/:id/commit': async () => ({ path: `/v1/migrations/${(await readyMigration()).id}/commit` }),
      'POST /v1/migrations/:id/abort': async () => ({ path: `/v1/migrations/${(await readyMigration()).id}/abort` }),
      'POST /v1/tokens': async () => ({ path: '/v1/tokens', body: { name: unique('token'), role: 'auditor' } }),
      'DELETE /v1/tokens/:id': async () => ({ path: `/v1/tokens/${(await created(admin.post('/v1/tokens', { name: unique('doomed'), role: 'auditor' }))).id}` }),
      'POST /v1/admin/recovery/accept': async () => ({ path: '/v1/admin/recovery/accept' }),
    };
    /** Routes refused before they write (so waiting for no replica), with their refusal. */
    const REFUSED: Record<string, { status: number; code: string; message: unknown }> = {
      // Outside a store recovery there is nothing to accept.
      'POST /v1/admin/recovery/accept': { status: 409, code: 'NOT_IN_RECOVERY', message: expect.any(String) },
    };
    const writeRoutes = apiRoutes().filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    expect(Object.keys(WRITES).sort()).toEqual(writeRoutes.map(routeKey).sort());

    // Each request's objects exist first (made while the replica confirms); then the replica stops answering.
    await waitUntil(() => agents.every((t) => t.agent.connected), 10_000, () => 'agents not connected');
    const requests = new Map<string, Request>();
    for (const [key, build] of Object.entries(WRITES)) {
      requests.set(key, await build());
    }
    const readable = await freshPort();
    replica!.pause();

    const client = api(strict.url);
    const answers: Record<string, { status: number; code?: string; message?: string }> = {};
    for (const [key, request] of requests) {
      const res = await client.raw(key.split(' ')[0], request.path, request.body);
      answers[key] = { status: res.status, code: res.body?.code, message: res.body?.message };
    }
    const expected = Object.fromEntries(
      Object.keys(WRITES).map((key) => [
        key,
        REFUSED[key] ?? { status: 503, code: 'STORE_UNAVAILABLE', message: expect.stringMatching(/not confirmed as replicated: 0 of the 1 replicas required confirmed it within 300 ms; its outcome is unknown/) },
      ]),
    );
    expect(answers).toEqual(expected);

    // Reads do not wait for replicas.
    expect((await client.get(`/v1/ports/${readable.id}`)).status).toBe(200);
    expect((await client.get(`/v1/segments/${segment.id}`)).status).toBe(200);

    // And writes are acknowledged again once the replica answers.
    replica!.resume();
    expect((await client.post('/v1/tenants', { name: unique('tenant') })).status).toBe(201);
  }, 120_000);
});
