import { Counter, Histogram } from 'prom-client';
import type { Authenticator } from '../auth/authenticator';
import type { ControllerConfig } from '../config';
import type { AgentLastError, AgentStatusRepository } from '../distribution/agent-status.repository';
import type { HostPortFailures } from '../distribution/port-failures';
import type { HostRealization, RealizationService } from '../distribution/realization.service';
import type { SessionRegistry } from '../distribution/session-registry';
import type { SyncServer } from '../distribution/sync.server';
import type { MigrationRepository } from '../migrations/migration.repository';
import type { MigrationService } from '../migrations/migration.service';
import type { SegmentRepository } from '../segments/segment.repository';
import type { MaterializedView } from '../store/materialized-view';
import type { RedisStore } from '../store/redis-store';
import { ControllerMetrics, HOSTS_PER_READ } from './controller-metrics';

const counter = (name: string) => new Counter({ name, help: name, registers: [] });
const histogram = (name: string) => new Histogram({ name, help: name, registers: [] });

/** ControllerMetrics over `hostCount` hosts (h0, h1, ...), its per-host reads recorded; nothing else of the controller. */
function metricsOver(hostCount: number) {
  const hosts = new Map(Array.from({ length: hostCount }, (_, i) => [`id${i}`, { id: `id${i}`, name: `h${i}` }]));
  const reads: string[][] = [];
  /** Reads begun and not answered yet, and their most at once. Each read answers after a turn of the event loop, as one to Redis would. */
  const inFlight = { now: 0, max: 0 };
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  const index = (id: string) => Number(id.slice(2));
  const realization = {
    async hosts(ids: string[]) {
      reads.push(ids);
      inFlight.max = Math.max(inFlight.max, ++inFlight.now);
      await turn();
      inFlight.now--;
      return new Map<string, HostRealization>(ids.map((id) => [id, { connected: index(id) % 2 === 0, appliedRevision: 100 + index(id), lag: index(id) % 3 }]));
    },
    async failedPorts(ids: string[]) {
      await turn();
      const failed = ids.filter((id) => index(id) === 7).map((id): [string, HostPortFailures] => [id, { revision: 107, ports: { p1: { reason: 'x', since: 'y' }, p2: { reason: 'x', since: 'y' } } }]);
      return new Map(failed);
    },
  };
  const agents = {
    async lastErrors(ids: string[]) {
      await turn();
      return new Map<string, AgentLastError | null>(ids.map((id) => [id, index(id) === 5 ? { revision: 105, error: 'no', at: '2026-12-06T12:00:00.000Z' } : null]));
    },
  };
  const store = { commands: { duration: histogram('x_redis_seconds'), errors: counter('x_redis_errors_total') } };
  const sessions = { all: () => [][Symbol.iterator](), sent: () => ({ sent: { delta: { messages: 0, bytes: 0 }, marker: { messages: 0, bytes: 0 }, snapshot_chunk: { messages: 0, bytes: 0 }, snapshot_end: { messages: 0, bytes: 0 }, connection_batch: { messages: 0, bytes: 0 }, hold: { messages: 0, bytes: 0 } }, snapshots: 0 }), realizationSeconds: histogram('x_realization_seconds'), protocolViolations: counter('x_violations_total') };
  const metrics = new ControllerMetrics(
    { vniRanges: [{ from: 1, to: 10 }] } as unknown as ControllerConfig,
    store as unknown as RedisStore,
    { current: { hosts, segments: new Map(), mirrorSessions: new Map() }, revision: 200 } as unknown as MaterializedView,
    sessions as unknown as SessionRegistry,
    realization as unknown as RealizationService,
    agents as unknown as AgentStatusRepository,
    { unfinishedByState: async () => new Map() } as unknown as MigrationRepository,
    { metrics: { finished: counter('x_finished_total'), steps: histogram('x_steps_seconds') } } as unknown as MigrationService,
    { quarantinedVnis: async () => [] } as unknown as SegmentRepository,
    { hellosRefused: counter('x_refused_total'), streamsAwaitingHello: 0 } as unknown as SyncServer,
    { refused: { UNAUTHENTICATED: 0, FORBIDDEN: 0 } } as unknown as Authenticator,
  );
  return { metrics, reads, inFlight };
}

describe('ControllerMetrics: the per-host series', () => {
  it(`reads the hosts ${HOSTS_PER_READ} at a time, one read after the other, and exposes every host's values`, async () => {
    const hostCount = 2 * HOSTS_PER_READ + 3;
    const { metrics, reads } = metricsOver(hostCount);
    const text = (await metrics.expose()).toString('utf8');
    expect(reads.map((r) => r.length)).toEqual([HOSTS_PER_READ, HOSTS_PER_READ, 3]);
    expect(new Set(reads.flat()).size).toBe(hostCount);
    const value = (family: string, host: string) => Number(new RegExp(`^${family}\\{host="${host}"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    for (const h of [0, 5, 7, HOSTS_PER_READ, hostCount - 1]) {
      expect(value('overlay_host_connected', `h${h}`)).toBe(h % 2 === 0 ? 1 : 0);
      expect(value('overlay_host_applied_revision', `h${h}`)).toBe(100 + h);
      expect(value('overlay_host_lag_revisions', `h${h}`)).toBe(h % 3);
      expect(value('overlay_host_last_nack_timestamp_seconds', `h${h}`)).toBe(h === 5 ? Date.parse('2026-12-06T12:00:00.000Z') / 1000 : 0);
      expect(value('overlay_host_failed_ports', `h${h}`)).toBe(h === 7 ? 2 : 0);
    }
    expect(text.match(/^overlay_host_lag_revisions\{/gm)).toHaveLength(hostCount);
  });

  it('does not start the next read before the last one answered (writes on the store connection go between them)', async () => {
    const { metrics, reads, inFlight } = metricsOver(3 * HOSTS_PER_READ);
    await metrics.expose();
    expect(reads).toHaveLength(3);
    expect(inFlight.max).toBe(1);
  });
});
