// Original file: proto/overlay/v1/sync.proto

import type { TeamMember as _overlay_v1_TeamMember, TeamMember__Output as _overlay_v1_TeamMember__Output } from '../../overlay/v1/TeamMember';

/**
 * ObservedTeam is a bond's or a team's mode and link monitoring, and its members.
 */
export interface ObservedTeam {
  /**
   * mode as the kernel (or teamd's runner) names it: active-backup, 802.3ad, balance-xor, ...
   */
  'mode'?: (string);
  /**
   * miimon is the MII link monitoring interval in ms; 0 = off.
   */
  'miimon'?: (number);
  /**
   * arp_interval is the ARP monitoring interval in ms; 0 = off.
   */
  'arpInterval'?: (number);
  /**
   * arp_validate is the ARP validation (none, active, backup, all, ...); absent when not
   * applicable (a team, a kernel that does not say).
   */
  'arpValidate'?: (string);
  /**
   * members are the enslaved devices (at most 64).
   */
  'members'?: (_overlay_v1_TeamMember)[];
  '_arpValidate'?: "arpValidate";
}

/**
 * ObservedTeam is a bond's or a team's mode and link monitoring, and its members.
 */
export interface ObservedTeam__Output {
  /**
   * mode as the kernel (or teamd's runner) names it: active-backup, 802.3ad, balance-xor, ...
   */
  'mode': (string);
  /**
   * miimon is the MII link monitoring interval in ms; 0 = off.
   */
  'miimon': (number);
  /**
   * arp_interval is the ARP monitoring interval in ms; 0 = off.
   */
  'arpInterval': (number);
  /**
   * arp_validate is the ARP validation (none, active, backup, all, ...); absent when not
   * applicable (a team, a kernel that does not say).
   */
  'arpValidate'?: (string);
  /**
   * members are the enslaved devices (at most 64).
   */
  'members': (_overlay_v1_TeamMember__Output)[];
  '_arpValidate'?: "arpValidate";
}
