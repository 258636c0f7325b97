// Original file: proto/overlay/v1/sync.proto

/**
 * ResourceKind says what kind of object a resource is.
 */
export const ResourceKind = {
  /**
   * RESOURCE_KIND_UNSPECIFIED is never sent.
   */
  RESOURCE_KIND_UNSPECIFIED: 'RESOURCE_KIND_UNSPECIFIED',
  /**
   * RESOURCE_KIND_SEGMENT is a Segment.
   */
  RESOURCE_KIND_SEGMENT: 'RESOURCE_KIND_SEGMENT',
  /**
   * RESOURCE_KIND_PORT is a Port.
   */
  RESOURCE_KIND_PORT: 'RESOURCE_KIND_PORT',
  /**
   * RESOURCE_KIND_POLICY is a PortPolicy; its key id is the port id.
   */
  RESOURCE_KIND_POLICY: 'RESOURCE_KIND_POLICY',
  /**
   * RESOURCE_KIND_MEMBER is an IpSetMember; its key id is "<group_id>/<family>/<cidr>".
   */
  RESOURCE_KIND_MEMBER: 'RESOURCE_KIND_MEMBER',
  /**
   * RESOURCE_KIND_MIRROR is a MirrorTap; its key id is "<session_id>/<port_id>".
   */
  RESOURCE_KIND_MIRROR: 'RESOURCE_KIND_MIRROR',
  /**
   * RESOURCE_KIND_MIRROR_SINK is a MirrorSink; its key id is the session id.
   */
  RESOURCE_KIND_MIRROR_SINK: 'RESOURCE_KIND_MIRROR_SINK',
} as const;

/**
 * ResourceKind says what kind of object a resource is.
 */
export type ResourceKind =
  /**
   * RESOURCE_KIND_UNSPECIFIED is never sent.
   */
  | 'RESOURCE_KIND_UNSPECIFIED'
  | 0
  /**
   * RESOURCE_KIND_SEGMENT is a Segment.
   */
  | 'RESOURCE_KIND_SEGMENT'
  | 1
  /**
   * RESOURCE_KIND_PORT is a Port.
   */
  | 'RESOURCE_KIND_PORT'
  | 2
  /**
   * RESOURCE_KIND_POLICY is a PortPolicy; its key id is the port id.
   */
  | 'RESOURCE_KIND_POLICY'
  | 3
  /**
   * RESOURCE_KIND_MEMBER is an IpSetMember; its key id is "<group_id>/<family>/<cidr>".
   */
  | 'RESOURCE_KIND_MEMBER'
  | 4
  /**
   * RESOURCE_KIND_MIRROR is a MirrorTap; its key id is "<session_id>/<port_id>".
   */
  | 'RESOURCE_KIND_MIRROR'
  | 5
  /**
   * RESOURCE_KIND_MIRROR_SINK is a MirrorSink; its key id is the session id.
   */
  | 'RESOURCE_KIND_MIRROR_SINK'
  | 6

/**
 * ResourceKind says what kind of object a resource is.
 */
export type ResourceKind__Output = typeof ResourceKind[keyof typeof ResourceKind]
