import { Logger } from '@nestjs/common';
import { getHeapStatistics } from 'node:v8';
import { performance } from 'node:perf_hooks';

/** How long the distribution must have been quiet (no change record, no snapshot under way) before a collection. */
export const QUIET_MS = 1_000;
/** How much V8's heap must have grown since the last quiet collection for the next to be worth its pause. */
export const QUIET_GROWTH_BYTES = 16 * 1024 * 1024;
/**
 * How late the quiet timer may fire and the period still count as quiet. Later means the event
 * loop itself was held up (a replica starved of CPU, a long task): no record arrived because none
 * could be read, not because none came, and a full collection then (0.3-2 s at 500,000 ports)
 * would only add to the stall with the writes still coming (docs/operations.md, "Memory").
 */
export const QUIET_LATE_MS = 100;

/** What a QuietCollector needs of the process: node's `gc` (absent without --expose-gc) and V8's heap size. */
export interface CollectorRuntime {
  gc?: () => void;
  heapBytes(): number;
  /** A monotonic clock, ms. */
  now(): number;
}

const nodeRuntime = (): CollectorRuntime => ({
  gc: (globalThis as { gc?: () => void }).gc,
  heapBytes: () => getHeapStatistics().total_heap_size,
  now: () => performance.now(),
});

/**
 * One full garbage collection when the distribution turns quiet after work that grew V8's heap
 * (docs/operations.md, "Memory"), when node runs with `--expose-gc` (as
 * deploy/overlayd-runtime.conf starts overlayd); nothing otherwise (tests, a development run).
 *
 * After a snapshot storm or a stream of writes, V8 keeps its heap grown: pages part empty, and
 * old garbage it will only collect once the heap reaches its limit again. An idle controller
 * allocates little (revision markers, acks), almost all of it dying young, so that takes minutes.
 * V8's own memory reducer does not step in: 1,000 agents' markers and acks are above the
 * allocation rate it takes for idle. A collection when the work stops gives the pages back.
 */
export class QuietCollector {
  private readonly logger = new Logger('memory');
  private timer?: NodeJS.Timeout;
  /** When the quiet period in progress began (the last busy()). */
  private quietFrom = 0;
  private heapAfterLast = 0;

  constructor(
    /** Whether work is still under way (a snapshot being sent): the collection then waits. */
    private readonly working: () => boolean,
    private readonly runtime: CollectorRuntime = nodeRuntime(),
  ) {}

  /** Work happened: the quiet period starts over. */
  busy(): void {
    if (!this.runtime.gc) {
      return;
    }
    this.quietFrom = this.runtime.now();
    if (this.timer) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => this.quiet(), QUIET_MS);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private quiet(): void {
    this.timer = undefined;
    if (this.working()) {
      return; // the work's end calls busy() again
    }
    if (this.runtime.now() - this.quietFrom > QUIET_MS + QUIET_LATE_MS) {
      this.busy(); // the loop was held up, not quiet: a period of its own starts now
      return;
    }
    const before = this.runtime.heapBytes();
    if (before < this.heapAfterLast + QUIET_GROWTH_BYTES) {
      return;
    }
    const start = this.runtime.now();
    this.runtime.gc?.();
    this.heapAfterLast = this.runtime.heapBytes();
    const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
    this.logger.log(`quiet: heap ${mb(before)} -> ${mb(this.heapAfterLast)} MB in a full collection of ${(this.runtime.now() - start).toFixed(0)} ms`);
  }
}
