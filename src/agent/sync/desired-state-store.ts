import type { SpanKindName } from '../../common/span/span-kind';
import { putResource, removeResource, SPAN_KINDS, touchedCollections, type SpanMaps } from '../../common/span/span-kinds';
import type { Delta__Output } from '../../generated/overlay/v1/Delta';
import type { Resource__Output } from '../../generated/overlay/v1/Resource';
import type { SnapshotChunk__Output } from '../../generated/overlay/v1/SnapshotChunk';
import type { SnapshotEnd__Output } from '../../generated/overlay/v1/SnapshotEnd';
import { SharedStrings } from './shared-strings';
import { cloneDesiredState, emptyDesiredState, type DesiredState, type StateCache } from './state-cache';

/** What a message from the controller did to the desired state. */
export type StateChange =
  /** A snapshot chunk, staged: nothing changes before the snapshot's end marker. */
  | { outcome: 'staged' }
  /** A complete snapshot replaced the whole state, at `revision`. */
  | { outcome: 'replaced'; revision: number }
  /**
   * A delta moved the state to `revision`. `marker`: it carried no resource (a revision marker,
   * nothing to program); `wasInSync`: the state was whole before it (not a resume on top of the
   * persisted state).
   */
  | { outcome: 'updated'; revision: number; marker: boolean; wasInSync: boolean }
  /**
   * Refused, the state unchanged: `reason` is the nack of `revision`. `resync`: the stream's
   * snapshot was incomplete, a fresh stream must send a new one.
   */
  | { outcome: 'refused'; revision: number; reason: string; resync: boolean };

/** The desired state as the parts that act on it read it (the store, read-only). */
export type DesiredSource = Pick<DesiredStateStore, 'state' | 'inSync'>;

/** Resources received, by kind. */
export type KindCounters = Record<SpanKindName, number>;

const kindCounters = (): KindCounters => Object.fromEntries(Object.keys(SPAN_KINDS).map((kind) => [kind, 0])) as KindCounters;

/**
 * The agent's desired state, as the controller sends it, and its copy on disk.
 *
 * A snapshot is staged chunk by chunk and replaces the state only at its end marker, and only
 * when the marker's count of resources is what was staged; deltas update the state. A delta
 * copies the maps it changes, unless this store made them since the state was last read (`state`:
 * nobody else can hold them), and a revision marker only moves the revision, so maps once handed
 * out never change: the same maps mean the same resources. (A copy of 10,000 ports takes ~9 ms:
 * one per delta fell behind a stream of changes; one per pass keeps up.) Every new state is saved through
 * the StateCache, so a restarted agent restores it (`restore`) before the controller answers.
 * `inSync` is true once the state is whole: after a snapshot, or a delta on top of a restored
 * state (a resume); never set back. The strings many resources repeat (hosts, segments, groups...)
 * are stored once (SharedStrings).
 */
export class DesiredStateStore {
  private desired: DesiredState = emptyDesiredState();
  private whole = false;
  private staging?: { revision: number; epoch: string; resources: Resource__Output[] };
  /** Maps of `desired` this store made since the state was last read: a delta may change them in place. */
  private readonly unread = new Set<keyof SpanMaps>();
  /** One copy of the strings resources repeat (see SharedStrings): started over with each snapshot. */
  private readonly strings = new SharedStrings();
  /** Messages that changed the state, for tests and logs. */
  readonly counts = { snapshots: 0, deltas: 0, emptyDeltas: 0 };
  /** Resources received in deltas, upserted and removed, by kind, for tests and logs. */
  readonly received = { upserts: kindCounters(), removals: kindCounters() };

  constructor(private readonly cache: StateCache) {}

  /** The state now; its maps never change after this (the next delta that changes one copies it). */
  get state(): DesiredState {
    this.unread.clear();
    return this.desired;
  }

  /**
   * The state for a look that keeps none of its maps (a count, a few values copied out): unlike
   * `state`, it leaves the maps this store made since the last read changeable in place by the
   * next delta, so a look after every message costs no copy.
   */
  peek(): Readonly<DesiredState> {
    return this.desired;
  }

  /** Whether the state is the controller's whole desired state (stale objects may be swept). */
  get inSync(): boolean {
    return this.whole;
  }

  /** Where a stream resumes from (its Hello): the revision, its record and the epoch held, revision 0 when none is. */
  get resumeFrom(): { appliedRevision: number; appliedRecord: string; epoch: string } {
    const held = this.desired.epoch !== '';
    return { appliedRevision: held ? this.desired.revision : 0, appliedRecord: held ? this.desired.record : '', epoch: this.desired.epoch };
  }

  /** Loads the persisted state, if any, as the current one (not in sync: it may be stale). */
  async restore(): Promise<DesiredState | undefined> {
    const cached = await this.cache.load();
    if (cached) {
      this.strings.clear();
      this.strings.shareMaps(cached);
      this.desired = cached;
      this.unread.clear();
    }
    return cached;
  }

  /** A new stream: a snapshot half staged from the one before will not be completed. */
  discardStaging(): void {
    this.staging = undefined;
  }

  stage(chunk: SnapshotChunk__Output): StateChange {
    if (!this.staging || this.staging.revision !== chunk.revision || this.staging.epoch !== chunk.epoch) {
      this.staging = { revision: chunk.revision, epoch: chunk.epoch, resources: [] };
    }
    this.staging.resources.push(...chunk.resources);
    return { outcome: 'staged' };
  }

  endSnapshot(end: SnapshotEnd__Output): StateChange {
    const staged = this.staging;
    this.staging = undefined;
    if (!staged || staged.revision !== end.revision || staged.resources.length !== end.resourceCount) {
      return { outcome: 'refused', revision: end.revision, reason: `snapshot incomplete: got ${staged?.resources.length ?? 0} of ${end.resourceCount} resources`, resync: true };
    }
    const next: DesiredState = { ...emptyDesiredState(), epoch: end.epoch, revision: end.revision, record: end.record, hostId: end.hostId, vtepIp: end.vtepIp };
    this.strings.clear();
    for (const resource of staged.resources) {
      this.strings.share(resource);
      putResource(next, resource);
    }
    this.replace(next);
    this.counts.snapshots++;
    return { outcome: 'replaced', revision: end.revision };
  }

  applyDelta(delta: Delta__Output): StateChange {
    if (!this.desired.epoch) {
      return { outcome: 'refused', revision: delta.revision, reason: 'delta received before any snapshot', resync: false };
    }
    const marker = delta.upserts.length === 0 && delta.removals.length === 0;
    this.counts.deltas++;
    if (marker) {
      this.counts.emptyDeltas++;
    }
    const touched = touchedCollections(delta.removals, delta.upserts);
    const next = marker ? this.desired : cloneDesiredState(this.desired, new Set([...touched].filter((c) => !this.unread.has(c))));
    touched.forEach((c) => this.unread.add(c));
    for (const key of delta.removals) {
      const kind = removeResource(next, key);
      if (kind) {
        this.received.removals[kind]++;
      }
    }
    for (const resource of delta.upserts) {
      this.strings.share(resource);
      const kind = putResource(next, resource);
      if (kind) {
        this.received.upserts[kind]++;
      }
    }
    next.revision = delta.revision;
    next.record = delta.record;
    // A delta is either live or a resume on top of the persisted state: the state is now whole.
    const wasInSync = this.whole;
    this.replace(next);
    return { outcome: 'updated', revision: delta.revision, marker, wasInSync };
  }

  /** Resolves once every state so far is on disk. */
  flush(): Promise<void> {
    return this.cache.flush();
  }

  private replace(next: DesiredState): void {
    this.desired = next;
    this.whole = true;
    // Not a read: the cache keeps only the latest state, and copies what it writes at once.
    this.cache.save(next);
  }
}
