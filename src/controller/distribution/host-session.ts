import type * as grpc from '@grpc/grpc-js';
import { encodeSnapshotChunk, encodeSnapshotEnd } from '../../common/proto';
import type { SyncRequest__Output } from '../../generated/overlay/v1/SyncRequest';
import type { SpanFeed, SpanSubscriber } from './span-feed';

export type SyncCall = grpc.ServerDuplexStream<SyncRequest__Output, Buffer>;

/** Resources per snapshot chunk: keeps messages well under gRPC's 4 MiB default limit. */
export const SNAPSHOT_CHUNK_SIZE = 1000;
/** Delta bytes a slow agent may have pending before they are replaced by one fresh snapshot. */
export const MAX_PENDING_DELTA_BYTES = 8 * 1024 * 1024;

export interface SessionEvents {
  acked(session: HostSession, revision: number): void;
  nacked(session: HostSession, revision: number, error: string): void;
  closed(session: HostSession): void;
}

/**
 * One connected agent's stream, on this replica. After the hello, it sends a snapshot or a
 * resume delta, then every delta of the host's span as the SpanFeed delivers it, and revision
 * markers (empty deltas) so an idle agent's acknowledged revision keeps up.
 *
 * Flow control: writes stop when gRPC's buffer is full and resume on 'drain'; the pending queue
 * is bounded: past MAX_PENDING_DELTA_BYTES (or the size of a snapshot, if larger) it is dropped
 * and replaced by a fresh snapshot, so a slow agent costs the controller bounded memory.
 */
export class HostSession implements SpanSubscriber {
  private readonly queue: Buffer[] = [];
  private pendingDeltaBytes = 0;
  private snapshotBytes = 0;
  private waitingForDrain = false;
  private closed = false;
  private unsubscribe?: () => void;
  /** The revision of the last message queued; markers advance it. */
  sentRevision = 0;
  appliedRevision: number;
  /** Messages written to the stream (for tests and metrics). */
  messagesSent = 0;
  snapshotsSent = 0;

  constructor(
    readonly hostId: string,
    readonly hostName: string,
    private readonly vtepIp: string,
    /** The deployment's epoch now (it changes if Redis lost its data). */
    private readonly epoch: () => string,
    private readonly call: SyncCall,
    private readonly feed: SpanFeed,
    private readonly events: SessionEvents,
    helloRevision: number,
  ) {
    this.appliedRevision = helloRevision;
    call.on('drain', () => {
      this.waitingForDrain = false;
      this.flush();
    });
    call.on('data', (req: SyncRequest__Output) => this.onRequest(req));
    call.on('end', () => this.close());
    call.on('error', () => this.close());
    call.on('close', () => this.close());
    call.on('cancelled', () => this.close());
  }

  /** Starts the live feed; call in the same tick as the first send, so no record falls between. */
  start(): void {
    this.unsubscribe = this.feed.subscribe(this);
  }

  /** Queues the whole span at the feed's current revision: chunks, then the end marker. */
  sendSnapshot(): void {
    const index = this.feed.spanIndex;
    const revision = this.feed.revision;
    const keys = index.spanOf(this.hostId);
    this.queue.length = 0;
    this.pendingDeltaBytes = 0;
    this.snapshotBytes = 0;
    let count = 0;
    for (let i = 0; i < keys.length || i === 0; i += SNAPSHOT_CHUNK_SIZE) {
      const resources: Uint8Array[] = [];
      for (const key of keys.slice(i, i + SNAPSHOT_CHUNK_SIZE)) {
        const bytes = this.feed.encode(key);
        if (bytes) {
          resources.push(bytes);
        }
      }
      count += resources.length;
      const chunk = encodeSnapshotChunk(revision, this.epoch(), resources);
      this.snapshotBytes += chunk.length;
      this.queue.push(chunk);
    }
    this.queue.push(encodeSnapshotEnd({ revision, epoch: this.epoch(), resourceCount: count, hostId: this.hostId, vtepIp: this.vtepIp }));
    this.sentRevision = revision;
    this.snapshotsSent++;
    this.flush();
  }

  /** Queues a pre-encoded delta (resume, or live from the feed). */
  deliver(revision: number, delta: Buffer): void {
    if (this.closed) {
      return;
    }
    this.queue.push(delta);
    this.pendingDeltaBytes += delta.length;
    this.sentRevision = revision;
    if (this.waitingForDrain && this.pendingDeltaBytes > Math.max(MAX_PENDING_DELTA_BYTES, this.snapshotBytes)) {
      // Too far behind: one snapshot of the current state replaces everything pending.
      this.sendSnapshot();
      return;
    }
    this.flush();
  }

  /** An empty delta at the current revision, when the agent has not been sent it yet. */
  sendMarker(): void {
    const revision = this.feed.revision;
    if (!this.closed && revision > this.sentRevision) {
      this.deliver(revision, this.feed.encodeChange(revision, { upserts: new Set(), removals: new Set() }));
    }
  }

  resync(): void {
    if (!this.closed) {
      this.sendSnapshot();
    }
  }

  /** Ends the stream with a status (e.g. the host was deleted). */
  fail(code: grpc.status, details: string): void {
    if (!this.closed) {
      this.call.emit('error', { code, details });
      this.close();
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private flush(): void {
    while (!this.waitingForDrain && this.queue.length && !this.closed) {
      const message = this.queue.shift()!;
      this.messagesSent++;
      if (!this.call.write(message)) {
        this.waitingForDrain = true;
      }
    }
    if (this.queue.length === 0) {
      this.pendingDeltaBytes = 0;
    }
  }

  private onRequest(req: SyncRequest__Output): void {
    if (req.ack) {
      if (req.ack.revision > this.appliedRevision) {
        this.appliedRevision = req.ack.revision;
        this.events.acked(this, req.ack.revision);
      }
    } else if (req.nack) {
      // Not resent in a loop: the next change (or reconnect) carries the state again.
      this.events.nacked(this, req.nack.revision, req.nack.error);
    }
  }

  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.unsubscribe?.();
    this.queue.length = 0;
    this.events.closed(this);
  }
}
