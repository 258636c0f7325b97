// Original file: proto/overlay/v1/sync.proto


/**
 * Segment is a segment on which the host has at least one port.
 */
export interface Segment {
  /**
   * id is the segment's id.
   */
  'id'?: (string);
  /**
   * tenant_id is the tenant owning the segment.
   */
  'tenantId'?: (string);
  /**
   * vni is the segment's VXLAN network identifier.
   */
  'vni'?: (number);
  /**
   * vteps are the VTEP addresses of every host with a port on the segment, sorted, the
   * receiving host's own included (it skips it): the head-end replication (flood) list.
   */
  'vteps'?: (string)[];
}

/**
 * Segment is a segment on which the host has at least one port.
 */
export interface Segment__Output {
  /**
   * id is the segment's id.
   */
  'id': (string);
  /**
   * tenant_id is the tenant owning the segment.
   */
  'tenantId': (string);
  /**
   * vni is the segment's VXLAN network identifier.
   */
  'vni': (number);
  /**
   * vteps are the VTEP addresses of every host with a port on the segment, sorted, the
   * receiving host's own included (it skips it): the head-end replication (flood) list.
   */
  'vteps': (string)[];
}
