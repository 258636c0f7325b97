/** Host entries the log keeps, across all revisions it holds (4 bytes each). */
export const CHANGED_HOSTS_CAPACITY = 262_144;
/** Revisions the log keeps at most (12 bytes each). */
export const CHANGED_HOSTS_REVISIONS = 16_384;
/** Distinct host ids numbered before the numbering starts over (forgetting every revision): hosts come and go. */
export const CHANGED_HOSTS_IDS = 65_536;

/**
 * For each recent revision, the hosts whose span it changed, in memory fixed at construction
 * whatever the load: host numbers in one circular buffer of `capacity` entries, and one slot per
 * revision (`revision mod revisions`) saying where its hosts start in that buffer and how many
 * there are. A revision is held while neither its slot nor its entries have been overwritten by
 * later revisions; an older one is forgotten (`get` answers undefined, never a wrong list).
 *
 * Revisions are recorded in increasing order, each once, with its hosts (none for a revision
 * that changed no span: it is known to have changed nothing). Host ids are numbered as they are
 * first seen; `clear` forgets everything, numbers included, as does numbering more than
 * `hostIds` distinct ids (so that a deployment whose hosts come and go does not grow it).
 */
export class ChangedHostsLog {
  private readonly entries: Int32Array;
  /** Per slot: the revision it holds (-1: none), where its entries start in the stream of every entry written, how many. */
  private readonly slotRevision: Float64Array;
  private readonly starts: Float64Array;
  private readonly counts: Int32Array;
  /** Entries written since the last clear (positions in the buffer are this modulo capacity). */
  private written = 0;
  private last = -1;
  private readonly ids: string[] = [];
  private readonly numbers = new Map<string, number>();

  constructor(
    readonly capacity = CHANGED_HOSTS_CAPACITY,
    readonly revisions = CHANGED_HOSTS_REVISIONS,
    readonly hostIds = CHANGED_HOSTS_IDS,
  ) {
    this.entries = new Int32Array(capacity);
    this.slotRevision = new Float64Array(revisions).fill(-1);
    this.starts = new Float64Array(revisions);
    this.counts = new Int32Array(revisions);
  }

  /** Records the hosts whose span `revision` changed; `revision` must be above every one recorded since the last clear. */
  record(revision: number, hosts: readonly string[]): void {
    if (revision <= this.last) {
      throw new Error(`revision ${revision} recorded after ${this.last}`);
    }
    if (this.ids.length + hosts.length > this.hostIds) {
      this.clear();
    }
    const slot = revision % this.revisions;
    this.slotRevision[slot] = revision;
    this.starts[slot] = this.written;
    this.last = revision;
    if (hosts.length > this.capacity) {
      this.counts[slot] = -1; // more than the buffer holds: recorded as unknown, nothing else overwritten
      return;
    }
    for (const host of hosts) {
      this.entries[this.written % this.capacity] = this.number(host);
      this.written++;
    }
    this.counts[slot] = hosts.length;
  }

  /** The hosts whose span `revision` changed, or undefined when this log does not hold it (any more). */
  get(revision: number): string[] | undefined {
    const slot = revision % this.revisions;
    if (this.slotRevision[slot] !== revision) {
      return undefined;
    }
    const n = this.counts[slot];
    const start = this.starts[slot];
    if (n < 0 || this.written - start > this.capacity) {
      return undefined;
    }
    const out: string[] = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      out[i] = this.ids[this.entries[(start + i) % this.capacity]];
    }
    return out;
  }

  /** Forgets every revision. */
  clear(): void {
    this.slotRevision.fill(-1);
    this.written = 0;
    this.last = -1;
    this.ids.length = 0;
    this.numbers.clear();
  }

  private number(host: string): number {
    let n = this.numbers.get(host);
    if (n === undefined) {
      n = this.ids.length;
      this.ids.push(host);
      this.numbers.set(host, n);
    }
    return n;
  }
}
