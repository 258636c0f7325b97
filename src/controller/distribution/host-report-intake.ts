import { Logger } from '@nestjs/common';
import type { MaterializedView } from '../store/materialized-view';

/** A host's report goes to Redis at most this often; reports in between replace the pending one. */
export const HOST_REPORT_WRITE_MS = 1_000;

/**
 * Takes what agents report on this replica of their hosts (mirror counters, the host
 * observation), already checked, to Redis through `write`, at most once per HOST_REPORT_WRITE_MS
 * per host: agents may report often, and each report replaces the host's last one whole, so the
 * latest one pending is all that needs writing. A failed write is logged and dropped, and so is
 * what is pending at shutdown: the agent reports again (to whichever replica holds its stream).
 * Nothing is written for a host the view no longer has (its deletion removed its reports).
 */
export class HostReportIntake<T> {
  private readonly logger = new Logger('sync');
  private readonly pending = new Map<string, T>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly lastWrite = new Map<string, number>();
  private stopped = false;

  constructor(
    /** What the reports are, for logs. */
    private readonly what: string,
    private readonly write: (hostId: string, report: T) => Promise<void>,
    private readonly view: MaterializedView,
  ) {}

  /** The host's latest report. */
  report(hostId: string, report: T): void {
    if (this.stopped) {
      return;
    }
    this.pending.set(hostId, report);
    if (!this.timers.has(hostId)) {
      const wait = Math.max(0, (this.lastWrite.get(hostId) ?? -Infinity) + HOST_REPORT_WRITE_MS - Date.now());
      this.timers.set(hostId, setTimeout(() => void this.flush(hostId), wait));
    }
  }

  /** Drops what is pending and every report after this. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.timers.forEach(clearTimeout);
    this.timers.clear();
    this.pending.clear();
  }

  private async flush(hostId: string): Promise<void> {
    this.timers.delete(hostId);
    if (!this.pending.has(hostId)) {
      return;
    }
    const report = this.pending.get(hostId)!;
    this.pending.delete(hostId);
    this.lastWrite.set(hostId, Date.now());
    if (!this.view.current.hosts.has(hostId)) {
      this.lastWrite.delete(hostId); // deleted: its reports were removed with it
      return;
    }
    try {
      await this.write(hostId, report);
    } catch (err) {
      this.logger.warn(`recording ${this.what} of host ${hostId}: ${(err as Error).message}`);
    }
  }
}
