/** A VM's vNIC: one MAC and its IPs on one segment, bound to the host where the VM runs (or to none). */
export interface Port {
  id: string;
  segmentId: string;
  /** Copied from the segment at creation, so isolation checks need no lookup. */
  tenantId: string;
  vmId: string | null;
  mac: string;
  ips: string[];
  hostId: string | null;
  createdAt: string;
  updatedAt: string;
}

/** One row of a segment's forwarding table: where a MAC lives. */
export interface Mapping {
  portId: string;
  mac: string;
  ips: string[];
  hostId: string;
  vtepIp: string;
}
