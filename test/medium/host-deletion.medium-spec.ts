import * as grpc from '@grpc/grpc-js';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { waitUntil } from '../support/agents';
import { RawAgent } from '../support/raw-agent';

/**
 * DELETE /v1/hosts/{id} ends the host's agent stream as soon as a replica's view applies the
 * deletion, on whichever replica holds the stream: NOT_FOUND, "the host was deleted". The
 * registry's housekeeping (every 2 s) would also end it; here it is stubbed out, so what ends
 * the stream can only be the deletion itself.
 */
describe('deleting a host ends its agent stream at once', () => {
  const prefix = uniquePrefix('host-deletion');
  let a: Harness;
  let b: Harness;
  let housekeeping: jest.SpyInstance;
  const agents: RawAgent[] = [];

  beforeAll(async () => {
    a = await startController({ prefix });
    b = await startController({ prefix });
    housekeeping = jest.spyOn(SessionRegistry.prototype as unknown as { housekeeping(): Promise<void> }, 'housekeeping').mockResolvedValue(undefined);
  });

  afterAll(async () => {
    housekeeping?.mockRestore();
    agents.forEach((agent) => agent.close());
    await a?.close();
    await b?.close();
    await dropPrefix(a.config.redisUrl, prefix);
  });

  /** A registered host with a raw agent streaming from `replica`, its snapshot delivered. */
  async function connected(name: string, vtepIp: string, replica: Harness): Promise<{ hostId: string; agent: RawAgent }> {
    const created = await api(a.url).post('/v1/hosts', { name, vtepIp });
    expect(created.status).toBe(201);
    const agent = new RawAgent(replica.grpcTarget, name, `${name}-instance`);
    agents.push(agent);
    await waitUntil(() => agent.delivered || agent.ended !== undefined, 10_000, () => `${name} never received its snapshot`);
    expect(agent.ended).toBeUndefined();
    return { hostId: created.body.id, agent };
  }

  it('on the replica that answered the DELETE', async () => {
    const { hostId, agent } = await connected('hv-del-a', '192.0.2.21', a);
    expect((await api(a.url).delete(`/v1/hosts/${hostId}`)).status).toBe(204);
    await waitUntil(() => agent.ended !== undefined, 10_000, () => 'the deleted host’s stream is still open');
    expect(agent.ended).toEqual({ code: grpc.status.NOT_FOUND, details: 'the host was deleted' });
    expect(a.app.get(SessionRegistry).session(hostId)).toBeUndefined();
  });

  it('on another replica, which learns of it from the change log', async () => {
    const { hostId, agent } = await connected('hv-del-b', '192.0.2.22', b);
    expect((await api(a.url).delete(`/v1/hosts/${hostId}`)).status).toBe(204);
    await waitUntil(() => agent.ended !== undefined, 10_000, () => 'the deleted host’s stream on the other replica is still open');
    expect(agent.ended).toEqual({ code: grpc.status.NOT_FOUND, details: 'the host was deleted' });
    expect(b.app.get(SessionRegistry).session(hostId)).toBeUndefined();
  });

  it('leaves the other hosts’ streams open', async () => {
    const kept = await connected('hv-kept', '192.0.2.23', b);
    const { hostId, agent } = await connected('hv-del-c', '192.0.2.24', b);
    expect((await api(a.url).delete(`/v1/hosts/${hostId}`)).status).toBe(204);
    await waitUntil(() => agent.ended !== undefined, 10_000, () => 'the deleted host’s stream is still open');
    // The deletion's record has been applied by b's view (it ended the stream): the other host's stream stayed.
    expect(kept.agent.ended).toBeUndefined();
    expect(b.app.get(SessionRegistry).session(kept.hostId)?.isClosed).toBe(false);
  });
});
