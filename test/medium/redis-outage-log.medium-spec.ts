import type { LoggerService } from '@nestjs/common';
import { RedisStore } from '../../src/controller/store/redis-store';
import { waitUntil } from '../support/agents';
import { startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';

async function readyz(url: string): Promise<number | undefined> {
  try {
    return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) })).status;
  } catch {
    return undefined;
  }
}

/**
 * A running overlayd whose Redis goes away: it says so once (where and why), not once per
 * reconnect attempt, GET /readyz answers 503 meanwhile, and once Redis is back it says so once
 * and is ready again.
 */
describe('a Redis outage in the log', () => {
  const lines: string[] = [];
  const logger: LoggerService = {
    log: (message: unknown) => lines.push(`log ${String(message)}`),
    warn: (message: unknown) => lines.push(`warn ${String(message)}`),
    error: (message: unknown) => lines.push(`error ${String(message)}`),
  };
  let redis: PrivateRedis;
  let ctl: Harness;

  beforeAll(async () => {
    redis = await startPrivateRedis({ appendfsync: 'everysec' });
    ctl = await startController({ prefix: uniquePrefix('outage-log'), redisUrl: redis.url, logger });
  });

  afterAll(async () => {
    await ctl?.close();
    await redis?.destroy();
  });

  it('says once that Redis cannot be reached and once that it is back', async () => {
    let failedAttempts = 0;
    ctl.app.get(RedisStore).redis.on('error', () => failedAttempts++);
    expect(await readyz(ctl.url)).toBe(200);

    await redis.kill();
    await waitUntil(async () => (await readyz(ctl.url)) === 503, 15_000, () => 'readyz did not answer 503 with Redis gone');
    // Several reconnect attempts failed (the back-off grows to 2 s), each an 'error' event.
    await waitUntil(() => failedAttempts >= 4, 30_000, () => `${failedAttempts} failed attempts`);
    const outage = (label: string) => lines.filter((line) => line.startsWith(`warn ${label}: cannot reach`));
    expect(outage('redis')).toHaveLength(1);
    expect(outage('redis')[0]).toMatch(new RegExp(`^warn redis: cannot reach redis://127\\.0\\.0\\.1:${redis.port} \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${redis.port}\\); retrying \\(GET /readyz answers 503 meanwhile\\)$`));
    expect(outage('redis (tail)')).toHaveLength(1);
    // Beyond the outage line, at most the error of the connection it lost, once per client.
    expect(lines.filter((line) => line.startsWith('warn redis')).length).toBeLessThanOrEqual(4);

    await redis.start();
    await waitUntil(async () => (await readyz(ctl.url)) === 200, 15_000, () => 'readyz did not answer 200 with Redis back');
    await waitUntil(() => lines.some((line) => /^log redis: redis:\/\/127\.0\.0\.1:\d+ reachable again after \d+\.\d s$/.test(line)), 15_000, () => lines.join('\n'));
    expect(lines.filter((line) => line.startsWith('log redis: ')).length).toBe(1);
  }, 90_000);
});
