import { Counter, Histogram } from 'prom-client';
import type { Migration, MigrationEvent } from '../model/migration';

/** Steps timed from the commit; the others from the prepare. */
const AFTER_COMMIT: readonly MigrationEvent[] = ['peers-acked', 'source-cleaned'];

/**
 * Pure: how long each step of a finished migration's timeline took, in seconds: the steps up to
 * the commit (and an abort or expiry) from the prepare, the peers' and the source's acks from the
 * commit, and `completed` (the later of those two) from the prepare. Steps without their start are left out.
 */
export function stepDurations(migration: Pick<Migration, 'state' | 'timeline'>): [string, number][] {
  const at = new Map(migration.timeline.map((e) => [e.event as string, Date.parse(e.at)]));
  const prepared = at.get('prepared');
  const committed = at.get('committed');
  const out: [string, number][] = [];
  for (const [event, time] of at) {
    const from = AFTER_COMMIT.includes(event as MigrationEvent) ? committed : prepared;
    if (event !== 'prepared' && from !== undefined) {
      out.push([event, (time - from) / 1000]);
    }
  }
  if (migration.state === 'completed' && prepared !== undefined && at.has('peers-acked') && at.has('source-cleaned')) {
    out.push(['completed', (Math.max(at.get('peers-acked')!, at.get('source-cleaned')!) - prepared) / 1000]);
  }
  return out;
}

/**
 * Migrations finished, and their steps' durations, observed once per migration by the replica
 * whose call finished it (completed, aborted, expired): summed over replicas, nothing counts
 * twice. The instruments belong to no registry; metrics/ registers them.
 */
export class MigrationMetrics {
  readonly finished = new Counter<'state'>({
    name: 'overlay_migrations_finished_total',
    help: 'Migrations this replica finished, by final state: completed, aborted, expired',
    labelNames: ['state'],
    registers: [],
  });
  readonly steps = new Histogram<'step'>({
    name: 'overlay_migration_step_seconds',
    help: "Duration of a finished migration's steps: timeline events up to the commit (and aborted, expired, completed) from the prepare; peers-acked and source-cleaned from the commit",
    labelNames: ['step'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    registers: [],
  });

  /** `migration` was just finished by this replica. */
  observe(migration: Pick<Migration, 'state' | 'timeline'>): void {
    this.finished.inc({ state: migration.state });
    for (const [step, seconds] of stepDurations(migration)) {
      this.steps.observe({ step }, seconds);
    }
  }
}
