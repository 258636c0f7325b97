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
    const k = store.keys;
    const replies = await redis
      .multi()
      .get(k.revision())
      .hgetall(k.tenants())
      .hgetall(k.segments())
      .hgetall(k.hosts())
      .hgetall(k.ports())
      .hgetall(k.securityGroups())
      .hgetall(k.mirrorSessions())
      .exec();
    if (!replies) {
      throw new Error('snapshot transaction aborted');
    }
    for (const [err] of replies) {
      if (err) {
        throw err;
      }
    }
    const [rev, tenants, segments, hosts, ports, securityGroups, mirrorSessions] = replies.map(([, value]) => value) as [string | null, ...Record<string, string>[]];
    const parse = <T>(hash: Record<string, string>): Map<string, T> =>
      new Map(Object.entries(hash).map(([id, json]) => [id, JSON.parse(json) as T]));
    return {
      revision: Number(rev ?? 0),
      tenants: parse(tenants),
      segments: parse(segments),
      hosts: parse(hosts),
      ports: new Map(Object.entries(ports).map(([id, json]) => [id, compactPort(JSON.parse(json) as Port)])),
      securityGroups: parse(securityGroups),
      mirrorSessions: parse(mirrorSessions),
    };
  }

  private async reload(): Promise<void> {
    this.state = await MaterializedView.readSnapshot(this.store.redis, this.store);
    for (const listener of this.resetListeners) {
      listener(this.state);
    }
    this.wakeWaiters();
  }

  private async tailLoop(): Promise<void> {
    while (this.running && this.tail) {
      try {
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
        await this.untilStopped(this.reload().catch(() => undefined));
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

  /** An idle tail is also the moment to notice a Redis that restarted without its data. */
  private async checkRevisionWentBack(): Promise<void> {
    const rev = await this.store.revision();
    if (rev < this.state.revision) {
      this.logger.warn(`revision went back from ${this.state.revision} to ${rev}: reloading the snapshot`);
      await this.reload();
    }
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
