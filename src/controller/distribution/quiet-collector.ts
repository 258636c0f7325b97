import { Logger } from '@nestjs/common';
import { getHeapStatistics } from 'node:v8';
import { performance } from 'node:perf_hooks';

/** How long the distribution must have been quiet (no change record, no snapshot under way) before a collection. */
export const QUIET_MS = 1_000;
/** How much V8's heap must have grown since the last quiet collection for the next to be worth its pause. */
export const QUIET_GROWTH_BYTES = 16 * 1024 * 1024;

/** What a QuietCollector needs of the process: node's `gc` (absent without --expose-gc) and V8's heap size. */
export interface CollectorRuntime {
  gc?: () => void;
  heapBytes(): number;
}

const nodeRuntime = (): CollectorRuntime => ({
  gc: (globalThis as { gc?: () => void }).gc,
  heapBytes: () => getHeapStatistics().total_heap_size,
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
    const before = this.runtime.heapBytes();
    if (before < this.heapAfterLast + QUIET_GROWTH_BYTES) {
      return;
    }
    const start = performance.now();
    this.runtime.gc?.();
    this.heapAfterLast = this.runtime.heapBytes();
    const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
    this.logger.log(`quiet: heap ${mb(before)} -> ${mb(this.heapAfterLast)} MB in a full collection of ${(performance.now() - start).toFixed(0)} ms`);
  }
}
