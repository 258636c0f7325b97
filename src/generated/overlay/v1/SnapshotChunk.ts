// Original file: proto/overlay/v1/sync.proto

import type { Resource as _overlay_v1_Resource, Resource__Output as _overlay_v1_Resource__Output } from '../../overlay/v1/Resource';
import type { Long } from '@grpc/proto-loader';

/**
 * SnapshotChunk carries part of the host's whole span at revision. Chunks of one snapshot
 * share the revision; the agent stages them and changes nothing until SnapshotEnd.
 */
export interface SnapshotChunk {
  /**
   * revision is the revision of the state the snapshot shows.
   */
  'revision'?: (number | string | Long);
  /**
   * epoch identifies the controller state the revision belongs to.
   */
  'epoch'?: (string);
  /**
   * resources are some of the span's resources.
   */
  'resources'?: (_overlay_v1_Resource)[];
}

/**
 * SnapshotChunk carries part of the host's whole span at revision. Chunks of one snapshot
 * share the revision; the agent stages them and changes nothing until SnapshotEnd.
 */
export interface SnapshotChunk__Output {
  /**
   * revision is the revision of the state the snapshot shows.
   */
  'revision': (number);
  /**
   * epoch identifies the controller state the revision belongs to.
   */
  'epoch': (string);
  /**
   * resources are some of the span's resources.
   */
  'resources': (_overlay_v1_Resource__Output)[];
}
