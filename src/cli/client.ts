import type { Connection } from './config';
import { CliError, ExitCode, exitCodeOf } from './exit-codes';

/** How long a call may take unless it waits on purpose (`?wait=realized`: its timeout plus this). */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Answer<T> {
  status: number;
  body: T;
}

type Query = Record<string, string | number | undefined>;

/** The pages of a list the CLI follows at most (at 1000 items a page). */
const MAX_PAGES = 10_000;

/** The REST API over fetch. Every failure becomes a `CliError` with its exit class; the token never appears in one. */
export class ApiClient {
  constructor(private readonly connection: Connection) {}

  get url(): string {
    return this.connection.url;
  }

  async call<T = unknown>(method: string, path: string, opts: { query?: Query; body?: unknown; timeoutMs?: number } = {}): Promise<Answer<T>> {
    const target = this.connection.url + path + queryString(opts.query);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.connection.token !== null) {
      headers.authorization = `Bearer ${this.connection.token}`;
    }
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
    }
    const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
    let res: Response;
    let text: string;
    try {
      res = await fetch(target, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: AbortSignal.timeout(timeoutMs) });
      text = await res.text();
    } catch (err) {
      throw unreachable(this.connection.url, err, timeoutMs);
    }
    const body = parseJson(text);
    if (res.status >= 400) {
      throw this.apiError(method, path, res.status, body);
    }
    if (text !== '' && body === undefined) {
      throw new CliError(ExitCode.ServerError, `${method} ${path}: HTTP ${res.status} with a body that is not JSON; is ${this.connection.url} an overlayd?`);
    }
    return { status: res.status, body: body as T };
  }

  get<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.call<T>('GET', path, { query }).then((a) => a.body);
  }

  /** Every item of a list, following `nextCursor`; at most `max` items when given. */
  async list<T = unknown>(path: string, query: Query = {}, max?: number): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const limit = max === undefined ? 1000 : Math.min(1000, max - items.length);
      const answer = await this.get<Page<T>>(path, { ...query, limit, cursor });
      items.push(...answer.items);
      if (answer.nextCursor === null || (max !== undefined && items.length >= max)) {
        return items;
      }
      cursor = answer.nextCursor;
    }
    throw new CliError(ExitCode.ServerError, `${path}: more than ${MAX_PAGES} pages; narrow the list with a filter or --limit`);
  }

  private apiError(method: string, path: string, status: number, body: unknown): CliError {
    const error = typeof body === 'object' && body !== null ? (body as { code?: unknown; message?: unknown; field?: unknown }) : {};
    const code = typeof error.code === 'string' ? error.code : undefined;
    const message = typeof error.message === 'string' ? error.message : `${method} ${path} answered HTTP ${status}`;
    const field = typeof error.field === 'string' ? error.field : undefined;
    let text = code ? `${code}: ${message}` : `HTTP ${status}: ${message}`;
    if (status === 401) {
      text += this.connection.tokenSource
        ? ` (the token from ${this.connection.tokenSource} was refused)`
        : ' (no token: set OVERLAY_TOKEN, or "token" in the config file, ~/.config/overlayctl/config.json by default)';
    }
    return new CliError(exitCodeOf(status, code), text, field);
  }
}

function queryString(query: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined) {
      params.set(name, String(value));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

function parseJson(text: string): unknown {
  if (text === '') {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function unreachable(url: string, err: unknown, timeoutMs: number): CliError {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new CliError(ExitCode.Unavailable, `${url} did not answer within ${timeoutMs} ms`);
  }
  const reason = e.cause?.code ?? e.cause?.message ?? e.message;
  return new CliError(ExitCode.Unavailable, `cannot reach overlayd at ${url}: ${reason}`);
}
