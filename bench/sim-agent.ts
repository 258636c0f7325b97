import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { overlayProto } from '../src/common/proto';
import { memberKind } from '../src/common/span/member.kind';
import { mirrorSinkKind } from '../src/common/span/mirror-sink.kind';
import { mirrorKind } from '../src/common/span/mirror.kind';
import { spanKey } from '../src/common/span/span-kind';
import type { MirrorSink__Output } from '../src/generated/overlay/v1/MirrorSink';
import type { MirrorTap__Output } from '../src/generated/overlay/v1/MirrorTap';
import type { Delta__Output } from '../src/generated/overlay/v1/Delta';
import type { Resource__Output } from '../src/generated/overlay/v1/Resource';
import type { ResourceKey__Output } from '../src/generated/overlay/v1/ResourceKey';
import type { Segment__Output } from '../src/generated/overlay/v1/Segment';
import type { SyncRequest } from '../src/generated/overlay/v1/SyncRequest';
import type { SyncResponse__Output } from '../src/generated/overlay/v1/SyncResponse';

/*
 * Simulated overlay agents for the sync benchmark: each speaks the real protocol (Hello, then
 * snapshot chunks / SnapshotEnd / Delta, answered with Ack) over @grpc/grpc-js with the service
 * definition of src/common/proto.ts, and holds its span in Maps (segments, mirror taps and
 * sinks) and Sets (the ids of its ports and IP-set members; policies are not kept). No dataplane, no disk:
 * a revision is acked as soon as it is applied.
 *
 * Responses are taken off the wire as raw Buffers (so the bytes each agent receives can be
 * counted) and decoded with the definition's own deserializer, as the real agent's client would.
 * Each agent has a channel and TCP connection of its own (`grpc.use_local_subchannel_pool`):
 * grpc-js would otherwise multiplex every client of one target onto one HTTP/2 connection, which
 * is not what 1,000 hypervisors look like to the controller.
 */

const SYNC = overlayProto.SyncService.service.Sync;
const rawBuffer = (buffer: Buffer): Buffer => buffer;

export const AGENT_VERSION = 'sync-bench';

/**
 * The real agent's channel options (src/agent/agent.ts), plus a connection of its own, without
 * channelz (grpc-js' client-side registry of channels, subchannels and sockets, with a trace per
 * state change: bookkeeping of the simulating process only, nothing on the wire).
 */
export function agentChannelOptions(extra: grpc.ChannelOptions = {}): grpc.ChannelOptions {
  return { 'grpc.keepalive_time_ms': 20_000, 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.use_local_subchannel_pool': 1, 'grpc.enable_channelz': 0, ...extra };
}

/**
 * The channel target of `host:port`: an IPv4 address is named with grpc-js' `ipv4:` scheme, whose
 * resolver takes the address as it is, rather than the DNS resolver's (which finds it is an address
 * too, at a cost: 4-5 % of a load generator's CPU in a resume storm). The same address, the same
 * connection.
 */
export function channelTarget(target: string): string {
  return /^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(target) ? `ipv4:${target}` : target;
}

export interface AgentHooks {
  /** After a delta is applied to the agent's Maps, just before its Ack is written; `bytes` is the encoded SyncResponse. */
  deltaApplied(agent: SimAgent, delta: Delta__Output, bytes: number, at: number): void;
  /** After an Ack is written. */
  acked(agent: SimAgent, revision: number, at: number): void;
}

export interface AgentStats {
  bytes: number;
  messages: number;
  chunks: number;
  snapshots: number;
  deltas: number;
  emptyDeltas: number;
  resourcesReceived: number;
  acks: number;
  nacks: number;
  /** Streams that ended without being closed by us. */
  streamErrors: number;
  /** New streams opened after such an end. */
  reconnects: number;
}

/** What an agent keeps of its span, by kind (policies are not kept). */
interface Held {
  segments: Map<string, Segment__Output>;
  /** Ids of the ports: their values are never read (the checks count them), and a load generator holding 1,000 agents' decoded ports spent most of a storm in its garbage collector. */
  ports: Set<string>;
  /** Ids of the IP-set members (`<groupId>/<family>/<cidr>`). */
  members: Set<string>;
  /** Mirror taps by id (`<sessionId>/<portId>`), mirror sinks by session id. */
  mirrors: Map<string, MirrorTap__Output>;
  mirrorSinks: Map<string, MirrorSink__Output>;
}

const emptyHeld = (): Held => ({ segments: new Map(), ports: new Set(), members: new Set(), mirrors: new Map(), mirrorSinks: new Map() });

/** Keeps a received resource (snapshot or delta upsert); kinds not kept are ignored. */
function hold(held: Held, resource: Resource__Output): void {
  if (resource.segment) {
    held.segments.set(resource.segment.id, resource.segment);
  } else if (resource.port) {
    held.ports.add(resource.port.id);
  } else if (resource.member) {
    held.members.add(memberKind.idOf(resource.member));
  } else if (resource.mirror) {
    held.mirrors.set(mirrorKind.idOf(resource.mirror), resource.mirror);
  } else if (resource.mirrorSink) {
    held.mirrorSinks.set(mirrorSinkKind.idOf(resource.mirrorSink), resource.mirrorSink);
  }
}

/** Forgets a removed resource. */
function drop(held: Held, key: ResourceKey__Output): void {
  if (key.kind === 'RESOURCE_KIND_SEGMENT') {
    held.segments.delete(key.id);
  } else if (key.kind === 'RESOURCE_KIND_PORT') {
    held.ports.delete(key.id);
  } else if (key.kind === 'RESOURCE_KIND_MEMBER') {
    held.members.delete(key.id);
  } else if (key.kind === 'RESOURCE_KIND_MIRROR') {
    held.mirrors.delete(key.id);
  } else if (key.kind === 'RESOURCE_KIND_MIRROR_SINK') {
    held.mirrorSinks.delete(key.id);
  }
}

/**
 * The watch key of a mirror session (`*`: whichever session a delta carries, for a create whose
 * id is not known before its answer): a delta upserting or removing any of its mirror taps or
 * its sink carries it.
 */
export const mirrorWatchKey = (sessionId: string): string => `mirrorSession/${sessionId}`;
export const ANY_MIRROR_SESSION = mirrorWatchKey('*');


const RECONNECT_BASE_MS = 100;
const RECONNECT_MAX_MS = 2_000;
/** Reconnect attempts after unexpected stream ends, per connect() call: every loop is bounded. */
const RECONNECT_MAX_ATTEMPTS = 10;

export class SimAgent implements Held {
  segments = new Map<string, Segment__Output>();
  ports = new Set<string>();
  /** Ids of the IP-set members the agent holds (`<groupId>/<family>/<cidr>`). */
  members = new Set<string>();
  mirrors = new Map<string, MirrorTap__Output>();
  mirrorSinks = new Map<string, MirrorSink__Output>();
  epoch = '';
  revision = 0;
  /** The change record of `revision` as the controller named it, named again on resume (as the agent does). */
  record = '';
  hostId = '';
  ackedRevision = 0;
  readonly stats: AgentStats = { bytes: 0, messages: 0, chunks: 0, snapshots: 0, deltas: 0, emptyDeltas: 0, resourcesReceived: 0, acks: 0, nacks: 0, streamErrors: 0, reconnects: 0 };
  lastError?: string;
  /** performance.now() of the last Hello written, of the first message after it, of the last SnapshotEnd and of its Ack. */
  helloAt = 0;
  firstMessageAt = 0;
  snapshotEndAt = 0;
  snapshotAckAt = 0;
  /** Resources of the last snapshot. */
  snapshotResources = 0;

  private client?: grpc.Client;
  private call?: grpc.ClientDuplexStream<SyncRequest, Buffer>;
  /** The snapshot being received: what it holds so far (taken in place of the state at its end) and how many resources it brought. */
  private staging?: { revision: number; epoch: string; held: Held; count: number };
  private wanted = false;
  private attempts = 0;
  private retryTimer?: NodeJS.Timeout;

  constructor(
    readonly index: number,
    readonly hostName: string,
    readonly vtepIp: string,
    private readonly target: string,
    private readonly hooks: AgentHooks,
    private readonly channelOptions: grpc.ChannelOptions,
  ) {}

  get connected(): boolean {
    return this.call !== undefined;
  }

  get spanSize(): number {
    return this.segments.size + this.ports.size;
  }

  /** Opens a new channel and stream; `fresh` forgets the state first (the controller must send a snapshot). */
  connect(fresh: boolean): void {
    this.disconnect();
    if (fresh) {
      Object.assign(this, emptyHeld());
      this.epoch = '';
      this.revision = 0;
      this.record = '';
      this.hostId = '';
    }
    this.wanted = true;
    this.attempts = 0;
    this.open();
  }

  /** Cancels the stream and closes the channel (its TCP connection goes); the state is kept. */
  disconnect(): void {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const call = this.call;
    const client = this.client;
    this.call = undefined;
    this.client = undefined;
    this.staging = undefined;
    call?.cancel();
    client?.close();
  }

  private open(): void {
    const client = new grpc.Client(channelTarget(this.target), grpc.credentials.createInsecure(), this.channelOptions);
    const call = client.makeBidiStreamRequest<SyncRequest, Buffer>(SYNC.path, SYNC.requestSerialize, rawBuffer);
    this.client = client;
    this.call = call;
    this.staging = undefined;
    call.on('data', (buffer: Buffer) => this.onMessage(call, buffer));
    call.on('error', (err: grpc.ServiceError) => this.lost(call, `${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`));
    call.on('end', () => this.lost(call, 'stream ended by the controller'));
    this.helloAt = performance.now();
    this.firstMessageAt = 0;
    call.write({ hello: { hostName: this.hostName, vtepIp: this.vtepIp, agentVersion: AGENT_VERSION, appliedRevision: this.epoch ? this.revision : 0, appliedRecord: this.epoch ? this.record : '', epoch: this.epoch } });
  }

  private lost(call: grpc.ClientDuplexStream<SyncRequest, Buffer>, reason: string): void {
    if (this.call !== call) {
      return; // an old stream we closed ourselves
    }
    this.stats.streamErrors++;
    this.lastError = reason;
    const client = this.client;
    this.call = undefined;
    this.client = undefined;
    client?.close();
    if (this.wanted && this.attempts < RECONNECT_MAX_ATTEMPTS) {
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** this.attempts) * (0.5 + Math.random() / 2);
      this.attempts++;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (this.wanted && !this.call) {
          this.stats.reconnects++;
          this.open();
        }
      }, delay);
    }
  }

  private onMessage(call: grpc.ClientDuplexStream<SyncRequest, Buffer>, buffer: Buffer): void {
    if (this.call !== call) {
      return;
    }
    const at = performance.now();
    this.stats.bytes += buffer.length;
    this.stats.messages++;
    if (!this.firstMessageAt) {
      this.firstMessageAt = at;
    }
    const message: SyncResponse__Output = SYNC.responseDeserialize(buffer);
    if (message.snapshotChunk) {
      const chunk = message.snapshotChunk;
      this.stats.chunks++;
      this.stats.resourcesReceived += chunk.resources.length;
      if (!this.staging || this.staging.revision !== chunk.revision || this.staging.epoch !== chunk.epoch) {
        this.staging = { revision: chunk.revision, epoch: chunk.epoch, held: emptyHeld(), count: 0 };
      }
      for (const resource of chunk.resources) {
        hold(this.staging.held, resource);
      }
      this.staging.count += chunk.resources.length;
    } else if (message.snapshotEnd) {
      const end = message.snapshotEnd;
      const staged = this.staging;
      this.staging = undefined;
      if (!staged || staged.revision !== end.revision || staged.count !== end.resourceCount) {
        this.nack(end.revision, `snapshot incomplete: got ${staged?.count ?? 0} of ${end.resourceCount} resources`);
        return;
      }
      Object.assign(this, staged.held);
      this.epoch = end.epoch;
      this.revision = end.revision;
      this.record = end.record;
      this.hostId = end.hostId;
      this.snapshotEndAt = at;
      this.snapshotResources = end.resourceCount;
      this.stats.snapshots++;
      this.ack(end.revision);
      this.snapshotAckAt = performance.now();
      this.attempts = 0;
    } else if (message.delta) {
      const delta = message.delta;
      if (!this.epoch) {
        this.nack(delta.revision, 'delta received before any snapshot');
        return;
      }
      this.stats.deltas++;
      this.stats.resourcesReceived += delta.upserts.length;
      if (delta.upserts.length === 0 && delta.removals.length === 0) {
        this.stats.emptyDeltas++;
      }
      for (const key of delta.removals) {
        drop(this, key);
      }
      for (const resource of delta.upserts) {
        hold(this, resource);
      }
      this.revision = delta.revision;
      this.record = delta.record;
      this.attempts = 0;
      this.hooks.deltaApplied(this, delta, buffer.length, performance.now());
      this.ack(delta.revision);
    }
  }

  private ack(revision: number): void {
    this.call?.write({ ack: { revision } });
    this.ackedRevision = revision;
    this.stats.acks++;
    this.hooks.acked(this, revision, performance.now());
  }

  private nack(revision: number, error: string): void {
    this.stats.nacks++;
    this.lastError = error;
    this.call?.write({ nack: { revision, error } });
  }
}

/**
 * One watched write: which agents must apply a delta carrying it, and when each did. The key is
 * a port's MAC (a delta upserting the port), `member/<groupId>/<family>/<cidr>` (a delta
 * upserting or removing that IP-set member) or a mirrorWatchKey (a delta upserting or removing a
 * mirror tap or sink of that session, or of any with ANY_MIRROR_SESSION).
 */
export class DeltaWatch {
  readonly arrivals = new Map<number, number>();
  /** Per agent that applied it: the bytes of the SyncResponse{delta} that carried it, and its number of upserts + removals. */
  readonly bytes = new Map<number, number>();
  readonly entries = new Map<number, number>();
  /** The revision of the delta that carried it (the last seen). */
  revision = 0;
  /** Agents that applied it without being expected to (the benchmark's model of the spans is wrong). */
  unexpected = 0;
  lastAt = 0;
  private resolve?: () => void;
  readonly done: Promise<void>;

  constructor(
    readonly key: string,
    readonly expected: ReadonlySet<number>,
  ) {
    this.done = new Promise((resolve) => (this.resolve = resolve));
    if (expected.size === 0) {
      this.resolve?.();
    }
  }

  get complete(): boolean {
    return this.arrivals.size === this.expected.size;
  }

  arrived(agent: number, at: number, delta: Delta__Output, bytes: number): void {
    if (!this.expected.has(agent)) {
      this.unexpected++;
      return;
    }
    if (this.arrivals.has(agent)) {
      return;
    }
    this.arrivals.set(agent, at);
    this.bytes.set(agent, bytes);
    this.entries.set(agent, delta.upserts.length + delta.removals.length);
    this.revision = delta.revision;
    this.lastAt = Math.max(this.lastAt, at);
    if (this.complete) {
      this.resolve?.();
    }
  }
}

/** Non-empty deltas of one revision, over every agent that received one. */
export interface RevisionTraffic {
  agents: number;
  bytes: number;
}

/**
 * The simulated agents, with what the benchmark waits for: delta watches (a delta carrying a MAC
 * or an IP-set member applied by every expected agent), sync targets (every agent has acked a
 * revision since the target was set) and, when asked, the bytes of non-empty deltas per revision.
 */
export class Fleet implements AgentHooks {
  readonly agents: SimAgent[] = [];
  private readonly watches = new Map<string, DeltaWatch>();
  private traffic?: Map<number, RevisionTraffic>;
  private syncTarget = Number.POSITIVE_INFINITY;
  private syncedAt: Float64Array = new Float64Array(0);
  private syncedCount = 0;
  private syncWaiter?: () => void;

  add(hostName: string, vtepIp: string, target: string, channelOptions: grpc.ChannelOptions): SimAgent {
    const agent = new SimAgent(this.agents.length, hostName, vtepIp, target, this, channelOptions);
    this.agents.push(agent);
    return agent;
  }

  /** `key`: a port's MAC, `member/<groupId>/<family>/<cidr>`, or a mirrorWatchKey. */
  watch(key: string, expected: ReadonlySet<number>): DeltaWatch {
    const watch = new DeltaWatch(key, expected);
    this.watches.set(key, watch);
    return watch;
  }

  unwatch(watch: DeltaWatch): void {
    if (this.watches.get(watch.key) === watch) {
      this.watches.delete(watch.key);
    }
  }

  /** Starts (or stops, with false) adding up the bytes of non-empty deltas per revision. */
  recordTraffic(on: boolean): void {
    this.traffic = on ? new Map() : undefined;
  }

  /** Non-empty deltas at `revision` received so far (while recording). */
  trafficAt(revision: number): RevisionTraffic {
    return this.traffic?.get(revision) ?? { agents: 0, bytes: 0 };
  }

  deltaApplied(agent: SimAgent, delta: Delta__Output, bytes: number, at: number): void {
    if (this.traffic && (delta.upserts.length > 0 || delta.removals.length > 0)) {
      const t = this.traffic.get(delta.revision) ?? { agents: 0, bytes: 0 };
      t.agents++;
      t.bytes += bytes;
      this.traffic.set(delta.revision, t);
    }
    if (this.watches.size === 0) {
      return;
    }
    for (const resource of delta.upserts) {
      if (resource.mirror || resource.mirrorSink) {
        this.mirrorArrived(resource.mirror ? resource.mirror.sessionId : resource.mirrorSink!.sessionId, agent, at, delta, bytes);
        continue;
      }
      const key = resource.port ? resource.port.mac : resource.member ? spanKey('member', memberKind.idOf(resource.member)) : undefined;
      if (key !== undefined) {
        this.watches.get(key)?.arrived(agent.index, at, delta, bytes);
      }
    }
    for (const key of delta.removals) {
      if (key.kind === 'RESOURCE_KIND_MEMBER') {
        this.watches.get(spanKey('member', key.id))?.arrived(agent.index, at, delta, bytes);
      } else if (key.kind === 'RESOURCE_KIND_MIRROR' || key.kind === 'RESOURCE_KIND_MIRROR_SINK') {
        // A tap's id is `<sessionId>/<portId>`, a sink's the session id.
        this.mirrorArrived(key.id.split('/')[0], agent, at, delta, bytes);
      }
    }
  }

  private mirrorArrived(sessionId: string, agent: SimAgent, at: number, delta: Delta__Output, bytes: number): void {
    this.watches.get(mirrorWatchKey(sessionId))?.arrived(agent.index, at, delta, bytes);
    this.watches.get(ANY_MIRROR_SESSION)?.arrived(agent.index, at, delta, bytes);
  }

  /**
   * From now on, records the first time each of `members` acks `revision` or later. Acks made
   * before this call do not count: set it before the agents (re)connect.
   */
  setSyncTarget(revision: number, members: readonly SimAgent[] = this.agents): void {
    this.syncTarget = revision;
    this.syncedAt = new Float64Array(this.agents.length).fill(Number.NaN);
    for (const agent of members) {
      this.syncedAt[agent.index] = 0;
    }
    this.syncedCount = this.agents.length - members.length;
    this.syncWaiter = undefined;
  }

  /** Marks members that already acked the target as synced now (for a wait on agents that stay connected). */
  countAlreadySynced(at: number): void {
    for (const agent of this.agents) {
      if (this.syncedAt[agent.index] === 0 && agent.connected && agent.ackedRevision >= this.syncTarget) {
        this.syncedAt[agent.index] = at;
        this.syncedCount++;
      }
    }
    if (this.syncedCount >= this.agents.length) {
      this.syncWaiter?.();
    }
  }

  acked(agent: SimAgent, revision: number, at: number): void {
    if (revision >= this.syncTarget && this.syncedAt[agent.index] === 0) {
      this.syncedAt[agent.index] = at;
      this.syncedCount++;
      if (this.syncedCount >= this.agents.length) {
        this.syncWaiter?.();
      }
    }
  }

  get synced(): number {
    return this.syncedCount;
  }

  /** When each member first acked the target (0 = not yet), in member order. */
  syncTimes(members: readonly SimAgent[] = this.agents): number[] {
    return members.map((a) => this.syncedAt[a.index]);
  }

  /** Resolves true once every member acked the target, false at the timeout. */
  async waitSynced(timeoutMs: number): Promise<boolean> {
    if (this.syncedCount >= this.agents.length) {
      return true;
    }
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      new Promise<boolean>((resolve) => (this.syncWaiter = () => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    this.syncWaiter = undefined;
    return ok;
  }

  totals(members: readonly SimAgent[] = this.agents): AgentStats {
    const out: AgentStats = { bytes: 0, messages: 0, chunks: 0, snapshots: 0, deltas: 0, emptyDeltas: 0, resourcesReceived: 0, acks: 0, nacks: 0, streamErrors: 0, reconnects: 0 };
    for (const agent of members) {
      for (const key of Object.keys(out) as (keyof AgentStats)[]) {
        out[key] += agent.stats[key];
      }
    }
    return out;
  }

  disconnectAll(): void {
    for (const agent of this.agents) {
      agent.disconnect();
    }
  }
}

export function diffStats(after: AgentStats, before: AgentStats): AgentStats {
  const out = { ...after };
  for (const key of Object.keys(out) as (keyof AgentStats)[]) {
    out[key] -= before[key];
  }
  return out;
}
