import * as grpc from '@grpc/grpc-js';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { finishesWithin, waitUntil } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { RawAgent } from '../support/raw-agent';

/**
 * A Hello answered once the shutdown began (the sessions already ended: DistributionPipeline.stop)
 * must open no session: nothing would end its stream, and the gRPC server's close would wait for
 * it. It is refused, UNAVAILABLE, and the agent tries another replica.
 */
describe('a Hello during the shutdown', () => {
  const prefix = uniquePrefix('hello-at-shutdown');
  let ctl: Harness;
  let raw: RawAgent | undefined;
  /** The test closes the controller itself. */
  let closed = false;

  beforeAll(async () => {
    ctl = await startController({ prefix });
  });

  afterAll(async () => {
    raw?.close();
    if (!closed) {
      await ctl?.close();
    }
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('is refused with UNAVAILABLE once the sessions have stopped, opens no session, and the controller closes without waiting for it', async () => {
    const hostId = (await api(ctl.url).post('/v1/hosts', { name: 'hv-late', vtepIp: '192.0.2.81' })).body.id as string;
    const sessions = ctl.app.get(SessionRegistry);
    sessions.stop();
    raw = new RawAgent(ctl.grpcTarget, 'hv-late', 'late-1');
    await waitUntil(() => raw!.ended !== undefined, 5_000, () => `the stream went on (${raw!.messages} messages received)`);
    expect(raw.ended).toEqual({ code: grpc.status.UNAVAILABLE, details: 'controller shutting down' });
    expect(raw.messages).toBe(0);
    expect(sessions.session(hostId)).toBeUndefined();
    closed = true;
    await finishesWithin(ctl.close(), 1_500, () => "the controller's close");
  });
});
