import type { Metric } from 'prom-client';
import type { PortFailure } from '../generated/overlay/v1/PortFailure';
import type { SyncResponse__Output } from '../generated/overlay/v1/SyncResponse';
import type { AgentConfig } from './config';
import type { Dataplane } from './dataplane/dataplane';
import type { Logger } from '../common/logger';
import type { InventoryCollector } from './inventory/collector';
import { InventoryPoller } from './inventory/inventory-poller';
import { MigrationWatcher } from './migration/migration-watcher';
import { collectAndReleaseGarbage, collectGarbage } from './memory';
import { Reconciler } from './reconcile/reconciler';
import { ControllerClient } from './sync/controller-client';
import { DesiredStateStore } from './sync/desired-state-store';
import { StateCache, type DesiredState } from './sync/state-cache';

/**
 * overlay-agent: one host's link to the controller and its dataplane, a pipeline of four parts
 * on one work queue (messages, passes and retries are handled one at a time, in order):
 *
 * - ControllerClient (sync/): the Sync stream, its Hello, reconnects with backoff and jitter,
 *   acks and nacks of the revisions the stream carried.
 * - DesiredStateStore (sync/): snapshots staged up to their end marker, deltas, the copy on disk;
 *   says what each message changed. A refused message is nacked here, and an incomplete
 *   snapshot's stream dropped for a fresh one.
 * - Reconciler (reconcile/): turns a change into a pass (firewall, then links, fail closed),
 *   acks or nacks it, retries a failed one with backoff, repairs drift periodically.
 * - MigrationWatcher (migration/): after each pass, a migrating VM's arrival, moved connections,
 *   the connection handover.
 *
 * Headless: while the controller is away the dataplane keeps the last known state, and a
 * restarted agent programs the state it persisted before the controller answers.
 */
export class Agent {
  private readonly store: DesiredStateStore;
  private readonly client: ControllerClient;
  private readonly reconciler: Reconciler;
  private readonly migrations: MigrationWatcher;
  /** The host's inventory, collected every config.inventoryIntervalMs; none without a collector. */
  private readonly inventory?: InventoryPoller;
  private work: Promise<void> = Promise.resolve();
  private running = false;
  /** Told to hold by the controller (its store is in recovery), until a snapshot or a delta comes. */
  private holding = false;
  /** Hold messages received (tests and logs). */
  private holds = 0;
  /** Called after every task of the work queue (tests wait on conditions with it). */
  onProgress?: () => void;

  constructor(
    readonly config: AgentConfig,
    readonly dataplane: Dataplane,
    private readonly logger: Logger,
    /** The jitter's random source (tests make it predictable). */
    random: () => number = Math.random,
    /** Collects the host's inventory (Linux hosts); without it the agent sends none. */
    inventory?: Pick<InventoryCollector, 'collect'> & Partial<Pick<InventoryCollector, 'watchLinks'>>,
  ) {
    const enqueue = (task: () => Promise<void>) => this.enqueue(task);
    const persistFailed = (err: Error) => logger.warn(`could not save the desired state in ${config.stateDir} (${err.message}); forwarding is unaffected, a restart before the next save resumes from an older revision`);
    this.store = new DesiredStateStore(new StateCache(config.stateDir, persistFailed));
    this.client = new ControllerClient(
      config,
      {
        resumeFrom: () => this.store.resumeFrom,
        opened: () => this.store.discardStaging(),
        message: (message) => this.onMessage(message),
        lost: () => this.migrations.streamLost(),
      },
      enqueue,
      logger,
      random,
    );
    if (inventory && (config.inventoryIntervalMs ?? 0) > 0) {
      this.inventory = new InventoryPoller(
        inventory,
        () => {
          const state = this.store.peek(); // after every message: a look that keeps nothing
          return { vtepIp: state.vtepIp || config.vtepIp || '', peerVteps: [...state.segments.values()].flatMap((s) => s.vteps) };
        },
        config.inventoryIntervalMs!,
        logger,
        () => enqueue(async () => this.reconciler.inventoryChanged()),
      );
    }
    this.migrations = new MigrationWatcher(config, dataplane, this.store, this.client, logger, (portId) => this.reconciler.tapOf(portId));
    this.reconciler = new Reconciler(
      config,
      dataplane,
      this.store,
      { report: (revision, error, failedPorts) => this.client.report(revision, error, failedPorts), linked: () => this.migrations.linked(), mirrorCounters: (entries) => this.client.mirrorCounters(entries), hostObserved: (observation) => this.client.hostObserved(observation), inventory: () => this.inventory?.last(), passDone: collectAndReleaseGarbage, stageDone: collectGarbage },
      enqueue,
      logger,
      random,
    );
  }

  get state(): DesiredState {
    return this.store.state;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  get synced(): boolean {
    return this.store.inSync;
  }

  /** Whether the controller told the agent to hold (its store is in recovery) and has sent no state since. */
  get held(): boolean {
    return this.holding;
  }

  /** Sent in every Hello: tells this process's streams from another agent's claiming the same host. */
  get instanceId(): string {
    return this.client.instanceId;
  }

  /** Counters, for tests and logs. */
  get stats(): { snapshots: number; deltas: number; emptyDeltas: number; acks: number; nacks: number; connects: number; holds: number } {
    return { ...this.store.counts, ...this.reconciler.counts, connects: this.client.connects, holds: this.holds };
  }

  /** The last revision acknowledged to the controller (programmed); 0 before the first. */
  get ackedRevision(): number {
    return this.reconciler.ackedRevision;
  }

  /** Whether the last reconcile pass failed (its retry is scheduled). */
  get failing(): boolean {
    return this.reconciler.isFailing;
  }

  /** The local ports the last pass could not put in place (acked as failed, kept closed, retried). */
  get failedPorts(): readonly PortFailure[] {
    return this.reconciler.failedPorts;
  }

  /** The Prometheus instruments its parts keep (reconcile passes, drift repairs, the dataplane's), for its metrics (metrics/). */
  get instruments(): Metric<string>[] {
    return [this.reconciler.passSeconds, this.reconciler.linkDriftRepairs, this.reconciler.fastPasses, ...(this.dataplane.metrics?.() ?? [])];
  }

  /** Resources received in deltas, by kind (upserts and removals), for tests and logs. */
  get received(): DesiredStateStore['received'] {
    return this.store.received;
  }

  /** Restores the persisted state into the dataplane (no sweeping), then connects. */
  async start(): Promise<void> {
    this.running = true;
    const restored = await this.store.restore();
    if (restored) {
      this.logger.info(`restored desired state at revision ${restored.revision} from ${this.config.stateDir}`);
    }
    await this.reconciler.start(restored?.revision);
    if (this.running) {
      this.client.start();
      this.inventory?.start();
    }
  }

  /** Closes the stream; the dataplane keeps its state. */
  async stop(): Promise<void> {
    this.running = false;
    this.client.stop();
    this.inventory?.stop();
    this.reconciler.stop();
    this.migrations.stop();
    await this.work.catch(() => undefined);
    await this.store.flush();
  }

  private enqueue(task: () => Promise<void>): void {
    this.work = this.work
      .then(task)
      .catch((err: unknown) => this.logger.warn(`agent: ${(err as Error).message}`))
      .finally(() => this.onProgress?.());
  }

  /** One message of the current stream or of one before it: into the store, then to the kernel. */
  private async onMessage(message: SyncResponse__Output): Promise<void> {
    if (message.connections) {
      this.migrations.receive(message.connections);
      return;
    }
    if (message.hold) {
      // The controller's store lost data: keep the kernel and the state on disk as they are (a
      // snapshot half received is dropped). Nothing new comes; a tap that appears meanwhile
      // stays closed (no policy), as always.
      this.store.discardStaging();
      this.holds++;
      if (!this.holding) {
        this.holding = true;
        this.logger.warn(`the controller's store is in recovery (${message.hold.reason}): holding the state at revision ${this.store.state.revision} until it is over`, { event: 'hold', revision: this.store.state.revision });
      }
      return;
    }
    if (message.snapshotEnd || message.delta) {
      this.holding = false;
    }
    const change = message.snapshotChunk ? this.store.stage(message.snapshotChunk) : message.snapshotEnd ? this.store.endSnapshot(message.snapshotEnd) : message.delta ? this.store.applyDelta(message.delta) : undefined;
    switch (change?.outcome) {
      case undefined:
      case 'staged':
        return;
      case 'refused':
        this.client.report(change.revision, change.reason);
        if (change.resync) {
          this.client.resync();
        }
        return;
      case 'replaced':
      case 'updated':
        await this.reconciler.changed(change);
        this.inventory?.scopeChanged();
    }
  }
}
