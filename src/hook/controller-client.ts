/** An answer of the controller; `status` 0: no answer (unreachable, timed out, past the hook's deadline). */
export interface Answer {
  status: number;
  /** The parsed JSON answer; null when there was none or it was not JSON. */
  body: unknown;
  /** An error answer's `code` (MIGRATION_NOT_READY...). */
  code: string | null;
  /** Why there was no answer, or the error's code and message: for log lines. */
  summary: string;
}

/** A larger answer is not parsed (a page of ports is a few kilobytes). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * The REST calls the hook makes, with the `migration-hook` token, each bounded by `callTimeoutMs`
 * and all by the hook's `deadline` (an AbortSignal that fires when the whole run is out of time).
 */
export class ControllerClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly callTimeoutMs: number,
    private readonly deadline: AbortSignal,
  ) {}

  get(path: string): Promise<Answer> {
    return this.call('GET', path);
  }

  post(path: string, body: unknown = {}): Promise<Answer> {
    return this.call('POST', path, body);
  }

  private async call(method: string, path: string, body?: unknown): Promise<Answer> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.callTimeoutMs), this.deadline]);
    try {
      const res = await fetch(this.baseUrl + path, {
        method,
        signal,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = null;
      try {
        parsed = text.length <= MAX_ANSWER_BYTES ? JSON.parse(text) : null;
      } catch {
        parsed = null;
      }
      const error = (parsed ?? {}) as { code?: unknown; field?: unknown; message?: unknown };
      const code = typeof error.code === 'string' ? error.code : null;
      const field = typeof error.field === 'string' ? ` (${error.field})` : '';
      const summary = res.ok ? `${res.status}` : `${res.status} ${code ?? ''}${field}: ${typeof error.message === 'string' ? error.message : text.slice(0, 200)}`;
      return { status: res.status, body: parsed, code, summary };
    } catch (err) {
      const why = this.deadline.aborted ? 'the hook ran out of time' : signal.aborted ? `no answer within ${this.callTimeoutMs} ms` : `${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`;
      return { status: 0, body: null, code: null, summary: `${method} ${path}: ${why}` };
    }
  }
}
