// Original file: proto/overlay/v1/sync.proto


/**
 * Port is a bound port of a segment in the span. It is local when host_id is the receiving
 * host's; otherwise it is a remote entry: frames for mac go to vtep_ip.
 */
export interface Port {
  /**
   * id is the port's id.
   */
  'id'?: (string);
  /**
   * segment_id is the segment the port is on.
   */
  'segmentId'?: (string);
  /**
   * mac is the port's MAC address, lower case with colons.
   */
  'mac'?: (string);
  /**
   * ips are the port's IP addresses.
   */
  'ips'?: (string)[];
  /**
   * host_id is the host the port is bound to.
   */
  'hostId'?: (string);
  /**
   * vtep_ip is that host's VTEP address.
   */
  'vtepIp'?: (string);
  /**
   * vm_id is the VM the port belongs to, empty when unknown.
   */
  'vmId'?: (string);
  /**
   * prepared_host_id is the host the port is prepared on for an incoming live migration, empty
   * when none. That host installs the port (tap, policy) closed to all but its rules, while
   * host_id and vtep_ip still say where the VM runs and where peers send its frames.
   */
  'preparedHostId'?: (string);
  /**
   * migration_id is the id of that migration, empty when none (an agent that sees the VM arrive
   * may commit it).
   */
  'migrationId'?: (string);
  /**
   * prepared_vtep_ip is the VTEP of prepared_host_id, empty when none. While a migration is
   * open, peers send the VM's frames to both vtep_ip and prepared_vtep_ip, so they reach it
   * wherever it runs at that instant; the commit leaves only the destination.
   */
  'preparedVtepIp'?: (string);
  /**
   * analyzer is true for an analyzer port: it receives mirrored copies only (a mirror session's
   * sink), and is never attached to its segment's bridge, nor a destination of forwarding entries.
   */
  'analyzer'?: (boolean);
  /**
   * tap_name is the name of the port's tap on its host, as the hypervisor named it; empty when
   * not given: the agent then looks for the tap by its port-id name, then by MAC (the port's MAC
   * with the first octet 0xfe, as libvirt sets it).
   */
  'tapName'?: (string);
}

/**
 * Port is a bound port of a segment in the span. It is local when host_id is the receiving
 * host's; otherwise it is a remote entry: frames for mac go to vtep_ip.
 */
export interface Port__Output {
  /**
   * id is the port's id.
   */
  'id': (string);
  /**
   * segment_id is the segment the port is on.
   */
  'segmentId': (string);
  /**
   * mac is the port's MAC address, lower case with colons.
   */
  'mac': (string);
  /**
   * ips are the port's IP addresses.
   */
  'ips': (string)[];
  /**
   * host_id is the host the port is bound to.
   */
  'hostId': (string);
  /**
   * vtep_ip is that host's VTEP address.
   */
  'vtepIp': (string);
  /**
   * vm_id is the VM the port belongs to, empty when unknown.
   */
  'vmId': (string);
  /**
   * prepared_host_id is the host the port is prepared on for an incoming live migration, empty
   * when none. That host installs the port (tap, policy) closed to all but its rules, while
   * host_id and vtep_ip still say where the VM runs and where peers send its frames.
   */
  'preparedHostId': (string);
  /**
   * migration_id is the id of that migration, empty when none (an agent that sees the VM arrive
   * may commit it).
   */
  'migrationId': (string);
  /**
   * prepared_vtep_ip is the VTEP of prepared_host_id, empty when none. While a migration is
   * open, peers send the VM's frames to both vtep_ip and prepared_vtep_ip, so they reach it
   * wherever it runs at that instant; the commit leaves only the destination.
   */
  'preparedVtepIp': (string);
  /**
   * analyzer is true for an analyzer port: it receives mirrored copies only (a mirror session's
   * sink), and is never attached to its segment's bridge, nor a destination of forwarding entries.
   */
  'analyzer': (boolean);
  /**
   * tap_name is the name of the port's tap on its host, as the hypervisor named it; empty when
   * not given: the agent then looks for the tap by its port-id name, then by MAC (the port's MAC
   * with the first octet 0xfe, as libvirt sets it).
   */
  'tapName': (string);
}
