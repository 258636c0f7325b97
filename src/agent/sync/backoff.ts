/**
 * Reconnect delays: exponential with full jitter (a random delay up to the exponential bound),
 * so a thousand agents that lost the controller together do not come back together.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const bound = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 20));
    this.attempt++;
    return Math.floor(this.random() * bound);
  }

  reset(): void {
    this.attempt = 0;
  }
}
