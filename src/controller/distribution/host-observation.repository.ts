import { Injectable } from '@nestjs/common';
import type { ObservedInventory } from '../model/observed-inventory';
import type { PortRole } from '../model/port';
import { RedisStore } from '../store/redis-store';
import type { ViewState } from '../store/view-state';

/** What a host's agent last said it observed of its kernel (SyncRequest.observed), checked and stamped. */
export interface StoredHostObservation {
  /** When it was reported (controller clock, ms). */
  at: number;
  /** The taps of the host's local ports. */
  taps: { portId: string; promiscuity: number; bridged: boolean }[];
  /** The bridges of the segments of its span, by VNI and the segment it was when reported. */
  bridges: { vni: number; segmentId: string; ageingSeconds: number }[];
  /**
   * The host's inventory as the agent last collected it (links, bonds and teams, NICs, LLDP
   * neighbours, the VTEP's devices); null when the agent sent none (collection off, an older
   * agent, or an observation stored before inventories were). The audit reads it with `read`.
   */
  inventory: ObservedInventory | null;
}

/**
 * The host observations agents report, one JSON string per host, replaced whole by each report.
 * Bookkeeping, not desired state: no revision, no change record; the host's deletion removes it.
 */
@Injectable()
export class HostObservationRepository {
  constructor(private readonly store: RedisStore) {}

  async write(hostId: string, observation: StoredHostObservation): Promise<void> {
    await this.store.redis.set(this.store.keys.hostObserved(hostId), JSON.stringify(observation));
  }

  /**
   * The hosts' last observations (one MGET); a host that never reported is absent. Every value
   * carries `inventory` (null when none was sent): the audit reads each host's observed inventory
   * here.
   */
  async read(hostIds: readonly string[]): Promise<Map<string, StoredHostObservation>> {
    const out = new Map<string, StoredHostObservation>();
    if (hostIds.length === 0) {
      return out;
    }
    const values = await this.store.read((r) => r.mget(...hostIds.map((id) => this.store.keys.hostObserved(id))));
    hostIds.forEach((id, i) => {
      const raw = values[i];
      if (raw) {
        try {
          const stored = JSON.parse(raw) as StoredHostObservation;
          out.set(id, { ...stored, inventory: stored.inventory ?? null });
        } catch {
          // written only by write() above; an unreadable value reads as never reported
        }
      }
    });
    return out;
  }
}

/** A host's observation as the host API shows it: what an audit of promiscuous access (NIST VM-TM-R2) looks at. */
export interface HostObservedStatus {
  /** ISO 8601 time the agent reported it. */
  at: string;
  /** Local ports whose tap is promiscuous beyond what its bridge accounts for, with their role: an analyzer's is expected. */
  promiscuousPorts: { portId: string; role: PortRole; promiscuity: number }[];
  /** Segments whose bridge on the host is in hub mode (ageing 0: every frame flooded to every port). */
  hubSegments: { segmentId: string; vni: number }[];
  /** The host's inventory as the agent last collected it (ObservedInventory); null when it sent none. */
  inventory: ObservedInventory | null;
}

/** Pure: what `observation` shows of the ports and segments `view` still has (a port deleted since is left out). */
export function observedStatus(observation: StoredHostObservation, view: Pick<ViewState, 'ports' | 'segments'>): HostObservedStatus {
  const promiscuousPorts = observation.taps.flatMap((tap) => {
    const port = view.ports.get(tap.portId);
    // A bridge port counts one promiscuous user: its bridge.
    return port && tap.promiscuity > (tap.bridged ? 1 : 0) ? [{ portId: tap.portId, role: port.role ?? 'vm', promiscuity: tap.promiscuity }] : [];
  });
  const hubSegments = observation.bridges.filter((b) => b.ageingSeconds === 0 && view.segments.get(b.segmentId)?.vni === b.vni).map((b) => ({ segmentId: b.segmentId, vni: b.vni }));
  return { at: new Date(observation.at).toISOString(), promiscuousPorts, hubSegments, inventory: observation.inventory ?? null };
}
