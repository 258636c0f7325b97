import { Injectable } from '@nestjs/common';
import type { HostObservation__Output } from '../../generated/overlay/v1/HostObservation';
import { MaterializedView } from '../store/materialized-view';
import { readHostInventory } from './host-inventory.intake';
import { HostReportIntake } from './host-report-intake';
import { HostObservationRepository, type StoredHostObservation } from './host-observation.repository';

/** Taps, and bridges, one HostObservation may carry (sync.proto). */
export const MAX_OBSERVED_TAPS = 4096;
export const MAX_OBSERVED_BRIDGES = 4096;
/** Longest port id accepted. */
const MAX_PORT_ID = 64;
const VNI_MAX = 16_777_215;

/** What of the host's span an observation may name: its local ports, and the segments of its span by VNI. */
export interface ObservationScope {
  isLocalPort(portId: string): boolean;
  segmentOf(vni: number): string | undefined;
}

/**
 * Reads an agent's HostObservation: what to keep (the taps of the host's local ports, the
 * bridges of its span's segments), stamped `at`, or why the message breaks the protocol (more
 * than MAX_OBSERVED_TAPS taps or MAX_OBSERVED_BRIDGES bridges, a port id empty or longer than
 * 64 characters, a VNI out of range, one named twice; an inventory readHostInventory refuses).
 * The inventory is kept whole (it names no resource of the span), null when the agent sent none. Pure.
 */
export function readHostObservation(message: HostObservation__Output, scope: ObservationScope, at: number): { observation: StoredHostObservation } | { violation: string } {
  const taps = message.taps ?? [];
  const bridges = message.bridges ?? [];
  if (taps.length > MAX_OBSERVED_TAPS) {
    return { violation: `HostObservation of ${taps.length} taps (at most ${MAX_OBSERVED_TAPS})` };
  }
  if (bridges.length > MAX_OBSERVED_BRIDGES) {
    return { violation: `HostObservation of ${bridges.length} bridges (at most ${MAX_OBSERVED_BRIDGES})` };
  }
  const inventory = readHostInventory(message.inventory);
  if ('violation' in inventory) {
    return inventory;
  }
  const observation: StoredHostObservation = { at, taps: [], bridges: [], inventory: inventory.inventory };
  const ports = new Set<string>();
  for (const [i, tap] of taps.entries()) {
    const id = tap.portId;
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_PORT_ID) {
      return { violation: `HostObservation tap ${i}: port_id is not a port id (1-${MAX_PORT_ID} characters)` };
    }
    if (ports.has(id)) {
      return { violation: `HostObservation tap ${i}: port ${id} reported twice` };
    }
    ports.add(id);
    if (!Number.isSafeInteger(tap.promiscuity) || tap.promiscuity < 0) {
      return { violation: `HostObservation tap ${i}: promiscuity is not a count` };
    }
    if (scope.isLocalPort(id)) {
      observation.taps.push({ portId: id, promiscuity: tap.promiscuity, bridged: tap.bridged === true });
    }
  }
  const vnis = new Set<number>();
  for (const [i, bridge] of bridges.entries()) {
    const vni = bridge.vni;
    if (!Number.isInteger(vni) || vni < 1 || vni > VNI_MAX) {
      return { violation: `HostObservation bridge ${i}: VNI ${vni} out of range (1-${VNI_MAX})` };
    }
    if (vnis.has(vni)) {
      return { violation: `HostObservation bridge ${i}: VNI ${vni} reported twice` };
    }
    vnis.add(vni);
    if (!Number.isSafeInteger(bridge.ageingSeconds) || bridge.ageingSeconds < 0) {
      return { violation: `HostObservation bridge ${i}: ageing_seconds is not a number of seconds` };
    }
    const segmentId = scope.segmentOf(vni);
    if (segmentId !== undefined) {
      observation.bridges.push({ vni, segmentId, ageingSeconds: bridge.ageingSeconds });
    }
  }
  return { observation };
}

/** Takes the host observations agents report to Redis (HostObservationRepository): see HostReportIntake. */
@Injectable()
export class HostObservationIntake extends HostReportIntake<StoredHostObservation> {
  constructor(repository: HostObservationRepository, view: MaterializedView) {
    super('host observation', (hostId, observation) => repository.write(hostId, observation), view);
  }
}
