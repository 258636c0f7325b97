import { systemActor, type Actor } from '../auth/principal';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { ErrorCode, notFound, OverlayError } from '../errors';
import { type ResourceId } from '../../common/values';
import { newId } from '../model/value-parsers';
import { ControllerConfig } from '../config';
import { AgentStatusRepository } from '../distribution/agent-status.repository';
import { RealizationService, type Realization } from '../distribution/realization.service';
import type { Port } from '../model/port';
import type { RealizationWait } from '../ports/port.schemas';
import { MaterializedView } from '../store/materialized-view';
import { StrictTrunks } from '../audit/strict-trunks';
import { ConnectionHandover } from './connection-handover';
import { OPEN_STATES, type Migration, type MigrationRecord, type MigrationState } from '../model/migration';
import type { Page, PageRequest } from '../store/page';
import { MigrationMetrics } from './migration.metrics';
import { MigrationRepository, type MarkedEvent, type PortSwap } from './migration.repository';
import { DEFAULT_PREPARE_WAIT_MS, type PrepareMigration } from './migration.schemas';


/** How often a prepare waiting for the connection handover reads the migration again. */
const CONNECTIONS_POLL_MS = 10;

/** Who took a step, as the step's log line names it. */
const byWhom = (actor: Actor): string => (actor.kind === 'token' ? `${actor.role} token ${actor.name}` : actor.name);

/** Revision of a timeline event, if it wrote one. */
const revisionOf = (migration: Migration, event: string): number | undefined => migration.timeline.find((e) => e.event === event)?.revision;

/**
 * Live migration hooks: prepare, commit, abort (see model/migration.ts for the states). Every
 * hook is idempotent: a retried prepare returns the open migration it made, a retried commit or
 * abort returns the migration as it is. Steps that change ports are compare-and-set on the port
 * records, retried when a port changed meanwhile (a security group edit, say).
 */
@Injectable()
export class MigrationService {
  private readonly retentionMs: number;
  private readonly ttlMs: number;
  /** Migrations this replica finished, and their steps' durations. */
  readonly metrics = new MigrationMetrics();
  /** One line a step that changed the migration (not a retry that found it taken): `step` says which. */
  private readonly logger = new Logger('migrations');

  constructor(
    private readonly migrations: MigrationRepository,
    private readonly realization: RealizationService,
    private readonly view: MaterializedView,
    private readonly handover: ConnectionHandover,
    private readonly agents: AgentStatusRepository,
    private readonly strictTrunks: StrictTrunks,
    @Inject(ControllerConfig) config: ControllerConfig,
  ) {
    this.retentionMs = config.migrationRetentionSeconds * 1000;
    this.ttlMs = config.migrationTtlMs;
  }

  /**
   * Prepares the migration and waits (up to `waitMs`) for the destination's ack and then, when the
   * source's agent is connected, for the VM's tracked connections to be installed on the
   * destination (ConnectionHandover). `created` is false for a retry that found its migration open.
   */
  async prepare(input: PrepareMigration, actor: Actor, waitMs = DEFAULT_PREPARE_WAIT_MS): Promise<{ migration: Migration; created: boolean }> {
    const deadline = Date.now() + waitMs;
    if ((input.vmId === undefined) === (input.portIds === undefined)) {
      throw new OverlayError(ErrorCode.InvalidValue, 'give either vmId or portIds', { field: input.vmId === undefined ? 'vmId' : 'portIds' });
    }
    if (input.sourceHostId === input.destinationHostId) {
      throw new OverlayError(ErrorCode.InvalidValue, 'the destination host is the source host', { field: 'destinationHostId' });
    }
    const portIds = input.portIds ?? this.portsOfVm(input.vmId!, input.sourceHostId);
    portIds.forEach((id, i) => {
      if (portIds.indexOf(id) !== i) {
        throw new OverlayError(ErrorCode.InvalidValue, `port ${id} is listed twice`, { field: `portIds[${i}]` });
      }
    });
    // What makes a retry the same request: the same ports between the same hosts.
    const key = `${input.sourceHostId} ${input.destinationHostId} ${[...portIds].sort().join(',')}`;
    for (;;) {
      const now = Date.now();
      const expiresAtMs = now + (input.ttlMs ?? this.ttlMs);
      const record: MigrationRecord = {
        id: newId(),
        vmId: input.vmId ?? null,
        portIds,
        sourceHostId: input.sourceHostId,
        destinationHostId: input.destinationHostId,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(expiresAtMs).toISOString(),
      };
      const current = await this.migrations.ports(portIds);
      const swaps: PortSwap[] = [];
      current.forEach((port, i) => {
        const field = input.vmId === undefined ? `portIds[${i}]` : 'vmId';
        if (!port) {
          throw notFound('port', portIds[i], field);
        }
        // A retry of an open migration finds its ports already prepared: the script answers it.
        if (port.migration?.id === undefined && port.hostId !== input.sourceHostId) {
          throw new OverlayError(ErrorCode.PortNotOnSource, `port ${port.id} is ${port.hostId === null ? 'not bound' : `bound to host ${port.hostId}`}, not to the source host`, { field });
        }
        swaps.push({ id: port.id, current: port, next: { ...port, migration: { id: record.id, destinationHostId: input.destinationHostId }, updatedAt: record.createdAt } });
      });
      // A pre-flight check: the destination must carry the ports' VLANs (strict mode only).
      await this.strictTrunks.check(swaps.map((s) => ({ segmentId: s.current.segmentId, hostId: input.destinationHostId, field: 'destinationHostId' })));
      let result: { revision: number; id: string };
      try {
        result = await this.migrations.prepare(record, key, expiresAtMs, swaps, actor);
      } catch (err) {
        // The script names ports by their place in the list; a request by VM names the VM.
        if (err instanceof OverlayError && input.vmId !== undefined && err.field?.startsWith('portIds[')) {
          throw new OverlayError(err.code, err.message, { field: 'vmId' });
        }
        throw err;
      }
      if (result.revision < 0) {
        continue;
      }
      const created = result.revision > 0;
      if (created) {
        this.logger.log(`migration ${record.id} prepared by ${byWhom(actor)}: ${portIds.length} port(s) from host ${record.sourceHostId} to ${record.destinationHostId} (revision ${result.revision})`, {
          migration: record.id,
          step: 'prepare',
          revision: result.revision,
          sourceHostId: record.sourceHostId,
          destinationHostId: record.destinationHostId,
          portIds,
        });
      }
      let migration = await this.read(result.id);
      if (migration.state === 'preparing') {
        await this.observeDestination(migration, Math.max(0, deadline - Date.now()));
        migration = await this.read(result.id);
      }
      if (migration.state === 'prepared') {
        migration = await this.waitForConnections(migration, deadline);
      }
      return { migration, created };
    }
  }

  /**
   * Migrations newest first, those matching every filter given and `visible` (the caller's host
   * scope), paged by id.
   */
  list(page: PageRequest, filter: { state?: MigrationState; vmId?: string; hostId?: string }, visible: (m: Migration) => boolean): Promise<Page<Migration>> {
    return this.migrations.list(page.limit, page.cursor, (m) =>
      (filter.state === undefined || m.state === filter.state) &&
      (filter.vmId === undefined || m.vmId === filter.vmId) &&
      (filter.hostId === undefined || m.sourceHostId === filter.hostId || m.destinationHostId === filter.hostId) &&
      visible(m),
    );
  }

  /** Moves the bindings to the destination in one step; with `wait`, holds the answer until every peer and the source acked. */
  async commit(id: ResourceId, actor: Actor, wait?: RealizationWait): Promise<Migration & { pendingHostIds?: string[] }> {
    for (;;) {
      let migration = await this.read(id);
      if (migration.state === 'preparing') {
        // The ack may have arrived without anyone recording it yet.
        await this.observeDestination(migration, 0);
      }
      const swaps = await this.swaps(migration, (port) => ({ ...port, hostId: migration.destinationHostId, migration: null }));
      const revision = await this.migrations.commit(id, swaps, actor);
      if (revision < 0) {
        continue;
      }
      if (revision > 0) {
        this.logger.log(`migration ${id} committed by ${byWhom(actor)}: its ports are bound to host ${migration.destinationHostId} (revision ${revision})`, {
          migration: id,
          step: 'commit',
          revision,
          destinationHostId: migration.destinationHostId,
        });
      }
      migration = await this.read(id);
      if (wait && migration.state === 'committed') {
        const { pendingHostIds } = await this.waitForSettled(migration, wait.timeoutMs);
        migration = await this.read(id);
        // Not completed within the wait: name the hosts whose ack of the commit is missing.
        if (migration.state === 'committed') {
          return { ...migration, pendingHostIds };
        }
      }
      return migration;
    }
  }

  /**
   * The destination's agent saw the VM land (its first frame on the prepared port): records it
   * and commits, as the hypervisor's hook would. A report from a host that is not the migration's
   * destination, or for a port not in it, is a protocol violation (`violation`: the caller ends
   * that agent's stream); one that comes too late (the migration closed meanwhile) or too early
   * (the destination has not acknowledged the prepare) does nothing (`ignored`).
   */
  async commitOnArrival(hostId: string, migrationId: string, portId: string): Promise<{ violation: string } | { ignored: string } | { migration: Migration }> {
    const migration = await this.migrations.get(migrationId);
    if (!migration || migration.destinationHostId !== hostId || !migration.portIds.includes(portId)) {
      return { violation: `VmArrived for port ${portId} of migration ${migrationId}, which is not migrating to this host` };
    }
    if (!OPEN_STATES.includes(migration.state)) {
      return { migration };
    }
    await this.mark(migration, 'vm-arrived');
    try {
      // Found in the store above: a stored id, well-formed.
      // The audit trail and the timeline name the agent that asked for it.
      return { migration: await this.commit(migration.id as ResourceId, systemActor(`agent-${hostId}`)) };
    } catch (err) {
      if (err instanceof OverlayError) {
        return { ignored: `migration ${migrationId}: ${err.message}` };
      }
      throw err;
    }
  }

  /** Withdraws the destination's prepared state; nothing changes for peers. */
  async abort(id: ResourceId, actor: Actor): Promise<Migration> {
    return this.close(id, 'aborted', actor);
  }

  /** Expires an open migration past its time (the monitor calls this); a no-op if it is not due. */
  async expire(id: string, actor: Actor): Promise<Migration> {
    return this.close(id, 'expired', actor);
  }

  async get(id: ResourceId): Promise<Migration> {
    return this.read(id);
  }

  /**
   * Records timeline events whose acks have arrived: the destination's (prepare), the peers'
   * and the source's (commit). Called by the monitor and after each hook.
   */
  async observe(migration: Migration): Promise<void> {
    if (OPEN_STATES.includes(migration.state)) {
      await this.observeDestination(migration, 0);
    } else if (migration.state === 'committed') {
      await this.observeSettlement(migration);
    }
  }

  private async close(id: string, final: 'aborted' | 'expired', actor: Actor): Promise<Migration> {
    for (;;) {
      const migration = await this.read(id);
      if (!OPEN_STATES.includes(migration.state)) {
        if (migration.state === 'committed' || migration.state === 'completed') {
          if (final === 'expired') {
            return migration;
          }
          throw new OverlayError(ErrorCode.MigrationCommitted, `migration ${id} is committed: the VM runs on the destination; migrate it back instead`, { field: 'id' });
        }
        return migration;
      }
      const swaps = await this.swaps(migration, (port) => ({ ...port, migration: null }));
      const revision = await this.migrations.abort(id, final, this.retentionMs, swaps, actor);
      if (revision > 0) {
        const why = final === 'expired' ? 'expired before its commit' : `aborted by ${byWhom(actor)}`;
        this.logger.log(`migration ${id} ${why}: host ${migration.destinationHostId} withdraws the prepared ports (revision ${revision})`, { migration: id, step: final === 'expired' ? 'expire' : 'abort', revision });
        return this.finished(await this.read(id));
      }
      if (revision === 0) {
        return this.read(id);
      }
    }
  }

  /** Records an observed event of the timeline; logged by the replica that recorded it first. Whether this call completed the migration. */
  private async mark(migration: Migration, event: MarkedEvent): Promise<boolean> {
    const outcome = await this.migrations.mark(migration.id, event, this.retentionMs);
    if (outcome !== 'unchanged') {
      const host = event === 'destination-acked' || event === 'vm-arrived' ? migration.destinationHostId : event === 'source-cleaned' ? migration.sourceHostId : undefined;
      const completed = outcome === 'completed' ? '; migration completed' : '';
      this.logger.log(`migration ${migration.id}: ${event}${host ? ` (host ${host})` : ''}${completed}`, { migration: migration.id, step: event, ...(outcome === 'completed' && { state: 'completed' }) });
    }
    return outcome === 'completed';
  }

  /** Compare-and-set pairs for the migration's ports that still carry it. */
  private async swaps(migration: Migration, change: (port: Port) => Port): Promise<PortSwap[]> {
    const now = new Date().toISOString();
    const ports = await this.migrations.ports(migration.portIds);
    return ports.filter((p): p is Port => p?.migration?.id === migration.id).map((port) => ({ id: port.id, current: port, next: { ...change(port), updatedAt: now } }));
  }

  private async observeDestination(migration: Migration, waitMs: number): Promise<void> {
    const revision = revisionOf(migration, 'prepared');
    if (revision === undefined) {
      return;
    }
    const acked = waitMs > 0 ? await this.realization.waitForHosts([migration.destinationHostId], revision, waitMs) : await this.realization.hostsApplied([migration.destinationHostId], revision);
    if (acked) {
      await this.mark(migration, 'destination-acked');
    }
  }

  /**
   * Until `deadline`, waits for `connections-installed` (polling the record: the destination's
   * report may reach another replica), unless the handover is off, or the source's or the
   * destination's agent is not connected or does not announce the feature (nothing will come).
   * Returns the migration as it then is.
   */
  private async waitForConnections(migration: Migration, deadline: number): Promise<Migration> {
    const done = (m: Migration) => !OPEN_STATES.includes(m.state) || m.timeline.some((e) => e.event === 'connections-installed');
    if (!this.handover.enabled || done(migration)) {
      return migration;
    }
    const hosts = [migration.sourceHostId, migration.destinationHostId];
    const status = await this.agents.status(hosts);
    if (!hosts.every((h) => status.get(h)?.features.includes('connection-handover'))) {
      return migration;
    }
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(CONNECTIONS_POLL_MS, Math.max(0, deadline - Date.now()))));
      migration = await this.read(migration.id);
      if (done(migration)) {
        break;
      }
    }
    return migration;
  }

  /**
   * Records `peers-acked` (every host whose span the commit changed, the source aside, has applied
   * it: the segments' hosts that learn the new binding, the destination) and `source-cleaned`.
   * The same hosts as the commit's `?wait=realized` and any write's (RealizationService), fixed
   * at the commit's revision: a host that joins a segment later is not waited for.
   */
  private async observeSettlement(migration: Migration): Promise<void> {
    const revision = revisionOf(migration, 'committed');
    if (revision === undefined || this.view.revision < revision) {
      return; // this replica's view has not seen the commit yet: it cannot name the peers
    }
    const peersAcked = migration.timeline.some((e) => e.event === 'peers-acked');
    const sourceCleaned = migration.timeline.some((e) => e.event === 'source-cleaned');
    if (peersAcked && sourceCleaned) {
      return;
    }
    const pending = await this.realization.unapplied(await this.realization.changedHosts(revision), revision);
    let completed = false;
    if (!peersAcked && pending.every((h) => h === migration.sourceHostId)) {
      completed = await this.mark(migration, 'peers-acked');
    }
    if (!sourceCleaned && (await this.realization.unapplied([migration.sourceHostId], revision)).length === 0) {
      completed = (await this.mark(migration, 'source-cleaned')) || completed;
    }
    if (completed) {
      this.finished(await this.read(migration.id));
    }
  }

  /** This replica's call finished `migration` (completed, aborted or expired): counted here, once. */
  private finished(migration: Migration): Migration {
    this.metrics.observe(migration);
    return migration;
  }

  private async waitForSettled(migration: Migration, timeoutMs: number): Promise<Realization> {
    const outcome = await this.realization.waitForRevision(revisionOf(migration, 'committed')!, timeoutMs);
    await this.observeSettlement(await this.read(migration.id));
    return outcome;
  }

  /** The VM's ports bound to the source, as this replica's view knows them (the script checks each). */
  private portsOfVm(vmId: string, sourceHostId: string): string[] {
    const ids: string[] = [];
    for (const port of this.view.current.ports.values()) {
      if (port.vmId === vmId && port.hostId === sourceHostId) {
        ids.push(port.id);
      }
    }
    if (!ids.length) {
      throw new OverlayError(ErrorCode.PortNotFound, `VM ${vmId} has no port bound to host ${sourceHostId}`, { field: 'vmId' });
    }
    return ids.sort();
  }

  private async read(id: string): Promise<Migration> {
    const migration = await this.migrations.get(id);
    if (!migration) {
      throw notFound('migration', id);
    }
    return migration;
  }
}
