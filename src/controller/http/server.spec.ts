import Fastify from 'fastify';
import { request as httpRequest, Agent } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { finishesWithin, waitUntil } from '../../../test/support/agents';
import { beginHttpShutdown, bodiesArriving, closeConnectionsOnShutdown, connectionsOpen } from './server';

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

  /** A raw connection to `port`, with what the server sent and whether it closed it. */
  async function rawConnection(port: number): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => (closed = true));
    await new Promise((resolve) => socket.once('connect', resolve));
    return { socket, received: () => text, closed: () => closed };
  }

  it('closes at the shutdown every connection with nothing to answer (silent, half its headers, idle after an answer); the one being answered gets its answer with Connection: close', async () => {
    const fastify = Fastify({ connectionTimeout: 60_000 });
    closeConnectionsOnShutdown(fastify);
    let release = (): void => undefined;
    let reached = false;
    const held = new Promise<void>((resolve) => (release = resolve));
    fastify.get('/slow', async () => {
      reached = true;
      await held;
      return { ok: true };
    });
    fastify.get('/', async () => ({ ok: true }));
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    const port = (fastify.server.address() as AddressInfo).port;
    const silent = await rawConnection(port);
    const halfHeaders = await rawConnection(port);
    halfHeaders.socket.write('GET / HTTP/1.1\r\nHost: t\r\n');
    const idle = await rawConnection(port);
    idle.socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    const answering = await rawConnection(port);
    answering.socket.write('GET /slow HTTP/1.1\r\nHost: t\r\n\r\n');
    try {
      await waitUntil(() => idle.received().includes('{"ok":true}'), 5_000, () => 'the idle connection answered');
      await waitUntil(() => connectionsOpen(fastify) === 4 && reached, 5_000, () => 'four connections held, the slow request in its route');
      beginHttpShutdown(fastify);
      await waitUntil(() => silent.closed() && halfHeaders.closed() && idle.closed(), 5_000, () => 'the three connections with nothing to answer closed');
      expect(answering.closed()).toBe(false);
      const closed = fastify.close();
      release();
      await waitUntil(answering.closed, 5_000, () => 'the answered connection closed');
      expect(answering.received()).toMatch(/^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n[^]*\{"ok":true\}$/i);
      await finishesWithin(closed, 5_000, () => "the server's close");
      expect(connectionsOpen(fastify)).toBe(0);
    } finally {
      for (const c of [silent, halfHeaders, idle, answering]) {
        c.socket.destroy();
      }
      release();
      await fastify.close();
    }
  });

  it("does not wait for a silent connection when the server is closed without beginHttpShutdown (Fastify's close alone)", async () => {
    const fastify = Fastify({ connectionTimeout: 60_000 });
    closeConnectionsOnShutdown(fastify);
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    const silent = await rawConnection((fastify.server.address() as AddressInfo).port);
    try {
      await waitUntil(() => connectionsOpen(fastify) === 1, 5_000, () => 'the connection held');
      await finishesWithin(fastify.close(), 5_000, () => "the server's close");
      await waitUntil(silent.closed, 5_000, () => 'the silent connection closed');
    } finally {
      silent.socket.destroy();
    }
  });
});
