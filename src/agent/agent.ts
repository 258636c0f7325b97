import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { overlayProto } from '../common/proto';
import type { Delta__Output } from '../generated/overlay/v1/Delta';
import type { Resource__Output } from '../generated/overlay/v1/Resource';
import type { SnapshotEnd__Output } from '../generated/overlay/v1/SnapshotEnd';
import type { SyncRequest } from '../generated/overlay/v1/SyncRequest';
import type { SyncResponse__Output } from '../generated/overlay/v1/SyncResponse';
import type { AgentConfig } from './config';
import type { Dataplane, DataplaneState, FirewallRuleset } from './dataplane/dataplane';
import { renderFirewall, segmentZones, type RenderedFirewall } from './dataplane/linux/nftables';
import { tapName } from './dataplane/names';
import { desiredDataplane, planChanges } from './reconcile/plan';
import { ConnectionHandover } from './migration/connection-handover';
import { Backoff } from './sync/backoff';
import { cloneDesiredState, emptyDesiredState, StateCache, type DesiredState } from './sync/state-cache';
import { putResource, removeResource, SPAN_KINDS } from '../common/span/span-kinds';
import type { SpanKindName } from '../common/span/span-kind';

export const AGENT_VERSION = '0.1.0';

export interface AgentLogger {
  info(message: string): void;
  warn(message: string): void;
}

const consoleLogger: AgentLogger = {
  info: (m) => console.log(JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: m })),
  warn: (m) => console.warn(JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg: m })),
};

const kindCounters = (): Record<SpanKindName, number> => Object.fromEntries(Object.keys(SPAN_KINDS).map((kind) => [kind, 0])) as Record<SpanKindName, number>;

type SyncStream = grpc.ClientDuplexStream<SyncRequest, SyncResponse__Output>;

/**
 * overlay-agent: one host's link to the controller and its dataplane.
 *
 * - The stream: one Sync stream, opened with Hello (host, VTEP, the revision and epoch it holds,
 *   this process's instance id); reconnects with exponential backoff and jitter, which starts
 *   over only once a stream delivered a snapshot or a delta; keeps forwarding with the last known
 *   state while the controller is away (headless). Refused or replaced with ALREADY_EXISTS
 *   (another agent holds the host), it says so once and keeps retrying with the same backoff.
 * - Desired state: a snapshot is staged chunk by chunk and replaces the state only at its end
 *   marker; deltas update it; it is persisted on disk, so a restart restores the dataplane before
 *   the controller answers.
 * - The dataplane: programmed by plans (desired vs observed). Nothing is removed before the agent
 *   knows the whole desired state (end of a snapshot, or a resume delta on top of the persisted
 *   state). A revision is acked once programmed, nacked if programming failed.
 * - Fail closed: with the firewall on, the ruleset is loaded before the links change, and a tap is
 *   attached to its bridge only while the ruleset in force holds the tap's current policy (its
 *   digest, see RenderedFirewall); a tap whose policy is not in force (never loaded, a change
 *   that failed to load, tables found gone) is detached, even before the first full sync. The
 *   other ports keep forwarding with the rules in force.
 * - A failed apply is retried with backoff (exponential, full jitter, the reconnect bounds), by
 *   the next real change, never by revision markers or in a loop; each failed attempt is nacked.
 */
export class Agent {
  private desired: DesiredState = emptyDesiredState();
  /** True once the agent holds the controller's whole desired state (stale objects may be swept). */
  private inSync = false;
  /** The dataplane state last programmed successfully; undefined = unknown, observe the kernel. */
  private realized?: DataplaneState;
  /** The ruleset the dataplane said was in force after the last realize; undefined = none. */
  private firewallInForce?: FirewallRuleset;
  /** The last render and the desired state's maps it was made from (see renderFirewall). */
  private rendered?: Pick<DesiredState, 'policies' | 'members' | 'ports' | 'segments'> & { firewall: RenderedFirewall };
  /** Set while the last apply failed: its retry is scheduled with backoff, and markers do not retry. */
  private retryTimer?: NodeJS.Timeout;
  private failing = false;
  private readonly retryBackoff: Backoff;
  /** A migrating VM's tracked connections, exported where it leaves and installed where it lands. */
  private readonly handover: ConnectionHandover;
  private staging?: { revision: number; epoch: string; resources: Resource__Output[] };
  private client?: InstanceType<typeof overlayProto.SyncService>;
  /** Index into config.controllers of the replica in use; moves on when a stream is lost. */
  private target = 0;
  private stream?: SyncStream;
  /** The revision of the last snapshot end or delta the current stream carried: the only one an Ack or Nack may name. */
  private streamRevision?: number;
  /** Sent in every Hello: tells this process's streams from another agent's claiming the same host. */
  readonly instanceId = randomBytes(8).toString('hex');
  /** Set when another agent holds the host (ALREADY_EXISTS, logged once), until a stream delivers again. */
  private heldElsewhere = false;
  private work: Promise<void> = Promise.resolve();
  private reconnectTimer?: NodeJS.Timeout;
  private reconcileTimer?: NodeJS.Timeout;
  private reconcileQueued = false;
  /** The periodic reconcile applies the firewall even when its text did not change: the dataplane checks for drift. */
  private firewallRepairDue = false;
  private stopped = true;
  private readonly backoff: Backoff;
  private readonly cache: StateCache;
  /** Counters, for tests and logs. */
  readonly stats = { snapshots: 0, deltas: 0, emptyDeltas: 0, acks: 0, nacks: 0, connects: 0 };
  /** Resources received in deltas, by kind (upserts) and by ResourceKind (removals), for tests and logs. */
  readonly received = { upserts: kindCounters(), removals: kindCounters() };
  /** Ports local here (bound or prepared) at the last realize, with their conntrack zone and addresses. */
  private localPorts = new Map<string, { zone: number; ips: string[]; prepared: boolean }>();
  /** Migrations whose VM's arrival this agent reported (once each). */
  private readonly reportedArrivals = new Set<string>();
  /** Called after every message is handled (tests wait on conditions with it). */
  onProgress?: () => void;

  constructor(
    readonly config: AgentConfig,
    readonly dataplane: Dataplane,
    private readonly logger: AgentLogger = consoleLogger,
    /** The jitter's random source (tests make it predictable). */
    random: () => number = Math.random,
  ) {
    this.backoff = new Backoff(config.backoffBaseMs, config.backoffMaxMs, random);
    this.handover = new ConnectionHandover(dataplane, config.firewall === true, (request) => this.send(request), logger);
    this.retryBackoff = new Backoff(config.backoffBaseMs, config.backoffMaxMs, random);
    this.cache = new StateCache(config.stateDir);
  }

  get state(): DesiredState {
    return this.desired;
  }

  get connected(): boolean {
    return this.stream !== undefined;
  }

  get synced(): boolean {
    return this.inSync;
  }

  /** Restores the persisted state into the dataplane (no sweeping), then connects. */
  async start(): Promise<void> {
    this.stopped = false;
    const cached = await this.cache.load();
    if (cached) {
      this.desired = cached;
      this.logger.info(`restored desired state at revision ${cached.revision} from ${this.config.stateDir}`);
      await this.realize(cached.revision, false);
    }
    this.reconcileTimer = setInterval(() => {
      // One periodic reconcile queued at a time: when a pass takes longer than the interval (a
      // busy host, a large firewall to reload) ticks would otherwise pile up in the queue, delay
      // every change behind them and hold up stop(). While an apply is failing, its retry (with
      // backoff) is the next attempt.
      if (this.reconcileQueued || this.failing) {
        return;
      }
      this.reconcileQueued = true;
      this.enqueue(() => {
        this.reconcileQueued = false;
        this.firewallRepairDue = true;
        return this.realize(this.desired.revision, true);
      });
    }, this.config.reconcileIntervalMs);
    this.connect();
  }

  /** Closes the stream; the dataplane keeps its state. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.reconcileTimer);
    this.handover.stop();
    this.stream?.cancel();
    this.stream = undefined;
    this.client?.close();
    this.client = undefined;
    await this.work.catch(() => undefined);
    await this.cache.flush();
  }

  private credentials(): grpc.ChannelCredentials {
    const tls = this.config.tls;
    if (!tls) {
      return grpc.credentials.createInsecure();
    }
    return grpc.credentials.createSsl(readFileSync(tls.ca), readFileSync(tls.key), readFileSync(tls.cert));
  }

  private connect(): void {
    if (this.stopped) {
      return;
    }
    // A 16 MiB HTTP/2 window: with grpc-js's default (64 KiB) a 17 MB snapshot needs ~270
    // WINDOW_UPDATE round trips between two busy event loops.
    const options: grpc.ChannelOptions = { 'grpc.keepalive_time_ms': 20_000, 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc-node.flow_control_window': 16 * 1024 * 1024 };
    if (this.config.tls?.serverName) {
      options['grpc.ssl_target_name_override'] = this.config.tls.serverName;
    }
    this.client ??= new overlayProto.SyncService(this.config.controllers[this.target], this.credentials(), options);
    const stream = this.client.Sync();
    this.stream = stream;
    this.streamRevision = undefined;
    this.stats.connects++;
    this.staging = undefined;
    stream.write({
      hello: {
        hostName: this.config.hostName,
        vtepIp: this.config.vtepIp ?? '',
        agentVersion: AGENT_VERSION,
        appliedRevision: this.desired.epoch ? this.desired.revision : 0,
        epoch: this.desired.epoch,
        instanceId: this.instanceId,
        features: ['connection-handover'],
      },
    });
    stream.on('data', (message: SyncResponse__Output) => {
      // The stream works once it delivers a snapshot or a delta: only then does the backoff start over.
      if (this.stream === stream && (message.snapshotEnd || message.delta)) {
        this.backoff.reset();
        if (this.heldElsewhere) {
          this.heldElsewhere = false;
          this.logger.info(`host ${this.config.hostName}: holding the stream again (${this.config.controllers[this.target]})`);
        }
      }
      this.enqueue(() => this.onMessage(message, stream));
    });
    const lost = (reason: string, code?: grpc.status) => {
      if (this.stream !== stream) {
        return;
      }
      this.stream = undefined;
      this.handover.streamLost();
      if (this.stopped) {
        return;
      }
      const delay = this.backoff.next();
      const from = this.config.controllers[this.target];
      if (this.config.controllers.length > 1) {
        // Try the next replica: the one we lost may be gone for good.
        this.client?.close();
        this.client = undefined;
        this.target = (this.target + 1) % this.config.controllers.length;
      }
      if (code !== grpc.status.ALREADY_EXISTS) {
        this.logger.warn(`stream to ${from} lost (${reason}); keeping the last known state, reconnecting to ${this.config.controllers[this.target]} in ${delay} ms`);
      } else if (!this.heldElsewhere) {
        // Another agent claims this host (a duplicate, or this host's next agent): the controller
        // refuses us while it holds the stream. Not a failure to report on every attempt.
        this.heldElsewhere = true;
        this.logger.warn(`host ${this.config.hostName} is held by another agent (${reason}); keeping the last known state, retrying with backoff up to ${this.config.backoffMaxMs} ms (not logged again until it connects)`);
      }
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    };
    stream.on('error', (err: grpc.ServiceError) => lost(`${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`, err.code));
    stream.on('end', () => lost('ended by the controller'));
  }

  private enqueue(task: () => Promise<void>): void {
    this.work = this.work
      .then(task)
      .catch((err: unknown) => this.logger.warn(`agent: ${(err as Error).message}`))
      .finally(() => this.onProgress?.());
  }

  private async onMessage(message: SyncResponse__Output, from: SyncStream): Promise<void> {
    const carried = message.snapshotEnd?.revision ?? message.delta?.revision;
    if (carried !== undefined && from === this.stream) {
      this.streamRevision = carried;
    }
    if (message.snapshotChunk) {
      const chunk = message.snapshotChunk;
      if (!this.staging || this.staging.revision !== chunk.revision || this.staging.epoch !== chunk.epoch) {
        this.staging = { revision: chunk.revision, epoch: chunk.epoch, resources: [] };
      }
      this.staging.resources.push(...chunk.resources);
    } else if (message.snapshotEnd) {
      await this.onSnapshotEnd(message.snapshotEnd);
    } else if (message.delta) {
      await this.onDelta(message.delta);
    } else if (message.connections) {
      this.handover.receive(message.connections, this.desired);
    }
  }

  private async onSnapshotEnd(end: SnapshotEnd__Output): Promise<void> {
    const staged = this.staging;
    this.staging = undefined;
    if (!staged || staged.revision !== end.revision || staged.resources.length !== end.resourceCount) {
      this.report(end.revision, `snapshot incomplete: got ${staged?.resources.length ?? 0} of ${end.resourceCount} resources`);
      this.stream?.cancel(); // reconnect for a fresh one
      return;
    }
    const next: DesiredState = { ...emptyDesiredState(), epoch: end.epoch, revision: end.revision, hostId: end.hostId, vtepIp: end.vtepIp };
    for (const resource of staged.resources) {
      putResource(next, resource);
    }
    this.desired = next;
    this.inSync = true;
    this.realized = undefined; // compare with the kernel, not with what we believed
    this.stats.snapshots++;
    this.cache.save(next);
    await this.realize(end.revision, true);
  }

  private async onDelta(delta: Delta__Output): Promise<void> {
    if (!this.desired.epoch) {
      this.report(delta.revision, 'delta received before any snapshot');
      return;
    }
    const empty = delta.upserts.length === 0 && delta.removals.length === 0;
    this.stats.deltas++;
    if (empty) {
      this.stats.emptyDeltas++;
    }
    const next = empty ? this.desired : cloneDesiredState(this.desired);
    for (const key of delta.removals) {
      const kind = removeResource(next, key);
      if (kind) {
        this.received.removals[kind]++;
      }
    }
    for (const resource of delta.upserts) {
      const kind = putResource(next, resource);
      if (kind) {
        this.received.upserts[kind]++;
      }
    }
    next.revision = delta.revision;
    this.desired = next;
    // A delta is either live or a resume on top of the persisted state: the agent now holds everything.
    const wasInSync = this.inSync;
    this.inSync = true;
    this.cache.save(next);
    if (empty && this.failing && wasInSync) {
      return; // a marker changes nothing: the scheduled retry will apply (and ack) this revision
    }
    await this.realize(delta.revision, true);
  }

  /**
   * Programs the dataplane toward the desired state and acks `revision`, or nacks it. `full`
   * compares with the kernel (observe) rather than with what was last programmed. With the
   * firewall on: the ruleset first, then the links, where a tap is attached only while the
   * ruleset in force holds its current policy (see the class comment).
   */
  private async realize(revision: number, full: boolean): Promise<void> {
    const failures: string[] = [];
    const desired = desiredDataplane(this.desired);
    const closed = new Set<string>();
    if (this.config.firewall) {
      const firewall = this.renderFirewall();
      // Loaded when it changed, and by every periodic reconcile even when it did not: given the
      // text it loaded last, the dataplane reads its tables back and reloads only when they
      // drifted (one cheap read otherwise). Not on every delta: markers come up to 4 times a second.
      if (this.firewallRepairDue || firewall.text !== this.firewallInForce?.text) {
        try {
          await this.dataplane.applyFirewall(firewall);
          this.firewallRepairDue = false;
        } catch (err) {
          failures.push(`firewall: ${(err as Error).message}`);
        }
      }
      this.firewallInForce = this.dataplane.firewallInForce();
      for (const tap of desired.ports.keys()) {
        const digest = firewall.ports.get(tap);
        if (digest === undefined || this.firewallInForce?.ports.get(tap) !== digest) {
          desired.ports.delete(tap);
          closed.add(tap);
        }
      }
    }
    let linked = false;
    try {
      const base = full || !this.realized ? await this.dataplane.observe() : this.realized;
      const plan = planChanges(desired, base, this.inSync, closed);
      if (plan.length) {
        await this.dataplane.apply(plan);
      }
      this.realized = desired;
      linked = true;
    } catch (err) {
      this.realized = undefined;
      failures.push((err as Error).message);
    }
    if (linked) {
      if (this.inSync && this.stream) {
        this.handover.sync(this.desired);
      }
      this.watchArrivals();
      await this.forgetMovedConnections().catch((err: unknown) => this.logger.warn(`forgetting moved connections: ${(err as Error).message}`));
    }
    if (failures.length) {
      this.stats.nacks++;
      const error = failures.join('; ');
      this.logger.warn(`could not program revision ${revision}${closed.size ? ` (${closed.size} port(s) kept closed)` : ''}: ${error}`);
      this.report(revision, error);
      this.scheduleRetry();
      return;
    }
    this.failing = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryBackoff.reset();
    if (this.desired.epoch && this.inSync && this.report(revision)) {
      this.stats.acks++;
    }
  }

  /**
   * Acks `revision` (nacks it with `error`), if the current stream carried it: the controller
   * refuses an Ack or Nack of a revision its stream did not send (a revision from before a
   * reconnect, say, while the new stream has sent nothing yet). Returns whether it was sent.
   */
  private report(revision: number, error?: string): boolean {
    if (revision !== this.streamRevision) {
      return false;
    }
    return this.send(error === undefined ? { ack: { revision } } : { nack: { revision, error } });
  }

  /**
   * The whole firewall of the desired state, rendered (each tap's digest counts its segment's
   * zone). A revision marker changes nothing: the desired state keeps its maps (deltas copy them,
   * snapshots make new ones), so the last render is reused rather than made again 4 times a second.
   */
  private renderFirewall(): RenderedFirewall {
    const { policies, members, ports, segments } = this.desired;
    const last = this.rendered;
    if (last && last.policies === policies && last.members === members && last.ports === ports && last.segments === segments) {
      return last.firewall;
    }
    const portVnis = new Map<string, number>();
    for (const port of ports.values()) {
      const vni = segments.get(port.segmentId)?.vni;
      if (vni !== undefined) {
        portVnis.set(port.id, vni);
      }
    }
    // The conntrack mode was resolved at start (main.ts); `auto` is left only on the memory
    // dataplane, which loads nothing.
    const firewall = renderFirewall({
      policies: [...policies.values()],
      members: [...members.values()],
      tapOf: tapName,
      vnis: [...segments.values()].map((s) => s.vni),
      conntrack: this.config.conntrack === 'br_netfilter' ? 'br_netfilter' : 'bridge',
      portVnis,
    });
    this.rendered = { policies, members, ports, segments, firewall };
    return firewall;
  }

  /** After a failed apply: one retry, after a backoff delay that grows with each failure in a row. */
  private scheduleRetry(): void {
    this.failing = true;
    if (this.retryTimer || this.stopped) {
      return;
    }
    const delay = this.retryBackoff.next();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.enqueue(() => {
        this.firewallRepairDue = true;
        return this.realize(this.desired.revision, true);
      });
    }, delay);
  }

  /**
   * With auto-commit, watches the ports prepared here for an incoming migration (their rules are
   * in place: this runs after a successful realize) and reports the VM's first frame on one, so
   * the controller commits the migration without waiting for the hypervisor's hook.
   */
  private watchArrivals(): void {
    if (!this.config.migrationAutoCommit || !this.dataplane.watchArrivals) {
      return;
    }
    const prepared = new Map<string, { mac: string; portId: string; migrationId: string }>();
    for (const port of this.desired.ports.values()) {
      if (port.preparedHostId && port.preparedHostId === this.desired.hostId && port.migrationId && !this.reportedArrivals.has(port.migrationId)) {
        prepared.set(tapName(port.id), { mac: port.mac, portId: port.id, migrationId: port.migrationId });
      }
    }
    this.dataplane.watchArrivals(new Map([...prepared].map(([tap, p]) => [tap, p.mac])), (tap) => {
      const port = prepared.get(tap);
      if (!port || this.reportedArrivals.has(port.migrationId)) {
        return;
      }
      this.reportedArrivals.add(port.migrationId);
      this.logger.info(`VM of port ${port.portId} arrived on ${tap}: asking the controller to commit migration ${port.migrationId}`);
      this.send({ vmArrived: { migrationId: port.migrationId, portId: port.portId } });
    });
  }

  /**
   * Forgets the tracked connections of a VM that left this host, and of one prepared to arrive
   * (entries from an earlier stay here would carry stale TCP windows: its packets would be
   * invalid, and dropped, when it comes back). A VM landing here then has its flows picked up
   * mid-stream (nf_conntrack_tcp_loose). Only with the firewall, which tracks connections.
   */
  private async forgetMovedConnections(): Promise<void> {
    if (!this.config.firewall || !this.dataplane.forgetConnections || !this.inSync) {
      return;
    }
    const zones = segmentZones(this.desired.segments.values());
    const now = new Map<string, { zone: number; ips: string[]; prepared: boolean }>();
    for (const port of this.desired.ports.values()) {
      const prepared = port.preparedHostId !== '' && port.preparedHostId === this.desired.hostId;
      const zone = zones.get(port.segmentId);
      if ((prepared || port.hostId === this.desired.hostId) && zone !== undefined) {
        now.set(port.id, { zone, ips: [...port.ips], prepared });
      }
    }
    const forget: { zone: number; ips: string[] }[] = [];
    for (const [id, before] of this.localPorts) {
      if (!now.has(id)) {
        forget.push(before);
      }
    }
    for (const [id, entry] of now) {
      if (entry.prepared && !this.localPorts.get(id)?.prepared) {
        forget.push(entry);
      }
    }
    this.localPorts = now;
    for (const { zone, ips } of forget) {
      if (ips.length) {
        await this.dataplane.forgetConnections(zone, ips);
      }
    }
  }

  /** Writes to the stream; false when there is none (the request is dropped). */
  private send(request: SyncRequest): boolean {
    if (!this.stream) {
      return false;
    }
    this.stream.write(request);
    return true;
  }
}
