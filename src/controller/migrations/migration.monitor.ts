import { systemActor } from '../auth/principal';
import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { AckRecorder } from '../distribution/ack-recorder';
import { SessionRegistry, type AgentReports } from '../distribution/session-registry';
import { ConnectionHandover } from './connection-handover';
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
 * It also commits a migration when the destination's agent reports the VM arrived, and passes
 * the connection handover's messages on (ConnectionHandover), relaying at each pass the batches
 * another replica stored for a destination whose stream is here.
 */
/** Expiries are the monitor's own: the audit trail and the timeline name it. */
const MONITOR = systemActor('migration-monitor');

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

  /** Listeners' unsubscribers, called at shutdown. */
  private readonly listening: (() => void)[] = [];

  private readonly onArrival = (event: AgentReports['arrived']) => {
    void this.service
      .commitOnArrival(event.hostId, event.migrationId, event.portId)
      .then((outcome) => {
        if ('violation' in outcome) {
          this.sessions.refuse(event.hostId, outcome.violation);
        } else if ('ignored' in outcome) {
          this.logger.warn(`VM arrival reported by ${event.hostName} not committed: ${outcome.ignored}`);
        } else {
          this.logger.debug(`migration ${outcome.migration.id}: VM arrived on ${event.hostName}, ${outcome.migration.state}`);
        }
      })
      .catch((err: unknown) => this.logger.warn(`VM arrival reported by ${event.hostName}: ${(err as Error).message}`));
  };

  private readonly onExport = (event: AgentReports['exported']) => {
    void this.handover
      .exported(event.hostId, event.hostName, event.batch)
      .then((violation) => violation && this.sessions.refuse(event.hostId, violation))
      .catch((err: unknown) => this.logger.warn(`connections from ${event.hostName}: ${(err as Error).message}`));
  };

  private readonly onInstalled = (event: AgentReports['installed']) => {
    void this.handover
      .installed(event.hostId, event.hostName, event.report)
      .then((violation) => (violation ? this.sessions.refuse(event.hostId, violation) : this.poke()))
      .catch((err: unknown) => this.logger.warn(`connections installed on ${event.hostName}: ${(err as Error).message}`));
  };

  constructor(
    private readonly migrations: MigrationRepository,
    private readonly service: MigrationService,
    private readonly sessions: SessionRegistry,
    private readonly recorder: AckRecorder,
    private readonly handover: ConnectionHandover,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.poke(), MONITOR_INTERVAL_MS);
    this.listening.push(
      this.recorder.on('acked', this.onAck),
      this.sessions.on('arrived', this.onArrival),
      this.sessions.on('exported', this.onExport),
      this.sessions.on('installed', this.onInstalled),
    );
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
      // Logged by the service, by the replica whose expiry took effect.
      await this.service.expire(id, MONITOR);
    }
    const active = await this.migrations.active(BATCH);
    this.busy = active.length > 0;
    for (const id of active) {
      const migration = await this.migrations.get(id);
      if (migration) {
        await this.service.observe(migration);
        // Batches stored by another replica, for a destination whose stream is here.
        await this.handover.relay(migration);
      }
    }
  }

  /** Stops the timer; a pass in flight is not awaited (a read lost in a dropped connection settles only at its command timeout). */
  onModuleDestroy(): void {
    clearInterval(this.timer);
    this.listening.splice(0).forEach((off) => off());
  }
}
