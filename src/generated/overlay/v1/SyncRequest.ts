// Original file: proto/overlay/v1/sync.proto

import type { Hello as _overlay_v1_Hello, Hello__Output as _overlay_v1_Hello__Output } from '../../overlay/v1/Hello';
import type { Ack as _overlay_v1_Ack, Ack__Output as _overlay_v1_Ack__Output } from '../../overlay/v1/Ack';
import type { Nack as _overlay_v1_Nack, Nack__Output as _overlay_v1_Nack__Output } from '../../overlay/v1/Nack';
import type { VmArrived as _overlay_v1_VmArrived, VmArrived__Output as _overlay_v1_VmArrived__Output } from '../../overlay/v1/VmArrived';
import type { ConnectionBatch as _overlay_v1_ConnectionBatch, ConnectionBatch__Output as _overlay_v1_ConnectionBatch__Output } from '../../overlay/v1/ConnectionBatch';
import type { ConnectionsInstalled as _overlay_v1_ConnectionsInstalled, ConnectionsInstalled__Output as _overlay_v1_ConnectionsInstalled__Output } from '../../overlay/v1/ConnectionsInstalled';
import type { MirrorCounters as _overlay_v1_MirrorCounters, MirrorCounters__Output as _overlay_v1_MirrorCounters__Output } from '../../overlay/v1/MirrorCounters';
import type { HostObservation as _overlay_v1_HostObservation, HostObservation__Output as _overlay_v1_HostObservation__Output } from '../../overlay/v1/HostObservation';

/**
 * SyncRequest is one message from the agent to the controller. What the agent says is input:
 * the controller accepts only what the protocol allows, and ends the stream of an agent that
 * breaks it with INVALID_ARGUMENT (the details say why; the controller logs it naming the host).
 * Nothing such a message claims is recorded: the host's applied revision, lag and last error
 * stay as they were. Per message:
 * - a message that does not decode, or with no payload: INVALID_ARGUMENT;
 * - any message after the Hello and before the controller's first answer: INVALID_ARGUMENT;
 * - hello: the first message, once (see Hello for what is checked; a refused Hello ends with
 * the status it names there); a second one: INVALID_ARGUMENT;
 * - ack, nack: of a revision this stream carried (a SnapshotEnd's, a Delta's; empty Deltas
 * included), or the Hello's applied_revision when the stream resumed from it; any other:
 * INVALID_ARGUMENT; an ack's failed_ports within the bounds Ack names, else INVALID_ARGUMENT
 * (and the ack is not recorded);
 * - vm_arrived: for a port of a migration whose destination is this host (a migration that
 * closed meanwhile is ignored); any other: INVALID_ARGUMENT;
 * - connection_export: from the migration's source host, for one of its ports, at most 4096
 * connections (entries the controller cannot carry are dropped one by one); any other:
 * INVALID_ARGUMENT;
 * - connections_installed: from the migration's destination host, for one of its ports; any
 * other: INVALID_ARGUMENT;
 * - mirror_counters: at most 4096 entries, each naming a mirror tap id once, counts up to
 * 2^53 - 1; entries naming a mirror tap not in the host's span are ignored; any other:
 * INVALID_ARGUMENT;
 * - observed: at most 4096 taps and 4096 bridges, each port id (1-64 characters) and each VNI
 * (1-16777215) named once; taps of ports not local to the host in its span, and bridges of
 * VNIs that are no segment of its span, are ignored; an inventory within the bounds
 * HostInventory names; any other: INVALID_ARGUMENT.
 */
export interface SyncRequest {
  /**
   * hello opens the stream; it must be the first message and is sent once.
   */
  'hello'?: (_overlay_v1_Hello | null);
  /**
   * ack reports a revision applied; only a revision this stream carried counts.
   */
  'ack'?: (_overlay_v1_Ack | null);
  /**
   * nack reports a revision that could not be applied; only a revision this stream carried.
   */
  'nack'?: (_overlay_v1_Nack | null);
  /**
   * vm_arrived reports that a migrating VM showed up on this (the destination) host.
   */
  'vmArrived'?: (_overlay_v1_VmArrived | null);
  /**
   * connection_export carries tracked connections of a port migrating away from this (the
   * source) host, for the controller to hand to the destination.
   */
  'connectionExport'?: (_overlay_v1_ConnectionBatch | null);
  /**
   * connections_installed reports that this (the destination) host installed the connections
   * handed to it, up to the batch marked complete.
   */
  'connectionsInstalled'?: (_overlay_v1_ConnectionsInstalled | null);
  /**
   * mirror_counters reports what this host's mirror taps copied, and those it could not program.
   */
  'mirrorCounters'?: (_overlay_v1_MirrorCounters | null);
  /**
   * observed is what the agent observed of its host's kernel, replacing what it said before.
   */
  'observed'?: (_overlay_v1_HostObservation | null);
  /**
   * message is the request's payload.
   */
  'message'?: "hello"|"ack"|"nack"|"vmArrived"|"connectionExport"|"connectionsInstalled"|"mirrorCounters"|"observed";
}

/**
 * SyncRequest is one message from the agent to the controller. What the agent says is input:
 * the controller accepts only what the protocol allows, and ends the stream of an agent that
 * breaks it with INVALID_ARGUMENT (the details say why; the controller logs it naming the host).
 * Nothing such a message claims is recorded: the host's applied revision, lag and last error
 * stay as they were. Per message:
 * - a message that does not decode, or with no payload: INVALID_ARGUMENT;
 * - any message after the Hello and before the controller's first answer: INVALID_ARGUMENT;
 * - hello: the first message, once (see Hello for what is checked; a refused Hello ends with
 * the status it names there); a second one: INVALID_ARGUMENT;
 * - ack, nack: of a revision this stream carried (a SnapshotEnd's, a Delta's; empty Deltas
 * included), or the Hello's applied_revision when the stream resumed from it; any other:
 * INVALID_ARGUMENT; an ack's failed_ports within the bounds Ack names, else INVALID_ARGUMENT
 * (and the ack is not recorded);
 * - vm_arrived: for a port of a migration whose destination is this host (a migration that
 * closed meanwhile is ignored); any other: INVALID_ARGUMENT;
 * - connection_export: from the migration's source host, for one of its ports, at most 4096
 * connections (entries the controller cannot carry are dropped one by one); any other:
 * INVALID_ARGUMENT;
 * - connections_installed: from the migration's destination host, for one of its ports; any
 * other: INVALID_ARGUMENT;
 * - mirror_counters: at most 4096 entries, each naming a mirror tap id once, counts up to
 * 2^53 - 1; entries naming a mirror tap not in the host's span are ignored; any other:
 * INVALID_ARGUMENT;
 * - observed: at most 4096 taps and 4096 bridges, each port id (1-64 characters) and each VNI
 * (1-16777215) named once; taps of ports not local to the host in its span, and bridges of
 * VNIs that are no segment of its span, are ignored; an inventory within the bounds
 * HostInventory names; any other: INVALID_ARGUMENT.
 */
export interface SyncRequest__Output {
  /**
   * hello opens the stream; it must be the first message and is sent once.
   */
  'hello'?: (_overlay_v1_Hello__Output | null);
  /**
   * ack reports a revision applied; only a revision this stream carried counts.
   */
  'ack'?: (_overlay_v1_Ack__Output | null);
  /**
   * nack reports a revision that could not be applied; only a revision this stream carried.
   */
  'nack'?: (_overlay_v1_Nack__Output | null);
  /**
   * vm_arrived reports that a migrating VM showed up on this (the destination) host.
   */
  'vmArrived'?: (_overlay_v1_VmArrived__Output | null);
  /**
   * connection_export carries tracked connections of a port migrating away from this (the
   * source) host, for the controller to hand to the destination.
   */
  'connectionExport'?: (_overlay_v1_ConnectionBatch__Output | null);
  /**
   * connections_installed reports that this (the destination) host installed the connections
   * handed to it, up to the batch marked complete.
   */
  'connectionsInstalled'?: (_overlay_v1_ConnectionsInstalled__Output | null);
  /**
   * mirror_counters reports what this host's mirror taps copied, and those it could not program.
   */
  'mirrorCounters'?: (_overlay_v1_MirrorCounters__Output | null);
  /**
   * observed is what the agent observed of its host's kernel, replacing what it said before.
   */
  'observed'?: (_overlay_v1_HostObservation__Output | null);
  /**
   * message is the request's payload.
   */
  'message'?: "hello"|"ack"|"nack"|"vmArrived"|"connectionExport"|"connectionsInstalled"|"mirrorCounters"|"observed";
}
