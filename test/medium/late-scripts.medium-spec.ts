import { CONTROLLER } from '../../src/controller/auth/principal';
import { RedisStore } from '../../src/controller/store/redis-store';
import { dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';

/**
 * A mutation script defined after startup, while other commands wait in the client's pending
 * auto-pipeline. ioredis copies a client's scripts into a pipeline when it makes one, so the new
 * script was missing from the pending one: its call failed as STORE_UNAVAILABLE, and ioredis then
 * threw an uncaught `results[i] is not iterable` (a flake of the store-recovery spec).
 */
describe('store: a script defined while an auto-pipeline is pending', () => {
  const prefix = uniquePrefix('late-scripts');
  let h: Harness;

  beforeAll(async () => {
    h = await startController({ prefix });
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  it('runs on the pipeline made before it, beside the commands already queued there', async () => {
    const store = h.app.get(RedisStore);
    for (let round = 0; round < 5; round++) {
      const key = `{${prefix}}:probe:${round}`;
      // Queued now, sent at the next turn of the event loop: the pipeline is pending.
      const queued = store.redis.set(key, String(round)).then(() => store.redis.get(key));
      store.defineScript(`testLateScript${round}`, `return 'late ${round}'`);
      const late = store.mutate(`testLateScript${round}`, [], CONTROLLER);
      await expect(late).resolves.toBe(`late ${round}`);
      await expect(queued).resolves.toBe(String(round));
    }
  });
});
