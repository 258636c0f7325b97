// Original file: proto/overlay/v1/sync.proto

import type { Segment as _overlay_v1_Segment, Segment__Output as _overlay_v1_Segment__Output } from '../../overlay/v1/Segment';
import type { Port as _overlay_v1_Port, Port__Output as _overlay_v1_Port__Output } from '../../overlay/v1/Port';
import type { PortPolicy as _overlay_v1_PortPolicy, PortPolicy__Output as _overlay_v1_PortPolicy__Output } from '../../overlay/v1/PortPolicy';
import type { IpSetMember as _overlay_v1_IpSetMember, IpSetMember__Output as _overlay_v1_IpSetMember__Output } from '../../overlay/v1/IpSetMember';
import type { MirrorTap as _overlay_v1_MirrorTap, MirrorTap__Output as _overlay_v1_MirrorTap__Output } from '../../overlay/v1/MirrorTap';
import type { MirrorSink as _overlay_v1_MirrorSink, MirrorSink__Output as _overlay_v1_MirrorSink__Output } from '../../overlay/v1/MirrorSink';

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
   * policy is the compiled firewall policy of one of the host's own ports.
   */
  'policy'?: (_overlay_v1_PortPolicy | null);
  /**
   * member is one entry of the IP set of a security group that the host's policies reference.
   */
  'member'?: (_overlay_v1_IpSetMember | null);
  /**
   * mirror is a mirror session's source on one of the host's own ports.
   */
  'mirror'?: (_overlay_v1_MirrorTap | null);
  /**
   * mirror_sink is the receiving end of a mirror session on the host of its sink.
   */
  'mirrorSink'?: (_overlay_v1_MirrorSink | null);
  /**
   * resource is the object.
   */
  'resource'?: "segment"|"port"|"policy"|"member"|"mirror"|"mirrorSink";
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
   * policy is the compiled firewall policy of one of the host's own ports.
   */
  'policy'?: (_overlay_v1_PortPolicy__Output | null);
  /**
   * member is one entry of the IP set of a security group that the host's policies reference.
   */
  'member'?: (_overlay_v1_IpSetMember__Output | null);
  /**
   * mirror is a mirror session's source on one of the host's own ports.
   */
  'mirror'?: (_overlay_v1_MirrorTap__Output | null);
  /**
   * mirror_sink is the receiving end of a mirror session on the host of its sink.
   */
  'mirrorSink'?: (_overlay_v1_MirrorSink__Output | null);
  /**
   * resource is the object.
   */
  'resource'?: "segment"|"port"|"policy"|"member"|"mirror"|"mirrorSink";
}
