import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { Logger } from '@nestjs/common';
import { cleanAgentText } from '../../common/agent-text';
import { FramedMessage, GRPC_FRAME_HEADER_BYTES } from '../../common/grpc-frame';
import { encodeHold, encodeSnapshotChunkFrame, encodeSnapshotEnd } from '../../common/proto';
import type { ConnectionBatch__Output } from '../../generated/overlay/v1/ConnectionBatch';
import type { ConnectionsInstalled__Output } from '../../generated/overlay/v1/ConnectionsInstalled';
import type { HostObservation__Output } from '../../generated/overlay/v1/HostObservation';
import type { MirrorCounters__Output } from '../../generated/overlay/v1/MirrorCounters';
import type { PortFailure__Output } from '../../generated/overlay/v1/PortFailure';
import type { SyncRequest__Output } from '../../generated/overlay/v1/SyncRequest';
import { runSize, type SpanRun } from '../../common/span/span-kind';
import type { StreamClaim } from './agent-status.repository';
import type { SpanFeed, SpanSubscriber } from './span-feed';

/** An agent's stream: it writes encoded SyncResponses, snapshot chunks framed already (FramedMessage). */
export type SyncCall = grpc.ServerDuplexStream<SyncRequest__Output, Buffer | FramedMessage>;

const logger = new Logger('sync');

/** Why a stream is sent a snapshot: its Hello (no resumable revision), too much pending (a slow agent), a resync (the view was reloaded, the epoch changed, a newer stream). */
export type SnapshotReason = 'hello' | 'behind' | 'resync';
const SNAPSHOT_REASONS: Record<Exclude<SnapshotReason, 'hello'>, string> = {
  behind: 'it fell too far behind, its pending deltas are dropped',
  resync: 'the controller resynchronizes it',
};

/** Resources per snapshot chunk: keeps messages well under gRPC's 4 MiB default limit. */
export const SNAPSHOT_CHUNK_SIZE = 1000;
/** Delta bytes a slow agent may have pending before they are replaced by one fresh snapshot. */
export const MAX_PENDING_DELTA_BYTES = 8 * 1024 * 1024;
/** A resource's typical encoded size, to estimate a snapshot's bytes before it is encoded. */
const ESTIMATED_RESOURCE_BYTES = 180;

/** Revisions written and not yet acknowledged that a session remembers (see HostSession.unacked). */
export const MAX_UNACKED = 65_536;

/** Snapshot chunks one session may have written but not yet flushed to its socket. */
const SESSION_CHUNKS_IN_FLIGHT = 2;

/** Deltas whose delivery time a session keeps until their ack (the oldest go first: a host that acks nothing is seen in its lag). */
const MAX_TIMED_DELTAS = 4096;

/** What a session writes on its stream: deltas of the span, revision markers (empty deltas), snapshot chunks and end markers, relayed connection batches, the word to hold (store recovery). */
export const SENT_TYPES = ['delta', 'marker', 'snapshot_chunk', 'snapshot_end', 'connection_batch', 'hold'] as const;
export type SentType = (typeof SENT_TYPES)[number];
/** Messages and bytes written, by type. */
export type SentCounts = Record<SentType, { messages: number; bytes: number }>;

export const emptySentCounts = (): SentCounts => Object.fromEntries(SENT_TYPES.map((t) => [t, { messages: 0, bytes: 0 }])) as SentCounts;

/** Adds `counts` into `into`. */
export function addSentCounts(into: SentCounts, counts: SentCounts): void {
  for (const type of SENT_TYPES) {
    into[type].messages += counts[type].messages;
    into[type].bytes += counts[type].bytes;
  }
}

/** The size of a snapshot chunk's frame buffer (a chunk of SNAPSHOT_CHUNK_SIZE ports is about 180 kB); a larger chunk gets a buffer of its size. */
const CHUNK_FRAME_BYTES = 256 * 1024;

/**
 * Snapshot chunks written but not yet flushed to the sockets, across every session of this
 * process: bounds the memory a reconnect storm (every agent asking for a snapshot at once)
 * takes to about `maxChunks` chunks. Sessions wait their turn, first come first served.
 *
 * It also keeps the buffers of chunks whose writes are done for the next chunks, up to
 * `maxChunks` of them, and lets them go when no chunk is in flight. A chunk is framed in its own
 * buffer and sent as it is (FramedMessage): kept for reuse, these are the only chunk buffers a
 * storm makes, where a new one per chunk (and grpc-js's framed copy) lived on as garbage until
 * a full collection (docs/benchmarks.md, Memory).
 */
export class SnapshotBudget {
  private inFlight = 0;
  private readonly waiting = new Set<() => void>();
  private readonly spare: Buffer[] = [];

  constructor(readonly maxChunks: number) {}

  tryTake(wake: () => void): boolean {
    if (this.inFlight < this.maxChunks) {
      this.inFlight++;
      this.waiting.delete(wake);
      return true;
    }
    this.waiting.add(wake);
    return false;
  }

  release(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.waiting.size === 0) {
      this.spare.length = 0;
    }
    for (const wake of this.waiting) {
      if (this.inFlight >= this.maxChunks) {
        break;
      }
      this.waiting.delete(wake);
      wake();
    }
  }

  forget(wake: () => void): void {
    this.waiting.delete(wake);
  }

  /** A buffer of at least `bytes` for a chunk's frame: a spare one, or a new one. */
  frameBuffer(bytes: number): Buffer {
    const i = this.spare.findIndex((b) => b.length >= bytes);
    if (i >= 0) {
      return this.spare.splice(i, 1)[0];
    }
    return Buffer.allocUnsafeSlow(Math.max(bytes, CHUNK_FRAME_BYTES));
  }

  /**
   * A chunk's buffer whose write is done (its callback ran: grpc-js and the HTTP/2 stream hold
   * nothing of it any more), for the next chunk. Call before releasing the chunk's slot.
   */
  reuse(buffer: Buffer): void {
    if (this.spare.length < this.maxChunks) {
      this.spare.push(buffer);
    }
  }

  /** Buffers kept for reuse (for tests). */
  get spareBuffers(): number {
    return this.spare.length;
  }
}

/**
 * 16 chunks (about 3 MB) keep the sockets busy: a storm's controller CPU did not change. Fewer
 * chunks in flight are fewer large buffers alive at once: in the sync bench (1,000 snapshots at
 * once) the peak RSS was 330-344 MB with 64, 310-317 MB with 16 (before chunks were framed once
 * and their buffers reused).
 */
export const snapshotBudget = new SnapshotBudget(16);

interface PendingSnapshot {
  runs: SpanRun[];
  /** Resources in `runs` when the snapshot began (a run that is a set may change since). */
  total: number;
  /** The next resource to encode: its run, its id (read ahead from the run's iterator), and how many came before it. */
  run: number;
  ids?: Iterator<string>;
  next?: string;
  visited: number;
  revision: number;
  /** The change record of `revision` (the end marker names it; '' when unknown). */
  record: string;
  /** The epoch when the snapshot began: every chunk and the end marker carry the same. */
  epoch: string;
  /** Resources sent so far, and chunks. */
  count: number;
  chunks: number;
}

/** Moves the snapshot's place to its next id, past the runs it has sent all of (and empty ones). */
function advance(snapshot: PendingSnapshot): void {
  while (snapshot.run < snapshot.runs.length) {
    snapshot.ids ??= snapshot.runs[snapshot.run].ids[Symbol.iterator]();
    const step = snapshot.ids.next();
    if (!step.done) {
      snapshot.next = step.value;
      return;
    }
    snapshot.run++;
    snapshot.ids = undefined;
  }
  snapshot.next = undefined;
}

/** The claim a session holds on its host (agent-status.repository.ts); `seq` orders this replica's claims. */
export interface SessionClaim extends StreamClaim {
  seq: number;
}

export interface SessionEvents {
  /** `clearsError`: the ack is at or above the host's last NACK (or the first ack of the stream): a stored last error goes. */
  acked(session: HostSession, revision: number, clearsError: boolean): void;
  /**
   * An Ack of `revision` names these failed ports (not yet checked), before the ack is recorded;
   * false when the listener refused them (the session is then ended: the ack counts for nothing).
   */
  failedPorts(session: HostSession, revision: number, ports: PortFailure__Output[]): boolean;
  nacked(session: HostSession, revision: number, error: string): void;
  /** The host acknowledged a delta `seconds` after the session was handed it (one call per delta). */
  realized(session: HostSession, seconds: number): void;
  vmArrived(session: HostSession, migrationId: string, portId: string): void;
  connectionsExported(session: HostSession, batch: ConnectionBatch__Output): void;
  connectionsInstalled(session: HostSession, report: ConnectionsInstalled__Output): void;
  /** What the host's mirror taps copied (not yet checked: the listener refuses a malformed one). */
  mirrorCounters(session: HostSession, report: MirrorCounters__Output): void;
  /** What the agent observed of its host's kernel (not yet checked: the listener refuses a malformed one). */
  hostObserved(session: HostSession, report: HostObservation__Output): void;
  /** The agent broke the protocol (`reason`); the session ends the stream with INVALID_ARGUMENT right after. */
  violated(session: HostSession, reason: string): void;
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
  /** Messages waiting for the stream, with the revision a delta or marker carries. */
  private readonly queue: { bytes: Buffer; type: SentType; revision?: number }[] = [];
  /** The deltas handed to this session and not yet acknowledged: revision and when (performance.now()), ascending. */
  private readonly timedDeltas: { revision: number; at: number }[] = [];
  /**
   * What an Ack or Nack on this stream may name: the revisions written on it (snapshot ends,
   * deltas, markers; ascending) since the last acknowledged one, that one, and the Hello's
   * revision when the stream resumed from it (the agent holds it; the controller checked it
   * against its log). At most MAX_UNACKED are kept (the oldest go first): an agent that
   * acknowledges nothing for that many messages (hours of markers) is broken anyway.
   */
  private readonly unacked: number[] = [];
  private lastAcked?: number;
  /** The snapshot being sent, chunk by chunk, ahead of everything in `queue`. */
  private snapshot?: PendingSnapshot;
  private pendingDeltaBytes = 0;
  private snapshotBytes = 0;
  private waitingForDrain = false;
  private closed = false;
  /** Told to hold (the store is in recovery): nothing of the span is sent any more, nothing the agent says is recorded. */
  private holding = false;
  private unsubscribe?: () => void;
  /** The revision of the last message queued; markers advance it. */
  sentRevision = 0;
  appliedRevision: number;
  /** Messages and bytes written to the stream, by type; snapshots begun (for metrics). */
  readonly sent: SentCounts = emptySentCounts();
  snapshotsSent = 0;
  /**
   * The revision of a NACK this host may have on record, which an ack at or above it clears;
   * undefined when none can be. Starts at 0: an earlier stream (on any replica) may have left one.
   */
  private errorToClear: number | undefined = 0;

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
    readonly claim: SessionClaim,
    /** Whether the stream resumed from the Hello's revision (then the agent may acknowledge it again). */
    resumed = false,
  ) {
    this.appliedRevision = helloRevision;
    this.lastAcked = resumed ? helloRevision : undefined;
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

  /**
   * Starts sending the whole span at the feed's current revision: chunks, then the end marker.
   * Chunks are encoded one at a time as the stream takes them (flush), not all up front: the
   * first bytes leave at once, encoding overlaps the transfer, and a session holds at most the
   * chunks gRPC has buffered. Resources are encoded as of when their chunk is made, so a chunk
   * may show a resource newer than `revision`; the deltas after `revision`, queued behind the
   * end marker, replace or remove every resource that changed, so the agent still converges.
   */
  sendSnapshot(reason: SnapshotReason = 'hello'): void {
    if (this.holding) {
      return;
    }
    const runs = this.feed.spanIndex.spanRuns(this.hostId);
    const total = runs.reduce((n, run) => n + runSize(run), 0);
    const revision = this.feed.revision;
    // The Hello's snapshot is in the `connected` line.
    if (reason !== 'hello') {
      logger.log(`host ${this.hostName}: snapshot at revision ${revision} (${total} resources): ${SNAPSHOT_REASONS[reason]}`, { host: this.hostName, event: 'snapshot', reason, revision, resources: total });
    }
    this.queue.length = 0;
    this.relayed.clear();
    this.pendingDeltaBytes = 0;
    this.snapshotBytes = total * ESTIMATED_RESOURCE_BYTES;
    const snapshot: PendingSnapshot = { runs, total, run: 0, visited: 0, revision, record: this.feed.record, epoch: this.epoch(), count: 0, chunks: 0 };
    advance(snapshot);
    this.setSnapshot(snapshot);
    this.sentRevision = revision;
    this.snapshotsSent++;
    this.flush();
  }

  /** Begins or ends (done, replaced, dropped) the snapshot being sent; the feed counts those under way. */
  private setSnapshot(next: PendingSnapshot | undefined): void {
    if (this.snapshot && !next) {
      this.feed.snapshotEnded();
    } else if (!this.snapshot && next) {
      this.feed.snapshotBegun();
    }
    this.snapshot = next;
  }

  /**
   * The snapshot's next message: a chunk (framed, in a buffer `take` gives), or the end marker
   * (then the snapshot is done).
   */
  private nextSnapshotMessage(snapshot: PendingSnapshot, take: (bytes: number) => Buffer): FramedMessage | Buffer {
    if (snapshot.run < snapshot.runs.length || snapshot.chunks === 0) {
      const resources: Uint8Array[] = [];
      for (let taken = 0; taken < SNAPSHOT_CHUNK_SIZE && snapshot.run < snapshot.runs.length; taken++) {
        const bytes = this.feed.encode(snapshot.runs[snapshot.run].kind, snapshot.next!, this.hostId);
        if (bytes) {
          resources.push(bytes);
        }
        snapshot.visited++;
        advance(snapshot);
      }
      snapshot.chunks++;
      snapshot.count += resources.length;
      return encodeSnapshotChunkFrame(snapshot.revision, snapshot.epoch, resources, take);
    }
    this.setSnapshot(undefined);
    return encodeSnapshotEnd({ revision: snapshot.revision, epoch: snapshot.epoch, resourceCount: snapshot.count, hostId: this.hostId, vtepIp: this.vtepIp, record: snapshot.record });
  }

  /** Queues a pre-encoded delta (resume, or live from the feed); its ack is timed (`realized`). */
  deliver(revision: number, delta: Buffer): void {
    if (this.closed || this.holding) {
      return;
    }
    this.timedDeltas.push({ revision, at: performance.now() });
    if (this.timedDeltas.length > MAX_TIMED_DELTAS) {
      this.timedDeltas.shift();
    }
    this.enqueue(revision, delta, 'delta');
  }

  /** Queues a delta or marker behind what is queued, replaced by a snapshot when the agent is too far behind. */
  private enqueue(revision: number, delta: Buffer, type: 'delta' | 'marker'): void {
    this.queue.push({ bytes: delta, type, revision });
    this.pendingDeltaBytes += delta.length;
    this.sentRevision = revision;
    if (this.waitingForDrain && this.pendingDeltaBytes > Math.max(MAX_PENDING_DELTA_BYTES, this.snapshotBytes)) {
      // Too far behind: one snapshot of the current state replaces everything pending.
      this.sendSnapshot('behind');
      return;
    }
    this.flush();
  }

  /** An empty delta at the current revision, when the agent has not been sent it yet; true when it was sent. */
  sendMarker(): boolean {
    const revision = this.feed.revision;
    if (this.closed || this.holding || revision <= this.sentRevision) {
      return false;
    }
    this.enqueue(revision, this.feed.marker(revision), 'marker');
    return true;
  }

  resync(): void {
    if (!this.closed) {
      this.sendSnapshot('resync');
    }
  }

  /**
   * The store is in recovery: whatever is queued (a snapshot of a state that may be the emptied
   * one included) is dropped, a Hold is written, and nothing more until the stream ends. What the
   * agent says from now on is not recorded (acknowledgements of the lost history must not land
   * in the store being recovered).
   */
  hold(reason: string): void {
    if (this.closed || this.holding) {
      return;
    }
    this.holding = true;
    this.queue.length = 0;
    this.setSnapshot(undefined);
    this.pendingDeltaBytes = 0;
    this.queue.push({ bytes: encodeHold(reason), type: 'hold' });
    logger.warn(`host ${this.hostName}: told to hold its state (store recovery)`, { host: this.hostName, event: 'hold' });
    this.flush();
  }

  get isHolding(): boolean {
    return this.holding;
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

  private readonly wake = (): void => this.flush();
  /** This session's snapshot chunks not yet flushed (each holds one slot of the budget). */
  private readonly chunksInFlight = new Set<{ released: boolean }>();

  private releaseChunk(token: { released: boolean }): void {
    if (!token.released) {
      token.released = true;
      this.chunksInFlight.delete(token);
      snapshotBudget.release();
      this.flush();
    }
  }

  private flush(): void {
    while (!this.waitingForDrain && !this.closed) {
      if (this.snapshot) {
        if (this.chunksInFlight.size >= SESSION_CHUNKS_IN_FLIGHT || !snapshotBudget.tryTake(this.wake)) {
          break; // resumed by a chunk's write callback, or by the budget
        }
        const token = { released: false };
        this.chunksInFlight.add(token);
        const revision = this.snapshot.revision;
        let frameBuffer: Buffer | undefined;
        const message = this.nextSnapshotMessage(this.snapshot, (bytes) => (frameBuffer = snapshotBudget.frameBuffer(bytes)));
        if (!this.snapshot) {
          this.written(revision); // the end marker: the agent acknowledges the snapshot's revision
        }
        this.count(this.snapshot ? 'snapshot_chunk' : 'snapshot_end', message instanceof FramedMessage ? message.frame.length - GRPC_FRAME_HEADER_BYTES : message.length);
        const done = (): void => {
          if (frameBuffer) {
            snapshotBudget.reuse(frameBuffer);
          }
          this.releaseChunk(token);
        };
        if (!this.call.write(message, done)) {
          this.waitingForDrain = true;
        }
        continue;
      }
      const message = this.queue.shift();
      if (!message) {
        break;
      }
      if (message.revision !== undefined) {
        this.written(message.revision);
      }
      this.count(message.type, message.bytes.length);
      if (!this.call.write(message.bytes)) {
        this.waitingForDrain = true;
      }
    }
    if (!this.snapshot && this.queue.length === 0) {
      this.pendingDeltaBytes = 0;
    }
  }

  /** One message of `bytes` (its encoding, without gRPC's frame) written. */
  private count(type: SentType, bytes: number): void {
    this.sent[type].messages++;
    this.sent[type].bytes += bytes;
  }

  /** Messages waiting to be written on the stream: queued ones, and the chunks and end marker of a snapshot being sent. */
  get queueDepth(): number {
    const snapshot = this.snapshot ? Math.ceil(Math.max(0, this.snapshot.total - this.snapshot.visited) / SNAPSHOT_CHUNK_SIZE) + 1 : 0;
    return this.queue.length + snapshot;
  }

  /** A revision went out on the stream: an Ack or Nack may name it from now on. */
  private written(revision: number): void {
    const last = this.unacked.length ? this.unacked[this.unacked.length - 1] : (this.lastAcked ?? 0);
    if (revision < last) {
      // Revisions went backwards: Redis lost its data and a new epoch began (resync). The old
      // epoch's revisions mean nothing any more.
      this.unacked.length = 0;
      this.lastAcked = undefined;
    }
    if (this.unacked.length === 0 || revision > this.unacked[this.unacked.length - 1]) {
      this.unacked.push(revision);
      if (this.unacked.length > MAX_UNACKED) {
        this.unacked.splice(0, this.unacked.length - MAX_UNACKED);
      }
    }
  }

  /** Whether an Ack or Nack may name `revision` on this stream (see `unacked`). */
  private sentHere(revision: number): boolean {
    return revision === this.lastAcked || this.unacked.includes(revision);
  }

  /**
   * Ends the stream for a message the protocol does not allow (see sync.proto, "What the
   * controller accepts"): INVALID_ARGUMENT, with the reason for the agent and the log.
   */
  refuse(reason: string): void {
    if (!this.closed) {
      // The reason quotes what the agent sent (a port id, a link name): cleaned and bounded once, here, for the log and the status.
      const said = cleanAgentText(reason);
      this.events.violated(this, said);
      this.fail(grpc.status.INVALID_ARGUMENT, said);
    }
  }

  private onRequest(req: SyncRequest__Output): void {
    if (this.closed) {
      return;
    }
    if (req.hello) {
      this.refuse('a second Hello on an open stream');
      return;
    }
    if (this.holding) {
      return; // acks of what was sent before the Hold, reports: of a history the store may not have; not recorded
    }
    if (req.ack || req.nack) {
      const revision = (req.ack ?? req.nack)!.revision;
      if (!Number.isSafeInteger(revision) || !this.sentHere(revision)) {
        this.refuse(`${req.ack ? 'Ack' : 'Nack'} of revision ${revision}, which this stream did not carry`);
        return;
      }
    }
    if (req.ack) {
      const revision = req.ack.revision;
      if (!this.events.failedPorts(this, revision, req.ack.failedPorts ?? []) || this.closed) {
        return;
      }
      this.lastAcked = Math.max(this.lastAcked ?? 0, revision);
      while (this.unacked.length && this.unacked[0] <= revision) {
        this.unacked.shift();
      }
      // An ack of a revision already acked still matters when it follows a NACK (a reconcile that
      // now succeeds): it clears the host's last error.
      const clearsError = this.errorToClear !== undefined && revision >= this.errorToClear;
      if (clearsError) {
        this.errorToClear = undefined;
      }
      if (revision > this.appliedRevision || clearsError) {
        this.appliedRevision = Math.max(this.appliedRevision, revision);
        this.events.acked(this, revision, clearsError);
      }
      const now = performance.now();
      while (this.timedDeltas.length && this.timedDeltas[0].revision <= revision) {
        this.events.realized(this, (now - this.timedDeltas.shift()!.at) / 1000);
      }
    } else if (req.nack) {
      // Not resent in a loop: the next change (or reconnect) carries the state again.
      this.errorToClear = req.nack.revision;
      this.events.nacked(this, req.nack.revision, req.nack.error);
    } else if (req.vmArrived) {
      this.events.vmArrived(this, req.vmArrived.migrationId, req.vmArrived.portId);
    } else if (req.connectionExport) {
      this.events.connectionsExported(this, req.connectionExport);
    } else if (req.connectionsInstalled) {
      this.events.connectionsInstalled(this, req.connectionsInstalled);
    } else if (req.mirrorCounters) {
      this.events.mirrorCounters(this, req.mirrorCounters);
    } else if (req.observed) {
      this.events.hostObserved(this, req.observed);
    } else {
      this.refuse((req as { undecodable?: string }).undecodable ?? 'a message with nothing in it');
    }
  }

  /**
   * Connection batches relayed to this host, per migration: the last handover stream entry
   * queued. Forgotten when a snapshot replaces the queue (the relay then starts over; the agent
   * skips connections it already tracks).
   */
  readonly relayed = new Map<string, string>();

  /** Queues a pre-encoded message that is not part of the span (a connection batch), behind what is queued. */
  sendMessage(message: Buffer): void {
    if (this.closed || this.holding) {
      return;
    }
    this.queue.push({ bytes: message, type: 'connection_batch' });
    this.pendingDeltaBytes += message.length;
    this.flush();
  }

  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.unsubscribe?.();
    this.queue.length = 0;
    this.setSnapshot(undefined);
    snapshotBudget.forget(this.wake);
    for (const token of [...this.chunksInFlight]) {
      token.released = true;
      snapshotBudget.release();
    }
    this.chunksInFlight.clear();
    this.events.closed(this);
  }
}
