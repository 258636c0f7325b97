import type { ConnectionBatch__Output } from '../../generated/overlay/v1/ConnectionBatch';
import type { SyncRequest } from '../../generated/overlay/v1/SyncRequest';
import type { Dataplane, TrackedConnection } from '../dataplane/dataplane';
import { connectionKey, MAX_CONNECTION_BATCH } from '../../common/tracked-connection';
import { segmentZones } from '../dataplane/linux/nftables';
import type { Logger } from '../../common/logger';
import type { DesiredState } from '../sync/state-cache';

/** The most connections of one migrating port this host exports (bounded memory and work). */
export const MAX_EXPORTED_CONNECTIONS = 100_000;
/** Least time between two dumps of a port still prepared elsewhere (new connections since). */
export const EXPORT_REFRESH_MS = 500;

interface Export {
  migrationId: string;
  portId: string;
  zone: number;
  ips: string[];
  /** Connections sent so far (their keys), so a refresh sends only new ones. */
  sent: Set<string>;
  timer?: NodeJS.Timeout;
  stopped: boolean;
}

/**
 * Firewall state follows the VM through a live migration, on the agent's side (the controller
 * relays between the two hosts):
 *
 * - Source: while a port bound here is prepared on another host, its tracked connections (its
 *   addresses, its segment's conntrack zone) are dumped and sent to the controller in batches of
 *   at most MAX_CONNECTION_BATCH, the last batch of the first dump marked complete; then, every
 *   EXPORT_REFRESH_MS or four times the last dump's duration (whichever is longer), the
 *   connections opened since. Dumps run beside the agent's work queue, never in it: a VM with
 *   100,000 connections does not hold up deltas. At most MAX_EXPORTED_CONNECTIONS per port.
 * - Destination: the batches for a port prepared here are inserted into the zone of the port's
 *   segment, one batch at a time on a chain of their own (after the prepare was applied, which
 *   forgot any stale entries of those addresses); once the batch marked complete is in, the agent
 *   answers ConnectionsInstalled with the counts.
 *
 * Without the firewall (nothing is tracked) or a dataplane that cannot list or insert, a source
 * still sends one empty complete batch, so the controller need not wait for it.
 */
export class ConnectionHandover {
  private readonly exports = new Map<string, Export>();
  private readonly tallies = new Map<string, { installed: number; failed: number; error: string }>();
  private installs: Promise<void> = Promise.resolve();
  private warnedList = false;
  private readonly ignored = new Set<string>();

  constructor(
    private readonly dataplane: Dataplane,
    private readonly firewall: boolean,
    private readonly send: (request: SyncRequest) => boolean,
    private readonly logger: Logger,
  ) {}

  /**
   * Starts an export for each port bound here and prepared elsewhere that has none, stops those
   * whose migration ended, and forgets the tallies of ports no longer prepared here. Called after
   * each pass that programmed the links, with the stream up.
   */
  sync(desired: DesiredState): void {
    const me = desired.hostId;
    const zones = segmentZones(desired.segments.values());
    const wanted = new Map<string, Omit<Export, 'sent' | 'stopped'>>();
    const incoming = new Set<string>();
    for (const port of desired.ports.values()) {
      const key = `${port.migrationId}/${port.id}`;
      if (port.preparedHostId === me && port.migrationId) {
        incoming.add(key);
      }
      const zone = zones.get(port.segmentId);
      if (port.hostId === me && port.preparedHostId && port.preparedHostId !== me && port.migrationId && zone !== undefined) {
        wanted.set(key, { migrationId: port.migrationId, portId: port.id, zone, ips: [...port.ips] });
      }
    }
    for (const [key, exp] of this.exports) {
      if (!wanted.has(key)) {
        this.stopExport(key, exp);
      }
    }
    for (const [key, w] of wanted) {
      if (!this.exports.has(key)) {
        const exp: Export = { ...w, sent: new Set(), stopped: false };
        this.exports.set(key, exp);
        void this.dump(exp, true);
      }
    }
    for (const key of this.tallies.keys()) {
      if (!incoming.has(key)) {
        this.tallies.delete(key);
      }
    }
  }

  /** The stream was lost: exports start over (from a full dump) once the next one is up. */
  streamLost(): void {
    for (const [key, exp] of this.exports) {
      this.stopExport(key, exp);
    }
  }

  /** Inserts a batch for a port prepared here; the complete batch is answered once inserted. */
  receive(batch: ConnectionBatch__Output, desired: DesiredState): void {
    const key = `${batch.migrationId}/${batch.portId}`;
    const port = desired.ports.get(batch.portId);
    const zone = port && segmentZones(desired.segments.values()).get(port.segmentId);
    if (!port || port.preparedHostId !== desired.hostId || port.migrationId !== batch.migrationId || zone === undefined) {
      if (!this.ignored.has(key)) {
        this.ignored.add(key);
        this.logger.warn(`connections for port ${batch.portId} of migration ${batch.migrationId} ignored: the port is not prepared here for it`);
      }
      return;
    }
    const tally = this.tallies.get(key) ?? { installed: 0, failed: 0, error: '' };
    this.tallies.set(key, tally);
    const ips = [...port.ips];
    const connections = batch.connections as TrackedConnection[];
    this.installs = this.installs.then(async () => {
      if (this.firewall && this.dataplane.insertConnections && connections.length) {
        const result = await this.dataplane.insertConnections(zone, ips, connections).catch((err: unknown) => ({ installed: 0, failed: connections.length, error: (err as Error).message }));
        tally.installed += result.installed;
        tally.failed += result.failed;
        tally.error = result.error || tally.error;
      }
      if (batch.complete) {
        this.logger.info(`migration ${batch.migrationId}: ${tally.installed} connection(s) of port ${batch.portId} installed${tally.failed ? `, ${tally.failed} failed (${tally.error})` : ''}`);
        this.send({ connectionsInstalled: { migrationId: batch.migrationId, portId: batch.portId, installed: tally.installed, failed: tally.failed, error: tally.error } });
      }
    });
  }

  stop(): void {
    this.streamLost();
  }

  private stopExport(key: string, exp: Export): void {
    exp.stopped = true;
    clearTimeout(exp.timer);
    this.exports.delete(key);
  }

  private async dump(exp: Export, first: boolean): Promise<void> {
    const started = Date.now();
    let listed: TrackedConnection[] = [];
    if (this.firewall && this.dataplane.listConnections) {
      try {
        listed = await this.dataplane.listConnections(exp.zone, exp.ips, MAX_EXPORTED_CONNECTIONS);
      } catch (err) {
        if (!this.warnedList) {
          this.warnedList = true;
          this.logger.warn(`cannot list tracked connections (a migrating VM's connections are not carried): ${(err as Error).message}`);
        }
      }
    }
    if (exp.stopped) {
      return;
    }
    const fresh = listed.filter((c) => !exp.sent.has(connectionKey(c))).slice(0, MAX_EXPORTED_CONNECTIONS - exp.sent.size);
    fresh.forEach((c) => exp.sent.add(connectionKey(c)));
    const batches = Math.max(first ? 1 : 0, Math.ceil(fresh.length / MAX_CONNECTION_BATCH));
    for (let i = 0; i < batches; i++) {
      const connections = fresh.slice(i * MAX_CONNECTION_BATCH, (i + 1) * MAX_CONNECTION_BATCH);
      if (!this.send({ connectionExport: { migrationId: exp.migrationId, portId: exp.portId, connections, complete: first && i === batches - 1 } })) {
        // No stream: start over once there is one (sync after the next pass).
        this.stopExport(`${exp.migrationId}/${exp.portId}`, exp);
        return;
      }
    }
    if (first) {
      this.logger.info(`migration ${exp.migrationId}: ${fresh.length} connection(s) of port ${exp.portId} sent to the controller (${Date.now() - started} ms)`);
    }
    exp.timer = setTimeout(() => void this.dump(exp, false), Math.max(EXPORT_REFRESH_MS, 4 * (Date.now() - started)));
  }
}
