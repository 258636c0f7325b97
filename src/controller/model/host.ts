/** One physical NIC of a host and where it plugs in: the audit's input for VM-MP-R1..R3. */
export interface Uplink {
  /** pNIC name on the host, e.g. `ens1f0`. */
  name: string;
  driver: string | null;
  /** PCI address `dddd:bb:dd.f`; the bus part tells whether two pNICs share a bus. */
  pciAddress: string | null;
  /** The upstream physical switch and its port. */
  switch: string | null;
  switchPort: string | null;
  /** The NIC team (bond) this pNIC belongs to, if any. */
  team: string | null;
  mode: 'active' | 'standby' | null;
  failureDetection: 'link-state' | 'beacon' | null;
}

export interface HostInventory {
  uplinks: Uplink[];
  /** VLAN ids allowed on the host's upstream switch ports (VM-VN-R1). */
  trunkedVlans: number[];
}

/** A hypervisor host and its VTEP: where remote hosts send this host's VMs' frames. */
export interface Host {
  id: string;
  name: string;
  vtepIp: string;
  inventory: HostInventory;
  createdAt: string;
  updatedAt: string;
}
