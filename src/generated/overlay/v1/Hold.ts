// Original file: proto/overlay/v1/sync.proto


/**
 * Hold tells the agent to keep everything it has programmed: the controller's store lost data
 * and an operator has to accept the store's state or restore the lost one. Nothing else follows
 * on this stream; it ends when the recovery is over (or the controller goes), and the agent
 * connects again as after any lost stream: resumed with deltas when the store kept its history,
 * a snapshot of the accepted state otherwise.
 */
export interface Hold {
  /**
   * reason is why, for the agent's log.
   */
  'reason'?: (string);
}

/**
 * Hold tells the agent to keep everything it has programmed: the controller's store lost data
 * and an operator has to accept the store's state or restore the lost one. Nothing else follows
 * on this stream; it ends when the recovery is over (or the controller goes), and the agent
 * connects again as after any lost stream: resumed with deltas when the store kept its history,
 * a snapshot of the accepted state otherwise.
 */
export interface Hold__Output {
  /**
   * reason is why, for the agent's log.
   */
  'reason': (string);
}
