// Original file: proto/overlay/v1/sync.proto

import type { MirrorTapCounters as _overlay_v1_MirrorTapCounters, MirrorTapCounters__Output as _overlay_v1_MirrorTapCounters__Output } from '../../overlay/v1/MirrorTapCounters';

/**
 * MirrorCounters is what the host's mirror taps copied since they were programmed, sent by the
 * agent after a pass that changed them and periodically.
 */
export interface MirrorCounters {
  /**
   * entries are one per mirror tap of the span.
   */
  'entries'?: (_overlay_v1_MirrorTapCounters)[];
}

/**
 * MirrorCounters is what the host's mirror taps copied since they were programmed, sent by the
 * agent after a pass that changed them and periodically.
 */
export interface MirrorCounters__Output {
  /**
   * entries are one per mirror tap of the span.
   */
  'entries': (_overlay_v1_MirrorTapCounters__Output)[];
}
