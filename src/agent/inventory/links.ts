import type { ObservedLink, ObservedLinkKind, ObservedTeam } from '../../controller/model/observed-inventory';
import { OWNER_ALIAS } from '../dataplane/linux/kernel-view';

/** The fields of `ip -d -j link show` the inventory reads (iproute2 5.x/6.x output). */
export interface InventoryIpLink {
  ifname: string;
  flags?: string[];
  operstate?: string;
  link_type?: string;
  master?: string;
  /** A VLAN (or macvlan, ...) device's lower device, `ip link` prints it `vlan100@bond0`. */
  link?: string;
  ifalias?: string;
  /** Newer iproute2 (5.10+) with -d: the device's bus and address (`pci`, `0000:03:00.0`). */
  parentbus?: string;
  parentdev?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: {
      /** bond */
      mode?: string;
      active_slave?: string;
      miimon?: number;
      arp_interval?: number;
      arp_validate?: string;
      /** vlan */
      protocol?: string;
      id?: number;
    };
    info_slave_kind?: string;
    info_slave_data?: {
      /** bond slave: ACTIVE or BACKUP */
      state?: string;
      /** bond slave: UP, DOWN, GOING_DOWN, GOING_BACK */
      mii_status?: string;
    };
  };
}

/** Kinds never inventoried: a VM's tap or a container's veth is no uplink, and a hypervisor has hundreds. */
const SKIPPED_KINDS = new Set(['tun', 'tap', 'veth', 'erspan', 'ip6erspan', 'gretap', 'ip6gretap']);
/** At most this many links are sent (the controller's bound); uplinks first when there are more. */
export const MAX_INVENTORY_LINKS = 256;

const KIND_ORDER: ObservedLinkKind[] = ['physical', 'bond', 'team', 'vlan', 'loopback', 'dummy', 'bridge', 'vxlan', 'other'];

/** A link's kind: info_kind when iproute2 names one, loopback by link type, physical for a plain Ethernet device. */
export function linkKind(link: InventoryIpLink): ObservedLinkKind {
  const kind = link.linkinfo?.info_kind;
  if (link.link_type === 'loopback') {
    return 'loopback';
  }
  switch (kind) {
    case 'bond':
    case 'team':
    case 'vlan':
    case 'bridge':
    case 'vxlan':
    case 'dummy':
      return kind;
    case undefined:
      return link.link_type === 'ether' ? 'physical' : 'other';
    default:
      return 'other';
  }
}

/** Operationally up: administratively up and with carrier (LOWER_UP). */
export const linkUp = (link: InventoryIpLink): boolean => (link.flags?.includes('UP') ?? false) && (link.flags?.includes('LOWER_UP') ?? false);

/** A bond's mode, link monitoring and slaves, from its info_data and its slaves' info_slave_data. */
export function bondTeam(bond: InventoryIpLink, all: readonly InventoryIpLink[]): ObservedTeam {
  const data = bond.linkinfo?.info_data ?? {};
  const members = all
    .filter((l) => l.master === bond.ifname && l.linkinfo?.info_slave_kind === 'bond')
    .map((l) => {
      const slave = l.linkinfo?.info_slave_data ?? {};
      const up = slave.mii_status !== undefined ? slave.mii_status === 'UP' : linkUp(l);
      // active_slave names the one active slave of active-backup; slaves of other modes say ACTIVE each.
      const active = data.active_slave !== undefined ? data.active_slave === l.ifname : slave.state === 'ACTIVE';
      return { name: l.ifname, up, active };
    })
    .sort((a, b) => cmp(a.name, b.name));
  return {
    mode: typeof data.mode === 'string' ? data.mode : 'unknown',
    miimon: nonNegative(data.miimon),
    arpInterval: nonNegative(data.arp_interval),
    arpValidate: typeof data.arp_validate === 'string' ? data.arp_validate : null,
    members,
  };
}

/**
 * Pure: the inventory's links from `ip -d -j link` (nic and lldp left null for the collector to
 * fill; a team's `team` is null here: teamd says what it is, see teamd.ts). Left out: taps,
 * veths and tunnels (no uplinks), and the agent's own devices (alias overlay-agent). Sorted by
 * name; at most MAX_INVENTORY_LINKS, uplinks (physical, bonds, teams, VLANs) kept first.
 */
export function parseInventoryLinks(links: readonly InventoryIpLink[]): ObservedLink[] {
  const kept = links.filter((l) => typeof l.ifname === 'string' && l.ifname !== '' && !SKIPPED_KINDS.has(l.linkinfo?.info_kind ?? '') && l.ifalias !== OWNER_ALIAS);
  const observed = kept.map((link): ObservedLink => {
    const kind = linkKind(link);
    const vlanId = kind === 'vlan' && Number.isInteger(link.linkinfo?.info_data?.id) ? link.linkinfo!.info_data!.id! : null;
    return {
      name: link.ifname,
      kind,
      up: linkUp(link),
      master: link.master ?? null,
      team: kind === 'bond' ? bondTeam(link, links) : null,
      nic: null,
      lldp: null,
      vlanId,
      parent: kind === 'vlan' ? (link.link ?? null) : null,
    };
  });
  const limited = observed.length <= MAX_INVENTORY_LINKS ? observed : [...observed].sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || cmp(a.name, b.name)).slice(0, MAX_INVENTORY_LINKS);
  return limited.sort((a, b) => cmp(a.name, b.name));
}

const nonNegative = (n: unknown): number => (typeof n === 'number' && Number.isFinite(n) && n >= 0 ? Math.floor(n) : 0);
export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
