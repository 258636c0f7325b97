import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { ControllerConfig } from '../config';
import { AuditService } from './audit.service';
import { FindingHistory } from './finding-history';

/**
 * Evaluates the audit every OVERLAY_AUDIT_INTERVAL_MS so that the findings' history follows the
 * network when nobody reads the audit: a finding opens and closes within one interval of the
 * change. Every replica runs one; a replica skips its turn when another recorded within the
 * interval, so the deployment evaluates about once per interval, not once per replica.
 */
@Injectable()
export class AuditEvaluator implements OnModuleDestroy {
  private readonly logger = new Logger(AuditEvaluator.name);
  private readonly intervalMs: number;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly audits: AuditService,
    private readonly history: FindingHistory,
    @Inject(ControllerConfig) config: ControllerConfig,
  ) {
    this.intervalMs = config.auditIntervalMs;
  }

  start(): void {
    // A random first delay: replicas started together do not evaluate together.
    this.schedule(Math.floor(Math.random() * this.intervalMs));
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.pass().finally(() => {
        this.running = undefined;
        if (this.timer) {
          this.schedule(this.intervalMs);
        }
      });
    }, delayMs);
    this.timer.unref();
  }

  private async pass(): Promise<void> {
    try {
      const last = await this.history.evaluatedAt();
      // Another replica recorded within the interval: its evaluation stands for this one.
      if (last !== null && Date.now() - last < this.intervalMs * 0.9) {
        return;
      }
      await this.audits.audit();
    } catch (err) {
      this.logger.warn(`audit evaluation failed: ${(err as Error).message}`);
    }
  }

  async onModuleDestroy(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
