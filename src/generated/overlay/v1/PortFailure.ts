// Original file: proto/overlay/v1/sync.proto


/**
 * PortFailure is one local port the agent could not program.
 */
export interface PortFailure {
  /**
   * port_id is the port.
   */
  'portId'?: (string);
  /**
   * reason says why, for the operator: short, from the agent's tools (hostile text: the
   * controller cleans it and keeps at most 256 characters).
   */
  'reason'?: (string);
}

/**
 * PortFailure is one local port the agent could not program.
 */
export interface PortFailure__Output {
  /**
   * port_id is the port.
   */
  'portId': (string);
  /**
   * reason says why, for the operator: short, from the agent's tools (hostile text: the
   * controller cleans it and keeps at most 256 characters).
   */
  'reason': (string);
}
