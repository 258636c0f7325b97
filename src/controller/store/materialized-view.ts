import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type Redis from 'ioredis';
import { ErrorCode, OverlayError } from '../errors';
import { MAX_SEQ, parseStreamEntry, type ChangeRecord } from './change-log';
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
  admit(found: StoreIdentity, seen: SeenState): Promise<string | undefined>;
}

/** What the view held when it loaded a snapshot. */
export interface SeenState {
  epoch: string;
  revision: number;
  /**
   * The store holds another record at a revision the view applied (a failover lost the view's,
   * and the new master made that revision again): it lost a write the view had, whatever its
   * revision says now.
   */
  recordLost?: boolean;
}

/** How a batch of the tail fits the view: every record applied, a gap (the log was trimmed past it), or another record of a revision it applied. */
type Fit = 'applied' | 'gap' | 'record-lost';

/**
 * This replica's in-memory copy of the desired state: a snapshot read at revision R in one
 * MULTI, then every change record after R, tailed from the change log with XREAD BLOCK on a
 * connection of its own. Listeners see each record after it is applied, in revision order.
 *
 * When the log no longer covers the view's revision (trimmed while this replica was away), the
 * revision went backwards (Redis lost data), or the store holds another record than the view's
 * at the view's revision (a failover lost it and the new master made that revision again), the
 * view reloads a snapshot and tells the reset listeners, who must treat it as a full resync.
 *
 * The last of these is seen by the record's entry id, `<revision>-<nonce>` (change-log.ts): each
 * read of the tail starts after the id of the last record applied (its position), and asks in
 * the same round trip, after it, for any entry of that revision sorting before it. Another record
 * of that revision then comes back from one or the other, whether the tail is busy or idle, at
 * the cost of one empty XRANGE a read.
 */
@Injectable()
export class MaterializedView implements OnModuleDestroy {
  private readonly logger = new Logger(MaterializedView.name);
  private state: ViewState = emptyViewState();
  /**
   * The entry id of the record the state is at: where the tail reads on from. `<revision>-MAX_SEQ`
   * when the snapshot's record was not in the log (nothing to check it by); `0-0` before any.
   */
  private position = '0-0';
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

  /**
   * The entry id of the change record of the view's revision, `<revision>-<nonce>`, which agents
   * are told and name when they resume (sync.proto, Delta.record); '' when the view cannot name it
   * (no record yet, or a snapshot whose record the log no longer held).
   */
  get record(): string {
    return this.state.revision === 0 || this.position.endsWith(`-${MAX_SEQ}`) ? '' : this.position;
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

  /**
   * The whole state and the store's identity at one revision, atomically, and the entry id of the
   * record of that revision (the newest of the log; null when the log does not hold it).
   */
  static async readStore(redis: Redis, store: RedisStore): Promise<{ state: ViewState; identity: StoreIdentity; entryId: string | null }> {
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
      .xrevrange(k.changeLog(), '+', '-', 'COUNT', 1)
      .exec();
    const values = MaterializedView.values(replies);
    const newest = (values.pop() as [string, string[]][])[0];
    const [epoch, recovery, rev, tenants, segments, hosts, ports, securityGroups, mirrorSessions] = values as [string | null, string | null, string | null, ...Record<string, string>[]];
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
    const entryId = newest && parseStreamEntry(newest).revision === state.revision ? newest[0] : null;
    return { state, identity: { epoch, revision: state.revision, recovery }, entryId };
  }

  /**
   * Loads a snapshot and, if the gate admits it, makes it the view's state and tells the reset
   * listeners. Not admitted (the store lost data): the view keeps what it holds and stops
   * tailing; every idle round it asks again, and admits once the recovery is over. `recordLost`:
   * the tail found another record at a revision the view applied (SeenState).
   */
  async reload(recordLost = false): Promise<void> {
    const { state, identity, entryId } = await MaterializedView.readStore(this.store.redis, this.store);
    const epoch = this.gate ? await this.gate.admit(identity, { epoch: this.currentEpoch, revision: this.state.revision, recordLost }) : (identity.epoch ?? '');
    if (epoch === undefined) {
      this.holding = true;
      return;
    }
    this.holding = false;
    this.currentEpoch = epoch;
    this.state = state;
    this.position = entryId ?? (state.revision === 0 ? '0-0' : `${state.revision}-${MAX_SEQ}`);
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
        const from = this.position;
        const read = await this.untilStopped(this.readFrom(this.tail, from));
        if (read === STOPPED) {
          return;
        }
        if (this.position !== from) {
          continue; // the view reloaded meanwhile (an accepted recovery): the read is of another state
        }
        const fit = read.before ? 'record-lost' : read.after ? this.applyEntries(read.after) : undefined;
        if (fit === 'record-lost') {
          this.logger.warn(`the store holds another record at revision ${this.state.revision} than the one this view applied (${from}): a failover lost it and the new master made that revision again; reloading the snapshot`);
          await this.untilStopped(this.reload(true));
        } else if (fit === 'gap') {
          await this.untilStopped(this.reload());
        } else if (fit === undefined) {
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

  /**
   * One round trip of the tail from `position`: the entries after it (`after`, blocking up to
   * TAIL_BLOCK_MS; null when none came), then whether any entry of the position's revision sorts
   * before it (`before`: the store holds another record of that revision). Redis runs the second
   * only once the first returns: a store that still holds no other record of the view's revision
   * then held none when the entries were read, so they follow the view's own record (checked
   * before the read, a history replaced while it blocked would go unseen). Nothing to check
   * before the first record, nor at a position the snapshot could not name.
   *
   * Both are sent at once on the tail's own connection, which keeps their order, rather than as
   * an ioredis pipeline: making one per read cost each single-port write about 8 µs of the
   * controller's CPU (a read per one or two records under load; docs/benchmarks.md). They are
   * written in one system call (the socket corked around them).
   */
  private async readFrom(tail: Redis, position: string): Promise<{ before: boolean; after: [string, string[]][] | null }> {
    const log = this.store.keys.changeLog();
    const revision = position.slice(0, position.indexOf('-'));
    const checked = revision !== '0' && !position.endsWith(`-${MAX_SEQ}`);
    // Corked while both are written: they leave in one system call (a writev) rather than a
    // loopback send each; the connection has no auto-pipeline to gather them.
    const socket = checked && tail.status === 'ready' ? tail.stream : undefined;
    socket?.cork();
    let read: Promise<[string, [string, string[]][]][] | null>;
    let before: Promise<[string, string[]][]> | undefined;
    try {
      read = tail.xread('COUNT', 5000, 'BLOCK', TAIL_BLOCK_MS, 'STREAMS', log, position);
      before = checked ? tail.xrange(log, `${revision}-0`, `(${position}`, 'COUNT', 1) : undefined;
    } finally {
      socket?.uncork();
    }
    const [xread, other] = await Promise.all([read, before]);
    return { before: (other?.length ?? 0) > 0, after: xread ? xread[0][1] : null };
  }

  /**
   * Applies entries in order. A gap shows the log was trimmed past the view; an entry of a
   * revision the view holds (sorting after its record: a larger nonce) is another record of that
   * revision. Only a snapshot helps either.
   */
  private applyEntries(entries: [string, string[]][]): Fit {
    let fit: Fit = 'applied';
    for (const entry of entries) {
      const record = parseStreamEntry(entry, this.store.echoes);
      if (record.revision !== this.state.revision + 1) {
        fit = record.revision <= this.state.revision ? 'record-lost' : 'gap';
        break;
      }
      applyChange(this.state, record);
      this.position = record.entryId;
      for (const listener of this.changeListeners) {
        listener(record, this.state);
      }
    }
    this.wakeWaiters();
    return fit;
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
