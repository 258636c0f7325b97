// Original file: proto/overlay/v1/sync.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Nack reports that the agent could not apply revision; it keeps its last good state.
 */
export interface Nack {
  /**
   * revision is the revision that failed.
   */
  'revision'?: (number | string | Long);
  /**
   * error says why, for the operator.
   */
  'error'?: (string);
}

/**
 * Nack reports that the agent could not apply revision; it keeps its last good state.
 */
export interface Nack__Output {
  /**
   * revision is the revision that failed.
   */
  'revision': (number);
  /**
   * error says why, for the operator.
   */
  'error': (string);
}
