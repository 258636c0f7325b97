// Original file: proto/overlay/v1/sync.proto


/**
 * TrackedConnection is one connection of a migrating VM as its source host's connection
 * tracking holds it, by its original-direction tuple (the reply tuple is its inverse: connections
 * rewritten by NAT are not carried). The destination inserts it into the conntrack zone of the
 * port's segment there, so the flow goes on as established after the move.
 */
export interface TrackedConnection {
  /**
   * protocol is the IP protocol number: 6 (TCP) or 17 (UDP).
   */
  'protocol'?: (number);
  /**
   * src is the source address of the original direction; src and dst are of one family, and one
   * of them is an address of the migrating port.
   */
  'src'?: (string);
  /**
   * dst is the destination address of the original direction.
   */
  'dst'?: (string);
  /**
   * src_port is the source port of the original direction (1-65535).
   */
  'srcPort'?: (number);
  /**
   * dst_port is the destination port of the original direction (1-65535).
   */
  'dstPort'?: (number);
  /**
   * tcp_state is conntrack's TCP state (SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT,
   * LAST_ACK); empty for UDP.
   */
  'tcpState'?: (string);
  /**
   * timeout_seconds is the time the entry had left on the source (at most 432000).
   */
  'timeoutSeconds'?: (number);
  /**
   * seen_reply is true when the source saw traffic in both directions.
   */
  'seenReply'?: (boolean);
  /**
   * assured is true when conntrack marked the entry assured on the source.
   */
  'assured'?: (boolean);
}

/**
 * TrackedConnection is one connection of a migrating VM as its source host's connection
 * tracking holds it, by its original-direction tuple (the reply tuple is its inverse: connections
 * rewritten by NAT are not carried). The destination inserts it into the conntrack zone of the
 * port's segment there, so the flow goes on as established after the move.
 */
export interface TrackedConnection__Output {
  /**
   * protocol is the IP protocol number: 6 (TCP) or 17 (UDP).
   */
  'protocol': (number);
  /**
   * src is the source address of the original direction; src and dst are of one family, and one
   * of them is an address of the migrating port.
   */
  'src': (string);
  /**
   * dst is the destination address of the original direction.
   */
  'dst': (string);
  /**
   * src_port is the source port of the original direction (1-65535).
   */
  'srcPort': (number);
  /**
   * dst_port is the destination port of the original direction (1-65535).
   */
  'dstPort': (number);
  /**
   * tcp_state is conntrack's TCP state (SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT,
   * LAST_ACK); empty for UDP.
   */
  'tcpState': (string);
  /**
   * timeout_seconds is the time the entry had left on the source (at most 432000).
   */
  'timeoutSeconds': (number);
  /**
   * seen_reply is true when the source saw traffic in both directions.
   */
  'seenReply': (boolean);
  /**
   * assured is true when conntrack marked the entry assured on the source.
   */
  'assured': (boolean);
}
