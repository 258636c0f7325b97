import { Inject, Injectable, Logger } from '@nestjs/common';
import { formatIp, parseIpText } from '../../common/ip';
import { encodeConnections } from '../../common/proto';
import { isCarriable, MAX_CONNECTION_BATCH, type TrackedConnection } from '../../common/tracked-connection';
import type { ConnectionBatch__Output } from '../../generated/overlay/v1/ConnectionBatch';
import type { ConnectionsInstalled__Output } from '../../generated/overlay/v1/ConnectionsInstalled';
import { ControllerConfig } from '../config';
import type { HostSession } from '../distribution/host-session';
import { SessionRegistry } from '../distribution/session-registry';
import { MaterializedView } from '../store/materialized-view';
import { OPEN_STATES, type Migration } from '../model/migration';
import { MigrationRepository } from './migration.repository';

/** Batches read from Redis and queued to a destination at a time. */
const RELAY_CHUNK = 64;

/** An address in the one form the controller stores (so a port's IPs and an entry's compare as strings). */
const canonical = (address: string): boolean => {
  const parsed = parseIpText(address);
  return parsed !== undefined && formatIp(parsed) === address;
};

/**
 * Pure: the connections of a batch that may be handed on. Each must be carriable (TCP in a
 * state worth carrying or UDP, canonical addresses of one family, valid ports and timeout) and
 * belong to the migrating port: one of its endpoints is one of the port's addresses. A source
 * agent thus cannot make the destination track connections of any other VM.
 */
export function acceptedConnections(connections: TrackedConnection[], portIps: ReadonlySet<string>): { accepted: TrackedConnection[]; rejected: number } {
  const accepted = connections.filter((c) => isCarriable(c) && canonical(c.src) && canonical(c.dst) && (portIps.has(c.src) || portIps.has(c.dst)));
  return { accepted, rejected: connections.length - accepted.length };
}

/**
 * Firewall state follows the VM: a live migration's tracked connections go from its source's
 * agent, through the controller, to its destination's agent, which inserts them before the VM
 * runs there (see the agent's connection-handover.ts).
 *
 * - A batch from an agent counts only if that host is the migration's source, the port is one of
 *   the migration's, and the migration is open; its entries are checked (acceptedConnections),
 *   at most MAX_CONNECTION_BATCH per batch and OVERLAY_MIGRATION_MAX_CONNECTIONS per migration,
 *   and stored in Redis (one stream per migration, expiring with it), already encoded as the
 *   message the destination gets. Stored, not passed along in memory: the destination may be on
 *   another replica, or reconnect, and still get every batch, in order.
 * - The replica holding the destination's stream relays the batches it has not sent yet (at
 *   once when it stored them itself, otherwise at the migration monitor's next pass, every 100 ms),
 *   only once it has sent the destination the revision that prepared the port.
 * - The destination's report (only from the destination, for its ports) records
 *   `connections-installed`; the prepare hook waits for it (MigrationService).
 * Everything an agent sends here is input: what does not fit is logged once per migration and
 * dropped, and never stops the stream.
 */
@Injectable()
export class ConnectionHandover {
  private readonly logger = new Logger('migrations');
  private readonly cap: number;
  /** Relays in progress, by session and migration: one at a time each, and again if asked meanwhile. */
  private readonly relaying = new Map<string, boolean>();
  /** (host, migration) pairs already warned about, so a misbehaving agent logs once. */
  private readonly warned = new Set<string>();

  constructor(
    private readonly migrations: MigrationRepository,
    private readonly sessions: SessionRegistry,
    private readonly view: MaterializedView,
    @Inject(ControllerConfig) config: ControllerConfig,
  ) {
    this.cap = config.migrationMaxConnections;
  }

  /** Whether connections are handed over at all (OVERLAY_MIGRATION_MAX_CONNECTIONS > 0). */
  get enabled(): boolean {
    return this.cap > 0;
  }

  /**
   * A batch from `hostId`'s agent: checked, stored, relayed. Returns a protocol violation (the
   * caller ends the agent's stream) when the host is not the source of that port in that
   * migration, or the batch is too large; undefined otherwise (a batch that comes after the
   * migration closed is dropped without a word).
   */
  async exported(hostId: string, hostName: string, batch: ConnectionBatch__Output): Promise<string | undefined> {
    const migration = await this.migrations.get(batch.migrationId);
    const refuse = (why: string): void => this.warnOnce(`${hostId} ${batch.migrationId}`, `connections from ${hostName} for migration ${batch.migrationId} dropped: ${why}`);
    if (!migration || migration.sourceHostId !== hostId || !migration.portIds.includes(batch.portId)) {
      return `ConnectionBatch for port ${batch.portId} of migration ${batch.migrationId}, which is not migrating from this host`;
    }
    if (batch.connections.length > MAX_CONNECTION_BATCH) {
      return `ConnectionBatch of ${batch.connections.length} connections (at most ${MAX_CONNECTION_BATCH})`;
    }
    if (!this.enabled || !OPEN_STATES.includes(migration.state)) {
      return undefined; // handover off, or the migration closed meanwhile: too late, nothing to say
    }
    const port = this.view.current.ports.get(batch.portId);
    const checked = acceptedConnections(batch.connections, new Set(port?.ips ?? []));
    const rejected = checked.rejected;
    let accepted = checked.accepted;
    if (rejected) {
      refuse(`${rejected} of ${batch.connections.length} connection(s) not valid or not the port's`);
    }
    const encode = (list: TrackedConnection[]) => encodeConnections({ migrationId: migration.id, portId: batch.portId, connections: list, complete: batch.complete });
    let result = await this.migrations.appendConnections(migration.id, batch.portId, accepted.length, batch.complete, this.cap, encode(accepted));
    if ('room' in result) {
      refuse(`more than ${this.cap} connections (OVERLAY_MIGRATION_MAX_CONNECTIONS): the rest are not carried`);
      accepted = accepted.slice(0, result.room);
      result = await this.migrations.appendConnections(migration.id, batch.portId, accepted.length, batch.complete, this.cap, encode(accepted));
    }
    if ('stored' in result) {
      await this.relay(migration); // the record as read: the relay needs only its prepared revision and hosts
    }
    return undefined;
  }

  /** The destination's report of what it inserted; a protocol violation (returned) from any other host, or for another port. */
  async installed(hostId: string, hostName: string, report: ConnectionsInstalled__Output): Promise<string | undefined> {
    const migration = await this.migrations.get(report.migrationId);
    if (!migration || migration.destinationHostId !== hostId || !migration.portIds.includes(report.portId)) {
      return `ConnectionsInstalled for port ${report.portId} of migration ${report.migrationId}, which is not migrating to this host`;
    }
    const count = (n: number) => Math.min(Math.max(0, Math.floor(n)), this.cap);
    await this.migrations.connectionsInstalled(migration.id, report.portId, count(report.installed), count(report.failed));
    if (report.failed) {
      this.logger.warn(`migration ${migration.id}: ${hostName} could not insert ${report.failed} connection(s) of port ${report.portId}`);
    }
    return undefined;
  }

  /**
   * Queues to the destination, if its stream is on this replica, the batches it has not been
   * sent, in order; nothing before the destination was sent the revision that prepared the port.
   */
  async relay(migration: Migration | undefined): Promise<void> {
    if (!migration || !OPEN_STATES.includes(migration.state)) {
      return;
    }
    const session = this.sessions.session(migration.destinationHostId);
    const prepared = migration.timeline.find((e) => e.event === 'prepared')?.revision;
    if (!session || session.isClosed || prepared === undefined || session.sentRevision < prepared) {
      return;
    }
    const key = `${session.hostId} ${migration.id}`;
    if (this.relaying.has(key)) {
      this.relaying.set(key, true); // once more after the one in progress
      return;
    }
    this.relaying.set(key, false);
    try {
      do {
        this.relaying.set(key, false);
        await this.relayPending(session, migration.id);
      } while (this.relaying.get(key) && !session.isClosed);
    } finally {
      this.relaying.delete(key);
    }
  }

  private async relayPending(session: HostSession, migrationId: string): Promise<void> {
    for (;;) {
      const after = session.relayed.get(migrationId) ?? '0';
      const batches = await this.migrations.connectionBatches(migrationId, after, RELAY_CHUNK);
      if (session.isClosed || (session.relayed.get(migrationId) ?? '0') !== after) {
        return; // the stream ended, or a snapshot reset the cursor meanwhile (the next relay starts over)
      }
      for (const [entryId, bytes] of batches) {
        session.sendMessage(bytes);
        session.relayed.set(migrationId, entryId);
      }
      if (batches.length < RELAY_CHUNK) {
        return;
      }
    }
  }

  private warnOnce(key: string, message: string): void {
    if (!this.warned.has(key)) {
      if (this.warned.size >= 10_000) {
        this.warned.clear(); // bounded: a flood of distinct keys logs again rather than grows
      }
      this.warned.add(key);
      this.logger.warn(message);
    }
  }
}
