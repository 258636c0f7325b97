import { createConnection, type Socket } from 'node:net';

/*
 * A minimal OVSDB client (RFC 7047: JSON-RPC over a stream socket) for the OVN peer benchmark:
 * `transact` only, what an OVN management system's library (Neutron's ovsdbapp, libovsdb) sends
 * for a write, without the in-memory replica those keep. It answers the server's `echo`
 * (inactivity probe).
 */

/**
 * Splits a stream of JSON texts sent back to back, as OVSDB sends them (no delimiter), into whole
 * texts. Every message is an object, so a text ends where the nesting of brackets outside strings
 * returns to zero. The scan resumes where the last chunk ended: a large reply arriving in many
 * chunks is scanned once.
 */
export class JsonTextSplitter {
  private buffer = '';
  private scanned = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** Appends `chunk` and returns the texts it completed, in order. Throws on bytes outside an object (not OVSDB). */
  push(chunk: string): string[] {
    this.buffer += chunk;
    const texts: string[] = [];
    let start = 0;
    for (let i = this.scanned; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
        } else if (c === '\\') {
          this.escaped = true;
        } else if (c === '"') {
          this.inString = false;
        }
      } else if (this.depth === 0) {
        if (c === '{') {
          this.depth = 1;
          start = i;
        } else if (c === ' ' || c === '\n' || c === '\r' || c === '\t') {
          start = i + 1;
        } else {
          throw new Error(`not a JSON-RPC stream: ${JSON.stringify(this.buffer.slice(i, i + 40))}`);
        }
      } else if (c === '"') {
        this.inString = true;
      } else if (c === '{' || c === '[') {
        this.depth++;
      } else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth === 0) {
          texts.push(this.buffer.slice(start, i + 1));
          start = i + 1;
        }
      }
    }
    this.buffer = this.buffer.slice(start);
    this.scanned = this.buffer.length;
    return texts;
  }
}

interface Pending {
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One operation's result in a transaction's reply (RFC 7047 5.2): `uuid` for an insert, `count` for a mutate, `error` when it failed. */
export interface OvsdbOpResult {
  uuid?: ['uuid', string];
  count?: number;
  rows?: Record<string, unknown>[];
  error?: string;
  details?: string;
}

export class OvsdbClient {
  private readonly pending = new Map<number, Pending>();
  private readonly splitter = new JsonTextSplitter();
  private nextId = 0;
  private closed: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        for (const text of this.splitter.push(chunk)) {
          this.handle(JSON.parse(text) as { id?: unknown; method?: string; params?: unknown; result?: unknown; error?: unknown });
        }
      } catch (err) {
        this.fail(new Error(`OVSDB stream: ${(err as Error).message}`));
      }
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('OVSDB connection closed')));
  }

  /** Connects to a Unix socket (`path`) or fails within `timeoutMs`. */
  static connect(path: string, timeoutMs = 30_000): Promise<OvsdbClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const timer = setTimeout(() => socket.destroy(new Error(`no OVSDB connection to ${path} within ${timeoutMs} ms`)), timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new OvsdbClient(socket, timeoutMs));
      });
    });
  }

  private handle(msg: { id?: unknown; method?: string; params?: unknown; result?: unknown; error?: unknown }): void {
    if (msg.method === 'echo') {
      this.socket.write(JSON.stringify({ id: msg.id, result: msg.params, error: null }));
      return;
    }
    if (typeof msg.id !== 'number') {
      return; // a notification (we subscribe to none)
    }
    const call = this.pending.get(msg.id);
    if (!call) {
      return;
    }
    this.pending.delete(msg.id);
    clearTimeout(call.timer);
    if (msg.error !== null && msg.error !== undefined) {
      call.reject(new Error(`OVSDB error: ${JSON.stringify(msg.error).slice(0, 300)}`));
    } else {
      call.resolve(msg.result);
    }
  }

  private fail(err: Error): void {
    this.closed ??= err;
    for (const call of this.pending.values()) {
      clearTimeout(call.timer);
      call.reject(err);
    }
    this.pending.clear();
    this.socket.destroy();
  }

  call(method: string, params: unknown[]): Promise<unknown> {
    if (this.closed) {
      return Promise.reject(this.closed);
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`OVSDB ${method}: no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(JSON.stringify({ method, params, id }));
    });
  }

  /** Runs `ops` as one transaction on `db`; rejects unless every operation succeeded (the server then committed none of them). */
  async transact(db: string, ops: Record<string, unknown>[]): Promise<OvsdbOpResult[]> {
    const results = (await this.call('transact', [db, ...ops])) as (OvsdbOpResult | null)[];
    const failed = results.find((r) => r?.error);
    if (failed || results.length < ops.length) {
      throw new Error(`OVSDB transaction failed: ${failed ? `${failed.error}: ${failed.details ?? ''}` : `${results.length} results for ${ops.length} operations`}`.slice(0, 400));
    }
    return results as OvsdbOpResult[];
  }

  close(): void {
    this.fail(new Error('OVSDB client closed'));
  }
}
