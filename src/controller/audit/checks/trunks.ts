import type { Host } from '../../model/host';
import { iso, type HostEvidence } from '../audit.types';

/** A switch port facing a host, and the VLANs it carries. */
export interface Trunk {
  /** The host's NIC on it; absent for the declared trunk (the host's as a whole). */
  link?: string;
  vlans: ReadonlySet<number>;
  /** Where the VLANs come from, in words: `observed by LLDP from tor-a port Ethernet1 at ...` or `declared`. */
  source: string;
}

/**
 * Pure: the trunks of a host, as VM-VN-R1 and the strict-trunks pre-flight (strict-trunks.ts)
 * read them. Observed first: each physical NIC whose LLDP neighbour names VLANs (a switch that
 * sends no VLAN TLV says nothing about the trunk, rather than "no VLAN"); else the declared
 * `trunkedVlans`; null when neither says anything.
 */
export function trunksOf(host: Pick<Host, 'inventory'>, evidence: HostEvidence | undefined): Trunk[] | null {
  const observed = (evidence?.inventory?.links ?? [])
    .filter((l) => l.kind === 'physical' && l.lldp !== null && l.lldp.vlans.length > 0)
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  if (observed.length) {
    return observed.map((l) => ({
      link: l.name,
      vlans: new Set(l.lldp!.vlans),
      source: `observed by LLDP from ${l.lldp!.systemName ?? l.lldp!.chassisId ?? 'a switch'} port ${l.lldp!.portId ?? '?'} at ${iso(evidence!.observedAt)}`,
    }));
  }
  if (host.inventory.trunkedVlans.length) {
    return [{ vlans: new Set(host.inventory.trunkedVlans), source: 'declared' }];
  }
  return null;
}
