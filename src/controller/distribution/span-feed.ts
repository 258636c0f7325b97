import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { encodeDelta } from '../../common/proto';
import { parseSpanKey, type SpanKindName } from '../../common/span/span-kind';
import { encodeResourceKey } from '../../common/span/span-kinds';
import { changesSince, type HostSpanChange } from '../desired-state/span-diff';
import { sharedEncoding, SpanIndex } from '../desired-state/span-index';
import type { ChangeRecord } from '../store/change-log';
import { MaterializedView } from '../store/materialized-view';
import type { ViewState } from '../store/view-state';
import { ChangedHostsLog } from './changed-hosts';
import { EncodingArena } from './encoding-arena';
import { QuietCollector } from './quiet-collector';

/** What a session receives: an encoded SyncResponse{delta}, or the word that it must resync. */
export interface SpanSubscriber {
  readonly hostId: string;
  deliver(revision: number, delta: Buffer): void;
  /** The view was reloaded from a snapshot: incremental deltas no longer apply. */
  resync(): void;
}

/**
 * Turns the materialized view's change records into per-host span deltas, live and on resume.
 * Owns the SpanIndex; for each record it computes which hosts' spans changed, encodes every
 * changed resource once (whatever the number of hosts that need it), assembles one Delta per
 * host from those bytes, and hands it to that host's session on this replica. A resuming host
 * gets the same computation over the records it missed (`resume`).
 *
 * It also keeps, for every host (connected here or not), the revision of the last change to its
 * span: a host whose acknowledged revision reaches it holds everything it needs (realization).
 * And, for recent revisions, which hosts' spans each changed (every host the view knows, not only
 * those whose streams are here), so that any replica can say when a write is realized: in a log
 * of fixed size (ChangedHostsLog), and for a revision someone waits for (`pin`) until released.
 */
@Injectable()
export class SpanFeed implements OnModuleDestroy {
  private index: SpanIndex;
  private readonly subscribers = new Map<string, SpanSubscriber>();
  private readonly lastChange = new Map<string, number>();
  /** Revision below which lastChange is unknown (the view's snapshot): treated as changed then. */
  private floor: number;
  private readonly unsubscribe: (() => void)[] = [];
  private encodedAt = -1;
  /** Encodings made at `encodedAt`, by kind and id (see `encode`); dropped when the revision moves, the last snapshot under way ends or the view is reset. */
  private readonly encoded = new Map<SpanKindName, EncodingArena>();
  private snapshotsUnderWay = 0;
  private readonly changed = new ChangedHostsLog();
  /** Revisions waited for, with how many wait and, once the view applied them, the hosts they changed. */
  private readonly pins = new Map<number, { count: number; hosts?: string[] }>();
  /** Collects V8's garbage once records and snapshots stop (quiet-collector.ts). */
  private readonly collector = new QuietCollector(() => this.snapshotsUnderWay > 0);

  constructor(private readonly view: MaterializedView) {
    this.index = new SpanIndex(view.current);
    this.floor = view.revision;
    this.unsubscribe.push(view.onChange((record) => this.onRecord(record)));
    this.unsubscribe.push(view.onReset((state) => this.onReset(state)));
  }

  get spanIndex(): SpanIndex {
    return this.index;
  }

  get revision(): number {
    return this.view.revision;
  }

  /** The change record of the current revision, as agents are told it ('' when unknown). */
  get record(): string {
    return this.view.record;
  }

  subscribe(subscriber: SpanSubscriber): () => void {
    this.subscribers.get(subscriber.hostId)?.resync();
    this.subscribers.set(subscriber.hostId, subscriber);
    return () => {
      if (this.subscribers.get(subscriber.hostId) === subscriber) {
        this.subscribers.delete(subscriber.hostId);
      }
    };
  }

  /** The revision a host must have acknowledged to hold its whole current span. */
  requiredRevision(hostId: string): number {
    return this.lastChange.get(hostId) ?? this.floor;
  }

  /**
   * The hosts whose span `revision` changed (every host, whether its stream is here or not), or
   * undefined when this replica does not know: a revision its view has not applied yet, one it
   * applied so long ago that the log forgot it, or one before its view's last (re)load.
   */
  hostsChangedAt(revision: number): string[] | undefined {
    return this.pins.get(revision)?.hosts ?? this.changed.get(revision);
  }

  /**
   * Keeps what `revision` changes when the view applies it, however many revisions follow, until
   * the returned function is called (once). For a wait that starts before the view applies the
   * revision it waits for.
   */
  pin(revision: number): () => void {
    const pin = this.pins.get(revision) ?? { count: 0, hosts: revision <= this.view.revision ? this.changed.get(revision) : undefined };
    this.pins.set(revision, pin);
    pin.count++;
    let released = false;
    return () => {
      if (released) {
        return;
      }
      released = true;
      if (--pin.count === 0) {
        this.pins.delete(revision);
      }
    };
  }

  /** Hosts whose span holds the port's entries (every host with a port on its segment). */
  hostsNeedingPort(portId: string): string[] {
    const port = this.index.port(portId);
    if (!port || port.hostId === null) {
      return [];
    }
    return [...this.index.hostCounts(port.segmentId).keys()];
  }

  /**
   * A resource's encoding in `hostId`'s span at the current revision, made at most once per
   * revision for the kinds several hosts share (sharedEncoding); the others each time. Kept for
   * the next host unless a single snapshot is under way: then the encodings are its own (a
   * snapshot holds a resource once), and keeping them would only hold every resource of its span
   * (18 MB for the 100,000 ports of a host on every segment) until it ends.
   */
  encode(kind: SpanKindName, id: string, hostId: string): Uint8Array | undefined {
    if (this.encodedAt !== this.view.revision) {
      this.clearEncodings();
      this.encodedAt = this.view.revision;
    }
    let cache: EncodingArena | undefined;
    if (sharedEncoding(kind)) {
      cache = this.encoded.get(kind);
      if (!cache) {
        cache = new EncodingArena();
        this.encoded.set(kind, cache);
      }
      const bytes = cache.get(id);
      if (bytes) {
        return bytes;
      }
    }
    const bytes = this.index.encodedResource(kind, id, hostId);
    if (!bytes) {
      return undefined;
    }
    if (this.snapshotsUnderWay !== 1) {
      cache?.put(id, bytes);
    }
    return bytes;
  }

  /** A session began sending a snapshot (its chunks encode through `encode`). */
  snapshotBegun(): void {
    this.snapshotsUnderWay++;
    this.collector.busy();
  }

  /**
   * A session's snapshot ended (sent, replaced or dropped). When none is left, the encodings kept
   * for them go: after a storm of snapshots at one revision they held every resource of every
   * span (at 100k ports, about 18 MB of bytes in the arenas' slabs) until the next write.
   */
  snapshotEnded(): void {
    if (--this.snapshotsUnderWay <= 0) {
      this.snapshotsUnderWay = 0;
      this.clearEncodings();
      this.collector.busy();
    }
  }

  /** Bytes of encodings kept for the current revision (the arenas' slabs). */
  get encodedBytes(): number {
    let bytes = 0;
    for (const arena of this.encoded.values()) {
      bytes += arena.bytes;
    }
    return bytes;
  }

  private clearEncodings(): void {
    for (const arena of this.encoded.values()) {
      arena.clear();
    }
  }

  private markerAt = '';
  private markerBytes: Buffer = Buffer.alloc(0);

  /**
   * An empty delta at `revision` (a revision marker): the same bytes for every session, made once
   * per record (a reloaded view may hold another record of the same revision).
   */
  marker(revision: number): Buffer {
    const record = revision === this.view.revision ? this.view.record : '';
    const at = `${revision}/${record}`;
    if (this.markerAt !== at) {
      this.markerBytes = encodeDelta(revision, [], [], record);
      this.markerAt = at;
    }
    return this.markerBytes;
  }

  /**
   * The delta that brings `hostId` from revision `from` to the current one, computed from the
   * change records (from, current] by rewinding the span index through them (`changesSince`, the
   * live path's computation); undefined when `records` are not exactly those (the host then needs
   * a snapshot). Call in the same tick as the session subscribes, so no record falls between.
   */
  resume(hostId: string, from: number, records: ChangeRecord[]): Buffer | undefined {
    const revision = this.view.revision;
    if (records.length !== revision - from || (records.length > 0 && records[0].revision !== from + 1)) {
      return undefined;
    }
    const change = changesSince(this.index, records, hostId).get(hostId) ?? { upserts: new Set<string>(), removals: new Set<string>() };
    return this.encodeChange(revision, change, hostId, this.view.record);
  }

  /** Encodes a change for one host as a SyncResponse{delta} at `revision`, whose change record is `record`. */
  encodeChange(revision: number, change: HostSpanChange, hostId: string, record: string): Buffer {
    const upserts: Uint8Array[] = [];
    for (const key of change.upserts) {
      const { kind, id } = parseSpanKey(key);
      const bytes = this.encode(kind, id, hostId);
      if (bytes) {
        upserts.push(bytes);
      }
    }
    const removals = [...change.removals].map((key) => {
      const { kind, id } = parseSpanKey(key);
      return encodeResourceKey(kind, id);
    });
    return encodeDelta(revision, upserts, removals, record);
  }

  private onRecord(record: ChangeRecord): void {
    this.collector.busy();
    const changes = this.index.apply(record);
    const hosts = [...changes.keys()];
    this.changed.record(record.revision, hosts);
    const pin = this.pins.get(record.revision);
    if (pin) {
      pin.hosts = hosts;
    }
    for (const [hostId, change] of changes) {
      this.lastChange.set(hostId, record.revision);
      const subscriber = this.subscribers.get(hostId);
      if (subscriber) {
        subscriber.deliver(record.revision, this.encodeChange(record.revision, change, hostId, record.entryId));
      }
    }
    for (const op of record.ops) {
      if (op.k === 'host' && op.v === null) {
        this.lastChange.delete(op.id);
      }
    }
  }

  private onReset(state: ViewState): void {
    this.index = new SpanIndex(state);
    // A reloaded state may be at the revision of the encodings kept (a new epoch's): not theirs.
    this.clearEncodings();
    this.encodedAt = -1;
    this.lastChange.clear();
    this.changed.clear();
    this.floor = state.revision;
    for (const subscriber of this.subscribers.values()) {
      subscriber.resync();
    }
  }

  onModuleDestroy(): void {
    this.collector.stop();
    this.unsubscribe.forEach((off) => off());
  }
}
