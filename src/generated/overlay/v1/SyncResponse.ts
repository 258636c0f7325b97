// Original file: proto/overlay/v1/sync.proto

import type { SnapshotChunk as _overlay_v1_SnapshotChunk, SnapshotChunk__Output as _overlay_v1_SnapshotChunk__Output } from '../../overlay/v1/SnapshotChunk';
import type { SnapshotEnd as _overlay_v1_SnapshotEnd, SnapshotEnd__Output as _overlay_v1_SnapshotEnd__Output } from '../../overlay/v1/SnapshotEnd';
import type { Delta as _overlay_v1_Delta, Delta__Output as _overlay_v1_Delta__Output } from '../../overlay/v1/Delta';
import type { ConnectionBatch as _overlay_v1_ConnectionBatch, ConnectionBatch__Output as _overlay_v1_ConnectionBatch__Output } from '../../overlay/v1/ConnectionBatch';
import type { Hold as _overlay_v1_Hold, Hold__Output as _overlay_v1_Hold__Output } from '../../overlay/v1/Hold';

/**
 * SyncResponse is one message from the controller to the agent.
 */
export interface SyncResponse {
  /**
   * snapshot_chunk is part of a full snapshot of the span.
   */
  'snapshotChunk'?: (_overlay_v1_SnapshotChunk | null);
  /**
   * snapshot_end closes a snapshot.
   */
  'snapshotEnd'?: (_overlay_v1_SnapshotEnd | null);
  /**
   * delta is the change made to the span by one revision (or a run of revisions on resume).
   */
  'delta'?: (_overlay_v1_Delta | null);
  /**
   * connections are tracked connections of a port prepared on this host for an incoming
   * migration (see ConnectionBatch); the agent inserts them and answers ConnectionsInstalled
   * after the batch marked complete.
   */
  'connections'?: (_overlay_v1_ConnectionBatch | null);
  /**
   * hold says the controller's store is in recovery (it came back empty or older than what
   * was seen): the agent keeps its kernel state and its desired state on disk as they are, and
   * acknowledges nothing, until the stream ends; the next stream tells it what to do.
   */
  'hold'?: (_overlay_v1_Hold | null);
  /**
   * message is the response's payload.
   */
  'message'?: "snapshotChunk"|"snapshotEnd"|"delta"|"connections"|"hold";
}

/**
 * SyncResponse is one message from the controller to the agent.
 */
export interface SyncResponse__Output {
  /**
   * snapshot_chunk is part of a full snapshot of the span.
   */
  'snapshotChunk'?: (_overlay_v1_SnapshotChunk__Output | null);
  /**
   * snapshot_end closes a snapshot.
   */
  'snapshotEnd'?: (_overlay_v1_SnapshotEnd__Output | null);
  /**
   * delta is the change made to the span by one revision (or a run of revisions on resume).
   */
  'delta'?: (_overlay_v1_Delta__Output | null);
  /**
   * connections are tracked connections of a port prepared on this host for an incoming
   * migration (see ConnectionBatch); the agent inserts them and answers ConnectionsInstalled
   * after the batch marked complete.
   */
  'connections'?: (_overlay_v1_ConnectionBatch__Output | null);
  /**
   * hold says the controller's store is in recovery (it came back empty or older than what
   * was seen): the agent keeps its kernel state and its desired state on disk as they are, and
   * acknowledges nothing, until the stream ends; the next stream tells it what to do.
   */
  'hold'?: (_overlay_v1_Hold__Output | null);
  /**
   * message is the response's payload.
   */
  'message'?: "snapshotChunk"|"snapshotEnd"|"delta"|"connections"|"hold";
}
