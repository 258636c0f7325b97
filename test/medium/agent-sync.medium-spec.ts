import { RedisStore } from '../../src/controller/store/redis-store';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { agentResources, dataplaneMatchesDesired, makeAgent, spansFromScratch, waitUntil, type TestAgent } from '../support/agents';

describe('agent sync', () => {
  const prefix = uniquePrefix('sync');
  let ctl: Harness;
  const agents: TestAgent[] = [];

  beforeAll(async () => {
    ctl = await startController({ prefix });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  async function converged(): Promise<boolean> {
    const truth = await spansFromScratch(ctl.redis, ctl.app.get(RedisStore));
    return agents.every((a) => {
      const hostId = truth.hostsByName.get(a.agent.config.hostName)!;
      return JSON.stringify(agentResources(a.agent)) === JSON.stringify(truth.spans.get(hostId) ?? []) && dataplaneMatchesDesired(a);
    });
  }

  it('gives each agent exactly its span, then keeps it current with deltas', async () => {
    const client = api(ctl.url);
    const tenant = (await client.post('/v1/tenants', { name: 'acme' })).body;
    const hosts = [];
    for (let i = 1; i <= 3; i++) {
      hosts.push((await client.post('/v1/hosts', { name: `hv${i}`, vtepIp: `192.0.2.${i}` })).body);
      agents.push(makeAgent(`hv${i}`, ctl.grpcTarget, { vtepIp: `192.0.2.${i}` }));
    }
    const web = (await client.post('/v1/segments', { tenantId: tenant.id, name: 'web', cidr: '10.0.0.0/24' })).body;
    const db = (await client.post('/v1/segments', { tenantId: tenant.id, name: 'db' })).body;
    await client.post('/v1/ports/batch', {
      ports: [
        { segmentId: web.id, hostId: hosts[0].id, ips: ['10.0.0.10'] },
        { segmentId: web.id, hostId: hosts[1].id, ips: ['10.0.0.11'] },
        { segmentId: db.id, hostId: hosts[2].id },
      ],
    });
    await Promise.all(agents.map((a) => a.agent.start()));
    await waitUntil(converged, 10_000, () => 'after snapshot');
    // hv3 is on db only: it must know nothing of web.
    expect(agents[2].agent.state.segments.has(web.id)).toBe(false);
    expect(agents[0].dataplane.dump().fdb.size).toBe(1);

    const moved = (await client.post('/v1/ports', { segmentId: web.id, hostId: hosts[2].id, ips: ['10.0.0.12'] })).body;
    await waitUntil(converged, 10_000, () => 'after hv3 joined web');
    expect(agents[2].agent.state.segments.has(web.id)).toBe(true);
    await client.patch(`/v1/ports/${moved.id}`, { hostId: null });
    await waitUntil(converged, 10_000, () => 'after hv3 left web');
    expect(agents[2].agent.state.segments.has(web.id)).toBe(false);
    expect([...agents[2].dataplane.dump().fdb.values()].some((e) => e.vni === web.vni)).toBe(false);
  });

  it('reports hosts connected with their applied revision, and ports realized', async () => {
    const client = api(ctl.url);
    const hosts = (await client.get('/v1/hosts')).body.items;
    await waitUntil(async () => (await client.get('/v1/hosts')).body.items.every((h: any) => h.connected && h.lag === 0), 10_000);
    const host = (await client.get(`/v1/hosts/${hosts[0].id}`)).body;
    expect(host).toMatchObject({ connected: true, lag: 0 });
    expect(host.appliedRevision).toBeGreaterThan(0);

    const segment = (await client.get('/v1/segments?limit=1')).body.items[0];
    const port = await client.post(`/v1/ports?wait=realized&timeout=10000`, { segmentId: segment.id, hostId: hosts[1].id });
    expect(port.status).toBe(201);
    expect(port.body.realized).toBe(true);
    // Realized means the agents hold it now, not eventually.
    const holders = agents.filter((a) => a.agent.state.ports.has(port.body.id));
    expect(holders.length).toBeGreaterThan(0);
    expect((await client.get(`/v1/ports/${port.body.id}`)).body.realized).toBe(true);
  });

  it('resumes a reconnecting agent with deltas only when the log covers the gap', async () => {
    const client = api(ctl.url);
    const a = agents[0];
    await a.agent.stop();
    const snapshotsBefore = a.agent.stats.snapshots;
    const segment = (await client.get('/v1/segments?limit=1')).body.items[0];
    const hostId = (await client.get('/v1/hosts?limit=1')).body.items[0].id;
    for (let i = 0; i < 5; i++) {
      await client.post('/v1/ports', { segmentId: segment.id, hostId });
    }
    const server = ctl.app.get(SessionRegistry);
    const deltasBefore = a.agent.stats.deltas;
    await a.agent.start();
    await waitUntil(converged, 10_000, () => 'after resume');
    expect(a.agent.stats.snapshots).toBe(snapshotsBefore);
    const session = server.session(hostId)!;
    expect(session.snapshotsSent).toBe(0);
    // Exactly one message carried the five ports: the resume delta.
    expect(Object.values(session.sent).reduce((n, c) => n + c.messages, 0)).toBe(1);
    expect(a.agent.stats.deltas - deltasBefore).toBe(1);
  });

  it('sends a snapshot when the log no longer covers the agent’s revision', async () => {
    const client = api(ctl.url);
    const a = agents[0];
    await a.agent.stop();
    const segment = (await client.get('/v1/segments?limit=1')).body.items[0];
    const hostId = (await client.get('/v1/hosts?limit=1')).body.items[0].id;
    await client.post('/v1/ports', { segmentId: segment.id, hostId });
    // The change log is trimmed past the agent's revision.
    await ctl.redis.xtrim(ctl.app.get(RedisStore).keys.changeLog(), 'MAXLEN', 0);
    const snapshotsBefore = a.agent.stats.snapshots;
    await a.agent.start();
    await waitUntil(converged, 10_000, () => 'after snapshot resync');
    expect(a.agent.stats.snapshots).toBe(snapshotsBefore + 1);
    expect(ctl.app.get(SessionRegistry).session(hostId)!.snapshotsSent).toBe(1);
  });
});
