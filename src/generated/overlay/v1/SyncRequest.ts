// Original file: proto/overlay/v1/sync.proto

import type { Hello as _overlay_v1_Hello, Hello__Output as _overlay_v1_Hello__Output } from '../../overlay/v1/Hello';
import type { Ack as _overlay_v1_Ack, Ack__Output as _overlay_v1_Ack__Output } from '../../overlay/v1/Ack';
import type { Nack as _overlay_v1_Nack, Nack__Output as _overlay_v1_Nack__Output } from '../../overlay/v1/Nack';
import type { VmArrived as _overlay_v1_VmArrived, VmArrived__Output as _overlay_v1_VmArrived__Output } from '../../overlay/v1/VmArrived';

/**
 * SyncRequest is one message from the agent to the controller.
 */
export interface SyncRequest {
  /**
   * hello opens the stream; it must be the first message and is sent once.
   */
  'hello'?: (_overlay_v1_Hello | null);
  /**
   * ack reports a revision applied.
   */
  'ack'?: (_overlay_v1_Ack | null);
  /**
   * nack reports a revision that could not be applied.
   */
  'nack'?: (_overlay_v1_Nack | null);
  /**
   * vm_arrived reports that a migrating VM showed up on this (the destination) host.
   */
  'vmArrived'?: (_overlay_v1_VmArrived | null);
  /**
   * message is the request's payload.
   */
  'message'?: "hello"|"ack"|"nack"|"vmArrived";
}

/**
 * SyncRequest is one message from the agent to the controller.
 */
export interface SyncRequest__Output {
  /**
   * hello opens the stream; it must be the first message and is sent once.
   */
  'hello'?: (_overlay_v1_Hello__Output | null);
  /**
   * ack reports a revision applied.
   */
  'ack'?: (_overlay_v1_Ack__Output | null);
  /**
   * nack reports a revision that could not be applied.
   */
  'nack'?: (_overlay_v1_Nack__Output | null);
  /**
   * vm_arrived reports that a migrating VM showed up on this (the destination) host.
   */
  'vmArrived'?: (_overlay_v1_VmArrived__Output | null);
  /**
   * message is the request's payload.
   */
  'message'?: "hello"|"ack"|"nack"|"vmArrived";
}
