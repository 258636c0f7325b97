import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { RawAgent } from '../support/raw-agent';

/**
 * A released VNI may return only once every host that ever connected has acknowledged its
 * removal: a host still holding forwarding entries for it could otherwise carry one tenant's
 * frames into the next owner's segment.
 */
describe('VNI quarantine tied to acknowledgements', () => {
  const prefix = uniquePrefix('quarantine-acks');
  let ctl: Harness;
  let agent: TestAgent;

  beforeAll(async () => {
    ctl = await startController({ prefix, env: { OVERLAY_VNI_RANGES: '300-300', OVERLAY_VNI_QUARANTINE_SECONDS: '0' } });
  });

  afterAll(async () => {
    await agent?.cleanup();
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('keeps a VNI out of circulation until a disconnected host has acknowledged its removal', async () => {
    const client = api(ctl.url);
    const tenantId = (await client.post('/v1/tenants', { name: 't' })).body.id;
    const host = (await client.post('/v1/hosts', { name: 'hv1', vtepIp: '192.0.2.1' })).body;
    const segment = (await client.post('/v1/segments', { tenantId, name: 'only' })).body;
    expect(segment.vni).toBe(300);
    const port = (await client.post('/v1/ports', { segmentId: segment.id, hostId: host.id })).body;

    agent = makeAgent('hv1', ctl.grpcTarget);
    await agent.agent.start();
    await waitUntil(() => agent.agent.state.segments.has(segment.id), 10_000);
    await agent.agent.stop();

    expect((await client.delete(`/v1/ports/${port.id}`)).status).toBe(204);
    expect((await client.delete(`/v1/segments/${segment.id}`)).status).toBe(204);
    // The quarantine time (0 s) is over, but hv1 never acknowledged: the VNI must not return.
    const deadline = Date.now() + 3_000; // past a few housekeeping rounds (every 2 s)
    while (Date.now() < deadline) {
      const refused = await client.post('/v1/segments', { tenantId, name: 'next' });
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('VNI_RANGE_EXHAUSTED');
      await new Promise((r) => setTimeout(r, 250));
    }

    // hv1 comes back, resumes, drops the segment and acknowledges: now the VNI returns.
    agent = makeAgent('hv1', ctl.grpcTarget, {}, agent.stateDir);
    await agent.agent.start();
    await waitUntil(() => !agent.agent.state.segments.has(segment.id), 10_000);
    let reissued: { vni: number } | undefined;
    await waitUntil(
      async () => {
        const res = await client.post('/v1/segments', { tenantId, name: 'next' });
        reissued = res.status === 201 ? res.body : undefined;
        return reissued !== undefined;
      },
      10_000,
      () => 'VNI never released after the acknowledgement',
    );
    expect(reissued!.vni).toBe(300);
  });

  it('releases it when the host that never acknowledged is deleted', async () => {
    const client = api(ctl.url);
    const tenantId = (await client.post('/v1/tenants', { name: 't2' })).body.id;
    const segments = (await client.get(`/v1/segments?limit=1000`)).body.items;
    const host = (await client.post('/v1/hosts', { name: 'hv2', vtepIp: '192.0.2.2' })).body;
    const holder = segments[0];
    const port = (await client.post('/v1/ports', { segmentId: holder.id, hostId: host.id })).body;
    const second = makeAgent('hv2', ctl.grpcTarget);
    await second.agent.start();
    await waitUntil(() => second.agent.state.segments.has(holder.id), 10_000);
    await second.cleanup(); // gone for good, without acknowledging what follows

    await client.delete(`/v1/ports/${port.id}`);
    await client.delete(`/v1/segments/${holder.id}`);
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await client.post('/v1/segments', { tenantId, name: 'blocked' })).status).toBe(409);

    expect((await client.delete(`/v1/hosts/${host.id}`)).status).toBe(204);
    await waitUntil(async () => (await client.post('/v1/segments', { tenantId, name: 'free' })).status === 201, 10_000, () => 'VNI never released after the host was deleted');
  });

  it('does not count again a deleted host whose agent acknowledges before its stream is closed', async () => {
    const client = api(ctl.url);
    const host = (await client.post('/v1/hosts', { name: 'hv3', vtepIp: '192.0.2.3' })).body;
    const raw = new RawAgent(ctl.grpcTarget, 'hv3', 'late-acker');
    await waitUntil(() => raw.delivered, 5_000, () => 'hv3 connected');
    const applied = () => ctl.redis.hget(`{${prefix}}:agents:applied`, host.id);
    await waitUntil(async () => (await applied()) !== null, 5_000, () => 'hv3 counted once connected');
    expect((await client.delete(`/v1/hosts/${host.id}`)).status).toBe(204);
    expect(await applied()).toBeNull();
    // The stream may still be open (it is closed once this replica's view applies the deletion,
    // which may follow the answer): an ack now must not put the deleted host back among those the
    // quarantine waits for.
    const revision = Number(await ctl.redis.get(`{${prefix}}:rev`));
    raw.send({ ack: { revision } });
    await waitUntil(() => raw.ended !== undefined, 5_000, () => 'the deleted host\u2019s stream was not closed');
    expect(await applied()).toBeNull();
    raw.close();
  });
});
