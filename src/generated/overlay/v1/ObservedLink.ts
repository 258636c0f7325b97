// Original file: proto/overlay/v1/sync.proto

import type { ObservedTeam as _overlay_v1_ObservedTeam, ObservedTeam__Output as _overlay_v1_ObservedTeam__Output } from '../../overlay/v1/ObservedTeam';
import type { ObservedNic as _overlay_v1_ObservedNic, ObservedNic__Output as _overlay_v1_ObservedNic__Output } from '../../overlay/v1/ObservedNic';
import type { ObservedLldp as _overlay_v1_ObservedLldp, ObservedLldp__Output as _overlay_v1_ObservedLldp__Output } from '../../overlay/v1/ObservedLldp';

/**
 * ObservedLink is one network device.
 */
export interface ObservedLink {
  /**
   * name is the interface name (1-256 characters, unique in the inventory).
   */
  'name'?: (string);
  /**
   * kind is one of physical, bond, team, vlan, bridge, vxlan, loopback, dummy, other; the
   * controller reads any other value as other.
   */
  'kind'?: (string);
  /**
   * up says whether the device is operationally up (carrier).
   */
  'up'?: (boolean);
  /**
   * master is the bond, team or bridge the device is enslaved to; absent when none.
   */
  'master'?: (string);
  /**
   * team is set for bonds and teams: mode, link monitoring, members.
   */
  'team'?: (_overlay_v1_ObservedTeam | null);
  /**
   * nic is set for physical NICs: what sysfs says of the device.
   */
  'nic'?: (_overlay_v1_ObservedNic | null);
  /**
   * lldp is the upstream switch port LLDP names; unset when no neighbour was heard or the
   * host has no LLDP source.
   */
  'lldp'?: (_overlay_v1_ObservedLldp | null);
  /**
   * vlan_id is a VLAN device's 802.1Q id (1-4094); absent for other devices.
   */
  'vlanId'?: (number);
  /**
   * parent is a VLAN device's lower device; absent for other devices.
   */
  'parent'?: (string);
  '_master'?: "master";
  '_vlanId'?: "vlanId";
  '_parent'?: "parent";
}

/**
 * ObservedLink is one network device.
 */
export interface ObservedLink__Output {
  /**
   * name is the interface name (1-256 characters, unique in the inventory).
   */
  'name': (string);
  /**
   * kind is one of physical, bond, team, vlan, bridge, vxlan, loopback, dummy, other; the
   * controller reads any other value as other.
   */
  'kind': (string);
  /**
   * up says whether the device is operationally up (carrier).
   */
  'up': (boolean);
  /**
   * master is the bond, team or bridge the device is enslaved to; absent when none.
   */
  'master'?: (string);
  /**
   * team is set for bonds and teams: mode, link monitoring, members.
   */
  'team': (_overlay_v1_ObservedTeam__Output | null);
  /**
   * nic is set for physical NICs: what sysfs says of the device.
   */
  'nic': (_overlay_v1_ObservedNic__Output | null);
  /**
   * lldp is the upstream switch port LLDP names; unset when no neighbour was heard or the
   * host has no LLDP source.
   */
  'lldp': (_overlay_v1_ObservedLldp__Output | null);
  /**
   * vlan_id is a VLAN device's 802.1Q id (1-4094); absent for other devices.
   */
  'vlanId'?: (number);
  /**
   * parent is a VLAN device's lower device; absent for other devices.
   */
  'parent'?: (string);
  '_master'?: "master";
  '_vlanId'?: "vlanId";
  '_parent'?: "parent";
}
