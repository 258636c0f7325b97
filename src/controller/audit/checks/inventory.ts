import type { Host, Uplink } from '../../model/host';
import type { ObservedInventory, ObservedLink } from '../../model/observed-inventory';
import type { HostEvidence } from '../audit.types';

/**
 * A host's NIC teams as the multipath checks (VM-MP-R1..R3) see them: from the observed
 * inventory when the agent sent one (each member's attributes observed, else declared), from the
 * declared inventory otherwise. A VTEP on `lo` or a dummy device reached over several uplinks
 * without a bond (routed redundancy) counts as one team, named `routed:<device>`.
 */
export type Source = 'observed' | 'declared';

export interface Attribute {
  value: string | null;
  source: Source | null;
}

export interface TeamMember {
  name: string;
  driver: Attribute;
  pciBus: Attribute;
  switch: Attribute;
  /** Observed only: null when unknown (declared teams). */
  up: boolean | null;
  active: boolean | null;
  /** Declared only: the member's declared mode. */
  declaredMode: Uplink['mode'];
  /** Observed only: whether routes over it are skipped while it has no carrier (ObservedNic); null when unknown. */
  ignoresLinkdownRoutes: boolean | null;
}

export interface Team {
  name: string;
  source: Source | 'routed';
  /** Observed bonds and teams: the kernel's (or teamd's) mode and link monitoring; null for declared and routed ones. */
  monitor: { mode: string; miimon: number; arpInterval: number; arpValidate: string | null } | null;
  members: TeamMember[];
}

/** `0000:3b:00.0` -> `0000:3b`; `3b:00.0` -> `0000:3b`; anything else null. */
export function pciBusOf(address: string | null): string | null {
  if (!address) {
    return null;
  }
  const m = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):[0-9a-f]{2}\.[0-7]$/i.exec(address.trim());
  return m ? `${(m[1] ?? '0000').toLowerCase()}:${m[2].toLowerCase()}` : null;
}

const attr = (observed: string | null | undefined, declared: string | null | undefined): Attribute =>
  observed ? { value: observed, source: 'observed' } : declared ? { value: declared, source: 'declared' } : { value: null, source: null };

export const describe = (a: Attribute): string => (a.value === null ? 'unknown' : `${a.value} (${a.source})`);

/** The switch a link's LLDP neighbour names: its system name, else its chassis id. */
export const lldpSwitch = (link: ObservedLink | undefined): string | null => link?.lldp?.systemName ?? link?.lldp?.chassisId ?? null;

function member(name: string, links: Map<string, ObservedLink>, declared: Map<string, Uplink>, state: { up: boolean; active: boolean } | null): TeamMember {
  const link = links.get(name);
  const up = declared.get(name);
  return {
    name,
    driver: attr(link?.nic?.driver, up?.driver),
    pciBus: attr(link?.nic?.pciBus ?? pciBusOf(link?.nic?.pciAddress ?? null), pciBusOf(up?.pciAddress ?? null)),
    switch: attr(lldpSwitch(link), up?.switch),
    up: state ? state.up : null,
    active: state ? state.active : null,
    declaredMode: up?.mode ?? null,
    ignoresLinkdownRoutes: link?.nic?.ignoreRoutesWithLinkdown ?? null,
  };
}

export const linksOf = (inventory: ObservedInventory): Map<string, ObservedLink> => new Map(inventory.links.map((l) => [l.name, l]));

/**
 * The physical NICs traffic sent to `device` leaves through: a NIC itself, a bond's or team's
 * members, a VLAN device's parent's, a bridge's ports'. Sorted, without duplicates.
 */
export function physicalUnder(device: string, links: Map<string, ObservedLink>, seen = new Set<string>()): string[] {
  if (seen.has(device)) {
    return [];
  }
  seen.add(device);
  const link = links.get(device);
  if (!link) {
    return [];
  }
  let out: string[];
  switch (link.kind) {
    case 'physical':
      out = [link.name];
      break;
    case 'bond':
    case 'team':
      out = (link.team?.members.map((m) => m.name) ?? [...links.values()].filter((l) => l.master === link.name).map((l) => l.name)).flatMap((m) => physicalUnder(m, links, seen));
      break;
    case 'vlan':
      out = link.parent ? physicalUnder(link.parent, links, seen) : [];
      break;
    case 'bridge':
      out = [...links.values()].filter((l) => l.master === link.name && ['physical', 'bond', 'team', 'vlan'].includes(l.kind)).flatMap((l) => physicalUnder(l.name, links, seen));
      break;
    default:
      out = [];
  }
  return [...new Set(out)].sort();
}

/** The team (bond or team device) `device` sits on, following VLAN parents and bridge ports; null when none. */
export function teamUnder(device: string, links: Map<string, ObservedLink>, seen = new Set<string>()): string | null {
  if (seen.has(device)) {
    return null;
  }
  seen.add(device);
  const link = links.get(device);
  if (!link) {
    return null;
  }
  if (link.kind === 'bond' || link.kind === 'team') {
    return link.name;
  }
  if (link.kind === 'vlan' && link.parent) {
    return teamUnder(link.parent, links, seen);
  }
  if (link.kind === 'bridge') {
    for (const port of links.values()) {
      if (port.master === link.name) {
        const team = teamUnder(port.name, links, seen);
        if (team) {
          return team;
        }
      }
    }
  }
  return null;
}

/** Whether the VTEP address sits on a loopback or dummy device (routed redundancy, when routes use several uplinks). */
export function vtepIsRouted(inventory: ObservedInventory, links: Map<string, ObservedLink>): boolean {
  const device = inventory.vtepDevice;
  if (device === null) {
    return false;
  }
  const kind = links.get(device)?.kind;
  return kind === 'loopback' || kind === 'dummy' || device === 'lo';
}

/** The physical NICs the VTEP's traffic leaves through: the routes' devices when known, else the VTEP device's. */
export function vtepUplinks(inventory: ObservedInventory, links: Map<string, ObservedLink>): string[] {
  const devices = inventory.vtepRoutes.length ? inventory.vtepRoutes.flatMap((r) => r.devices) : inventory.vtepDevice && !vtepIsRouted(inventory, links) ? [inventory.vtepDevice] : [];
  return [...new Set(devices.flatMap((d) => physicalUnder(d, links)))].sort();
}

export function teamsOf(host: Host, evidence: HostEvidence | undefined): Team[] {
  const declared = new Map(host.inventory.uplinks.map((u) => [u.name, u]));
  const inventory = evidence?.inventory ?? null;
  if (inventory) {
    const links = linksOf(inventory);
    const teams: Team[] = inventory.links
      .filter((l) => (l.kind === 'bond' || l.kind === 'team') && l.team !== null)
      .map((l) => ({
        name: l.name,
        source: 'observed' as const,
        monitor: { mode: l.team!.mode, miimon: l.team!.miimon, arpInterval: l.team!.arpInterval, arpValidate: l.team!.arpValidate },
        members: l.team!.members.map((m) => member(m.name, links, declared, { up: m.up, active: m.active })),
      }));
    if (vtepIsRouted(inventory, links)) {
      const uplinks = vtepUplinks(inventory, links);
      if (uplinks.length) {
        teams.push({
          name: `routed:${inventory.vtepDevice}`,
          source: 'routed',
          monitor: null,
          members: uplinks.map((name) => member(name, links, declared, { up: links.get(name)?.up ?? false, active: true })),
        });
      }
    }
    return teams.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  const byTeam = new Map<string, Uplink[]>();
  for (const uplink of host.inventory.uplinks) {
    if (uplink.team) {
      byTeam.set(uplink.team, [...(byTeam.get(uplink.team) ?? []), uplink]);
    }
  }
  return [...byTeam.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, uplinks]) => ({ name, source: 'declared' as const, monitor: null, members: uplinks.map((u) => member(u.name, new Map(), declared, null)) }));
}

/** The PCI buses of every NIC the host has, observed and declared: "several buses" in VM-MP-R2. */
export function hostPciBuses(host: Host, evidence: HostEvidence | undefined): Set<string> {
  const buses = new Set<string>();
  for (const link of evidence?.inventory?.links ?? []) {
    const bus = link.nic?.pciBus ?? pciBusOf(link.nic?.pciAddress ?? null);
    if (bus) {
      buses.add(bus);
    }
  }
  for (const uplink of host.inventory.uplinks) {
    const bus = pciBusOf(uplink.pciAddress);
    if (bus) {
      buses.add(bus);
    }
  }
  return buses;
}

export const sortedHosts = (hosts: ReadonlyMap<string, Host>): Host[] => [...hosts.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
