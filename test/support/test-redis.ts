import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisProbeUrl, startLocalRedis, type LocalRedis } from '../../src/controller/dev/local-redis';
import { redactRedisUrl, redisProblem, unusableRedisMessage } from '../../src/controller/store/redis-probe';

/**
 * The Redis of a test run, checked once before any test file starts (the globalSetup of the
 * medium and system suites), so that a machine without one gets one line rather than a failure
 * per test:
 * - REDIS_URL set: it must answer PING, else the run stops, saying why;
 * - not set, and a Redis answers at 127.0.0.1:6379 (redisProbeUrl): that one (each test file
 *   keeps to a key prefix of its own);
 * - not set, nothing there: a throwaway redis-server for this run (free port, data in a temp
 *   directory, no AOF), REDIS_URL pointed at it for every test file, stopped and removed by
 *   `stopTestRedis`; without redis-server, one line saying how to get it.
 */

/** Thrown with the stack set to its message: from a globalSetup, Jest prints that one line and exits 1. */
export class OneLine extends Error {
  constructor(message: string) {
    super(message);
    this.stack = message;
  }
}

const started = Symbol.for('overlay-controller.test-redis');
type Holder = { [started]?: LocalRedis };

export async function ensureTestRedis(suite: string): Promise<void> {
  const url = process.env.REDIS_URL;
  if (url !== undefined) {
    const problem = await redisProblem(url, 5_000);
    if (problem !== undefined) {
      throw new OneLine(`${suite} tests stopped: ${unusableRedisMessage(redactRedisUrl(url), problem)}`);
    }
    return;
  }
  const probeUrl = redisProbeUrl();
  if ((await redisProblem(probeUrl, 2_000)) === undefined) {
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'overlay-test-redis-'));
  let redis: LocalRedis;
  try {
    redis = await startLocalRedis({ dir, appendonly: false });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new OneLine(`${suite} tests stopped: no REDIS_URL and no Redis at ${redactRedisUrl(probeUrl)}; ${(err as Error).message}`);
  }
  (globalThis as Holder)[started] = redis;
  // Test files run in this process (--runInBand) or in workers started after this: both see it.
  process.env.REDIS_URL = redis.url;
  console.log(`${suite} tests: no REDIS_URL and no Redis at ${redactRedisUrl(probeUrl)}: started redis-server on 127.0.0.1:${redis.port} for this run (pid ${redis.pid}, data in ${dir}, removed at the end)`);
}

/** Stops and removes the Redis `ensureTestRedis` started, if it did. */
export async function stopTestRedis(): Promise<void> {
  const redis = (globalThis as Holder)[started];
  if (redis) {
    delete (globalThis as Holder)[started];
    delete process.env.REDIS_URL;
    await redis.stop();
    rmSync(redis.dir, { recursive: true, force: true });
  }
}
