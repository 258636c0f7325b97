// Original file: proto/overlay/v1/sync.proto

import type { ObservedLink as _overlay_v1_ObservedLink, ObservedLink__Output as _overlay_v1_ObservedLink__Output } from '../../overlay/v1/ObservedLink';
import type { VtepRoute as _overlay_v1_VtepRoute, VtepRoute__Output as _overlay_v1_VtepRoute__Output } from '../../overlay/v1/VtepRoute';

/**
 * HostInventory is what the agent observed of its host's network (NIST SP 800-125B VM-MP-R1..R3,
 * VM-VN-R1). Conventions: a field the agent could not read is absent (proto3 `optional` for
 * scalars, an unset message for groups) and the controller stores it as null (unknown); a
 * repeated field is what was read, empty when there is none. The controller accepts at most 256
 * links, 64 members per team, 4096 VLANs per LLDP neighbour, 256 VTEP routes of at most 64
 * devices, every string at most 256 characters, names 1-256 characters and unique among links,
 * VLAN ids 1-4094, NUMA nodes 0-65535; anything else ends the stream with INVALID_ARGUMENT and
 * nothing of the message is stored. Each string is kept with its line breaks as spaces and its
 * other control and bidirectional characters removed (LLDP fields are what the other end says).
 */
export interface HostInventory {
  /**
   * links are the host's network devices (`ip -d -j link`), sorted by name.
   */
  'links'?: (_overlay_v1_ObservedLink)[];
  /**
   * vtep_device is the device the local VTEP address sits on (`ip -j addr show`): `lo` or a
   * dummy for routed redundancy, a bond, a NIC; absent when not found.
   */
  'vtepDevice'?: (string);
  /**
   * vtep_routes are the devices `ip -j route get <peer VTEP>` sends through, for up to 8 peer
   * VTEPs of the span (sampled deterministically); several devices with multipath.
   */
  'vtepRoutes'?: (_overlay_v1_VtepRoute)[];
  '_vtepDevice'?: "vtepDevice";
}

/**
 * HostInventory is what the agent observed of its host's network (NIST SP 800-125B VM-MP-R1..R3,
 * VM-VN-R1). Conventions: a field the agent could not read is absent (proto3 `optional` for
 * scalars, an unset message for groups) and the controller stores it as null (unknown); a
 * repeated field is what was read, empty when there is none. The controller accepts at most 256
 * links, 64 members per team, 4096 VLANs per LLDP neighbour, 256 VTEP routes of at most 64
 * devices, every string at most 256 characters, names 1-256 characters and unique among links,
 * VLAN ids 1-4094, NUMA nodes 0-65535; anything else ends the stream with INVALID_ARGUMENT and
 * nothing of the message is stored. Each string is kept with its line breaks as spaces and its
 * other control and bidirectional characters removed (LLDP fields are what the other end says).
 */
export interface HostInventory__Output {
  /**
   * links are the host's network devices (`ip -d -j link`), sorted by name.
   */
  'links': (_overlay_v1_ObservedLink__Output)[];
  /**
   * vtep_device is the device the local VTEP address sits on (`ip -j addr show`): `lo` or a
   * dummy for routed redundancy, a bond, a NIC; absent when not found.
   */
  'vtepDevice'?: (string);
  /**
   * vtep_routes are the devices `ip -j route get <peer VTEP>` sends through, for up to 8 peer
   * VTEPs of the span (sampled deterministically); several devices with multipath.
   */
  'vtepRoutes': (_overlay_v1_VtepRoute__Output)[];
  '_vtepDevice'?: "vtepDevice";
}
