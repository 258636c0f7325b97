import Redis from 'ioredis';

/** A Redis URL as it may be shown in a log: whatever precedes `@` (user and password) replaced by `***`. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/**
 * Why the Redis at `url` cannot be used (its connection error, or the refusal of PING, e.g.
 * WRONGPASS), or undefined when it answers PING. One attempt within `timeoutMs`, no retries:
 * for a check at start, before anything else connects.
 */
export async function redisProblem(url: string, timeoutMs = 5_000): Promise<string | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    disableClientInfo: true,
  });
  let firstError: string | undefined;
  client.on('error', (err: Error) => (firstError ??= err.message));
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (err) {
    // The connection's own error says more ("connect ECONNREFUSED 127.0.0.1:6379") than the rejection ("Connection is closed.").
    return firstError ?? (err as Error).message;
  } finally {
    client.disconnect();
  }
}

/** The one line overlayd says when it cannot use its Redis: where (described without a password: redactRedisUrl, describeRedis), why, what to do. */
export function unusableRedisMessage(where: string, problem: string): string {
  return `Redis at ${where} cannot be used (${problem}): start it or set REDIS_URL to a Redis that answers`;
}
