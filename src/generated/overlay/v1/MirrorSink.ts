// Original file: proto/overlay/v1/sync.proto


/**
 * MirrorSink is the receiving end of a mirror session on the host of its sink: copies arriving
 * from other hosts under vni go to a local analyzer port (port_id) or out a local interface
 * (interface).
 */
export interface MirrorSink {
  /**
   * session_id is the mirror session.
   */
  'sessionId'?: (string);
  /**
   * vni is the session's mirror VNI.
   */
  'vni'?: (number);
  /**
   * port_id is the analyzer port, or empty.
   */
  'portId'?: (string);
  /**
   * interface is the uplink, or empty.
   */
  'interface'?: (string);
}

/**
 * MirrorSink is the receiving end of a mirror session on the host of its sink: copies arriving
 * from other hosts under vni go to a local analyzer port (port_id) or out a local interface
 * (interface).
 */
export interface MirrorSink__Output {
  /**
   * session_id is the mirror session.
   */
  'sessionId': (string);
  /**
   * vni is the session's mirror VNI.
   */
  'vni': (number);
  /**
   * port_id is the analyzer port, or empty.
   */
  'portId': (string);
  /**
   * interface is the uplink, or empty.
   */
  'interface': (string);
}
