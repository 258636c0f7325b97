// Original file: proto/overlay/v1/sync.proto

import type { ObservedTap as _overlay_v1_ObservedTap, ObservedTap__Output as _overlay_v1_ObservedTap__Output } from '../../overlay/v1/ObservedTap';
import type { ObservedBridge as _overlay_v1_ObservedBridge, ObservedBridge__Output as _overlay_v1_ObservedBridge__Output } from '../../overlay/v1/ObservedBridge';
import type { HostInventory as _overlay_v1_HostInventory, HostInventory__Output as _overlay_v1_HostInventory__Output } from '../../overlay/v1/HostInventory';

/**
 * HostObservation is what the agent observed of its host's kernel, sent after a pass that saw it
 * change and periodically; the controller keeps the latest whole, with the time it came: the
 * taps and bridges of the pass, and the host's inventory as last collected (links, bonds and
 * teams, NICs, LLDP neighbours, the devices that carry the VTEP).
 */
export interface HostObservation {
  /**
   * taps are the taps of the host's local ports (bound here, or prepared for a migration here).
   */
  'taps'?: (_overlay_v1_ObservedTap)[];
  /**
   * bridges are the agent's segment bridges (br<vni>).
   */
  'bridges'?: (_overlay_v1_ObservedBridge)[];
  /**
   * inventory is the host's network inventory as the agent last collected it; absent when the
   * agent collects none (an older agent, OVERLAY_INVENTORY_INTERVAL_MS=0, or not yet collected):
   * the controller then stores and shows it as null (unknown), never as an empty host.
   */
  'inventory'?: (_overlay_v1_HostInventory | null);
}

/**
 * HostObservation is what the agent observed of its host's kernel, sent after a pass that saw it
 * change and periodically; the controller keeps the latest whole, with the time it came: the
 * taps and bridges of the pass, and the host's inventory as last collected (links, bonds and
 * teams, NICs, LLDP neighbours, the devices that carry the VTEP).
 */
export interface HostObservation__Output {
  /**
   * taps are the taps of the host's local ports (bound here, or prepared for a migration here).
   */
  'taps': (_overlay_v1_ObservedTap__Output)[];
  /**
   * bridges are the agent's segment bridges (br<vni>).
   */
  'bridges': (_overlay_v1_ObservedBridge__Output)[];
  /**
   * inventory is the host's network inventory as the agent last collected it; absent when the
   * agent collects none (an older agent, OVERLAY_INVENTORY_INTERVAL_MS=0, or not yet collected):
   * the controller then stores and shows it as null (unknown), never as an empty host.
   */
  'inventory': (_overlay_v1_HostInventory__Output | null);
}
