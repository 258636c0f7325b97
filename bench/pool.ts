import { performance } from 'node:perf_hooks';

/**
 * Runs `task(0..count-1)` with at most `concurrency` calls in flight, stopping early at the time
 * limit, on a shared abort signal, or after too many failures. Every loop is bounded in count and
 * in time. A task resolves with the number of items it created (1 per single create, n per batch).
 */
export interface PoolOptions {
  count: number;
  concurrency: number;
  maxMs: number;
  task: (i: number) => Promise<number>;
  /** Stop after this many failed calls (default 20). */
  maxErrors?: number;
  shouldStop?: () => boolean;
}

export interface PoolResult {
  calls: number;
  items: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  /** Items per second over the whole run. */
  rate: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Why it ended before `count` calls, if it did. */
  stoppedBy?: 'time' | 'errors' | 'abort';
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) {
    return 0;
  }
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export async function runPool(opts: PoolOptions): Promise<PoolResult> {
  const maxErrors = opts.maxErrors ?? 20;
  const latencies: number[] = [];
  let next = 0;
  let items = 0;
  let errors = 0;
  let firstError: string | undefined;
  let stoppedBy: PoolResult['stoppedBy'];
  const start = performance.now();
  const deadline = start + opts.maxMs;

  const worker = async (): Promise<void> => {
    while (next < opts.count) {
      if (performance.now() >= deadline) {
        stoppedBy ??= 'time';
        return;
      }
      if (errors >= maxErrors) {
        stoppedBy ??= 'errors';
        return;
      }
      if (opts.shouldStop?.()) {
        stoppedBy ??= 'abort';
        return;
      }
      const i = next++;
      const t0 = performance.now();
      try {
        const created = await opts.task(i); // not `items += await ...`: that would read `items` before the await
        items += created;
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      latencies.push(performance.now() - t0);
    }
  };

  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, opts.count)) }, worker));
  const elapsedMs = performance.now() - start;
  latencies.sort((a, b) => a - b);
  return {
    calls: latencies.length,
    items,
    errors,
    firstError,
    elapsedMs,
    rate: elapsedMs > 0 ? (items * 1000) / elapsedMs : 0,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? 0 },
    stoppedBy: next < opts.count ? stoppedBy : undefined,
  };
}
