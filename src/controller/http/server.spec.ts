import Fastify from 'fastify';
import { request as httpRequest, Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { beginHttpShutdown, bodiesArriving, closeConnectionsOnShutdown } from './server';

describe('closeConnectionsOnShutdown', () => {
  it('holds no request once it is answered, over keep-alive connections; a body still arriving is cut off at the shutdown', async () => {
    const fastify = Fastify();
    closeConnectionsOnShutdown(fastify);
    fastify.post('/', async () => ({ ok: true }));
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    const port = (fastify.server.address() as AddressInfo).port;
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const post = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: '/', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end('{"a":1}');
      });
    try {
      const statuses = await Promise.all(Array.from({ length: 40 }, post));
      expect(statuses.every((s) => s === 200)).toBe(true);
      // Answered: each request's 'close' has removed it (awaited as a condition, not a sleep).
      const deadline = Date.now() + 5_000;
      while (bodiesArriving(fastify) > 0 && Date.now() < deadline) {
        await new Promise((r) => setImmediate(r));
      }
      expect(bodiesArriving(fastify)).toBe(0);

      // A body that never finishes arriving is held, and cut off when the shutdown begins.
      const trickle = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: '/', headers: { 'content-type': 'application/json', 'content-length': '100' } });
      const cut = new Promise<void>((resolve) => trickle.on('error', () => resolve()).on('close', () => resolve()));
      trickle.write('{"a":');
      const held = Date.now() + 5_000;
      while (bodiesArriving(fastify) === 0 && Date.now() < held) {
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(bodiesArriving(fastify)).toBe(1);
      beginHttpShutdown(fastify);
      await cut;
      const gone = Date.now() + 5_000;
      while (bodiesArriving(fastify) > 0 && Date.now() < gone) {
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(bodiesArriving(fastify)).toBe(0);
    } finally {
      agent.destroy();
      await fastify.close();
    }
  });
});
