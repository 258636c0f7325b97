import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finishesWithin } from '../support/agents';
import { dropPrefix, startController, TEST_ADMIN_TOKEN, uniquePrefix, type Harness } from '../support/controller-harness';
import { RawConnection, rawRequest } from '../support/raw-http';

/**
 * The REST API over HTTPS (OVERLAY_HTTP_TLS_CERT and _KEY), against a real overlayd with a
 * development CA's certificate: clients that trust the CA are served, plain HTTP on the port is
 * not, and the HTTP server's own limits (timeouts, oversized headers, the connection bound) hold
 * as they do over plain HTTP.
 */

interface Answer {
  status: number;
  body: any;
}

/**
 * One request over HTTPS trusting `ca` only (verification stays on). `headers` go as given (an
 * API token, for /v1 routes). Rejects with the TLS or socket error.
 */
function httpsRequest(url: string, opts: { ca?: Buffer; method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: opts.method ?? 'GET',
        ca: opts.ca,
        agent: false,
        headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error(`no answer from ${url} within 5000 ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A plain-HTTP GET: resolves with the status, rejects when no HTTP answer comes. */
function plainGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`no answer from ${url} within 5000 ms`)));
    req.on('error', reject);
  });
}

const REQUEST_TIMEOUT_MS = 1_000;
const MAX_CONNECTIONS = 3;

describe('the REST API over HTTPS', () => {
  const prefix = uniquePrefix('https');
  const dir = mkdtempSync(join(tmpdir(), 'overlay-https-ca-'));
  const file = (name: string) => join(dir, name);
  let ca: Buffer;
  let h: Harness;
  /** Headers of /v1 requests (an API token, once the API asks for one). */
  const apiHeaders: Record<string, string> = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

  beforeAll(async () => {
    execFileSync('bash', [join(__dirname, '../../scripts/dev-ca.sh'), dir]);
    ca = readFileSync(file('ca.pem'));
    h = await startController({
      prefix,
      env: {
        OVERLAY_HTTP_TLS_CERT: file('controller.pem'),
        OVERLAY_HTTP_TLS_KEY: file('controller-key.pem'),
        OVERLAY_HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        OVERLAY_HTTP_HEADERS_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        OVERLAY_HTTP_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      },
    });
  });

  /** The last test closes the controller itself. */
  let closed = false;

  afterAll(async () => {
    if (!closed) {
      await h?.close();
    }
    await dropPrefix(h.config.redisUrl, prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers GET /healthz to a client that trusts the CA', async () => {
    expect(h.url).toMatch(/^https:\/\//);
    expect(await httpsRequest(`${h.url}/healthz`, { ca })).toMatchObject({ status: 200 });
  });

  it('serves the API: a body goes in, JSON comes out', async () => {
    const created = await httpsRequest(`${h.url}/v1/tenants`, { ca, method: 'POST', body: { name: 'over-tls' }, headers: apiHeaders });
    expect(created).toMatchObject({ status: 201, body: { name: 'over-tls' } });
    expect(await httpsRequest(`${h.url}/v1/tenants/${created.body.id}`, { ca, headers: apiHeaders })).toMatchObject({ status: 200, body: { id: created.body.id } });
  });

  it('is refused by a client that does not trust the CA (verification is on)', async () => {
    await expect(httpsRequest(`${h.url}/healthz`)).rejects.toThrow(/certificate/);
  });

  it('does not serve plain HTTP on its port', async () => {
    await expect(plainGet(`${h.url.replace(/^https:/, 'http:')}/healthz`)).rejects.toThrow();
  });

  it('cuts off headers trickled a line at a time: 408 REQUEST_TIMEOUT in JSON, as over HTTP', async () => {
    const conn = await RawConnection.open(h.url, 5_000, { ca });
    conn.write('GET /healthz HTTP/1.1\r\nHost: t\r\n');
    const timer = setInterval(() => {
      if (!conn.write('X-Slow: 1\r\n')) {
        clearInterval(timer);
      }
    }, 100);
    try {
      // Node checks the timeouts on OVERLAY_HTTP_*-derived intervals; with its defaults (30 s) this would not come in time.
      const res = await conn.response(REQUEST_TIMEOUT_MS + 3_000);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 408, code: 'REQUEST_TIMEOUT' });
      await conn.waitClosed(2_000);
    } finally {
      clearInterval(timer);
      conn.destroy();
    }
  });

  it('answers oversized headers with 431 HEADERS_TOO_LARGE in JSON', async () => {
    const res = await rawRequest(h.url, `GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 5_000, { ca });
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 431, code: 'HEADERS_TOO_LARGE' });
  });

  it('closes connections beyond OVERLAY_HTTP_MAX_CONNECTIONS at once', async () => {
    const open: RawConnection[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) {
        const conn = await RawConnection.open(h.url, 5_000, { ca });
        open.push(conn);
        conn.write('GET /healthz HTTP/1.1\r\nHost: t\r\n'); // holds its slot with a request in progress
      }
      // One more: closed as soon as it is accepted, so its handshake never completes.
      await expect(RawConnection.open(h.url, 3_000, { ca })).rejects.toThrow();
      open.shift()!.destroy();
      let status: number | undefined;
      const deadline = Date.now() + 3_000;
      while (status === undefined && Date.now() < deadline) {
        status = await httpsRequest(`${h.url}/healthz`, { ca }).then(
          (res) => res.status,
          () => undefined,
        );
        if (status === undefined) {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      expect(status).toBe(200);
    } finally {
      open.forEach((conn) => conn.destroy());
    }
  });

  it('keeps the server-wide settings on the HTTPS server', () => {
    const server = h.app.getHttpServer() as unknown as { requestTimeout: number; headersTimeout: number; keepAliveTimeout: number; timeout: number; maxConnections: number };
    expect(server).toMatchObject({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: 5_000, timeout: 150_000, maxConnections: MAX_CONNECTIONS });
  });

  // Last: it closes the controller.
  it('closes at the shutdown a connection that never began its TLS handshake and one that finished it and sent nothing, without waiting for them', async () => {
    const handshakeNeverBegun = await RawConnection.open(h.url.replace(/^https:/, 'http:'));
    const silent = await RawConnection.open(h.url, 5_000, { ca });
    closed = true;
    const started = Date.now();
    try {
      await finishesWithin(h.close(), 5_000, () => "the controller's close");
      await handshakeNeverBegun.waitClosed(1_000);
      await silent.waitClosed(1_000);
      console.log(`HTTPS controller closed in ${Date.now() - started} ms with a connection before its handshake and a silent one open`);
    } finally {
      handshakeNeverBegun.destroy();
      silent.destroy();
    }
  });
});
