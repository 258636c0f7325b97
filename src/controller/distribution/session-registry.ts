import * as grpc from '@grpc/grpc-js';
import { Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Counter, Histogram } from 'prom-client';
import type { ConnectionBatch__Output } from '../../generated/overlay/v1/ConnectionBatch';
import type { ConnectionsInstalled__Output } from '../../generated/overlay/v1/ConnectionsInstalled';
import type { HostObservation__Output } from '../../generated/overlay/v1/HostObservation';
import type { MirrorCounters__Output } from '../../generated/overlay/v1/MirrorCounters';
import type { PortFailure__Output } from '../../generated/overlay/v1/PortFailure';
import { spanKey } from '../../common/span/span-kind';
import type { Host } from '../model/host';
import type { ChangeRecord } from '../store/change-log';
import { encodeHold } from '../../common/proto';
import { MaterializedView } from '../store/materialized-view';
import { StoreRecovery } from '../store/store-recovery';
import { AckRecorder } from './ack-recorder';
import { AgentStatusRepository, type StreamClaim } from './agent-status.repository';
import { HostObservationIntake, readHostObservation } from './host-observation.intake';
import { addSentCounts, emptySentCounts, HostSession, type SentCounts, type SessionClaim, type SessionEvents, type SyncCall } from './host-session';
import { MirrorCountersIntake, readMirrorCounters } from './mirror-counters.intake';
import { MarkerRound } from './marker-round';
import { readFailedPorts } from './port-failures';
import { SpanFeed } from './span-feed';
import { TypedEvents } from './typed-events';

/** A claim lapses this long after its last refresh (its replica died). */
export const SESSION_TTL_MS = 15_000;
const MARKER_INTERVAL_MS = 250;
/**
 * Revision markers a replica sends per MARKER_INTERVAL_MS at most (4,000 a second): up to that
 * many agents, each is sent one every 250 ms; beyond, each waits its turn (2,500 agents: 750 ms).
 * Every marker costs a write and an acknowledgement, and at 5,000 agents and 20 writes a second
 * unbounded markers were 20,000 of each a second, slowing the deltas that matter.
 */
const MARKERS_PER_INTERVAL = 1_000;
const HOUSEKEEPING_MS = 2_000;

/** What agents report about live migrations, for migrations/ to act on (it checks them: they are input). */
export interface AgentReports {
  /** The agent saw a migrating VM land on a port prepared on its host (migrations/ commits it). */
  arrived: { hostId: string; hostName: string; migrationId: string; portId: string };
  /** Tracked connections of a port migrating away from that host (connection-handover.ts stores and relays them). */
  exported: { hostId: string; hostName: string; batch: ConnectionBatch__Output };
  /** The destination inserted them. */
  installed: { hostId: string; hostName: string; report: ConnectionsInstalled__Output };
}

/**
 * This replica's agent streams: at most one HostSession per host, opened by the hello
 * (hello.ts). Passes what sessions hear on: acks and NACKs to the AckRecorder, migration reports
 * to its listeners (`on`). Keeps them current: revision markers (MarkerRound: every
 * MARKER_INTERVAL_MS, at most MARKERS_PER_INTERVAL of them, the sessions taking turns), a
 * snapshot for every session when the deployment's epoch changed (Redis lost its data), and every
 * HOUSEKEEPING_MS ends the streams of deleted hosts and refreshes this replica's claims in Redis,
 * ending the streams whose claim a newer stream on another replica took.
 *
 * A host's deletion ends its stream at once (NOT_FOUND), as this replica's view applies it: every
 * replica follows the change log, so each ends its own stream of the host. Housekeeping remains
 * the backstop (a view reloaded from a snapshot carries no deletion records).
 */
@Injectable()
export class SessionRegistry implements SessionEvents {
  private readonly logger = new Logger('sync');
  /** Names this replica in its claims. */
  readonly replicaId = randomBytes(6).toString('hex');
  private readonly sessions = new Map<string, HostSession>();
  private readonly markers = new MarkerRound(this.sessions, MARKERS_PER_INTERVAL);
  private readonly reports = new TypedEvents<AgentReports>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  private currentEpoch = '';
  /** Streams told to hold at their Hello (the store in recovery): no session, no claim (the host may be gone with the data). */
  private readonly heldStreams = new Map<SyncCall, string>();
  private stopping = false;
  /** What the sessions that ended wrote (`sent` adds the live ones'). */
  private readonly endedSent = emptySentCounts();
  private endedSnapshots = 0;

  /**
   * Per delta and host: from the feed handing the delta to the host's session here to the host
   * acknowledging it (the agent applied it). Its instruments belong to no registry: metrics/ registers them.
   */
  readonly realizationSeconds = new Histogram({
    name: 'overlay_realization_seconds',
    help: "Time from a change to a host's span being handed to the host's stream on this replica to the host's acknowledgement of it, per host and change",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [],
  });
  /** Streams ended for breaking the protocol (see sync.proto, "What the controller accepts"). */
  readonly protocolViolations = new Counter({
    name: 'overlay_sync_protocol_violations_total',
    help: 'Agent streams this replica ended for a message the protocol does not allow (INVALID_ARGUMENT)',
    registers: [],
  });

  constructor(
    private readonly view: MaterializedView,
    private readonly feed: SpanFeed,
    private readonly status: AgentStatusRepository,
    private readonly recorder: AckRecorder,
    private readonly counters: MirrorCountersIntake,
    private readonly observations: HostObservationIntake,
    private readonly recovery: StoreRecovery,
  ) {}

  /** The deployment's epoch, as agents must name it to resume. */
  get epoch(): string {
    return this.currentEpoch;
  }

  /** Takes the view's epoch and starts the timers. Call once the view is loaded, before streams are accepted. */
  async start(): Promise<void> {
    this.currentEpoch = this.view.epoch;
    // The store lost data: every agent keeps what it holds until the recovery is over.
    this.unsubscribe.push(this.recovery.on('entered', (record) => this.holdAll(`store recovery (${record.reason}): ${record.detail}`)));
    // The view admitted a new state. After a recovery (accepted, or the data restored) the held
    // streams end, and their agents reconnect to resume or take a snapshot. A new epoch (an
    // accepted recovery): agents' revisions from before must not be resumed against the new
    // history; every other stream is sent a snapshot.
    this.unsubscribe.push(
      this.view.onReset(() => {
        if (!this.recovery.active) {
          this.endHeld();
        }
        const epoch = this.view.epoch;
        if (epoch !== this.currentEpoch) {
          this.logger.warn(`epoch changed from ${this.currentEpoch} to ${epoch}: every agent gets a snapshot`);
          this.currentEpoch = epoch;
          for (const session of this.sessions.values()) {
            session.resync();
          }
        }
      }),
    );
    this.unsubscribe.push(this.view.onChange((record) => this.endDeletedHosts(record)));
    this.timers.push(setInterval(() => void this.markers.tick(), MARKER_INTERVAL_MS));
    this.timers.push(setInterval(() => void this.housekeeping(), HOUSEKEEPING_MS));
  }

  /** Set by `stop`: a Hello answered after it opens no session (HelloHandler). */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Stops the timers and ends every stream (UNAVAILABLE); mirror counters and host observations not yet written are dropped. */
  stop(): void {
    this.stopping = true;
    this.counters.stop();
    this.observations.stop();
    this.timers.forEach(clearInterval);
    this.timers.length = 0;
    this.unsubscribe.splice(0).forEach((off) => off());
    for (const session of [...this.sessions.values()]) {
      session.fail(grpc.status.UNAVAILABLE, 'controller shutting down');
    }
    for (const call of [...this.heldStreams.keys()]) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'controller shutting down' });
    }
    this.heldStreams.clear();
  }

  /** Agents held on this replica: by a session of theirs, or at their Hello. */
  holdingCount(): number {
    let count = this.heldStreams.size;
    for (const session of this.sessions.values()) {
      count += session.isHolding ? 1 : 0;
    }
    return count;
  }

  /** Tells `call`'s agent, whose Hello came during a recovery, to hold; the stream stays open until the recovery is over. */
  holdStream(call: SyncCall, hostName: string, reason: string): void {
    this.heldStreams.set(call, hostName);
    const forget = () => this.heldStreams.delete(call);
    call.on('error', forget);
    call.on('close', forget);
    call.on('cancelled', forget);
    call.on('end', forget);
    // Whatever the agent sends while held is of a history the store may not have: not read.
    call.on('data', () => undefined);
    call.write(encodeHold(reason));
  }

  private holdAll(reason: string): void {
    for (const session of this.sessions.values()) {
      session.hold(reason);
    }
  }

  /** The recovery is over: held streams end (UNAVAILABLE), and their agents reconnect at once. */
  private endHeld(): void {
    const details = 'the store recovery is over: reconnect for the current state';
    let ended = 0;
    for (const session of [...this.sessions.values()]) {
      if (session.isHolding) {
        session.fail(grpc.status.UNAVAILABLE, details);
        ended++;
      }
    }
    for (const call of [...this.heldStreams.keys()]) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details });
      ended++;
    }
    this.heldStreams.clear();
    if (ended) {
      this.logger.warn(`store recovery over: ended ${ended} held agent stream(s); they reconnect for the current state`);
    }
  }

  on<K extends keyof AgentReports>(name: K, listener: (event: AgentReports[K]) => void): () => void {
    return this.reports.on(name, listener);
  }

  session(hostId: string): HostSession | undefined {
    return this.sessions.get(hostId);
  }

  /** The streams this replica holds. */
  all(): IterableIterator<HostSession> {
    return this.sessions.values();
  }

  /** Messages and bytes written on this replica's streams since it started, by type, and snapshots begun. */
  sent(): { sent: SentCounts; snapshots: number } {
    const sent = emptySentCounts();
    addSentCounts(sent, this.endedSent);
    let snapshots = this.endedSnapshots;
    for (const session of this.sessions.values()) {
      addSentCounts(sent, session.sent);
      snapshots += session.snapshotsSent;
    }
    return { sent, snapshots };
  }

  /**
   * Opens the host's session on `call`, ending this replica's older one, and starts it: with
   * `resume.delta` (the stream resumes from `resume.from`) or a snapshot. Synchronous, so no
   * change record falls between the first message and the live feed.
   */
  open(host: Host, call: SyncCall, claim: SessionClaim, resume: { from: number; delta: Buffer } | undefined): HostSession {
    this.sessions.get(host.id)?.fail(grpc.status.ALREADY_EXISTS, 'a newer stream for this host replaced this one');
    const from = resume?.from ?? 0;
    const session = new HostSession(host.id, host.name, host.vtepIp, () => this.currentEpoch, call, this.feed, this, from, claim, resume !== undefined);
    this.sessions.set(host.id, session);
    if (resume) {
      session.deliver(this.feed.revision, resume.delta);
    } else {
      session.sendSnapshot();
    }
    session.start();
    this.recorder.connected(host.id, from);
    if (this.recovery.active) {
      // The recovery began while this Hello was answered.
      session.hold(`store recovery (${this.recovery.current!.reason})`);
    }
    return session;
  }

  /** Ends `hostId`'s stream on this replica for a message found wrong after the fact (a migration it is not part of). */
  refuse(hostId: string, reason: string): void {
    this.sessions.get(hostId)?.refuse(reason);
  }

  acked(session: HostSession, revision: number, clearsError: boolean): void {
    this.recorder.acked(session.hostId, revision, clearsError);
  }

  /** Keeps the failed ports an ack names that the host holds (others are ignored); a malformed list ends the stream, and the ack with it. */
  failedPorts(session: HostSession, revision: number, ports: PortFailure__Output[]): boolean {
    const local = this.feed.spanIndex.portsOnHost(session.hostId);
    const read = readFailedPorts(ports, (id) => local.has(id));
    if ('violation' in read) {
      session.refuse(read.violation);
      return false;
    }
    this.recorder.portFailures(session.hostId, session.hostName, revision, read.ports);
    return true;
  }

  nacked(session: HostSession, revision: number, error: string): void {
    this.recorder.nacked(session.hostId, session.hostName, revision, error);
  }

  realized(_session: HostSession, seconds: number): void {
    this.realizationSeconds.observe(seconds);
  }

  violated(session: HostSession, reason: string): void {
    this.protocolViolations.inc();
    this.logger.warn(`host ${session.hostName}: protocol violation, stream ended with INVALID_ARGUMENT: ${reason}`);
  }

  vmArrived(session: HostSession, migrationId: string, portId: string): void {
    this.reports.emit('arrived', { hostId: session.hostId, hostName: session.hostName, migrationId, portId });
  }

  connectionsExported(session: HostSession, batch: ConnectionBatch__Output): void {
    this.reports.emit('exported', { hostId: session.hostId, hostName: session.hostName, batch });
  }

  connectionsInstalled(session: HostSession, report: ConnectionsInstalled__Output): void {
    this.reports.emit('installed', { hostId: session.hostId, hostName: session.hostName, report });
  }

  /** Keeps the counters of the host's own mirror taps (others are ignored); a malformed report ends the stream. */
  mirrorCounters(session: HostSession, report: MirrorCounters__Output): void {
    const index = this.feed.spanIndex;
    const read = readMirrorCounters(report, (id) => index.resource(spanKey('mirror', id), session.hostId) !== undefined, Date.now());
    if ('violation' in read) {
      session.refuse(read.violation);
      return;
    }
    this.counters.report(session.hostId, read.entries);
  }

  /** Keeps what the agent observed of its local ports' taps and its span's bridges (others are ignored); a malformed report ends the stream. */
  hostObserved(session: HostSession, report: HostObservation__Output): void {
    const index = this.feed.spanIndex;
    const local = index.portsOnHost(session.hostId);
    let segments: Map<number, string> | undefined;
    const segmentOf = (vni: number): string | undefined => {
      segments ??= new Map([...index.segmentsOfHost(session.hostId)].flatMap((id) => {
        const segment = index.segment(id);
        return segment ? [[segment.vni, id] as const] : [];
      }));
      return segments.get(vni);
    };
    const read = readHostObservation(report, { isLocalPort: (id) => local.has(id), segmentOf }, Date.now());
    if ('violation' in read) {
      session.refuse(read.violation);
      return;
    }
    this.observations.report(session.hostId, read.observation);
  }

  closed(session: HostSession): void {
    // Every session closes once: what it wrote stays counted.
    addSentCounts(this.endedSent, session.sent);
    this.endedSnapshots += session.snapshotsSent;
    if (this.sessions.get(session.hostId) === session) {
      this.sessions.delete(session.hostId);
      this.recorder.disconnected(session.hostId);
      void this.status.releaseSession(session.claim).catch(() => undefined);
      this.logger.log(`host ${session.hostName} disconnected`, { host: session.hostName, event: 'disconnect', appliedRevision: session.appliedRevision });
    }
  }

  /** Ends, at once, this replica's streams of the hosts `record` deletes. */
  private endDeletedHosts(record: ChangeRecord): void {
    for (const op of record.ops) {
      if (op.k === 'host' && op.v === null) {
        const session = this.sessions.get(op.id);
        if (session) {
          this.logger.log(`host ${session.hostName} was deleted (revision ${record.revision}): ending its stream`);
          session.fail(grpc.status.NOT_FOUND, 'the host was deleted');
        }
      }
    }
  }

  private async housekeeping(): Promise<void> {
    try {
      for (const session of this.sessions.values()) {
        if (!this.view.current.hosts.has(session.hostId)) {
          session.fail(grpc.status.NOT_FOUND, 'the host was deleted');
        }
      }
      const claims: StreamClaim[] = [...this.sessions.values()].map((s) => s.claim);
      const superseded = await this.status.refreshSessions(claims, this.replicaId, SESSION_TTL_MS);
      for (const hostId of superseded) {
        const session = this.sessions.get(hostId);
        // Unless a newer stream replaced it here meanwhile (its claim is another).
        if (session && claims.some((c) => c.hostId === hostId && c.token === session.claim.token)) {
          this.logger.log(`host ${session.hostName}: ending this replica's stream (instance ${session.claim.instance || '-'}): a newer stream on another replica holds the host`);
          session.fail(grpc.status.ALREADY_EXISTS, 'a newer stream for this host, on another replica, replaced this one');
        }
      }
    } catch (err) {
      this.logger.warn(`housekeeping: ${(err as Error).message}`);
    }
  }
}
