// Original file: proto/overlay/v1/sync.proto


/**
 * VmArrived reports the first frame of a migrating VM on a port prepared on this host (the
 * announcement a hypervisor sends when the VM resumes: RARP or gratuitous ARP). The controller
 * commits the migration if this host is its destination and it is ready.
 */
export interface VmArrived {
  /**
   * migration_id is the migration the port is prepared for (Port.migration_id).
   */
  'migrationId'?: (string);
  /**
   * port_id is the port the frame came from.
   */
  'portId'?: (string);
}

/**
 * VmArrived reports the first frame of a migrating VM on a port prepared on this host (the
 * announcement a hypervisor sends when the VM resumes: RARP or gratuitous ARP). The controller
 * commits the migration if this host is its destination and it is ready.
 */
export interface VmArrived__Output {
  /**
   * migration_id is the migration the port is prepared for (Port.migration_id).
   */
  'migrationId': (string);
  /**
   * port_id is the port the frame came from.
   */
  'portId': (string);
}
