import { createServer } from 'node:net';
import { redactRedisUrl, redisProblem, unusableRedisMessage } from './redis-probe';

describe('redis-probe', () => {
  it.each([
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://:hunter2@10.0.0.5:6379/2', 'redis://***@10.0.0.5:6379/2'],
    ['rediss://user:p%40ss@redis.example:6380', 'rediss://***@redis.example:6380'],
  ])('shows %s as %s', (url, shown) => {
    expect(redactRedisUrl(url)).toBe(shown);
  });

  it('says in one line where (no password), why and what to do', () => {
    const line = unusableRedisMessage(redactRedisUrl('redis://admin:hunter2@127.0.0.1:6390'), 'connect ECONNREFUSED 127.0.0.1:6390');
    expect(line).toBe('Redis at redis://***@127.0.0.1:6390 cannot be used (connect ECONNREFUSED 127.0.0.1:6390): start it or set REDIS_URL to a Redis that answers');
    expect(line).not.toMatch(/hunter2|\n/);
  });

  it('names the connection error of a port nothing listens on', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    expect(await redisProblem(`redis://127.0.0.1:${port}`, 1_000)).toBe(`connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('names the timeout of a server that never answers', async () => {
    // Accepts the connection and says nothing: PING times out.
    const server = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      expect(await redisProblem(`redis://127.0.0.1:${port}`, 300)).toMatch(/timed? ?out/i);
    } finally {
      server.close();
    }
  });
});
