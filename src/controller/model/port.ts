/** An extra address a port may send from (a VIP, a container's address...): an IP or a prefix, with a MAC. */
export interface AllowedAddressPair {
  /** An IP, or a prefix (`10.1.0.0/16`): canonical text, a full-length prefix written as the IP. */
  ip: string;
  /** Null = the port's own MAC. */
  mac: string | null;
}

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
  /** Its security groups (same tenant); empty = the tenant's default group. Must be empty without port security. */
  securityGroupIds: string[];
  /** Anti-spoofing and filtering; false = neither (no group applies, no address pair allowed), as Neutron's port_security_enabled. */
  portSecurity: boolean;
  /** Addresses the port may send from besides its own MAC and IPs (only with port security). */
  allowedAddressPairs: AllowedAddressPair[];
  /**
   * `vm` (the default) or `analyzer`: an analyzer port receives mirrored copies only (it may be a
   * mirror session's sink) and is never attached to its segment's bridge: the one place where
   * promiscuous access is granted (NIST VM-TM-R2). Absent = `vm` (records written before it existed, and most ports).
   */
  role?: PortRole;
  /**
   * An open live migration of this port (see migrations/): the destination host holds the port,
   * its rules and its segment's table while `hostId` (the source) still forwards. Absent on
   * records written before migrations existed; null when none.
   */
  migration?: PortMigration | null;
  /**
   * The name of its tap on its host, as the hypervisor named it (`vnet3`); absent or null = not
   * given: the agent finds the tap by its port-id name, or by MAC (see agent/dataplane/taps.ts).
   * Not unique across ports: two ports on one host naming one tap both stay closed (the agent says why).
   */
  tapName?: string | null;
  createdAt: string;
  updatedAt: string;
}

export type PortRole = 'vm' | 'analyzer';

/** The part of an open migration a port carries: enough for spans to place it on the destination. */
export interface PortMigration {
  id: string;
  destinationHostId: string;
}

/**
 * The hosts that hold the port as their own: where it is bound and, during a migration, the
 * destination it is prepared on. Each gets the port's policy and its segment's table.
 */
export function localHostsOf(port: Pick<Port, 'hostId' | 'migration'>): string[] {
  if (port.hostId === null) {
    return [];
  }
  const destination = port.migration?.destinationHostId;
  return destination && destination !== port.hostId ? [port.hostId, destination] : [port.hostId];
}

/** One row of a segment's forwarding table: where a MAC lives. */
export interface Mapping {
  portId: string;
  mac: string;
  ips: string[];
  hostId: string;
  vtepIp: string;
}

/** The security and migration fields of a port; records written before they existed read as the defaults. */
export function withSecurityDefaults(port: Port): Port {
  const stored = port as Partial<Port>;
  if (stored.securityGroupIds && stored.portSecurity !== undefined && stored.allowedAddressPairs && stored.migration !== undefined) {
    return port;
  }
  return {
    ...port,
    securityGroupIds: stored.securityGroupIds ?? [],
    portSecurity: stored.portSecurity ?? true,
    allowedAddressPairs: stored.allowedAddressPairs ?? [],
    migration: stored.migration ?? null,
  };
}
