import { Logger } from '@nestjs/common';
import { QUIET_GROWTH_BYTES, QUIET_LATE_MS, QUIET_MS, QuietCollector } from './quiet-collector';

const MB = 1024 * 1024;

describe('QuietCollector', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  /**
   * A runtime whose heap is `heap` bytes, and whose collection brings it down to `afterGc`; its
   * clock is the fake timers' plus `state.stalledMs` (time the event loop was held up).
   */
  function runtime(heap: number, afterGc: number) {
    const state = { heap, collections: 0, stalledMs: 0 };
    const gc = (): void => {
      state.collections++;
      state.heap = afterGc;
    };
    return { state, runtime: { gc, heapBytes: () => state.heap, now: () => Date.now() + state.stalledMs } };
  }

  it('collects once work has stopped for QUIET_MS, not before', () => {
    const { state, runtime: rt } = runtime(200 * MB, 150 * MB);
    const collector = new QuietCollector(() => false, rt);
    collector.busy();
    jest.advanceTimersByTime(QUIET_MS - 1);
    collector.busy(); // more work: the quiet period starts over
    jest.advanceTimersByTime(QUIET_MS - 1);
    expect(state.collections).toBe(0);
    jest.advanceTimersByTime(1);
    expect(state.collections).toBe(1);
    collector.stop();
  });

  it('does not take an event loop held up past the quiet period for quiet: it waits for a quiet period of its own', () => {
    const { state, runtime: rt } = runtime(200 * MB, 150 * MB);
    const collector = new QuietCollector(() => false, rt);
    collector.busy();
    state.stalledMs = QUIET_LATE_MS + 1; // the timer fires that much past its time
    jest.advanceTimersByTime(QUIET_MS);
    expect(state.collections).toBe(0);
    jest.advanceTimersByTime(QUIET_MS - 1);
    expect(state.collections).toBe(0);
    jest.advanceTimersByTime(1); // a whole quiet period since, on time
    expect(state.collections).toBe(1);
    collector.stop();
  });

  it('still collects when its timer is late by no more than QUIET_LATE_MS', () => {
    const { state, runtime: rt } = runtime(200 * MB, 150 * MB);
    const collector = new QuietCollector(() => false, rt);
    collector.busy();
    state.stalledMs = QUIET_LATE_MS;
    jest.advanceTimersByTime(QUIET_MS);
    expect(state.collections).toBe(1);
    collector.stop();
  });

  it('waits for the work under way to end', () => {
    let working = true;
    const { state, runtime: rt } = runtime(200 * MB, 150 * MB);
    const collector = new QuietCollector(() => working, rt);
    collector.busy();
    jest.advanceTimersByTime(10 * QUIET_MS);
    expect(state.collections).toBe(0);
    working = false;
    collector.busy(); // the work's end
    jest.advanceTimersByTime(QUIET_MS);
    expect(state.collections).toBe(1);
    collector.stop();
  });

  it('collects again only once the heap grew by QUIET_GROWTH_BYTES since the last collection', () => {
    const { state, runtime: rt } = runtime(200 * MB, 150 * MB);
    const collector = new QuietCollector(() => false, rt);
    collector.busy();
    jest.advanceTimersByTime(QUIET_MS);
    expect(state.collections).toBe(1);
    state.heap = 150 * MB + QUIET_GROWTH_BYTES - 1;
    collector.busy();
    jest.advanceTimersByTime(QUIET_MS);
    expect(state.collections).toBe(1);
    state.heap = 150 * MB + QUIET_GROWTH_BYTES;
    collector.busy();
    jest.advanceTimersByTime(QUIET_MS);
    expect(state.collections).toBe(2);
    collector.stop();
  });

  it('does nothing without gc (node without --expose-gc)', () => {
    const collector = new QuietCollector(() => false, { heapBytes: () => 500 * MB, now: () => 0 });
    collector.busy();
    expect(jest.getTimerCount()).toBe(0);
    collector.stop();
  });

  it('stop cancels a pending collection', () => {
    const { state, runtime: rt } = runtime(200 * MB, 150 * MB);
    const collector = new QuietCollector(() => false, rt);
    collector.busy();
    collector.stop();
    jest.advanceTimersByTime(10 * QUIET_MS);
    expect(state.collections).toBe(0);
  });
});
