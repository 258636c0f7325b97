import Redis from 'ioredis';
import { ErrorCode, OverlayError } from '../../src/controller/errors';
import { RedisStore } from '../../src/controller/store/redis-store';
import { ReplicationBarrier, waitCommandOf } from '../../src/controller/store/replication-barrier';
import { waitUntil } from '../support/agents';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';

/*
 * The ReplicationBarrier on a private master and replica: one WAIT serves every write answered
 * before it (group commit), a write is never confirmed by a WAIT of another connection, and the
 * wait command is chosen by what the server has.
 */
describe('ReplicationBarrier', () => {
  let master: PrivateRedis;
  let replica: PrivateRedis;
  let client: Redis;
  /** The wait commands the client sent. */
  const waits: string[] = [];

  beforeAll(async () => {
    master = await startPrivateRedis();
    replica = await startPrivateRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const probe = new Redis(replica.url);
    await waitUntil(async () => (await probe.info('replication')).includes('master_link_status:up'), 15_000, () => 'replica not in sync');
    probe.disconnect();
    // The store's own policy: commands lost with a connection are failed, never resent.
    client = RedisStore.connect({ redisUrl: master.url });
    client.on('error', () => undefined);
    const call = client.call.bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as unknown as { call: typeof call }).call = (...args: unknown[]) => {
      if (/^wait/i.test(String(args[0]))) {
        waits.push(String(args[0]).toUpperCase());
      }
      return call(...args);
    };
  });

  afterAll(async () => {
    replica?.resume();
    client?.disconnect();
    await replica?.destroy();
    await master?.destroy();
  });

  it('picks WAITAOF only where the server knows it', async () => {
    expect(waitCommandOf([null])).toBe('wait');
    expect(waitCommandOf([['waitaof', 4, ['noscript'], 0, 0, 0]])).toBe('waitaof');
    const [major, minor] = ((await client.info('server')).match(/redis_version:(\d+)\.(\d+)/) ?? []).slice(1).map(Number);
    expect(waitCommandOf(await client.call('COMMAND', 'INFO', 'WAITAOF'))).toBe(major > 7 || (major === 7 && minor >= 2) ? 'waitaof' : 'wait');
  });

  it('confirms concurrent writes with one wait for all those answered before it was sent', async () => {
    const barrier = new ReplicationBarrier(client, 1, 5_000);
    waits.length = 0;
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        await client.set(`barrier:${i}`, String(i));
        await barrier.confirm();
      }),
    );
    // Without group commit: 40. The first write's wait goes at once; the others share the next one.
    expect(waits.length).toBeGreaterThanOrEqual(1);
    expect(waits.length).toBeLessThanOrEqual(3);
  });

  it('refuses, as of unknown outcome, a write the replicas did not confirm in time', async () => {
    const barrier = new ReplicationBarrier(client, 1, 200);
    replica.pause();
    try {
      await client.set('barrier:late', '1');
      await expect(barrier.confirm()).rejects.toMatchObject({ code: ErrorCode.StoreUnavailable, message: expect.stringMatching(/0 of the 1 replicas required confirmed it within 200 ms; its outcome is unknown/) });
    } finally {
      replica.resume();
    }
    await client.set('barrier:late', '2');
    await barrier.confirm();
  });

  it('never confirms a write by a wait on another connection', async () => {
    const barrier = new ReplicationBarrier(client, 1, 3_000);
    waits.length = 0;
    replica.pause();
    const settled = (p: Promise<void>) => p.then(() => 'confirmed' as const, (err: unknown) => err);
    let first: unknown;
    let second: unknown;
    try {
      await client.set('barrier:moved', '1');
      const firstWait = settled(barrier.confirm());
      await waitUntil(() => waits.length > 0, 5_000);
      // A second write, answered on the same connection, waits its turn behind the first wait...
      await client.set('barrier:moved', '2');
      const secondWait = settled(barrier.confirm());
      // ...when the connection drops. Its wait then goes out on the new connection, where Redis
      // counts the replicas of that connection's writes (none), which the replica, back, has: it
      // would answer 1. The write must not be confirmed by it.
      replica.resume();
      client.disconnect(true);
      [first, second] = await Promise.all([firstWait, secondWait]);
    } finally {
      replica.resume();
    }
    expect(first).toMatchObject({ code: ErrorCode.StoreUnavailable, message: expect.stringMatching(/outcome is unknown/) });
    expect(second).toBeInstanceOf(OverlayError);
    expect(second).toMatchObject({ code: ErrorCode.StoreUnavailable, message: expect.stringMatching(/the connection to Redis changed before the replicas confirmed it; its outcome is unknown/) });
    await waitUntil(() => client.status === 'ready', 5_000);
    await client.set('barrier:moved', '3');
    await barrier.confirm();
  });
});
