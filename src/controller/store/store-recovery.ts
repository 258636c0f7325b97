import { Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { Actor } from '../auth/principal';
import { TypedEvents } from '../distribution/typed-events';
import { MaterializedView, type SeenState, type SnapshotGate, type StoreIdentity } from './materialized-view';
import { RedisStore } from './redis-store';

/** Why the store is in recovery. */
export type RecoveryReason =
  /** A replica had seen writes, and the store came back without an epoch (emptied: a restart without persistence, a FLUSHALL). */
  | 'store-empty'
  /** The store's epoch is not the one a replica held, and no accepted recovery retired it. */
  | 'epoch-changed'
  /**
   * Same epoch, but a lower revision than a replica had seen (an older backup, a failover that lost
   * writes), or another record at a revision a replica had applied (a failover lost it, and the
   * new master made that revision again).
   */
  | 'revision-went-back'
  /** An agent holds a revision of an epoch the store does not know (every replica restarted after the loss). */
  | 'agent-epoch-unknown'
  /** An agent holds a revision of this epoch past the store's. */
  | 'agent-ahead';

/** The recovery record, in Redis (`{prefix}:recovery`): every replica reads the same. */
export interface RecoveryRecord {
  reason: RecoveryReason;
  /** For people: what was seen and what was found. */
  detail: string;
  detectedAt: string;
  /** The replica that noticed first, and the host whose agent told it (null: the replica's own view). */
  detectedBy: { replica: string; host: string | null };
  /** The last state known to be good: the epoch and revision a replica's view or an agent held. */
  previous: { epoch: string; revision: number };
  /** What the store held when it was noticed. */
  found: { epoch: string | null; revision: number };
}

export interface RecoveryEvents {
  /** This replica learned of a recovery (its own detection or another replica's): hold every agent. */
  entered: RecoveryRecord;
}

/** The recovery status the API reports (GET /v1/admin/recovery). */
export interface RecoveryStatus {
  state: 'normal' | 'recovery';
  /** The store's epoch and revision now (epoch null: none). */
  store: { epoch: string | null; revision: number };
  recovery: RecoveryRecord | null;
  /** Epochs agents named in their Hello during this recovery (retired by an accept). */
  agentEpochs: string[];
}

/** An epoch as agents may name one (the controller makes 16 hex digits); any other is taken as none: agent text is input. */
const EPOCH = /^[A-Za-z0-9_-]{1,64}$/;
/** The most epochs agents' Hellos add to a recovery's list (a hostile client cannot grow it without bound). */
const MAX_AGENT_EPOCHS = 64;

/**
 * Ends a recovery by accepting the store's state as it is: a new epoch, the old ones retired
 * (the store's, the one seen before, those agents named), the agents' acknowledgements of the
 * lost history forgotten. Agents then take a snapshot of the state the store holds.
 */
const ACCEPT = `
local record = redis.call('GET', K.recovery())
if not record then
  fail('NOT_IN_RECOVERY', '', 'the store is not in recovery: there is nothing to accept')
end
local retire = redis.call('SMEMBERS', K.recoveryAgentEpochs())
retire[#retire + 1] = redis.call('GET', K.epoch()) or ''
retire[#retire + 1] = cjson.decode(record).previous.epoch or ''
for _, epoch in ipairs(retire) do
  if epoch ~= '' then redis.call('SADD', K.retiredEpochs(), epoch) end
end
redis.call('SET', K.epoch(), ARGV[3])
redis.call('DEL', K.recovery(), K.recoveryAgentEpochs(), K.agentApplied(), K.agentLastErrors())
audit(nil, { 'recovery:accepted' })
return { record, redis.call('GET', K.revision()) or '0' }
`;

/**
 * Keeps the agents' state when the store loses data. Each replica remembers, in its view, the
 * epoch and revision it last held; agents say theirs in every Hello. A store found without its
 * epoch, with another epoch, or behind what a replica or an agent holds, is not taken as the
 * truth: the replica writes a recovery record (one for all replicas), its view keeps the state it
 * held (the SnapshotGate), every agent stream is told to hold (sync.proto `Hold`), and no script
 * makes a revision (lua-prelude.ts, `luaRecoveryGuard`) until an admin accepts the store's state
 * (`accept`: a new epoch, agents take snapshots of it) or restores the lost data (the record
 * goes with the restore; the next check admits a store level with what was seen).
 *
 * A brand-new deployment (no epoch, and this replica has seen none) is not a recovery: the
 * epoch is made. Neither is a store emptied before it held any revision (nothing was lost).
 */
@Injectable()
export class StoreRecovery implements SnapshotGate {
  private readonly logger = new Logger('recovery');
  /** Names this replica in the records it writes. */
  readonly replicaId = randomBytes(6).toString('hex');
  private readonly events = new TypedEvents<RecoveryEvents>();
  private record?: RecoveryRecord;

  constructor(
    private readonly store: RedisStore,
    private readonly view: MaterializedView,
  ) {
    store.defineScript('overlayRecoveryAccept', ACCEPT);
    view.gate = this;
  }

  on<K extends keyof RecoveryEvents>(name: K, listener: (event: RecoveryEvents[K]) => void): () => void {
    return this.events.on(name, listener);
  }

  /** Whether this replica knows the store is in recovery. */
  get active(): boolean {
    return this.record !== undefined;
  }

  get current(): RecoveryRecord | undefined {
    return this.record;
  }

  /** SnapshotGate: the epoch to hold the loaded state with, or undefined to keep what the view holds. */
  async admit(found: StoreIdentity, seenState: SeenState): Promise<string | undefined> {
    const seen = { epoch: seenState.epoch, revision: seenState.revision };
    if (found.recovery !== null) {
      this.adopt(JSON.parse(found.recovery) as RecoveryRecord);
      return undefined;
    }
    let epoch = found.epoch;
    if (!seen.epoch || (epoch === null && seen.revision === 0)) {
      // A replica's first load (a new deployment, or nothing to compare with: agents will say), or
      // a store that lost nothing but its epoch: keep the one seen, or make the first.
      epoch = epoch ?? (await this.makeEpoch(seen.epoch || randomBytes(8).toString('hex')));
    } else if (epoch === null) {
      return this.enter('store-empty', `the store has no epoch and is at revision ${found.revision}; this replica held revision ${seen.revision} of epoch ${seen.epoch}`, seen, found);
    } else if (epoch !== seen.epoch && !(await this.isRetired(seen.epoch))) {
      return this.enter('epoch-changed', `the store's epoch is ${epoch} at revision ${found.revision}; this replica held revision ${seen.revision} of epoch ${seen.epoch}`, seen, found);
    } else if (epoch === seen.epoch && (found.revision < seen.revision || seenState.recordLost)) {
      const lost = found.revision < seen.revision ? `the store is at revision ${found.revision} of epoch ${epoch}; this replica held revision ${seen.revision}` : `the store (epoch ${epoch}, now at revision ${found.revision}) holds another record at revision ${seen.revision} than the one this replica applied: it lost that write and made the revision again`;
      if (this.store.config.redisMinReplicas === 0) {
        return this.enter('revision-went-back', lost, seen, found);
      }
      // With replicated acknowledgements a view also applies writes a failover then loses without
      // their having been acknowledged (they answered 503): losing them is what a failover does.
      this.logger.warn(`${lost} (a failover lost writes not confirmed as replicated, OVERLAY_REDIS_MIN_REPLICAS); agents are sent its state`);
    }
    if (this.record) {
      this.logger.warn(`store recovery over: the store holds revision ${found.revision} of epoch ${epoch}; agents are sent its state`);
      this.record = undefined;
    }
    return epoch;
  }

  /**
   * What an agent's Hello says it holds, checked against the store before anything else of the
   * Hello (its host may be gone with the data). Returns true when the stream must hold: the
   * store is in recovery, or the agent just showed that it is (an epoch the store never had, a
   * revision past the store's).
   */
  async heldByHello(helloHost: string, helloEpoch: string, revision: number): Promise<boolean> {
    const epoch = EPOCH.test(helloEpoch) ? helloEpoch : '';
    // Agent text, into the record and the log: bounded (a host name is at most 253 characters).
    const hostName = JSON.stringify(helloHost.slice(0, 253)).slice(1, -1);
    if (this.active) {
      if (epoch && epoch !== this.view.epoch && (await this.mayTestify(helloHost))) {
        await this.noteAgentEpoch(epoch);
      }
      return true;
    }
    if (!epoch || !Number.isSafeInteger(revision) || revision <= 0 || this.view.held) {
      return this.view.held;
    }
    const seen = { epoch, revision };
    if (epoch !== this.view.epoch) {
      if ((await this.isRetired(epoch)) || !(await this.mayTestify(helloHost))) {
        return false;
      }
      const found = await this.store.read((r) => MaterializedView.readIdentity(r, this.store));
      await this.enter('agent-epoch-unknown', `agent ${hostName} holds revision ${revision} of epoch ${epoch}, which the store (epoch ${found.epoch ?? '(none)'}, revision ${found.revision}) does not know`, seen, found, hostName);
      await this.noteAgentEpoch(epoch);
      return true;
    }
    // With replicated acknowledgements an agent may hold writes a failover lost unconfirmed (they
    // answered 503): being ahead of the store says nothing of a loss then; it is sent a snapshot.
    if (revision > this.view.revision && this.store.config.redisMinReplicas === 0) {
      const found = await this.store.read((r) => MaterializedView.readIdentity(r, this.store));
      if (found.epoch === epoch && revision > found.revision && (await this.mayTestify(helloHost))) {
        await this.enter('agent-ahead', `agent ${hostName} holds revision ${revision} of epoch ${epoch}; the store is at revision ${found.revision}`, seen, found, hostName);
        return true;
      }
    }
    return false;
  }

  /**
   * Whether an agent's Hello for `hostName` may put the store into recovery: the store registers
   * that host, or none at all (it came back empty, and the agents are the only witnesses left).
   * Otherwise any client reaching the gRPC port (with TLS, any holder of an agent certificate) could
   * stop every write with one Hello naming a made-up epoch; an unregistered host's Hello is
   * refused after this (NOT_FOUND), as any other.
   */
  private async mayTestify(hostName: string): Promise<boolean> {
    const key = this.store.keys.hostNames();
    const [registered, hosts] = await this.store.read((r) => Promise.all([r.hexists(key, hostName), r.hlen(key)]));
    return registered === 1 || hosts === 0;
  }

  /** What GET /v1/admin/recovery answers. */
  async status(): Promise<RecoveryStatus> {
    const found = await this.store.read((r) => MaterializedView.readIdentity(r, this.store));
    const agentEpochs = found.recovery ? await this.store.read((r) => r.smembers(this.store.keys.recoveryAgentEpochs())) : [];
    const recovery = found.recovery ? (JSON.parse(found.recovery) as RecoveryRecord) : null;
    return { state: recovery ? 'recovery' : 'normal', store: { epoch: found.epoch, revision: found.revision }, recovery, agentEpochs: agentEpochs.sort() };
  }

  /**
   * Accepts the store's state as it is (NOT_IN_RECOVERY when there is no recovery): a new epoch;
   * this replica's view loads the store's state at once, the others within a second, and every
   * agent is sent a snapshot of it (its stream ends; it reconnects and is not held).
   */
  async accept(actor: Actor): Promise<{ epoch: string; revision: number; accepted: RecoveryRecord }> {
    const epoch = randomBytes(8).toString('hex');
    const [record, revision] = (await this.store.mutate('overlayRecoveryAccept', [epoch], actor)) as [string, string];
    this.logger.warn(`store recovery accepted by ${actor.kind === 'token' ? `token ${actor.name}` : actor.name}: new epoch ${epoch} at revision ${revision}; agents are sent the store's state`);
    await this.view.reload().catch((err: Error) => this.logger.warn(`reloading the view after the accept: ${err.message}; the tail retries`));
    return { epoch, revision: Number(revision), accepted: JSON.parse(record) as RecoveryRecord };
  }

  /** Remembers an epoch an agent named during the recovery, for the accept to retire (at most MAX_AGENT_EPOCHS). */
  private async noteAgentEpoch(epoch: string): Promise<void> {
    const key = this.store.keys.recoveryAgentEpochs();
    if ((await this.store.read((r) => r.scard(key))) < MAX_AGENT_EPOCHS) {
      await this.store.read((r) => r.sadd(key, epoch));
    }
  }

  private async isRetired(epoch: string): Promise<boolean> {
    return (await this.store.read((r) => r.sismember(this.store.keys.retiredEpochs(), epoch))) === 1;
  }

  private async makeEpoch(epoch: string): Promise<string> {
    const key = this.store.keys.epoch();
    await this.store.read((r) => r.set(key, epoch, 'NX'));
    return (await this.store.read((r) => r.get(key)))!;
  }

  /** Writes the recovery record (unless another replica's is there) and adopts the one in Redis. Always undefined: the view holds. */
  private async enter(reason: RecoveryReason, detail: string, previous: { epoch: string; revision: number }, found: StoreIdentity, host: string | null = null): Promise<undefined> {
    const record: RecoveryRecord = {
      reason,
      detail,
      detectedAt: new Date().toISOString(),
      detectedBy: { replica: this.replicaId, host },
      previous,
      found: { epoch: found.epoch, revision: found.revision },
    };
    // The first replica to notice writes the record; every replica adopts the one in Redis.
    const key = this.store.keys.recovery();
    await this.store.read((r) => r.set(key, JSON.stringify(record), 'NX'));
    const stored = await this.store.read((r) => r.get(key));
    this.adopt(stored ? (JSON.parse(stored) as RecoveryRecord) : record);
    return undefined;
  }

  private adopt(record: RecoveryRecord): void {
    if (this.record?.detectedAt === record.detectedAt && this.record.detectedBy.replica === record.detectedBy.replica) {
      return;
    }
    this.record = record;
    this.logger.error(
      `STORE RECOVERY (${record.reason}): ${record.detail}. Agents are told to hold their state, writes answer 503 STORE_RECOVERY. An admin accepts the store's state (POST /v1/admin/recovery/accept) or restores the lost data; see GET /v1/admin/recovery`,
    );
    this.events.emit('entered', record);
  }
}
