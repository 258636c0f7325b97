// Original file: proto/overlay/v1/sync.proto

import type { Long } from '@grpc/proto-loader';

/**
 * MirrorTapCounters is one mirror tap's state on the host.
 */
export interface MirrorTapCounters {
  /**
   * id is the mirror tap's key id, "<session_id>/<port_id>".
   */
  'id'?: (string);
  /**
   * packets and bytes copied (both directions).
   */
  'packets'?: (number | string | Long);
  'bytes'?: (number | string | Long);
  /**
   * error says why the tap is not programmed; empty when it is.
   */
  'error'?: (string);
}

/**
 * MirrorTapCounters is one mirror tap's state on the host.
 */
export interface MirrorTapCounters__Output {
  /**
   * id is the mirror tap's key id, "<session_id>/<port_id>".
   */
  'id': (string);
  /**
   * packets and bytes copied (both directions).
   */
  'packets': (number);
  'bytes': (number);
  /**
   * error says why the tap is not programmed; empty when it is.
   */
  'error': (string);
}
