// Original file: proto/overlay/v1/sync.proto

import type { Segment as _overlay_v1_Segment, Segment__Output as _overlay_v1_Segment__Output } from '../../overlay/v1/Segment';
import type { Port as _overlay_v1_Port, Port__Output as _overlay_v1_Port__Output } from '../../overlay/v1/Port';

/**
 * Resource is one object of a span.
 */
export interface Resource {
  /**
   * segment is a segment the host has a port on.
   */
  'segment'?: (_overlay_v1_Segment | null);
  /**
   * port is a bound port on one of those segments.
   */
  'port'?: (_overlay_v1_Port | null);
  /**
   * resource is the object.
   */
  'resource'?: "segment"|"port";
}

/**
 * Resource is one object of a span.
 */
export interface Resource__Output {
  /**
   * segment is a segment the host has a port on.
   */
  'segment'?: (_overlay_v1_Segment__Output | null);
  /**
   * port is a bound port on one of those segments.
   */
  'port'?: (_overlay_v1_Port__Output | null);
  /**
   * resource is the object.
   */
  'resource'?: "segment"|"port";
}
