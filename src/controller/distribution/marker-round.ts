import { yieldToEventLoop } from '../../common/event-loop';

/**
 * Markers sent between two turns of the event loop. In the scale bench (2,500 agents a replica,
 * a tick every 250 ms while writes come) a tick's 1,000 in one piece held a replica's loop a
 * median 10-14 ms and up to 28-33 ms with the HTTP/2 writes under it, and a write's HTTP answer
 * or delta waited for it.
 */
export const MARKERS_PER_SLICE = 100;

/** Something that may be sent a revision marker: true when it was (it was behind the revision). */
export interface MarkerTarget {
  sendMarker(): boolean;
}

/**
 * Revision markers under a budget. Each tick walks the sessions from where the last tick stopped
 * and ends after `perTick` markers sent, or once it has visited every session. With fewer
 * sessions behind than the budget, every one is sent a marker each tick; with more, each waits
 * its turn (the interval grows with their number), so a replica's markers and their acks cost
 * at most `perTick` of each per tick however many agents it holds. A tick sends them `perSlice`
 * at a time, the event loop served between the slices.
 */
export class MarkerRound<T extends MarkerTarget> {
  /** Live: a Map's iterator sees sessions added after it started and skips those deleted. */
  private cursor: Iterator<T> | undefined;
  /** A tick is sending (between its slices). */
  private ticking = false;

  constructor(
    private readonly sessions: ReadonlyMap<string, T>,
    private readonly perTick: number,
    private readonly perSlice = MARKERS_PER_SLICE,
  ) {}

  /** Sends this tick's markers; answers how many went out. A tick while the last one is still sending sends none (it is late already). */
  async tick(): Promise<number> {
    if (this.ticking) {
      return 0;
    }
    this.ticking = true;
    try {
      return await this.send();
    } finally {
      this.ticking = false;
    }
  }

  private async send(): Promise<number> {
    const total = this.sessions.size;
    let visited = 0;
    let sent = 0;
    while (visited < total && sent < this.perTick) {
      let next = this.cursor?.next();
      if (!next || next.done) {
        this.cursor = this.sessions.values();
        next = this.cursor.next();
        if (next.done) {
          break;
        }
      }
      visited++;
      if (next.value.sendMarker() && ++sent % this.perSlice === 0 && sent < this.perTick) {
        await yieldToEventLoop();
      }
    }
    return sent;
  }
}
