import http from 'node:http';

/**
 * A minimal JSON client over node:http with a keep-alive Agent (fetch/undici costs more CPU per
 * call, and the client shares the machine with the controller and Redis). Response bodies are
 * only kept when asked for, or when the status is not 2xx, so large batch replies are not parsed
 * by the load generator. With a token, every request carries `Authorization: Bearer <token>`.
 */
export interface HttpResult {
  status: number;
  /** The body text, when kept (`keepBody`, or any non-2xx answer). */
  text: string;
  bytes: number;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${body.slice(0, 300)}`);
  }
}

export class JsonHttpClient {
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private readonly auth: Record<string, string>;

  constructor(
    readonly host: string,
    readonly port: number,
    maxSockets: number,
    opts: { token?: string; timeoutMs?: number } = {},
  ) {
    // A timeout makes the Agent honour the server's `Keep-Alive: timeout=N` (it closes an idle socket
    // 1 s before the server would): without one it keeps idle sockets for ever, and the first request
    // after a pause of the server's keep-alive timeout (5 s) can race the server's close (ECONNRESET).
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: 60_000 });
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.auth = opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` };
  }

  /** The controller's GET /metrics text, or undefined when it does not answer 200. */
  async metrics(): Promise<string | undefined> {
    try {
      const res = await this.request('GET', '/metrics', undefined, { keepBody: true });
      return res.status === 200 ? res.text : undefined;
    } catch {
      return undefined;
    }
  }

  /** Sends `body` (an object, or a pre-serialized JSON string/Buffer) and resolves with the answer, whatever its status. */
  request(method: string, path: string, body?: unknown, opts: { keepBody?: boolean } = {}): Promise<HttpResult> {
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return new Promise<HttpResult>((resolve, reject) => {
      const req = http.request(
        {
          host: this.host,
          port: this.port,
          method,
          path,
          agent: this.agent,
          headers: payload ? { ...this.auth, 'content-type': 'application/json', 'content-length': payload.length } : this.auth,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const keep = opts.keepBody === true || status < 200 || status >= 300;
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (keep) {
              chunks.push(chunk);
            }
          });
          res.on('end', () => resolve({ status, text: keep ? Buffer.concat(chunks).toString('utf8') : '', bytes }));
          res.on('error', reject);
        },
      );
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A call that must answer 2xx; returns the parsed body. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body, { keepBody: true });
    if (res.status < 200 || res.status >= 300) {
      throw new HttpError(res.status, res.text, `${method} ${path}`);
    }
    return (res.text ? JSON.parse(res.text) : undefined) as T;
  }

  /** A call that must answer 2xx; the body is not kept. */
  async send(method: string, path: string, body?: unknown): Promise<HttpResult> {
    const res = await this.request(method, path, body);
    if (res.status < 200 || res.status >= 300) {
      throw new HttpError(res.status, res.text, `${method} ${path}`);
    }
    return res;
  }

  close(): void {
    this.agent.destroy();
  }
}
