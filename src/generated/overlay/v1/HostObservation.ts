// Original file: proto/overlay/v1/sync.proto

import type { ObservedTap as _overlay_v1_ObservedTap, ObservedTap__Output as _overlay_v1_ObservedTap__Output } from '../../overlay/v1/ObservedTap';
import type { ObservedBridge as _overlay_v1_ObservedBridge, ObservedBridge__Output as _overlay_v1_ObservedBridge__Output } from '../../overlay/v1/ObservedBridge';

/**
 * HostObservation is what the agent observed of its host's kernel, sent after a pass that saw it
 * change and periodically; the controller keeps the latest whole, with the time it came. The
 * first part of the host's observed inventory: later versions add links, bonds, NICs, LLDP
 * neighbours and the routes to remote VTEPs.
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
}

/**
 * HostObservation is what the agent observed of its host's kernel, sent after a pass that saw it
 * change and periodically; the controller keeps the latest whole, with the time it came. The
 * first part of the host's observed inventory: later versions add links, bonds, NICs, LLDP
 * neighbours and the routes to remote VTEPs.
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
}
