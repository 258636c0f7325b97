#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { redactRedisUrl, redisProblem } from '../store/redis-probe';
import { LocalRedisError, redisProbeUrl, shownPath, startLocalRedis } from './local-redis';

/**
 * `npm start`: overlayd (main.ts) for a first run on one's own machine. When REDIS_URL is not set
 * and no Redis answers at 127.0.0.1:6379, it first starts a redis-server of its own (data in
 * ./.overlay/redis, AOF on, so the state survives a restart), says so in one line, points
 * REDIS_URL at it, and stops it when overlayd exits. When redis-server is not installed it says
 * how to get it, in one line, and exits 1. Deployments run main.ts, with a Redis of their own.
 * (Where it looks for a running Redis: redisProbeUrl.)
 */
async function start(): Promise<void> {
  if (process.env.LD_PRELOAD?.includes('jemalloc') && !jemallocLoaded()) {
    console.log('overlayd: libjemalloc2 is not installed, so glibc\'s malloc is used (about 100 MB more with many agents): apt-get install libjemalloc2; see docs/operations.md, "Memory"');
  }
  if (process.env.REDIS_URL === undefined) {
    const probeUrl = redisProbeUrl();
    if ((await redisProblem(probeUrl, 2_000)) !== undefined) {
      const dir = resolve('.overlay', 'redis');
      const redis = await startLocalRedis({ dir, appendonly: true });
      process.on('exit', () => redis.stopNow());
      // The terminal closing: shut down as on Ctrl-C, so that the Redis stops too.
      process.once('SIGHUP', () => process.kill(process.pid, 'SIGTERM'));
      process.env.REDIS_URL = redis.url;
      console.log(
        `overlayd: no Redis at ${redactRedisUrl(probeUrl)} and REDIS_URL is not set: started redis-server on 127.0.0.1:${redis.port} (pid ${redis.pid}, data in ${shownPath(dir)}, AOF on); it stops with overlayd`,
      );
    }
  }
  await import('../main');
}

/** Whether jemalloc is mapped into this process (deploy/overlayd-runtime.conf preloads it). */
function jemallocLoaded(): boolean {
  try {
    return readFileSync('/proc/self/maps', 'utf8').includes('libjemalloc');
  } catch {
    return true; // no /proc: nothing to say
  }
}

start().catch((err: unknown) => {
  console.error(err instanceof LocalRedisError ? `overlayd: ${err.message}` : err);
  process.exit(1);
});
