/**
 * One kind of report the agent sends its controller after reconcile passes (the mirror counters,
 * the host observation). A report goes when the caller says it is due, or when it differs from
 * the last one sent (by `key`); it counts as sent only once a stream took it, so with no stream
 * the next pass tries again.
 */
export class PassReport<T> {
  constructor(
    /** Sends a report; whether a stream took it. Undefined: this agent sends none. */
    private readonly send: ((value: T) => boolean) | undefined,
    /** The key of the last report sent: as if this had been sent before the first. */
    private last?: string,
  ) {}

  get enabled(): boolean {
    return this.send !== undefined;
  }

  /** Whether the last report sent had this key. */
  lastWas(key: string): boolean {
    return this.last === key;
  }

  /** Sends `value` when `due` or when `key` is not the last report's; whether it was sent. */
  offer(value: T, key: string, due: boolean): boolean {
    if (!this.send || (!due && key === this.last) || !this.send(value)) {
      return false;
    }
    this.last = key;
    return true;
  }
}
