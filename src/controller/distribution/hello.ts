import * as grpc from '@grpc/grpc-js';
import { Injectable, Logger } from '@nestjs/common';
import { cleanAgentText } from '../../common/agent-text';
import { formatIp, parseIpText } from '../../common/ip';
import type { SyncRequest__Output } from '../../generated/overlay/v1/SyncRequest';
import type { Host } from '../model/host';
import { ChangeLogReader } from '../store/change-log-reader';
import { MaterializedView } from '../store/materialized-view';
import { RedisStore } from '../store/redis-store';
import { StoreRecovery } from '../store/store-recovery';
import { AgentStatusRepository, knownFeatures, type AgentFeature } from './agent-status.repository';
import type { SessionClaim, SyncCall } from './host-session';
import { SESSION_TTL_MS, SessionRegistry } from './session-registry';
import { SpanFeed } from './span-feed';

/** Hello.instance_id: empty, or this (see proto/overlay/v1/sync.proto). */
const INSTANCE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Hello.applied_record as a controller names records, `<revision>-<nonce>` (a nonce below 2^64 - 1, the largest id). */
const RECORD = /^(\d{1,16})-\d{1,19}$/;

/** A Hello refused with a gRPC status; nothing it claimed was recorded. */
export class HelloRefused extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Answers a stream's first message, the Hello: checks who the agent is (in TLS mode the host name
 * is the client certificate's CN; a registered host; its VTEP if it names one), claims the host
 * for this stream in Redis, then decides between a resume delta (same epoch, and the change log
 * still holds every record since the agent's revision: SpanFeed.resume) and a snapshot, and opens
 * the session (SessionRegistry.open).
 *
 * One stream per host across all replicas: the claim is one script, so racing replicas agree
 * (rules in Hello.instance_id). A refused Hello changes nothing; a granted one ends this
 * replica's older stream for the host at once, and another replica's at that replica's next
 * housekeeping, which finds its claim taken.
 */
@Injectable()
export class HelloHandler {
  private readonly logger = new Logger('sync');
  /** Numbers this replica's claims in the order they were made (the tokens carry it). */
  private claimSeq = 0;

  constructor(
    private readonly view: MaterializedView,
    private readonly feed: SpanFeed,
    private readonly sessions: SessionRegistry,
    private readonly status: AgentStatusRepository,
    private readonly store: RedisStore,
    private readonly changeLog: ChangeLogReader,
    private readonly recovery: StoreRecovery,
  ) {}

  /**
   * Answers `req`, the first message on `call`, or throws HelloRefused. `secure`: the stream is
   * TLS (the certificate names the host). `answered` is called as the session opens: from then
   * on the stream's messages are the session's.
   */
  async answer(call: SyncCall, req: SyncRequest__Output, secure: boolean, answered: () => void): Promise<void> {
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
    // Before the host is looked up in the view: it may be gone with the data the agent still holds
    // (whether its Hello may start a recovery, the store's name index says: mayTestify).
    if (await this.recovery.heldByHello(hello.hostName, hello.epoch, hello.appliedRevision)) {
      this.refuseWhenStopped();
      answered();
      this.sessions.holdStream(call, hello.hostName, `store recovery (${this.recovery.current?.reason ?? 'in progress'}): keep the state you hold`);
      const [hostName, epoch] = [cleanAgentText(hello.hostName, 253), cleanAgentText(hello.epoch, 64)];
      this.logger.warn(`host ${hostName}: told to hold its state (store recovery; it holds revision ${hello.appliedRevision} of epoch ${epoch || '(none)'})`, {
        host: hostName,
        event: 'hold',
        appliedRevision: hello.appliedRevision,
        epoch: epoch || null,
      });
      return;
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
    const resumable = hello.epoch === this.sessions.epoch && hello.appliedRevision > 0 && (hello.appliedRevision <= this.view.revision || hello.appliedRevision <= (await this.store.revision()));
    let records;
    try {
      // An agent ahead of this replica's view (it was fed by a faster replica) waits for the view.
      if (resumable && hello.appliedRevision > this.view.revision) {
        await this.view.waitForRevision(hello.appliedRevision, 5_000).catch(() => undefined);
      }
      records = resumable && hello.appliedRevision <= this.view.revision && (await this.appliedRecordStands(hello)) ? await this.changeLog.readThrough(hello.appliedRevision, () => this.view.revision) : undefined;
      if (call.cancelled || !this.view.current.hosts.has(host.id)) {
        throw new HelloRefused(grpc.status.NOT_FOUND, `host ${hello.hostName} is gone`);
      }
      if ((this.sessions.session(host.id)?.claim.seq ?? 0) > claim.seq) {
        // Two Hellos for the host raced here and the later one's claim won in Redis (and started already).
        throw new HelloRefused(grpc.status.ALREADY_EXISTS, `a newer stream for host ${hello.hostName} arrived meanwhile`);
      }
      this.refuseWhenStopped();
    } catch (err) {
      void this.status.releaseSession(claim).catch(() => undefined);
      throw err;
    }
    // From here to the session's start: no await, so no change record can fall between.
    const delta = records && this.feed.resume(host.id, hello.appliedRevision, records);
    answered();
    this.sessions.open(host, call, claim, delta && { from: hello.appliedRevision, delta });
    // Free text of the agent's, for the log only: cleaned and bounded.
    const agentVersion = cleanAgentText(hello.agentVersion, 128);
    this.logger.log(`host ${host.name} connected (agent ${agentVersion || '?'} instance ${instance || '-'}, ${delta ? `resumed from ${hello.appliedRevision}` : 'snapshot'} at ${this.view.revision})`, {
      host: host.name,
      event: 'connect',
      start: delta ? 'resume' : 'snapshot',
      revision: this.view.revision,
      ...(delta && { resumedFrom: hello.appliedRevision }),
      agentVersion: agentVersion || null,
      instance: instance || null,
    });
  }

  /**
   * Whether the record the agent says it applied at its revision is the store's, so a delta on top
   * of it is right. Not when the store lost it (a failover) and made the revision again from
   * another write: the agent holds a state the store never will, and gets a snapshot. An agent
   * that names none (an older one) is taken at its revision, as before; one that names a record
   * in another form, or of another revision, gets a snapshot.
   */
  private async appliedRecordStands(hello: { hostName: string; appliedRevision: number; appliedRecord: string }): Promise<boolean> {
    if (hello.appliedRecord === '') {
      return true;
    }
    const named = RECORD.exec(hello.appliedRecord);
    const stands = named !== null && named[1] === String(hello.appliedRevision) && (await this.changeLog.noOtherRecord(hello.appliedRecord));
    if (!stands) {
      this.logger.warn(`host ${hello.hostName}: the record it applied at revision ${hello.appliedRevision} (${JSON.stringify(hello.appliedRecord.slice(0, 64))}) is not the store's (a failover lost it): a snapshot, not a resume`, {
        host: hello.hostName,
        event: 'record-lost',
        appliedRevision: hello.appliedRevision,
      });
    }
    return stands;
  }

  /** A Hello whose answer ends after the shutdown began opens nothing: no one would end its stream (the gRPC server's close would wait for it). */
  private refuseWhenStopped(): void {
    if (this.sessions.stopped) {
      throw new HelloRefused(grpc.status.UNAVAILABLE, 'controller shutting down');
    }
  }

  /**
   * Claims the host's stream in Redis for a new stream of `instance`, or refuses the Hello with
   * ALREADY_EXISTS (an instance that a live claim replaced). Logs a replacement once (here, on
   * the replica that took over) and a refused instance once per (host, instance, claim).
   */
  private async claim(host: Host, instance: string, features: AgentFeature[]): Promise<SessionClaim> {
    const replicaId = this.sessions.replicaId;
    const seq = ++this.claimSeq;
    const claim: SessionClaim = { hostId: host.id, token: `${replicaId}-${seq}`, instance, seq, features };
    const outcome = await this.status.claimSession(claim, replicaId, SESSION_TTL_MS);
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

  private async findHost(name: string): Promise<Host> {
    const id = await this.store.read((r) => r.hget(this.store.keys.hostNames(), name));
    if (!id) {
      throw new HelloRefused(grpc.status.NOT_FOUND, `no host named ${name} is registered`);
    }
    if (!this.view.current.hosts.has(id)) {
      await this.view.waitForRevision(await this.store.revision(), 5_000).catch(() => undefined);
    }
    const host = this.view.current.hosts.get(id);
    if (!host) {
      throw new HelloRefused(grpc.status.UNAVAILABLE, `host ${name} is not in this replica's view yet; retry`);
    }
    return host;
  }
}
