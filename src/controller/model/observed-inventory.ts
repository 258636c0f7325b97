/**
 * What a host's agent observed of its network (NIST SP 800-125B VM-MP-R1..R3, VM-VN-R1): its
 * links, NIC teams and NICs, the upstream switch ports LLDP names, and the uplinks that carry the
 * VTEP. The controller stores it beside the declared inventory (`Host.inventory`); the audit
 * compares the two and checks the recommendations on it. Every field an agent could not read is
 * null (unknown), never guessed.
 */
export interface ObservedInventory {
  links: ObservedLink[];
  /** The device the local VTEP address sits on (`lo` or a dummy for routed redundancy, a bond, a NIC); null when not found. */
  vtepDevice: string | null;
  /** For each peer VTEP asked about: the devices `ip route get` sends to it through (several with multipath). */
  vtepRoutes: { destination: string; devices: string[] }[];
}

export type ObservedLinkKind = 'physical' | 'bond' | 'team' | 'vlan' | 'bridge' | 'vxlan' | 'loopback' | 'dummy' | 'other';

export interface ObservedLink {
  name: string;
  kind: ObservedLinkKind;
  /** Operationally up (carrier). */
  up: boolean;
  /** The bond, team or bridge it is enslaved to; null when none. */
  master: string | null;
  /** Bonds and teams: mode and link monitoring, members with their state. */
  team: ObservedTeam | null;
  /** Physical NICs: what sysfs says of the device. */
  nic: ObservedNic | null;
  /** The upstream switch and port, from LLDP; null when no neighbour was heard (or no LLDP source). */
  lldp: ObservedLldp | null;
  /** VLAN devices: the VLAN id (and `master`-like parent in `parent`). */
  vlanId: number | null;
  parent: string | null;
}

export interface ObservedTeam {
  /** `active-backup`, `802.3ad`, `balance-xor`, ... as the kernel (or teamd's runner) names it. */
  mode: string;
  /** MII link monitoring interval in ms; 0 = off. */
  miimon: number;
  /** ARP monitoring interval in ms; 0 = off. */
  arpInterval: number;
  /** ARP validation (`none`, `active`, `backup`, `all`, ...); null when not applicable. */
  arpValidate: string | null;
  members: { name: string; up: boolean; active: boolean }[];
}

export interface ObservedNic {
  driver: string | null;
  /** `dddd:bb:dd.f` */
  pciAddress: string | null;
  /** `dddd:bb`: two NICs on one bus share a failure domain. */
  pciBus: string | null;
  numaNode: number | null;
  /**
   * Whether IPv4 routes over the NIC are skipped while it has no carrier (`net.ipv4.conf.all` or
   * `.<nic>` `ignore_routes_with_linkdown`): without it the kernel keeps hashing flows to a
   * multipath nexthop whose cable is cut, so routed redundancy does not fail over. Null: not read.
   */
  ignoreRoutesWithLinkdown: boolean | null;
}

export interface ObservedLldp {
  chassisId: string | null;
  systemName: string | null;
  portId: string | null;
  portDescription: string | null;
  /** The VLANs the switch says the port carries (LLDP 802.1 VLAN TLVs); empty when it says none. */
  vlans: number[];
}
