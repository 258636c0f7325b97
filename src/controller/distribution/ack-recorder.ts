import { Injectable, Logger } from '@nestjs/common';
import { AgentStatusRepository, type LastErrorUpdate } from './agent-status.repository';
import { cleanAgentText } from '../../common/agent-text';
import { nextPortFailures, samePortFailures, type HostPortFailures } from './port-failures';
import { TypedEvents } from './typed-events';

/** How long acknowledgements wait to be written to Redis together. */
const APPLIED_FLUSH_MS = 20;
/** The retry delay of a write that failed (Redis may be restarting). */
const RETRY_FLUSH_MS = 500;

/** What the agents whose streams are on this replica report about applying their span. */
export interface AckEvents {
  /** A stream for the host opened here, resumed from `revision` (0: it was sent a snapshot). */
  connected: { hostId: string; revision: number };
  /** That stream ended; `revision`: the last one it acknowledged. */
  disconnected: { hostId: string; revision: number };
  /** The agent applied `revision` (only acks that move the host forward, or clear its last error). */
  acked: { hostId: string; revision: number };
  /** The agent could not apply `revision`; `error` cleaned (agent text is hostile input). */
  nacked: { hostId: string; revision: number; error: string };
}

/**
 * Records what agents acknowledge, on this replica, for every replica to see: each host's applied
 * revision (it only moves forward) and its last NACK go to Redis in batches (one script every
 * APPLIED_FLUSH_MS at most; kept and retried when Redis fails); the VNI quarantine, the host API
 * and realization read them there. Until Redis has them, `appliedHere` answers for the hosts whose
 * streams are here. Realization and migrations listen to its events (`on`) rather than to the
 * streams.
 */
@Injectable()
export class AckRecorder {
  private readonly logger = new Logger('sync');
  private readonly events = new TypedEvents<AckEvents>();
  /** The revision each host with a stream here has acknowledged (or resumed from). */
  private readonly live = new Map<string, number>();
  private readonly pendingApplied = new Map<string, number>();
  private readonly pendingErrors = new Map<string, LastErrorUpdate>();
  /** The failed ports each host with a stream here said at its last ack (see portFailures); undefined until that stream's first ack. */
  private readonly failedHere = new Map<string, HostPortFailures | undefined>();
  private readonly pendingPortFailures = new Map<string, HostPortFailures>();
  private flushTimer?: NodeJS.Timeout;
  private stopping = false;

  constructor(private readonly status: AgentStatusRepository) {}

  on<K extends keyof AckEvents>(name: K, listener: (event: AckEvents[K]) => void): () => void {
    return this.events.on(name, listener);
  }

  /** The revision acknowledged on the host's stream here, or undefined when its stream is not here. */
  appliedHere(hostId: string): number | undefined {
    return this.live.get(hostId);
  }

  /**
   * The ports the host's agent, whose stream is here, said at its last ack it could not program;
   * undefined when its stream is not here or has acked nothing yet (Redis answers then).
   */
  failedPortsHere(hostId: string): HostPortFailures | undefined {
    return this.failedHere.get(hostId);
  }

  /**
   * A stream for the host opened here. The Hello's revision counts only when the stream resumed
   * from it (`revision`: the log vouched for it); otherwise the host is entered at 0 and counts
   * from its first Ack.
   */
  connected(hostId: string, revision: number): void {
    this.live.set(hostId, revision);
    this.failedHere.set(hostId, undefined);
    this.pendingApplied.set(hostId, Math.max(this.pendingApplied.get(hostId) ?? 0, revision));
    this.scheduleFlush(APPLIED_FLUSH_MS);
    this.events.emit('connected', { hostId, revision });
  }

  /** `clearsError`: the ack is at or above the host's last NACK (or the stream's first ack): a stored last error goes. */
  acked(hostId: string, revision: number, clearsError: boolean): void {
    this.live.set(hostId, Math.max(revision, this.live.get(hostId) ?? 0));
    this.pendingApplied.set(hostId, Math.max(revision, this.pendingApplied.get(hostId) ?? 0));
    const pending = this.pendingErrors.get(hostId);
    if (clearsError && !(pending && 'set' in pending && pending.set.revision > revision)) {
      this.pendingErrors.set(hostId, { clearUpTo: Math.max(revision, pending && 'clearUpTo' in pending ? pending.clearUpTo : 0) });
    }
    this.events.emit('acked', { hostId, revision });
    this.scheduleFlush(APPLIED_FLUSH_MS);
  }

  /**
   * The ports an ack of `revision` says the host's agent could not program (checked: see
   * readFailedPorts), before the ack itself is recorded (`acked`), so whoever the ack wakes reads
   * them. Written with the next batch of acks when they changed, and at a stream's first ack (an
   * earlier stream may have left others); one log line per port that starts failing or fails
   * otherwise, and per port back in place.
   */
  portFailures(hostId: string, hostName: string, revision: number, ports: ReadonlyMap<string, string>): void {
    const previous = this.failedHere.get(hostId);
    if (ports.size === 0 && previous !== undefined && Object.keys(previous.ports).length === 0) {
      return; // nothing failing, before or now: nearly every ack
    }
    const next = nextPortFailures(previous, revision, ports, new Date().toISOString());
    if (previous !== undefined && samePortFailures(previous, next)) {
      return;
    }
    this.failedHere.set(hostId, next);
    this.pendingPortFailures.set(hostId, next);
    this.scheduleFlush(APPLIED_FLUSH_MS);
    for (const [portId, { reason }] of Object.entries(next.ports)) {
      if (previous?.ports[portId]?.reason !== reason) {
        this.logger.warn(`host ${hostName} could not program port ${portId} (revision ${revision}): ${reason}`, { host: hostName, event: 'port-nack', revision, portId, error: reason });
      }
    }
    for (const portId of Object.keys(previous?.ports ?? {})) {
      if (!(portId in next.ports)) {
        this.logger.log(`host ${hostName} programmed port ${portId} (revision ${revision})`, { host: hostName, event: 'port-ack', revision, portId });
      }
    }
  }

  /** Kept (cleaned and bounded: agent text is hostile input) as the host's last error, written with the next batch of acks. */
  nacked(hostId: string, hostName: string, revision: number, error: string): void {
    const text = cleanAgentText(error);
    this.pendingErrors.set(hostId, { set: { revision, error: text, at: new Date().toISOString() } });
    this.scheduleFlush(APPLIED_FLUSH_MS);
    this.logger.warn(`host ${hostName} could not apply revision ${revision}: ${text}`, { host: hostName, event: 'nack', revision, error: text });
    this.events.emit('nacked', { hostId, revision, error: text });
  }

  /** The host's stream here ended (what it acknowledged is already recorded). */
  disconnected(hostId: string): void {
    const revision = this.live.get(hostId) ?? 0;
    this.live.delete(hostId);
    this.failedHere.delete(hostId);
    this.events.emit('disconnected', { hostId, revision });
  }

  /** Writes what is pending, once, and no more after it: a store closing for good must not keep a retry timer alive. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      await this.flush();
    }
  }

  /** Writes the pending acks and last errors in `delayMs` (one timer at a time; none once stopping). */
  private scheduleFlush(delayMs: number): void {
    if (!this.stopping) {
      this.flushTimer ??= setTimeout(() => void this.flush(), delayMs);
    }
  }

  private async flush(): Promise<void> {
    this.flushTimer = undefined;
    const batch = new Map(this.pendingApplied);
    const errors = new Map(this.pendingErrors);
    const portFailures = new Map(this.pendingPortFailures);
    this.pendingApplied.clear();
    this.pendingErrors.clear();
    this.pendingPortFailures.clear();
    try {
      await this.status.recordReports(batch, errors, portFailures);
    } catch (err) {
      // Keep them for the next flush (Redis may be restarting); what arrived meanwhile is newer.
      for (const [host, revision] of batch) {
        this.pendingApplied.set(host, Math.max(revision, this.pendingApplied.get(host) ?? 0));
      }
      for (const [host, update] of errors) {
        if (!this.pendingErrors.has(host)) {
          this.pendingErrors.set(host, update);
        }
      }
      for (const [host, record] of portFailures) {
        if (!this.pendingPortFailures.has(host)) {
          this.pendingPortFailures.set(host, record);
        }
      }
      this.scheduleFlush(RETRY_FLUSH_MS);
      this.logger.warn(`recording acknowledgements: ${(err as Error).message}`);
    }
  }
}
