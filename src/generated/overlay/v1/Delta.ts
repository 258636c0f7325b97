// Original file: proto/overlay/v1/sync.proto

import type { Resource as _overlay_v1_Resource, Resource__Output as _overlay_v1_Resource__Output } from '../../overlay/v1/Resource';
import type { ResourceKey as _overlay_v1_ResourceKey, ResourceKey__Output as _overlay_v1_ResourceKey__Output } from '../../overlay/v1/ResourceKey';
import type { Long } from '@grpc/proto-loader';

/**
 * Delta changes the span: upserts replace resources whole, removals delete them. A Delta
 * with neither only advances the revision (the span did not change); it is acked like any other.
 */
export interface Delta {
  /**
   * revision is the revision the agent holds once this delta is applied.
   */
  'revision'?: (number | string | Long);
  /**
   * upserts are resources added or replaced.
   */
  'upserts'?: (_overlay_v1_Resource)[];
  /**
   * removals are resources deleted; removing one the agent does not hold is not an error.
   */
  'removals'?: (_overlay_v1_ResourceKey)[];
  /**
   * record names the change record of revision, as SnapshotEnd.record does; empty when the
   * controller cannot name it.
   */
  'record'?: (string);
}

/**
 * Delta changes the span: upserts replace resources whole, removals delete them. A Delta
 * with neither only advances the revision (the span did not change); it is acked like any other.
 */
export interface Delta__Output {
  /**
   * revision is the revision the agent holds once this delta is applied.
   */
  'revision': (number);
  /**
   * upserts are resources added or replaced.
   */
  'upserts': (_overlay_v1_Resource__Output)[];
  /**
   * removals are resources deleted; removing one the agent does not hold is not an error.
   */
  'removals': (_overlay_v1_ResourceKey__Output)[];
  /**
   * record names the change record of revision, as SnapshotEnd.record does; empty when the
   * controller cannot name it.
   */
  'record': (string);
}
