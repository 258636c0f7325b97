// Original file: proto/overlay/v1/sync.proto

import type { AddressPair as _overlay_v1_AddressPair, AddressPair__Output as _overlay_v1_AddressPair__Output } from '../../overlay/v1/AddressPair';
import type { FirewallRule as _overlay_v1_FirewallRule, FirewallRule__Output as _overlay_v1_FirewallRule__Output } from '../../overlay/v1/FirewallRule';

/**
 * PortPolicy is the compiled firewall policy of a port bound to the receiving host. Rules whose
 * peer is a security group name the group's IP set (see IpSetMember), so membership changes
 * never change a policy.
 */
export interface PortPolicy {
  /**
   * port_id is the port the policy applies to.
   */
  'portId'?: (string);
  /**
   * port_security is false when nothing is filtered and no source is checked (allow all).
   */
  'portSecurity'?: (boolean);
  /**
   * mac is the port's MAC address (anti-spoofing).
   */
  'mac'?: (string);
  /**
   * ips are the port's IP addresses (anti-spoofing), sorted.
   */
  'ips'?: (string)[];
  /**
   * allowed_address_pairs are the other addresses the port may send from.
   */
  'allowedAddressPairs'?: (_overlay_v1_AddressPair)[];
  /**
   * ingress are the allow rules for traffic to the port; none = drop all (with port security).
   */
  'ingress'?: (_overlay_v1_FirewallRule)[];
  /**
   * egress are the allow rules for traffic from the port; none = drop all (with port security).
   */
  'egress'?: (_overlay_v1_FirewallRule)[];
}

/**
 * PortPolicy is the compiled firewall policy of a port bound to the receiving host. Rules whose
 * peer is a security group name the group's IP set (see IpSetMember), so membership changes
 * never change a policy.
 */
export interface PortPolicy__Output {
  /**
   * port_id is the port the policy applies to.
   */
  'portId': (string);
  /**
   * port_security is false when nothing is filtered and no source is checked (allow all).
   */
  'portSecurity': (boolean);
  /**
   * mac is the port's MAC address (anti-spoofing).
   */
  'mac': (string);
  /**
   * ips are the port's IP addresses (anti-spoofing), sorted.
   */
  'ips': (string)[];
  /**
   * allowed_address_pairs are the other addresses the port may send from.
   */
  'allowedAddressPairs': (_overlay_v1_AddressPair__Output)[];
  /**
   * ingress are the allow rules for traffic to the port; none = drop all (with port security).
   */
  'ingress': (_overlay_v1_FirewallRule__Output)[];
  /**
   * egress are the allow rules for traffic from the port; none = drop all (with port security).
   */
  'egress': (_overlay_v1_FirewallRule__Output)[];
}
