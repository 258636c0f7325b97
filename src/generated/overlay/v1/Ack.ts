// Original file: proto/overlay/v1/sync.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Ack reports that the agent applied every change up to and including revision.
 */
export interface Ack {
  /**
   * revision is the revision applied.
   */
  'revision'?: (number | string | Long);
}

/**
 * Ack reports that the agent applied every change up to and including revision.
 */
export interface Ack__Output {
  /**
   * revision is the revision applied.
   */
  'revision': (number);
}
