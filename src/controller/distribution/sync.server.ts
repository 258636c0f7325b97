import * as grpc from '@grpc/grpc-js';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { syncServiceDefinition } from '../../common/proto';
import { parseIpText, formatIp } from '../../common/ip';
import type { ConnectionBatch__Output } from '../../generated/overlay/v1/ConnectionBatch';
import type { ConnectionsInstalled__Output } from '../../generated/overlay/v1/ConnectionsInstalled';
import type { SyncRequest__Output } from '../../generated/overlay/v1/SyncRequest';
import { ControllerConfig } from '../config';
import type { Host } from '../hosts/host.model';
import { ChangeLogReader } from '../store/change-log-reader';
import { MaterializedView } from '../store/materialized-view';
import { RedisStore } from '../store/redis-store';
import { AgentStatusRepository, knownFeatures, type AgentFeature, type LastErrorUpdate, type StreamClaim } from './agent-status.repository';
import { cleanAgentText } from './agent-text';
import { HostSession, type SessionClaim, type SessionEvents, type SyncCall } from './host-session';
import { SpanFeed } from './span-feed';

const HELLO_TIMEOUT_MS = 10_000;
const SESSION_TTL_MS = 15_000;
const MARKER_INTERVAL_MS = 250;
const APPLIED_FLUSH_MS = 20;
const HOUSEKEEPING_MS = 2_000;
/** Hello.instance_id: empty, or this (see proto/overlay/v1/sync.proto). */
const INSTANCE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** How a replica's gRPC server authenticates agents. */
export type TransportSecurity = { mode: 'tls'; ca: Buffer; cert: Buffer; key: Buffer } | { mode: 'insecure' };

export function transportSecurityFrom(config: ControllerConfig): TransportSecurity {
  if (config.tls) {
    return { mode: 'tls', ca: readFileSync(config.tls.ca), cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
  }
  return { mode: 'insecure' };
}

class HelloRefused extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * overlayd's gRPC side: accepts one Sync stream per host, authenticates it (in TLS mode the
 * host name is the client certificate's CN), answers with a resume delta or a snapshot, then
 * keeps the stream fed from the SpanFeed. Records what agents acknowledge, and their last NACK,
 * in Redis (batched; the VNI quarantine and the host API read them).
 *
 * One stream per host across all replicas: a Hello first claims the host in Redis (one script,
 * so racing replicas agree; rules in Hello.instance_id). A refused Hello changes nothing; a
 * granted one ends this replica's older stream for the host at once, and another replica's at
 * that replica's next housekeeping, which finds its claim taken. Claims are refreshed every
 * HOUSEKEEPING_MS and lapse SESSION_TTL_MS after the last refresh (a replica that died).
 */
@Injectable()
export class SyncServer implements SessionEvents, OnApplicationShutdown {
  private readonly logger = new Logger('sync');
  readonly replicaId = randomBytes(6).toString('hex');
  private server?: grpc.Server;
  private readonly sessions = new Map<string, HostSession>();
  private readonly pendingApplied = new Map<string, number>();
  private readonly pendingErrors = new Map<string, LastErrorUpdate>();
  /** Numbers this replica's claims in the order they were made (the tokens carry it). */
  private claimSeq = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private flushTimer?: NodeJS.Timeout;
  private epoch = '';
  /** Emits `acked` (hostId, revision) for every acknowledgement on this replica. */
  readonly acks = new EventEmitter();
  /** `arrived` ({hostId, hostName, migrationId, portId}): an agent saw a migrating VM land (migrations/ commits it). */
  readonly arrivals = new EventEmitter();
  /**
   * `exported` ({hostId, hostName, batch}): tracked connections of a port migrating away from that
   * host; `installed` ({hostId, hostName, report}): the destination inserted them. migrations/
   * checks, stores and relays them (connection-handover.ts).
   */
  readonly connections = new EventEmitter();
  boundPort = 0;

  constructor(
    @Inject(ControllerConfig) private readonly config: ControllerConfig,
    private readonly view: MaterializedView,
    private readonly feed: SpanFeed,
    private readonly status: AgentStatusRepository,
    private readonly store: RedisStore,
    private readonly changeLog: ChangeLogReader,
  ) {
    this.acks.setMaxListeners(0);
  }

  /** Binds the gRPC port. Called once the view is loaded. */
  async start(security: TransportSecurity): Promise<number> {
    this.epoch = await this.status.epoch();
    // A reloaded view may mean Redis lost its data (and its epoch): agents' revisions from before
    // must not be resumed against the new history. Read the epoch again before sessions resync.
    this.view.onReset(() => {
      void this.status
        .epoch()
        .then((epoch) => {
          if (epoch !== this.epoch) {
            this.logger.warn(`epoch changed from ${this.epoch} to ${epoch}: every agent gets a snapshot`);
            this.epoch = epoch;
            for (const session of this.sessions.values()) {
              session.resync();
            }
          }
        })
        .catch(() => undefined);
    });
    const server = new grpc.Server({ 'grpc.keepalive_time_ms': 20_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.max_receive_message_length': 1024 * 1024 });
    server.addService(syncServiceDefinition(), { Sync: (call: SyncCall) => this.accept(call, security.mode === 'tls') });
    const credentials =
      security.mode === 'tls' ? grpc.ServerCredentials.createSsl(security.ca, [{ cert_chain: security.cert, private_key: security.key }], true) : grpc.ServerCredentials.createInsecure();
    if (security.mode === 'insecure') {
      this.logger.warn('gRPC without TLS: any client may claim to be any host. For development only; set OVERLAY_TLS_CA/CERT/KEY in production.');
    }
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`0.0.0.0:${this.config.grpcPort}`, credentials, (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
    this.timers.push(setInterval(() => this.sendMarkers(), MARKER_INTERVAL_MS));
    this.timers.push(setInterval(() => void this.housekeeping(), HOUSEKEEPING_MS));
    return this.boundPort;
  }

  session(hostId: string): HostSession | undefined {
    return this.sessions.get(hostId);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private accept(call: SyncCall, secure: boolean): void {
    const timer = setTimeout(() => call.emit('error', { code: grpc.status.DEADLINE_EXCEEDED, details: `no Hello within ${HELLO_TIMEOUT_MS} ms` }), HELLO_TIMEOUT_MS);
    // Nothing may follow the Hello before the controller answered it: there is nothing yet to
    // acknowledge or report on.
    const early = (): void => {
      this.logger.warn('an agent sent a message before its Hello was answered: INVALID_ARGUMENT');
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'a message before the Hello was answered' });
    };
    call.once('data', (req: SyncRequest__Output) => {
      clearTimeout(timer);
      call.on('data', early);
      this.onHello(call, req, secure, () => call.removeListener('data', early)).catch((err: unknown) => {
        const refused = err instanceof HelloRefused ? err : new HelloRefused(grpc.status.UNAVAILABLE, `controller error: ${(err as Error).message}`);
        if (!(err instanceof HelloRefused)) {
          this.logger.error(`hello failed: ${(err as Error).stack}`);
        }
        call.emit('error', { code: refused.code, details: refused.message });
      });
    });
    call.on('error', () => clearTimeout(timer));
  }

  private async onHello(call: SyncCall, req: SyncRequest__Output, secure: boolean, answered: () => void): Promise<void> {
    const hello = req.hello;
    if (!hello) {
      throw new HelloRefused(grpc.status.INVALID_ARGUMENT, (req as { undecodable?: string }).undecodable ?? 'the first message must be a Hello');
    }
    if (secure) {
      const certName = call.getAuthContext().sslPeerCertificate?.subject?.CN;
      if (!certName) {
        throw new HelloRefused(grpc.status.UNAUTHENTICATED, 'a client certificate naming the host (CN) is required');
      }
      if (certName !== hello.hostName) {
        throw new HelloRefused(grpc.status.PERMISSION_DENIED, `the certificate is for host ${certName}, not ${hello.hostName}`);
      }
    }
    const instance = hello.instanceId;
    if (instance && !INSTANCE_ID.test(instance)) {
      throw new HelloRefused(grpc.status.INVALID_ARGUMENT, 'instance_id must be empty or 1-64 characters of [A-Za-z0-9_-]');
    }
    const host = await this.findHost(hello.hostName);
    if (hello.vtepIp) {
      const parsed = parseIpText(hello.vtepIp);
      if (!parsed || formatIp(parsed) !== host.vtepIp) {
        throw new HelloRefused(grpc.status.FAILED_PRECONDITION, `agent VTEP ${hello.vtepIp} differs from host ${host.name}'s registered VTEP ${host.vtepIp}`);
      }
    }
    // Claimed before any other work: an agent that is refused (another holds the host) costs one script.
    const claim = await this.claim(host, instance, knownFeatures(hello.features));
    // A revision past the store's is one no replica sent: not a base to resume from (a snapshot
    // instead, at once; waiting for the view to reach it would wait for nothing).
    const resumable = hello.epoch === this.epoch && hello.appliedRevision > 0 && (hello.appliedRevision <= this.view.revision || hello.appliedRevision <= (await this.storeRevision()));
    let records;
    try {
      // An agent ahead of this replica's view (it was fed by a faster replica) waits for the view.
      if (resumable && hello.appliedRevision > this.view.revision) {
        await this.view.waitForRevision(hello.appliedRevision, 5_000).catch(() => undefined);
      }
      records = resumable && hello.appliedRevision <= this.view.revision ? await this.changeLog.readThrough(hello.appliedRevision, () => this.view.revision) : undefined;
      if (call.cancelled || !this.view.current.hosts.has(host.id)) {
        throw new HelloRefused(grpc.status.NOT_FOUND, `host ${hello.hostName} is gone`);
      }
      if ((this.sessions.get(host.id)?.claim.seq ?? 0) > claim.seq) {
        // Two Hellos for the host raced here and the later one's claim won in Redis (and started already).
        throw new HelloRefused(grpc.status.ALREADY_EXISTS, `a newer stream for host ${hello.hostName} arrived meanwhile`);
      }
    } catch (err) {
      void this.status.releaseSession(claim).catch(() => undefined);
      throw err;
    }
    // From here to session.start(): no await, so no change record can fall between.
    const delta = records && this.feed.resume(host.id, hello.appliedRevision, records);
    const resumed = delta !== undefined;
    this.sessions.get(host.id)?.fail(grpc.status.ALREADY_EXISTS, 'a newer stream for this host replaced this one');
    answered();
    const session = new HostSession(host.id, host.name, host.vtepIp, () => this.epoch, call, this.feed, this, resumed ? hello.appliedRevision : 0, claim, resumed);
    this.sessions.set(host.id, session);
    if (resumed) {
      session.deliver(this.view.revision, delta);
    } else {
      session.sendSnapshot();
    }
    session.start();
    // The Hello's revision counts only when the stream resumed from it (the log vouched for it);
    // otherwise the host is entered at 0 and counts from its first Ack.
    this.pendingApplied.set(host.id, Math.max(this.pendingApplied.get(host.id) ?? 0, resumed ? hello.appliedRevision : 0));
    this.scheduleFlush(APPLIED_FLUSH_MS);
    this.logger.log(`host ${host.name} connected (agent ${hello.agentVersion || '?'} instance ${instance || '-'}, ${resumed ? `resumed from ${hello.appliedRevision}` : 'snapshot'} at ${this.view.revision})`);
  }

  /**
   * Claims the host's stream in Redis for a new stream of `instance`, or refuses the Hello with
   * ALREADY_EXISTS (an instance that a live claim replaced). Logs a replacement once (here, on
   * the replica that took over) and a refused instance once per (host, instance, claim).
   */
  private async claim(host: Host, instance: string, features: AgentFeature[]): Promise<SessionClaim> {
    const seq = ++this.claimSeq;
    const claim: SessionClaim = { hostId: host.id, token: `${this.replicaId}-${seq}`, instance, seq, features };
    const outcome = await this.status.claimSession(claim, this.replicaId, SESSION_TTL_MS);
    if (!outcome.claimed) {
      if (outcome.firstRefusal) {
        this.logger.warn(`host ${host.name}: refusing agent instance ${instance}: instance ${outcome.holder || '-'} replaced it and holds the host (ALREADY_EXISTS until that stream ends)`);
      }
      throw new HelloRefused(grpc.status.ALREADY_EXISTS, `host ${host.name} is held by another agent (instance ${outcome.holder || '-'}), which replaced this one; retry later`);
    }
    if (outcome.replaced) {
      const old = outcome.replaced.instance;
      this.logger.warn(
        instance && old
          ? `host ${host.name}: agent instance ${instance} replaced the stream of instance ${old} (replica ${outcome.replaced.replica}); ${old} is refused while ${instance} holds the host`
          : `host ${host.name}: a Hello of agent instance ${instance || '-'} replaced the live stream of instance ${old || '-'} (replica ${outcome.replaced.replica}; without an instance id, the newer stream wins)`,
      );
    }
    return claim;
  }

  private async storeRevision(): Promise<number> {
    return Number((await this.store.read((r) => r.get(this.store.keys.revision()))) ?? 0);
  }

  private async findHost(name: string): Promise<Host> {
    const id = await this.store.read((r) => r.hget(this.store.keys.hostNames(), name));
    if (!id) {
      throw new HelloRefused(grpc.status.NOT_FOUND, `no host named ${name} is registered`);
    }
    if (!this.view.current.hosts.has(id)) {
      await this.view.waitForRevision(await this.storeRevision(), 5_000).catch(() => undefined);
    }
    const host = this.view.current.hosts.get(id);
    if (!host) {
      throw new HelloRefused(grpc.status.UNAVAILABLE, `host ${name} is not in this replica's view yet; retry`);
    }
    return host;
  }

  acked(session: HostSession, revision: number, clearsError: boolean): void {
    const host = session.hostId;
    this.pendingApplied.set(host, Math.max(revision, this.pendingApplied.get(host) ?? 0));
    const pending = this.pendingErrors.get(host);
    if (clearsError && !(pending && 'set' in pending && pending.set.revision > revision)) {
      this.pendingErrors.set(host, { clearUpTo: Math.max(revision, pending && 'clearUpTo' in pending ? pending.clearUpTo : 0) });
    }
    this.acks.emit('acked', host, revision);
    this.scheduleFlush(APPLIED_FLUSH_MS);
  }

  /** Kept (cleaned and bounded: agent text is hostile input) as the host's last error, written with the next batch of acks. */
  nacked(session: HostSession, revision: number, error: string): void {
    const text = cleanAgentText(error);
    this.pendingErrors.set(session.hostId, { set: { revision, error: text, at: new Date().toISOString() } });
    this.scheduleFlush(APPLIED_FLUSH_MS);
    this.logger.warn(`host ${session.hostName} could not apply revision ${revision}: ${text}`);
  }

  violated(session: HostSession, reason: string): void {
    this.logger.warn(`host ${session.hostName}: protocol violation, stream ended with INVALID_ARGUMENT: ${reason}`);
  }

  /** Ends `hostId`'s stream on this replica for a message found wrong after the fact (a migration it is not part of). */
  refuse(hostId: string, reason: string): void {
    this.sessions.get(hostId)?.refuse(reason);
  }

  connectionsExported(session: HostSession, batch: ConnectionBatch__Output): void {
    this.connections.emit('exported', { hostId: session.hostId, hostName: session.hostName, batch });
  }

  connectionsInstalled(session: HostSession, report: ConnectionsInstalled__Output): void {
    this.connections.emit('installed', { hostId: session.hostId, hostName: session.hostName, report });
  }

  vmArrived(session: HostSession, migrationId: string, portId: string): void {
    this.arrivals.emit('arrived', { hostId: session.hostId, hostName: session.hostName, migrationId, portId });
  }

  closed(session: HostSession): void {
    if (this.sessions.get(session.hostId) === session) {
      this.sessions.delete(session.hostId);
      void this.status.releaseSession(session.claim).catch(() => undefined);
      this.logger.log(`host ${session.hostName} disconnected`);
    }
  }

  /** Writes the pending acks and last errors in `delayMs` (one timer at a time; none once stopping). */
  private scheduleFlush(delayMs: number): void {
    if (!this.stopping) {
      this.flushTimer ??= setTimeout(() => void this.flushReports(), delayMs);
    }
  }

  private async flushReports(): Promise<void> {
    this.flushTimer = undefined;
    const batch = new Map(this.pendingApplied);
    const errors = new Map(this.pendingErrors);
    this.pendingApplied.clear();
    this.pendingErrors.clear();
    try {
      await this.status.recordReports(batch, errors);
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
      this.scheduleFlush(500);
      this.logger.warn(`recording acknowledgements: ${(err as Error).message}`);
    }
  }

  private sendMarkers(): void {
    for (const session of this.sessions.values()) {
      session.sendMarker();
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

  async stop(): Promise<void> {
    // One last flush below, then no more: a store closing for good must not keep a retry timer alive.
    this.stopping = true;
    this.timers.forEach(clearInterval);
    this.timers.length = 0;
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      await this.flushReports();
    }
    for (const session of [...this.sessions.values()]) {
      session.fail(grpc.status.UNAVAILABLE, 'controller shutting down');
    }
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }
}
