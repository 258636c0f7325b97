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
 * ResourceKind says what kind of object a resource is.
 */
export type ResourceKind__Output = typeof ResourceKind[keyof typeof ResourceKind]
