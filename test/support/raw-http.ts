import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { TEST_ADMIN_TOKEN } from './controller-harness';

/**
 * HTTP/1.1 at the byte level, for what fetch() cannot send: invalid UTF-8 in a chunked body, a
 * body or headers trickled byte by byte, oversized or malformed headers, a request abandoned
 * half way. Every wait has a deadline; nothing sleeps and hopes.
 *
 * Requests to /v1 carry the tests' admin token (AUTHORIZATION): without it the server answers
 * 401 before it reads a body, and the bytes under test would never be looked at.
 */

/** The header line that authenticates a raw request as the tests' admin. */
export const AUTHORIZATION = `Authorization: Bearer ${TEST_ADMIN_TOKEN}`;
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** The body, parsed as JSON when it is JSON, else the text. */
  body: any;
}

export class RawConnection {
  private data = Buffer.alloc(0);
  private closedFlag = false;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.data = Buffer.concat([this.data, chunk]);
      this.wake();
    });
    socket.on('close', () => {
      this.closedFlag = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects to the host and port of `url`; over TLS for an https URL, trusting `tls.ca` (the server's name is checked). */
  static open(url: string, deadlineMs = 5_000, tls: { ca?: Buffer } = {}): Promise<RawConnection> {
    const { hostname, port, protocol } = new URL(url);
    return new Promise((resolve, reject) => {
      const secure = protocol === 'https:';
      const socket: Socket = secure ? connectTls({ host: hostname, port: Number(port), ca: tls.ca }) : connect(Number(port), hostname);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no connection to ${url} within ${deadlineMs} ms`));
      }, deadlineMs);
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve(new RawConnection(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Writes bytes; false when the server has already closed the connection. */
  write(bytes: Buffer | string): boolean {
    if (this.closedFlag || this.socket.destroyed) {
      return false;
    }
    this.socket.write(bytes);
    return true;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Closes with a TCP reset (RST) instead of a FIN, as a client that crashed or timed out does. */
  reset(): void {
    this.socket.resetAndDestroy();
  }

  /** The first complete response (by its Content-Length, or up to the close). */
  async response(deadlineMs = 5_000): Promise<RawResponse> {
    let parsed: RawResponse | undefined;
    await this.until(() => (parsed = this.parse()) !== undefined, deadlineMs, 'response');
    return parsed!;
  }

  /** Resolves once the server has sent `text` (`100 Continue`: it has read the headers and dispatched the request). */
  async waitFor(text: string, deadlineMs = 5_000): Promise<void> {
    await this.until(() => this.data.includes(text), deadlineMs, JSON.stringify(text));
  }

  /** Resolves once the server has closed the connection. */
  async waitClosed(deadlineMs = 5_000): Promise<void> {
    await this.until(() => this.closedFlag, deadlineMs, 'close of the connection by the server');
  }

  private parse(): RawResponse | undefined {
    // Interim responses (100 Continue) are not the response.
    let start = 0;
    while (this.data.subarray(start, start + 12).toString('latin1').startsWith('HTTP/1.1 100')) {
      const interimEnd = this.data.indexOf('\r\n\r\n', start);
      if (interimEnd < 0) {
        return undefined;
      }
      start = interimEnd + 4;
    }
    const end = this.data.indexOf('\r\n\r\n', start);
    if (end < 0) {
      return undefined;
    }
    const [statusLine, ...lines] = this.data.subarray(start, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
    const rest = this.data.subarray(end + 4);
    if (length === undefined ? !this.closedFlag : rest.length < length) {
      return undefined;
    }
    const text = rest.subarray(0, length ?? rest.length).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: Number(statusLine.split(' ')[1]), headers, body };
  }

  private until(check: () => boolean, deadlineMs: number, what: string): Promise<void> {
    if (check()) {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = () => {
        if (check()) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        } else if (this.closedFlag) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(new Error(`connection closed while waiting for ${what}; received ${JSON.stringify(this.data.toString('latin1').slice(0, 300))}`));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no ${what} within ${deadlineMs} ms; received ${JSON.stringify(this.data.toString('latin1').slice(0, 300))}`));
      }, deadlineMs);
      this.waiters.add(waiter);
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) {
      waiter();
    }
  }
}

/** Sends one whole request on a fresh connection and returns the response. */
export async function rawRequest(url: string, request: Buffer | string, deadlineMs = 5_000, tls: { ca?: Buffer } = {}): Promise<RawResponse> {
  const conn = await RawConnection.open(url, deadlineMs, tls);
  try {
    conn.write(request);
    return await conn.response(deadlineMs);
  } finally {
    conn.destroy();
  }
}

/** A request with a body whose bytes are given as they are (Content-Length or chunked), with the admin token unless `token` is null. */
export function requestBytes(method: string, path: string, body: Buffer, opts: { chunked?: boolean; contentType?: string; chunkSize?: number; token?: string | null } = {}): Buffer {
  const token = opts.token === undefined ? TEST_ADMIN_TOKEN : opts.token;
  const head = [`${method} ${path} HTTP/1.1`, 'Host: test', ...(token === null ? [] : [`Authorization: Bearer ${token}`]), `Content-Type: ${opts.contentType ?? 'application/json'}`, 'Connection: close'];
  if (!opts.chunked) {
    return Buffer.concat([Buffer.from([...head, `Content-Length: ${body.length}`, '', ''].join('\r\n')), body]);
  }
  const parts: Buffer[] = [Buffer.from([...head, 'Transfer-Encoding: chunked', '', ''].join('\r\n'))];
  const size = opts.chunkSize ?? 7;
  for (let i = 0; i < body.length; i += size) {
    const chunk = body.subarray(i, i + size);
    parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}
