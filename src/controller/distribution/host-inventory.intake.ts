import { isIP } from 'node:net';
import { cleanAgentText } from '../../common/agent-text';
import type { HostInventory__Output } from '../../generated/overlay/v1/HostInventory';
import type { ObservedInventory, ObservedLink, ObservedLinkKind, ObservedLldp, ObservedNic, ObservedTeam } from '../model/observed-inventory';

/** What one HostInventory may carry (sync.proto, HostInventory); beyond it the message breaks the protocol. */
export const INVENTORY_LIMITS = { links: 256, members: 64, vlans: 4096, vtepRoutes: 256, routeDevices: 64, string: 256, numaNode: 65_535 } as const;

const KINDS: ReadonlySet<string> = new Set<ObservedLinkKind>(['physical', 'bond', 'team', 'vlan', 'bridge', 'vxlan', 'loopback', 'dummy', 'other']);

class Violation extends Error {}

const fail = (why: string): never => {
  throw new Violation(why);
};

/**
 * Every string of an inventory, once within bounds, is kept as cleanAgentText leaves it (line
 * breaks a space, other control characters and bidirectional controls out): LLDP fields are
 * whatever the device at the other end of the cable says, and they reach the API, the audit's
 * evidence and terminals.
 */
const text = (v: string): string => cleanAgentText(v, INVENTORY_LIMITS.string);

/** A name: 1-256 characters, at least one of them left once cleaned. */
function name(v: unknown, what: string): string {
  const clean = typeof v === 'string' && v.length <= INVENTORY_LIMITS.string ? text(v) : '';
  return clean.length >= 1 ? clean : fail(`${what} is not a name (1-${INVENTORY_LIMITS.string} characters)`);
}

/** A proto3 optional string: absent (or empty, also once cleaned) is null; at most 256 characters. */
function optional(v: unknown, what: string): string | null {
  if (v === undefined || v === null || v === '') {
    return null;
  }
  return typeof v === 'string' && v.length <= INVENTORY_LIMITS.string ? text(v) || null : fail(`${what} is longer than ${INVENTORY_LIMITS.string} characters`);
}

function count(v: unknown, what: string): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(`${what} is not a number`);
}

function vlan(v: unknown, what: string): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 4094 ? v : fail(`${what}: VLAN ${String(v)} out of range (1-4094)`);
}

function team(t: NonNullable<HostInventory__Output['links'][number]['team']>, at: string): ObservedTeam {
  const members = t.members ?? [];
  if (members.length > INVENTORY_LIMITS.members) {
    fail(`${at}: ${members.length} team members (at most ${INVENTORY_LIMITS.members})`);
  }
  const seen = new Set<string>();
  return {
    mode: name(t.mode, `${at}: team mode`),
    miimon: count(t.miimon, `${at}: miimon`),
    arpInterval: count(t.arpInterval, `${at}: arp_interval`),
    arpValidate: optional(t.arpValidate, `${at}: arp_validate`),
    members: members.map((m, i) => {
      const member = name(m.name, `${at}: member ${i}`);
      if (seen.has(member)) {
        fail(`${at}: member ${member} reported twice`);
      }
      seen.add(member);
      return { name: member, up: m.up === true, active: m.active === true };
    }),
  };
}

function nic(n: NonNullable<HostInventory__Output['links'][number]['nic']>, at: string): ObservedNic {
  const numa = n.numaNode;
  if (numa !== undefined && numa !== null && !(Number.isInteger(numa) && numa >= 0 && numa <= INVENTORY_LIMITS.numaNode)) {
    fail(`${at}: numa_node ${numa} out of range (0-${INVENTORY_LIMITS.numaNode})`);
  }
  return {
    driver: optional(n.driver, `${at}: driver`),
    pciAddress: optional(n.pciAddress, `${at}: pci_address`),
    pciBus: optional(n.pciBus, `${at}: pci_bus`),
    numaNode: numa ?? null,
    ignoreRoutesWithLinkdown: typeof n.ignoreRoutesWithLinkdown === 'boolean' ? n.ignoreRoutesWithLinkdown : null,
  };
}

function lldp(l: NonNullable<HostInventory__Output['links'][number]['lldp']>, at: string): ObservedLldp {
  const vlans = l.vlans ?? [];
  if (vlans.length > INVENTORY_LIMITS.vlans) {
    fail(`${at}: ${vlans.length} LLDP VLANs (at most ${INVENTORY_LIMITS.vlans})`);
  }
  return {
    chassisId: optional(l.chassisId, `${at}: chassis_id`),
    systemName: optional(l.systemName, `${at}: system_name`),
    portId: optional(l.portId, `${at}: port_id`),
    portDescription: optional(l.portDescription, `${at}: port_description`),
    vlans: [...new Set(vlans.map((v) => vlan(v, `${at}: LLDP`)))].sort((a, b) => a - b),
  };
}

/**
 * Pure: the ObservedInventory a HostObservation's inventory says, or why it breaks the protocol
 * (the bounds of INVENTORY_LIMITS, a link named twice or without a name, a VLAN id out of
 * 1-4094, a route's destination that is no IP address). Absent: null (the agent collects none).
 * A kind the controller does not know reads as `other`; absent optional fields read as null.
 */
export function readHostInventory(message: HostInventory__Output | null | undefined): { inventory: ObservedInventory | null } | { violation: string } {
  if (!message) {
    return { inventory: null };
  }
  try {
    const links = message.links ?? [];
    if (links.length > INVENTORY_LIMITS.links) {
      fail(`${links.length} links (at most ${INVENTORY_LIMITS.links})`);
    }
    const names = new Set<string>();
    const observed = links.map((l, i): ObservedLink => {
      const linkName = name(l.name, `link ${i}`);
      if (names.has(linkName)) {
        fail(`link ${i}: ${linkName} reported twice`);
      }
      names.add(linkName);
      const at = `link ${linkName}`;
      return {
        name: linkName,
        kind: typeof l.kind === 'string' && KINDS.has(l.kind) ? (l.kind as ObservedLinkKind) : 'other',
        up: l.up === true,
        master: optional(l.master, `${at}: master`),
        team: l.team ? team(l.team, at) : null,
        nic: l.nic ? nic(l.nic, at) : null,
        lldp: l.lldp ? lldp(l.lldp, at) : null,
        vlanId: l.vlanId === undefined || l.vlanId === null ? null : vlan(l.vlanId, `${at}: vlan_id`),
        parent: optional(l.parent, `${at}: parent`),
      };
    });
    const routes = message.vtepRoutes ?? [];
    if (routes.length > INVENTORY_LIMITS.vtepRoutes) {
      fail(`${routes.length} VTEP routes (at most ${INVENTORY_LIMITS.vtepRoutes})`);
    }
    const vtepRoutes = routes.map((r, i) => {
      // An IPv6 zone (`fe80::1%eth0`) is free text to isIP: bounded like the rest.
      if (typeof r.destination !== 'string' || r.destination.length > INVENTORY_LIMITS.string || isIP(r.destination) === 0) {
        fail(`VTEP route ${i}: destination is not an IP address`);
      }
      const devices = r.devices ?? [];
      if (devices.length > INVENTORY_LIMITS.routeDevices) {
        fail(`VTEP route ${i}: ${devices.length} devices (at most ${INVENTORY_LIMITS.routeDevices})`);
      }
      return { destination: r.destination, devices: devices.map((d, j) => name(d, `VTEP route ${i}: device ${j}`)) };
    });
    return { inventory: { links: observed, vtepDevice: optional(message.vtepDevice, 'vtep_device'), vtepRoutes } };
  } catch (err) {
    if (err instanceof Violation) {
      return { violation: `HostObservation inventory: ${err.message}` };
    }
    throw err;
  }
}
