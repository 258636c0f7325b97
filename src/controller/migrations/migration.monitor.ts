import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { SyncServer } from '../distribution/sync.server';
import { MigrationRepository } from './migration.repository';
import { MigrationService } from './migration.service';

/** How often every replica looks for due expiries and unrecorded acks. */
export const MONITOR_INTERVAL_MS = 100;
const BATCH = 200;

/**
 * Keeps migration timelines and expiries current, on every replica (each step is idempotent in
 * Redis, so replicas racing each other record an event once): expires open migrations past their
 * time, and records the destination's, the peers' and the source's acks as they arrive. Runs every
 * MONITOR_INTERVAL_MS, and at once when this replica receives an ack while migrations are active.
 * It also commits a migration when the destination's agent reports the VM arrived.
 */
@Injectable()
export class MigrationMonitor implements OnModuleDestroy {
  private readonly logger = new Logger(MigrationMonitor.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  /** Whether the last pass found work: acks only trigger a pass then. */
  private busy = true;
  private readonly onAck = () => {
    if (this.busy) {
      this.poke();
    }
  };

  private readonly onArrival = (event: { hostId: string; hostName: string; migrationId: string; portId: string }) => {
    void this.service
      .commitOnArrival(event.hostId, event.migrationId, event.portId)
      .then((outcome) => {
        if (typeof outcome === 'string') {
          this.logger.warn(`VM arrival reported by ${event.hostName} not committed: ${outcome}`);
        } else {
          this.logger.log(`migration ${outcome.id}: VM arrived on ${event.hostName}, ${outcome.state}`);
        }
      })
      .catch((err: unknown) => this.logger.warn(`VM arrival reported by ${event.hostName}: ${(err as Error).message}`));
  };

  constructor(
    private readonly migrations: MigrationRepository,
    private readonly service: MigrationService,
    private readonly sync: SyncServer,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.poke(), MONITOR_INTERVAL_MS);
    this.sync.acks.on('acked', this.onAck);
    this.sync.arrivals.on('arrived', this.onArrival);
  }

  /** Runs a pass now, or right after the one in progress. */
  poke(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err: unknown) => this.logger.warn(`migration monitor: ${(err as Error).message}`))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          setImmediate(() => this.poke());
        }
      });
  }

  /** One pass; resolves when done (tests call it to avoid waiting for the timer). */
  async pass(): Promise<void> {
    const due = await this.migrations.due(Date.now(), BATCH);
    for (const id of due) {
      const migration = await this.service.expire(id);
      if (migration.state === 'expired') {
        this.logger.log(`migration ${id} expired before its commit; the destination withdraws the prepared ports`);
      }
    }
    const active = await this.migrations.active(BATCH);
    this.busy = active.length > 0;
    for (const id of active) {
      const migration = await this.migrations.get(id);
      if (migration) {
        await this.service.observe(migration);
      }
    }
  }

  /** Stops the timer; a pass in flight is not awaited (a read lost in a dropped connection settles only at its command timeout). */
  onModuleDestroy(): void {
    clearInterval(this.timer);
    this.sync.acks.removeListener('acked', this.onAck);
    this.sync.arrivals.removeListener('arrived', this.onArrival);
  }
}
