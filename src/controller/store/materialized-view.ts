import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type Redis from 'ioredis';
import { ErrorCode, OverlayError } from '../errors';
import { parseStreamEntry, type ChangeRecord } from './change-log';
import { RedisStore } from './redis-store';
import type { Port } from '../model/port';
import { applyChange, compactPort, emptyViewState, type ViewState } from './view-state';

/** How long one XREAD of the tail blocks; an idle tail then checks whether the revision went back. */
const TAIL_BLOCK_MS = 1_000;
const STOPPED = Symbol('stopped');

export type ChangeListener = (record: ChangeRecord, state: ViewState) => void;
export type ResetListener = (state: ViewState) => void;

/** What identifies the store's state, read with the snapshot: its epoch (null: none), revision and recovery record (JSON, null: none). */
export interface StoreIdentity {
  epoch: string | null;
  revision: number;
  recovery: string | null;
}

/**
 * Decides whether a snapshot the view loaded may replace what it holds (store/store-recovery.ts):
 * the epoch the view adopts with it, or undefined to keep the state held (the store lost data).
 */
export interface SnapshotGate {
  admit(found: StoreIdentity, seen: { epoch: string; revision: number }): Promise<string | undefined>;
}

/**
 * This replica's in-memory copy of the desired state: a snapshot read at revision R in one
 * MULTI, then every change record after R, tailed from the change log with XREAD BLOCK on a
 * connection of its own. Listeners see each record after it is applied, in revision order.
 *
 * When the log no longer covers the view's revision (trimmed while this replica was away) or
 * the revision went backwards (Redis lost data), the view reloads a snapshot and tells the
 * reset listeners, who must treat it as a full resync.
 */
@Injectable()
export class MaterializedView implements OnModuleDestroy {
  private readonly logger = new Logger(MaterializedView.name);
  private state: ViewState = emptyViewState();
  private currentEpoch = '';
  /** Set when the gate refused the last snapshot: the view keeps its state and stops tailing until one is admitted. */
  private holding = false;
  /** Set by StoreRecovery; without one every snapshot is admitted. */
  gate?: SnapshotGate;
  private tail?: Redis;
  private running = false;
  private loop?: Promise<void>;
  /**
   * Called when `stop` is: every wait of the tail loop registers here, so stopping waits for
   * nothing. Each wait removes itself when it ends: a `Promise.race` against one long-lived
   * promise would instead leave a reaction on it per wait, each keeping that wait's reply (every
   * XREAD batch ever read: 56 MB after a 100k-port fill).
   */
  private readonly stopWaiters = new Set<() => void>();
  private readonly changeListeners = new Set<ChangeListener>();
  private readonly resetListeners = new Set<ResetListener>();
  private readonly waiters: { revision: number; resolve: () => void }[] = [];

  constructor(private readonly store: RedisStore) {}

  get current(): ViewState {
    return this.state;
  }

  get revision(): number {
    return this.state.revision;
  }

  /** The epoch of the state the view holds ('' before its first load). */
  get epoch(): string {
    return this.currentEpoch;
  }

  /** Whether the view keeps an older state because the store's was not admitted (a recovery). */
  get held(): boolean {
    return this.holding;
  }

  onChange(listener: ChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  onReset(listener: ResetListener): () => void {
    this.resetListeners.add(listener);
    return () => this.resetListeners.delete(listener);
  }

  /** Loads the snapshot and starts tailing. Idempotent. */
  async start(): Promise<void> {
    if (this.running) {
      return;
    }
    this.running = true;
    await this.reload();
    this.tail = this.store.duplicateForBlocking(TAIL_BLOCK_MS);
    this.loop = this.tailLoop();
  }

  /** Stops tailing. Returns at once, even with a command lost in a dead connection: the loop's waits race the stop. Idempotent. */
  async stop(): Promise<void> {
    this.running = false;
    for (const wake of [...this.stopWaiters]) {
      wake();
    }
    if (this.tail) {
      RedisStore.closeNow(this.tail);
    }
    await this.loop;
    this.tail = undefined;
  }

  /** `work`, or STOPPED as soon as `stop` is called (whichever comes first). */
  private untilStopped<T>(work: Promise<T>): Promise<T | typeof STOPPED> {
    if (!this.running) {
      work.catch(() => undefined);
      return Promise.resolve(STOPPED);
    }
    return new Promise((resolve, reject) => {
      const wake = (): void => resolve(STOPPED);
      this.stopWaiters.add(wake);
      work.then(
        (value) => {
          this.stopWaiters.delete(wake);
          resolve(value);
        },
        (err: Error) => {
          this.stopWaiters.delete(wake);
          reject(err);
        },
      );
    });
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  /** Resolves once the view has applied `revision` (or rejects after `timeoutMs`). */
  waitForRevision(revision: number, timeoutMs: number): Promise<void> {
    if (this.state.revision >= revision) {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = { revision, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`view did not reach revision ${revision} within ${timeoutMs} ms (at ${this.state.revision})`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /**
   * Resolves once the view holds every change Redis had when this was called, so an answer
   * computed from the view includes writes just acknowledged by any replica. STORE_UNAVAILABLE
   * if Redis does not answer, TIMEOUT if the view does not get there within `timeoutMs`.
   */
  async catchUp(timeoutMs: number): Promise<void> {
    const revision = await this.store.revision();
    try {
      await this.waitForRevision(revision, timeoutMs);
    } catch {
      throw new OverlayError(ErrorCode.Timeout, `this replica's view did not reach revision ${revision} within ${timeoutMs} ms (at ${this.state.revision}); retry`);
    }
  }

  /** Reads the whole state at one revision, atomically. */
  static async readSnapshot(redis: Redis, store: RedisStore): Promise<ViewState> {
    return (await MaterializedView.readStore(redis, store)).state;
  }

  /** The store's identity alone (three GETs in one MULTI): cheap enough for every idle round of the tail. */
  static async readIdentity(redis: Redis, store: RedisStore): Promise<StoreIdentity> {
    const k = store.keys;
    const replies = await redis.multi().get(k.epoch()).get(k.revision()).get(k.recovery()).exec();
    const [epoch, revision, recovery] = MaterializedView.values(replies) as (string | null)[];
    return { epoch, revision: Number(revision ?? 0), recovery };
  }

  private static values(replies: [Error | null, unknown][] | null): unknown[] {
    if (!replies) {
      throw new Error('snapshot transaction aborted');
    }
    for (const [err] of replies) {
      if (err) {
        throw err;
      }
    }
    return replies.map(([, value]) => value);
  }

  /** The whole state and the store's identity at one revision, atomically. */
  static async readStore(redis: Redis, store: RedisStore): Promise<{ state: ViewState; identity: StoreIdentity }> {
    const k = store.keys;
    const replies = await redis
      .multi()
      .get(k.epoch())
      .get(k.recovery())
      .get(k.revision())
      .hgetall(k.tenants())
      .hgetall(k.segments())
      .hgetall(k.hosts())
      .hgetall(k.ports())
      .hgetall(k.securityGroups())
      .hgetall(k.mirrorSessions())
      .exec();
    const [epoch, recovery, rev, tenants, segments, hosts, ports, securityGroups, mirrorSessions] = MaterializedView.values(replies) as [string | null, string | null, string | null, ...Record<string, string>[]];
    const parse = <T>(hash: Record<string, string>): Map<string, T> =>
      new Map(Object.entries(hash).map(([id, json]) => [id, JSON.parse(json) as T]));
    const state: ViewState = {
      revision: Number(rev ?? 0),
      tenants: parse(tenants),
      segments: parse(segments),
      hosts: parse(hosts),
      ports: new Map(
        Object.values(ports).map((json) => {
          const port = compactPort(JSON.parse(json) as Port);
          return [port.id, port];
        }),
      ),
      securityGroups: parse(securityGroups),
      mirrorSessions: parse(mirrorSessions),
    };
    return { state, identity: { epoch, revision: state.revision, recovery } };
  }

  /**
   * Loads a snapshot and, if the gate admits it, makes it the view's state and tells the reset
   * listeners. Not admitted (the store lost data): the view keeps what it holds and stops
   * tailing; every idle round it asks again, and admits once the recovery is over.
   */
  async reload(): Promise<void> {
    const { state, identity } = await MaterializedView.readStore(this.store.redis, this.store);
    const epoch = this.gate ? await this.gate.admit(identity, { epoch: this.currentEpoch, revision: this.state.revision }) : (identity.epoch ?? '');
    if (epoch === undefined) {
      this.holding = true;
      return;
    }
    this.holding = false;
    this.currentEpoch = epoch;
    this.state = state;
    for (const listener of this.resetListeners) {
      listener(this.state);
    }
    this.wakeWaiters();
  }

  private async tailLoop(): Promise<void> {
    while (this.running && this.tail) {
      try {
        if (this.holding) {
          await this.untilStopped(new Promise((r) => setTimeout(r, TAIL_BLOCK_MS)));
          await this.untilStopped(this.recheckHeld());
          continue;
        }
        const reply = await this.untilStopped(this.tail.xread('COUNT', 5000, 'BLOCK', TAIL_BLOCK_MS, 'STREAMS', this.store.keys.changeLog(), `${this.state.revision}-0`));
        if (reply === STOPPED) {
          return;
        }
        if (reply) {
          if (!this.applyEntries(reply[0][1])) {
            await this.untilStopped(this.reload());
          }
        } else {
          await this.untilStopped(this.checkRevisionWentBack());
        }
      } catch (err) {
        if (!this.running) {
          return;
        }
        this.logger.warn(`change log tail: ${(err as Error).message}; retrying`);
        await this.untilStopped(new Promise((r) => setTimeout(r, 200)));
        // Not a reload: a failed read changed nothing, and the tail goes on from the view's
        // revision. Whether the store is still the one the view follows (not restarted without
        // its data, not in recovery) is what the error may hide, and the identity says that;
        // it reloads if not. A reload on every error (a command timed out on a busy Redis or
        // event loop) read the whole state (HGETALL of every port: 2 s of Redis at 500,000 ports)
        // and sent every agent here a snapshot, which loaded both further: the scale bench saw
        // it feed itself.
        await this.untilStopped(this.checkRevisionWentBack().catch(() => undefined));
      }
    }
  }

  /** Applies entries in order; false when a gap shows the log was trimmed past us (only a snapshot helps). */
  private applyEntries(entries: [string, string[]][]): boolean {
    for (const entry of entries) {
      const record = parseStreamEntry(entry);
      if (record.revision !== this.state.revision + 1) {
        this.wakeWaiters();
        return false;
      }
      applyChange(this.state, record);
      for (const listener of this.changeListeners) {
        listener(record, this.state);
      }
    }
    this.wakeWaiters();
    return true;
  }

  /**
   * An idle tail is also the moment to notice a Redis that restarted without its data (or with
   * older data, or another epoch), and a recovery another replica declared: the gate decides.
   */
  private async checkRevisionWentBack(): Promise<void> {
    const found = await MaterializedView.readIdentity(this.store.redis, this.store);
    if (found.revision < this.state.revision || found.epoch !== this.currentEpoch || found.recovery !== null) {
      this.logger.warn(`the store is at revision ${found.revision} of epoch ${found.epoch ?? '(none)'}${found.recovery ? ' (in recovery)' : ''}, the view at ${this.state.revision} of ${this.currentEpoch}: reloading the snapshot`);
      await this.reload();
    }
  }

  /** While held: the snapshot is read again only when the store's identity says the recovery may be over (no whole read a second). */
  private async recheckHeld(): Promise<void> {
    const found = await MaterializedView.readIdentity(this.store.redis, this.store);
    if (found.recovery !== null && this.gate) {
      await this.gate.admit(found, { epoch: this.currentEpoch, revision: this.state.revision });
      return;
    }
    await this.reload();
  }

  private wakeWaiters(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i].revision <= this.state.revision) {
        this.waiters[i].resolve();
        this.waiters.splice(i, 1);
      }
    }
  }
}
