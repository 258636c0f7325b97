import type { Command } from 'ioredis';
import { CONTROLLER } from '../../src/controller/auth/principal';
import { RedisStore } from '../../src/controller/store/redis-store';
import { dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';

/**
 * A mutation script defined after startup, while other commands wait in the client's pending
 * auto-pipeline. When scripts were ioredis commands (defineCommand), ioredis copied them into a
 * pipeline as it made it, so the new script was missing from the pending one: its call failed as
 * STORE_UNAVAILABLE, and ioredis then threw an uncaught `results[i] is not iterable` (a flake of
 * the store-recovery spec). Scripts now run as EVALSHA; this keeps the case covered.
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

  it('runs while other commands wait in the pending pipeline, and they run too', async () => {
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

  it('sends a script Redis does not have (NOSCRIPT) as its source once, then by its SHA-1, and counts no failure', async () => {
    const store = h.app.get(RedisStore);
    // A body no other test defines: its SHA-1 is new to this Redis, whose script cache is shared and never flushed here.
    const name = `testUnknownScript${Date.now()}`;
    store.defineScript(name, `return '${prefix} ${name}'`);
    const errorsBefore = (await store.commands.errors.get()).values.filter((v) => v.labels.command === name).length;
    await expect(store.mutate(name, [], CONTROLLER)).resolves.toBe(`${prefix} ${name}`);
    await expect(store.mutate(name, [], CONTROLLER)).resolves.toBe(`${prefix} ${name}`);
    const durations = (await store.commands.duration.get()).values.find((v) => v.labels.command === name && v.metricName?.endsWith('_count'));
    // NOSCRIPT, then EVAL of the source, then EVALSHA: three answers under the script's name.
    expect(durations?.value).toBe(3);
    expect((await store.commands.errors.get()).values.filter((v) => v.labels.command === name)).toHaveLength(errorsBefore);
  });

  it('writes the scripts of one turn of the event loop together: the socket is corked until the next turn', async () => {
    const store = h.app.get(RedisStore);
    store.defineScript('testCorkedScript', 'return ARGV[#ARGV]');
    await expect(store.mutate('testCorkedScript', ['loaded'], CONTROLLER)).resolves.toBe('loaded');
    const socket = store.redis.stream;
    expect(socket.writableCorked).toBe(0);
    const both = Promise.all([store.mutate('testCorkedScript', ['a'], CONTROLLER), store.mutate('testCorkedScript', ['b'], CONTROLLER)]);
    // Both are held in the socket, in order, until the next turn writes them.
    expect(socket.writableCorked).toBe(1);
    expect(socket.writableLength).toBeGreaterThan(0);
    await expect(both).resolves.toEqual(['a', 'b']);
    expect(socket.writableCorked).toBe(0);
  });

  it.each([
    ['a batch', 200],
    ['a single write', 3],
  ])('sends a script with the arguments of %s at once, not after the answer of one already in flight', async (_, argumentCount) => {
    const store = h.app.get(RedisStore);
    store.defineScript('testBatchSizedScript', 'return ARGV[#ARGV]');
    // Once before, so that Redis has it (a NOSCRIPT would add an EVAL of its source to the calls watched).
    await expect(store.mutate('testBatchSizedScript', ['loaded'], CONTROLLER)).resolves.toBe('loaded');
    const redis = store.redis;
    const events: string[] = [];
    let sentFirst!: () => void;
    const firstSent = new Promise<void>((resolve) => (sentFirst = resolve));
    const previous = redis.sendCommand;
    const send = redis.sendCommand.bind(redis) as (command: Command, ...rest: unknown[]) => unknown;
    (redis as unknown as { sendCommand: typeof send }).sendCommand = (command, ...rest) => {
      // The call's last argument, read off its wire form (a script's command keeps only its first argument).
      const wire = command.name === 'evalsha' ? String(command.toWritable({})) : '';
      const which = /\r\n(first|second)\r\n$/.exec(wire)?.[1] ?? '';
      if (which === 'first' || which === 'second') {
        events.push(`sent ${which}`);
        command.promise.then(
          () => events.push(`answered ${which}`),
          () => events.push(`failed ${which}`),
        );
        if (which === 'first') {
          sentFirst();
        }
      }
      return send(command, ...rest);
    };
    try {
      const args = (tag: string) => [...Array.from({ length: argumentCount - 1 }, (_, i) => `arg${i}`), tag];
      const first = store.mutate('testBatchSizedScript', args('first'), CONTROLLER);
      await firstSent;
      // The first is on its way to Redis and unanswered (its answer needs an I/O turn, this is a microtask).
      const second = store.mutate('testBatchSizedScript', args('second'), CONTROLLER);
      await expect(first).resolves.toBe('first');
      await expect(second).resolves.toBe('second');
      // Through the auto-pipeline the second was sent only once the first's answer was in.
      expect(events).toEqual(['sent first', 'sent second', 'answered first', 'answered second']);
    } finally {
      redis.sendCommand = previous;
    }
  });
});
