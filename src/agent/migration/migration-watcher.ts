import type { ConnectionBatch__Output } from '../../generated/overlay/v1/ConnectionBatch';
import type { SyncRequest } from '../../generated/overlay/v1/SyncRequest';
import type { AgentConfig } from '../config';
import type { Dataplane } from '../dataplane/dataplane';
import { segmentZones } from '../dataplane/linux/nftables';
import { tapName } from '../dataplane/names';
import type { Logger } from '../../common/logger';
import type { DesiredSource } from '../sync/desired-state-store';
import { ConnectionHandover } from './connection-handover';

/** The stream to the controller, as the watcher uses it. */
export interface ControllerLink {
  readonly connected: boolean;
  /** Writes to the stream; false when there is none. */
  send(request: SyncRequest): boolean;
}

/** A local port (bound or prepared here): its conntrack zone and addresses. */
interface LocalPort {
  zone: number;
  ips: string[];
  prepared: boolean;
}

/**
 * The agent's side of live migrations, brought up to date after each pass that programmed the
 * links (`linked`), so it acts only on ports whose rules are in place:
 * - with auto-commit, watches the ports prepared here for the VM's first frame and reports its
 *   arrival (`vmArrived`, once a migration), so the controller commits without the hook;
 * - with the firewall, forgets the tracked connections of a VM that left and of one prepared to
 *   arrive (entries from an earlier stay would carry stale TCP windows);
 * - hands a migrating VM's tracked connections over (ConnectionHandover): exported where it
 *   leaves, inserted where it lands.
 */
export class MigrationWatcher {
  private readonly handover: ConnectionHandover;
  /** Ports local here at the last pass. */
  private localPorts = new Map<string, LocalPort>();
  /** Migrations whose VM's arrival this agent reported (once each). */
  private readonly reportedArrivals = new Set<string>();

  constructor(
    private readonly config: Pick<AgentConfig, 'firewall' | 'migrationAutoCommit'>,
    private readonly dataplane: Dataplane,
    private readonly desired: DesiredSource,
    private readonly link: ControllerLink,
    private readonly logger: Logger,
    /** A local port's tap as the reconciler resolved it (undefined: none); its port-id name by default. */
    private readonly tapOf: (portId: string) => string | undefined = tapName,
  ) {
    this.handover = new ConnectionHandover(dataplane, config.firewall === true, (request) => link.send(request), logger);
  }

  /** After a pass that programmed the links. */
  async linked(): Promise<void> {
    if (this.desired.inSync && this.link.connected) {
      this.handover.sync(this.desired.state);
    }
    this.watchArrivals();
    await this.forgetMovedConnections().catch((err: unknown) => this.logger.warn(`forgetting moved connections: ${(err as Error).message}`));
  }

  /** Connections handed over for a port prepared here. */
  receive(batch: ConnectionBatch__Output): void {
    this.handover.receive(batch, this.desired.state);
  }

  /** The stream was lost: exports start over once the next one is up. */
  streamLost(): void {
    this.handover.streamLost();
  }

  stop(): void {
    this.handover.stop();
  }

  /**
   * With auto-commit, watches the ports prepared here for an incoming migration and reports the
   * VM's first frame on one, so the controller commits the migration without waiting for the
   * hypervisor's hook.
   */
  private watchArrivals(): void {
    if (!this.config.migrationAutoCommit || !this.dataplane.watchArrivals) {
      return;
    }
    const { state } = this.desired;
    const prepared = new Map<string, { mac: string; portId: string; migrationId: string }>();
    for (const port of state.ports.values()) {
      const tap = this.tapOf(port.id);
      if (tap !== undefined && port.preparedHostId && port.preparedHostId === state.hostId && port.migrationId && !this.reportedArrivals.has(port.migrationId)) {
        prepared.set(tap, { mac: port.mac, portId: port.id, migrationId: port.migrationId });
      }
    }
    this.dataplane.watchArrivals(new Map([...prepared].map(([tap, p]) => [tap, p.mac])), (tap) => {
      const port = prepared.get(tap);
      if (!port || this.reportedArrivals.has(port.migrationId)) {
        return;
      }
      this.reportedArrivals.add(port.migrationId);
      this.logger.info(`VM of port ${port.portId} arrived on ${tap}: asking the controller to commit migration ${port.migrationId}`);
      this.link.send({ vmArrived: { migrationId: port.migrationId, portId: port.portId } });
    });
  }

  /**
   * Forgets the tracked connections of a VM that left this host, and of one prepared to arrive
   * (entries from an earlier stay here would carry stale TCP windows: its packets would be
   * invalid, and dropped, when it comes back). A VM landing here then has its flows picked up
   * mid-stream (nf_conntrack_tcp_loose). Only with the firewall, which tracks connections.
   */
  private async forgetMovedConnections(): Promise<void> {
    const { state, inSync } = this.desired;
    if (!this.config.firewall || !this.dataplane.forgetConnections || !inSync) {
      return;
    }
    const zones = segmentZones(state.segments.values());
    const now = new Map<string, LocalPort>();
    for (const port of state.ports.values()) {
      const prepared = port.preparedHostId !== '' && port.preparedHostId === state.hostId;
      const zone = zones.get(port.segmentId);
      if ((prepared || port.hostId === state.hostId) && zone !== undefined) {
        now.set(port.id, { zone, ips: [...port.ips], prepared });
      }
    }
    const forget: LocalPort[] = [];
    for (const [id, before] of this.localPorts) {
      if (!now.has(id)) {
        forget.push(before);
      }
    }
    for (const [id, entry] of now) {
      if (entry.prepared && !this.localPorts.get(id)?.prepared) {
        forget.push(entry);
      }
    }
    this.localPorts = now;
    for (const { zone, ips } of forget) {
      if (ips.length) {
        await this.dataplane.forgetConnections(zone, ips);
      }
    }
  }
}
