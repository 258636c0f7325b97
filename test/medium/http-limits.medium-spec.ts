import type { LoggerService } from '@nestjs/common';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { RedisStore } from '../../src/controller/store/redis-store';
import { auditTrailGrowth } from '../support/audit-trail';
import { AUTHORIZATION, RawConnection, rawRequest } from '../support/raw-http';

/**
 * The HTTP server's own limits, against a real overlayd: a client that trickles its request
 * is cut off, idle connections close, no client can hold more than OVERLAY_HTTP_MAX_CONNECTIONS
 * sockets, and what the server refuses before any route runs is answered `{code, message}`.
 * Aborted requests are logged once, at debug level, without a stack. Requests to /v1 carry the
 * tests' admin token, so that what the server meets is the request's shape, not a 401.
 */

/** Every log line, with its level. */
class CapturingLogger implements LoggerService {
  readonly lines: { level: string; message: string }[] = [];
  private add(level: string, message: unknown, rest: unknown[]): void {
    this.lines.push({ level, message: [message, ...rest].map(String).join(' ') });
  }
  log(message: unknown, ...rest: unknown[]): void {
    this.add('log', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.add('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.add('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.add('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.add('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.add('fatal', message, rest);
  }
  count(level: string, pattern: RegExp): number {
    return this.lines.filter((l) => l.level === level && pattern.test(l.message)).length;
  }
}

/** Resolves once `check` holds, polling every 20 ms; fails at the deadline. */
async function waitUntil(check: () => boolean, deadlineMs: number, what: string): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`not within ${deadlineMs} ms: ${what}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const REQUEST_TIMEOUT_MS = 1_000;
const KEEP_ALIVE_MS = 300;

describe('the HTTP server bounds what a client can hold', () => {
  const prefix = uniquePrefix('http-limits');
  const logger = new CapturingLogger();
  let h: Harness;

  beforeAll(async () => {
    h = await startController({
      prefix,
      logger,
      env: {
        OVERLAY_HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        OVERLAY_HTTP_HEADERS_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        OVERLAY_HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS),
      },
    });
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  /** Writes `piece` every 100 ms until the server closes the connection or answers. */
  function trickle(conn: RawConnection, piece: string): () => void {
    const timer = setInterval(() => {
      if (!conn.write(piece)) {
        clearInterval(timer);
      }
    }, 100);
    return () => clearInterval(timer);
  }

  it('cuts off a body trickled a byte at a time: 408 REQUEST_TIMEOUT, nothing stored', async () => {
    const before = await h.dump();
    const conn = await RawConnection.open(h.url);
    const started = Date.now();
    conn.write(`POST /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":"`);
    const stop = trickle(conn, 'a');
    try {
      const res = await conn.response(REQUEST_TIMEOUT_MS + 3_000);
      const elapsed = Date.now() - started;
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 408, code: 'REQUEST_TIMEOUT' });
      expect(res.body.message).toMatch(/OVERLAY_HTTP_REQUEST_TIMEOUT_MS/);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(elapsed).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
      await conn.waitClosed(2_000);
    } finally {
      stop();
      conn.destroy();
    }
    expect(await h.dump()).toStrictEqual(before);
  });

  it('answers a request without a token 401 before reading its body (a trickled body holds nothing), and records only the refusal', async () => {
    const warned = () => logger.count('warn', /^refused POST \/v1\/tenants from 127\.0\.0\.1: UNAUTHENTICATED/);
    const warnedBefore = warned();
    const before = await h.dump();
    const conn = await RawConnection.open(h.url);
    conn.write('POST /v1/tenants HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":"');
    const stop = trickle(conn, 'a');
    try {
      // Had the server waited for the body, the answer would be 408 (the body never completes).
      const res = await conn.response(REQUEST_TIMEOUT_MS + 3_000);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
      expect(res.headers['www-authenticate']).toBe('Bearer realm="overlayd"');
    } finally {
      stop();
      conn.destroy();
    }
    // The refusal is written to the audit trail's refusals after the answer: wait for it.
    const denied = h.app.get(RedisStore).keys.deniedEvents();
    let after = await h.dump();
    for (const deadline = Date.now() + 5_000; after[denied] === before[denied]; after = await h.dump()) {
      if (Date.now() > deadline) {
        throw new Error('the refusal was not recorded in the audit trail within 5 s');
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const added = auditTrailGrowth(before, after, denied).map((e) => ({ ...e.fields, actor: JSON.parse(e.fields.actor) }));
    expect(added).toEqual([
      { type: 'denied', actor: { kind: 'anonymous', source: '127.0.0.1', method: 'POST', route: '/v1/tenants' }, code: 'UNAUTHENTICATED', reason: 'send a token: Authorization: Bearer <token>' },
    ]);
    expect(warned() - warnedBefore).toBe(1);
  });

  it('cuts off headers trickled a line at a time: 408 REQUEST_TIMEOUT', async () => {
    const conn = await RawConnection.open(h.url);
    conn.write(`GET /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\n`);
    const stop = trickle(conn, 'X-Slow: 1\r\n');
    try {
      const res = await conn.response(REQUEST_TIMEOUT_MS + 3_000);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 408, code: 'REQUEST_TIMEOUT' });
      await conn.waitClosed(2_000);
    } finally {
      stop();
      conn.destroy();
    }
  });

  it('closes a connection that never sends a request', async () => {
    const conn = await RawConnection.open(h.url);
    try {
      await conn.waitClosed(REQUEST_TIMEOUT_MS + 3_000);
    } finally {
      conn.destroy();
    }
  });

  it('closes an idle keep-alive connection after OVERLAY_HTTP_KEEP_ALIVE_TIMEOUT_MS', async () => {
    const conn = await RawConnection.open(h.url);
    try {
      conn.write('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
      const res = await conn.response();
      expect(res.status).toBe(200);
      const answered = Date.now();
      await conn.waitClosed(KEEP_ALIVE_MS + 3_000);
      expect(Date.now() - answered).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 50);
    } finally {
      conn.destroy();
    }
  });

  it('answers oversized headers with 431 HEADERS_TOO_LARGE in JSON', async () => {
    const res = await rawRequest(h.url, `GET /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 431, code: 'HEADERS_TOO_LARGE' });
    expect(typeof res.body.message).toBe('string');
  });

  it.each([
    ['a request line that is not HTTP', 'GARBAGE\r\n\r\n'],
    ['an unknown method', `FETCH /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\n\r\n`],
    ['a header name with a space', `GET /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nBad Header: x\r\n\r\n`],
    ['a NUL in a header value', `GET /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nX-A: a\u0000b\r\n\r\n`],
    ['a chunk size that is not hexadecimal', `POST /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`],
    ['both Content-Length and chunked', `POST /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`],
    ['two different Content-Lengths', `POST /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} `],
  ])('answers %s with 400 MALFORMED_REQUEST in JSON, and changes nothing', async (_what, request) => {
    const before = await h.dump();
    const res = await rawRequest(h.url, Buffer.from(request, 'latin1'));
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code: 'MALFORMED_REQUEST' });
    expect(await h.dump()).toStrictEqual(before);
  });

  it.each([
    ['an invalid percent-encoding in the path', '/v1/tenants/%E0%A4%A'],
    ['an encoded surrogate in the path', '/v1/tenants/%ED%A0%80'],
    ['a stray 0xff in the path', '/v1/ports/%FF'],
  ])('answers %s with 400 MALFORMED_REQUEST', async (_what, path) => {
    const res = await rawRequest(h.url, `GET ${path} HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nConnection: close\r\n\r\n`);
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code: 'MALFORMED_REQUEST' });
  });

  it.each([
    ['a path out of its directory', '/docs/%2e%2e/x', '', 404, 'NOT_FOUND'],
    ['a path out of it through a backslash', '/docs/a%5c..%5c', '', 404, 'NOT_FOUND'],
    ['a NUL in a file name', '/docs/swagger-ui.css%00', '', 400, 'MALFORMED_REQUEST'],
    ['an If-Match no file matches', '/docs/swagger-ui.css', 'If-Match: "nope"\r\n', 400, 'MALFORMED_REQUEST'],
    ['a Range past the end of the file', '/docs/swagger-ui.css', 'Range: bytes=999999999-\r\n', 400, 'MALFORMED_REQUEST'],
  ])('answers a request for a file of /docs with %s in JSON (4xx), logged as no error', async (_what, path, header, status, code) => {
    const errorsBefore = logger.lines.filter((l) => l.level === 'error').length;
    const res = await rawRequest(h.url, `GET ${path} HTTP/1.1\r\nHost: t\r\n${header}Connection: close\r\n\r\n`);
    expect({ status: res.status, code: res.body.code, message: typeof res.body.message }).toEqual({ status, code, message: 'string' });
    expect(logger.lines.filter((l) => l.level === 'error').slice(errorsBefore)).toEqual([]);
  });

  it('logs requests aborted in the middle of their body once each, at debug level, without a stack', async () => {
    const aborted = () => logger.count('debug', /aborted by the client/);
    const start = aborted();
    const errorsBefore = logger.lines.filter((l) => l.level === 'error' || l.level === 'fatal').length;
    const n = 20;
    for (let i = 0; i < n; i++) {
      const conn = await RawConnection.open(h.url);
      conn.write(`POST /v1/security-groups HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"name":"half`);
      // Close only once the server is reading the body: wait for Node to have the headers.
      await new Promise((r) => setTimeout(r, 20));
      // Half of them close (FIN), half reset (RST): Node reports the two differently.
      if (i % 2) {
        conn.reset();
      } else {
        conn.destroy();
      }
    }
    await waitUntil(() => aborted() - start >= n, 5_000, `${n} aborted requests logged`);
    // A moment for any second line per abort to show up.
    await new Promise((r) => setTimeout(r, 200));
    expect(aborted() - start).toBe(n);
    const errors = logger.lines.filter((l) => l.level === 'error' || l.level === 'fatal');
    expect(errors.slice(errorsBefore)).toEqual([]);
    expect(logger.lines.filter((l) => /\n\s+at /.test(l.message))).toEqual([]);
  });

  it('logs a timed-out request once, at debug level', async () => {
    const timeouts = () => logger.count('debug', /408 REQUEST_TIMEOUT/);
    const aborted = () => logger.count('debug', /aborted by the client/);
    const [t0, a0] = [timeouts(), aborted()];
    const conn = await RawConnection.open(h.url);
    conn.write(`POST /v1/tenants HTTP/1.1\r\nHost: t\r\n${AUTHORIZATION}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na`);
    try {
      await conn.waitClosed(REQUEST_TIMEOUT_MS + 3_000);
    } finally {
      conn.destroy();
    }
    await waitUntil(() => timeouts() > t0, 2_000, 'the timeout logged');
    await new Promise((r) => setTimeout(r, 200));
    expect([timeouts() - t0, aborted() - a0]).toEqual([1, 0]);
  });

  it('closes a socket on which nothing moves for longer than the longest wait for realization (a client that never reads)', () => {
    // 150 s cannot be waited for here; the server's socket timeout is what enforces it.
    expect((h.app.getHttpServer() as { timeout: number }).timeout).toBe(150_000);
  });

  it('still serves ordinary requests', async () => {
    const res = await api(h.url).post('/v1/tenants', { name: 'fine' });
    expect(res.status).toBe(201);
  });
});

describe('OVERLAY_HTTP_MAX_CONNECTIONS', () => {
  const prefix = uniquePrefix('http-conns');
  const MAX = 4;
  let h: Harness;
  const open: RawConnection[] = [];

  beforeAll(async () => {
    h = await startController({ prefix, env: { OVERLAY_HTTP_MAX_CONNECTIONS: String(MAX) } });
  });

  afterAll(async () => {
    open.forEach((c) => c.destroy());
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  it('closes connections beyond the bound at once, and takes new ones when a slot frees', async () => {
    for (let i = 0; i < MAX; i++) {
      const conn = await RawConnection.open(h.url);
      open.push(conn);
      // Each holds its slot with a request in progress.
      conn.write('GET /healthz HTTP/1.1\r\nHost: t\r\n');
    }
    // Node counts a connection once it has accepted it: let the last one be counted.
    await new Promise((r) => setTimeout(r, 100));
    const extra = await RawConnection.open(h.url);
    extra.write('GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    await extra.waitClosed(3_000);
    await expect(extra.response(100)).rejects.toThrow();

    open.shift()!.destroy();
    let res: Awaited<ReturnType<typeof rawRequest>> | undefined;
    const deadline = Date.now() + 3_000;
    while (!res) {
      try {
        res = await rawRequest(h.url, 'GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n', 1_000);
      } catch (err) {
        if (Date.now() > deadline) {
          throw err;
        }
      }
    }
    expect(res.status).toBe(200);
  });
});
