import { Inject, Injectable } from '@nestjs/common';
import { Registry, type Metric } from 'prom-client';
import { registerProcessMetrics, renderGaugeFamilies, scrapedCounter, scrapedGauge, type GaugeFamily } from '../../common/metrics';
import { KeyedHistogram } from './keyed-histogram';
import { Authenticator } from '../auth/authenticator';
import { ControllerConfig } from '../config';
import { AgentStatusRepository } from '../distribution/agent-status.repository';
import { SENT_TYPES } from '../distribution/host-session';
import { RealizationService } from '../distribution/realization.service';
import { SessionRegistry } from '../distribution/session-registry';
import { SyncServer } from '../distribution/sync.server';
import { ErrorCode } from '../errors';
import { MigrationRepository } from '../migrations/migration.repository';
import { MigrationService } from '../migrations/migration.service';
import type { MigrationState } from '../model/migration';
import { SegmentRepository } from '../segments/segment.repository';
import { vniPoolUsage, type VniPoolUsage } from '../segments/vni-pool';
import { MaterializedView } from '../store/materialized-view';
import { RedisStore } from '../store/redis-store';

/** Migrations whose timeline is not complete, read per scrape at most (the monitor works through 200 a pass). */
const UNFINISHED_MIGRATIONS_READ = 10_000;
/** The states a migration is in until its timeline is complete: each is exposed, 0 included. */
const UNFINISHED_STATES: readonly MigrationState[] = ['preparing', 'prepared', 'committed'];

/** Hosts read per round trip in a scrape (four HMGETs of this many fields): see readHosts. */
export const HOSTS_PER_READ = 500;

/** The deployment-wide per-host values, one column per family: `names[i]`'s are at `[i]`. */
interface HostColumns {
  names: string[];
  connected: Uint8Array;
  appliedRevision: Float64Array;
  lag: Float64Array;
  lastNackAt: Float64Array;
  failedPorts: Float64Array;
}

/** What every replica reads alike from Redis and its view, once per scrape. */
interface Deployment {
  hosts: HostColumns;
  migrations: Map<MigrationState, number>;
  vnis: VniPoolUsage;
}

/**
 * overlayd's Prometheus metrics, served at GET /metrics (metrics.controller.ts). Two kinds:
 *
 * - Per replica (each replica's own; sum them over replicas): the HTTP requests it answered, its
 *   Redis commands, the agent streams it holds and what it wrote on them, realization latency
 *   of its streams' hosts, the migrations it finished, the refusals it made, the process itself.
 * - Deployment-wide (the same from every replica, read from Redis and the view when scraped; take
 *   one replica's, `max by (host)` say, never a sum): per host `overlay_host_*`, unfinished
 *   migrations by state, the VNI pool.
 *
 * Nothing per host is updated as acks arrive: the per-host series are computed at scrape time
 * from what the controller keeps anyway (the acknowledged revisions and claims in Redis, the
 * realization service's lag, the sessions' queues), HOSTS_PER_READ hosts at a time (readHosts).
 */
@Injectable()
export class ControllerMetrics {
  readonly registry = new Registry();
  /** Requests by method, route pattern (never the raw URL: bounded), status; recorded by http-metrics.ts. */
  readonly httpRequests = new KeyedHistogram<'method' | 'route' | 'status'>({
    name: 'overlay_http_request_duration_seconds',
    help: 'HTTP requests this replica answered, by method, route pattern (unmatched for no route) and status: latency from the request to the last byte of the answer; _count is the number of requests',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers: [this.registry],
  });
  /** The deployment read in progress, shared by the gauges of one scrape (and by concurrent scrapes). */
  private reading?: Promise<Deployment>;

  constructor(
    @Inject(ControllerConfig) private readonly config: ControllerConfig,
    store: RedisStore,
    private readonly view: MaterializedView,
    private readonly sessions: SessionRegistry,
    private readonly realization: RealizationService,
    private readonly agents: AgentStatusRepository,
    private readonly migrations: MigrationRepository,
    migrationService: MigrationService,
    private readonly segments: SegmentRepository,
    sync: SyncServer,
    authenticator: Authenticator,
  ) {
    const r = this.registry;
    registerProcessMetrics(r);
    // Measured where they happen (each beside its code), exposed here.
    const measured: Metric<string>[] = [store.commands.duration, store.commands.errors, sessions.realizationSeconds, sessions.protocolViolations, sync.hellosRefused, migrationService.metrics.finished, migrationService.metrics.steps];
    for (const metric of measured) {
      r.registerMetric(metric);
    }

    // Per replica, read when scraped.
    scrapedGauge(r, 'overlay_view_revision', "The revision this replica's materialized view has applied", [], () => [[{}, this.view.revision]]);
    scrapedGauge(r, 'overlay_sync_streams', 'Agent streams this replica holds', [], () => [[{}, [...sessions.all()].length]]);
    scrapedGauge(r, 'overlay_sync_streams_awaiting_hello', 'Streams open on this replica whose Hello has not come yet (each ended after 10 s without one)', [], () => [[{}, sync.streamsAwaitingHello]]);
    scrapedCounter(r, 'overlay_sync_messages_sent_total', "Messages this replica wrote on agents' streams, by type: delta, marker (an empty delta), snapshot_chunk, snapshot_end, connection_batch, hold (the store is in recovery)", ['type'], () => {
      const { sent } = sessions.sent();
      return SENT_TYPES.map((type) => [{ type }, sent[type].messages]);
    });
    scrapedCounter(r, 'overlay_sync_sent_bytes_total', "Bytes of the messages this replica wrote on agents' streams, by type", ['type'], () => {
      const { sent } = sessions.sent();
      return SENT_TYPES.map((type) => [{ type }, sent[type].bytes]);
    });
    scrapedCounter(r, 'overlay_sync_snapshots_sent_total', 'Snapshots this replica began sending to agents (on connect, after too long a queue, after Redis lost its data)', [], () => [[{}, sessions.sent().snapshots]]);
    scrapedCounter(r, 'overlay_auth_refused_total', 'API calls this replica refused: UNAUTHENTICATED (no valid token, 401) or FORBIDDEN (the role may not, 403); every one, logged or not', ['code'], () => [
      [{ code: ErrorCode.Unauthenticated }, authenticator.refused[ErrorCode.Unauthenticated]],
      [{ code: ErrorCode.Forbidden }, authenticator.refused[ErrorCode.Forbidden]],
    ]);

    // Deployment-wide, read from Redis and the view once per scrape (the per-host ones: perHost).
    scrapedGauge(r, 'overlay_migrations', 'Migrations whose timeline is not complete, by state: preparing, prepared, committed (deployment-wide)', ['state'], async () => {
      const counts = (await this.deployment()).migrations;
      return UNFINISHED_STATES.map((state) => [{ state }, counts.get(state) ?? 0]);
    });
    scrapedGauge(r, 'overlay_vni_pool', 'VNIs of OVERLAY_VNI_RANGES by state: used (a segment or a mirror session holds it), quarantined, free (deployment-wide)', ['state'], async () => {
      const { used, quarantined, free } = (await this.deployment()).vnis;
      return [
        [{ state: 'used' }, used],
        [{ state: 'quarantined' }, quarantined],
        [{ state: 'free' }, free],
      ];
    });
  }

  /** The Prometheus text exposition of every metric (UTF-8): the registry's, then the per-host families. */
  async expose(): Promise<Buffer> {
    const [text, perHost] = await Promise.all([this.registry.metrics(), this.perHost()]);
    return Buffer.concat([Buffer.from(`${text}\n`), await renderGaugeFamilies(perHost)]);
  }

  /**
   * The families with a series per host, rendered as text rather than held as prom-client
   * Gauges (renderGaugeFamilies says why): this replica's queues, then the deployment-wide
   * `overlay_host_*`.
   */
  private async perHost(): Promise<GaugeFamily[]> {
    const sessions = [...this.sessions.all()];
    const queues: GaugeFamily = {
      name: 'overlay_sync_queue_depth',
      help: "Messages waiting to be written on a host's stream on this replica (queued deltas and markers, a snapshot's remaining chunks)",
      label: 'host',
      labels: sessions.map((s) => s.hostName),
      values: sessions.map((s) => s.queueDepth),
    };
    const { hosts } = await this.deployment();
    const family = (name: string, help: string, values: ArrayLike<number>): GaugeFamily => ({ name, help, label: 'host', labels: hosts.names, values });
    return [
      queues,
      family('overlay_host_connected', "1 while the host's agent holds a stream on some replica (deployment-wide)", hosts.connected),
      family('overlay_host_applied_revision', "The last revision the host's agent acknowledged (deployment-wide)", hosts.appliedRevision),
      family('overlay_host_lag_revisions', 'Revisions the host is behind the current one; 0 when it holds everything its span needs (deployment-wide)', hosts.lag),
      family('overlay_host_last_nack_timestamp_seconds', "When the host's agent last refused a revision (NACK) that no later ack cleared; 0 when none (deployment-wide)", hosts.lastNackAt),
      family('overlay_host_failed_ports', "Local ports the host's agent said at its last acknowledgement it could not program (kept closed there, retried); 0 when none (deployment-wide)", hosts.failedPorts),
    ];
  }

  private deployment(): Promise<Deployment> {
    this.reading ??= this.readDeployment().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** The hosts (readHosts), the unfinished migrations' states, the quarantined VNIs. */
  private async readDeployment(): Promise<Deployment> {
    const state = this.view.current;
    const inUse = [...[...state.segments.values()].map((s) => s.vni), ...[...state.mirrorSessions.values()].map((m) => m.vni)];
    const [hosts, migrations, quarantined] = await Promise.all([this.readHosts(), this.migrations.unfinishedByState(UNFINISHED_MIGRATIONS_READ), this.segments.quarantinedVnis()]);
    return { hosts, migrations, vnis: vniPoolUsage(this.config.vniRanges, inUse, quarantined) };
  }

  /**
   * Every host's values, HOSTS_PER_READ hosts per round trip (their realization, last NACK and
   * failed ports: four HMGETs), one round trip after the other. At 5,000 hosts four HMGETs over
   * every host held the shared store connection (a write's script queued behind a megabyte of
   * claims) and the event loop (the replies' parse, a Map of 5,000 objects per kind, kept
   * through the round trip and so promoted); a slice's work is a millisecond or less, and the
   * event loop serves what waits between slices. The hosts are those of the view when the scrape
   * began; each slice reads what Redis and the view hold when it is read.
   */
  private async readHosts(): Promise<HostColumns> {
    const ids: string[] = [];
    const names: string[] = [];
    for (const host of this.view.current.hosts.values()) {
      ids.push(host.id);
      names.push(host.name);
    }
    const columns: HostColumns = {
      names,
      connected: new Uint8Array(ids.length),
      appliedRevision: new Float64Array(ids.length),
      lag: new Float64Array(ids.length),
      lastNackAt: new Float64Array(ids.length),
      failedPorts: new Float64Array(ids.length),
    };
    for (let start = 0; start < ids.length; start += HOSTS_PER_READ) {
      const slice = ids.slice(start, start + HOSTS_PER_READ);
      const [realization, errors, failedPorts] = await Promise.all([this.realization.hosts(slice), this.agents.lastErrors(slice), this.realization.failedPorts(slice)]);
      slice.forEach((id, j) => {
        const i = start + j;
        const { connected, appliedRevision, lag } = realization.get(id)!;
        const nack = errors.get(id);
        const failed = failedPorts.get(id);
        columns.connected[i] = connected ? 1 : 0;
        columns.appliedRevision[i] = appliedRevision;
        columns.lag[i] = lag;
        columns.lastNackAt[i] = nack ? Date.parse(nack.at) / 1000 : 0;
        columns.failedPorts[i] = failed ? Object.keys(failed.ports).length : 0;
      });
    }
    return columns;
  }
}
