// Original file: proto/overlay/v1/sync.proto

import type { ResourceKind as _overlay_v1_ResourceKind, ResourceKind__Output as _overlay_v1_ResourceKind__Output } from '../../overlay/v1/ResourceKind';

/**
 * ResourceKey names one resource of a span.
 */
export interface ResourceKey {
  /**
   * kind is the resource's kind.
   */
  'kind'?: (_overlay_v1_ResourceKind);
  /**
   * id is the resource's id: a segment id, a port id (for a port or its policy), or
   * "<group_id>/<family>/<cidr>" for an IP-set member.
   */
  'id'?: (string);
}

/**
 * ResourceKey names one resource of a span.
 */
export interface ResourceKey__Output {
  /**
   * kind is the resource's kind.
   */
  'kind': (_overlay_v1_ResourceKind__Output);
  /**
   * id is the resource's id: a segment id, a port id (for a port or its policy), or
   * "<group_id>/<family>/<cidr>" for an IP-set member.
   */
  'id': (string);
}
