/** Something that may be sent a revision marker: true when it was (it was behind the revision). */
export interface MarkerTarget {
  sendMarker(): boolean;
}

/**
 * Revision markers under a budget. Each tick walks the sessions from where the last tick stopped
 * and ends after `perTick` markers sent, or once it has visited every session. With fewer
 * sessions behind than the budget, every one is sent a marker each tick; with more, each waits
 * its turn (the interval grows with their number), so a replica's markers and their acks cost
 * at most `perTick` of each per tick however many agents it holds.
 */
export class MarkerRound<T extends MarkerTarget> {
  /** Live: a Map's iterator sees sessions added after it started and skips those deleted. */
  private cursor: Iterator<T> | undefined;

  constructor(
    private readonly sessions: ReadonlyMap<string, T>,
    private readonly perTick: number,
  ) {}

  /** Sends this tick's markers; answers how many went out. */
  tick(): number {
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
      if (next.value.sendMarker()) {
        sent++;
      }
    }
    return sent;
  }
}
