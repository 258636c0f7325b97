// Original file: proto/overlay/v1/sync.proto


/**
 * FirewallRule is one stateful allow rule of a PortPolicy.
 */
export interface FirewallRule {
  /**
   * ethertype is "IPv4" or "IPv6".
   */
  'ethertype'?: (string);
  /**
   * protocol is "any" or an IP protocol number as text (e.g. "6").
   */
  'protocol'?: (string);
  /**
   * port_min is the first destination port allowed; 0 = any port.
   */
  'portMin'?: (number);
  /**
   * port_max is the last destination port allowed; 0 = any port.
   */
  'portMax'?: (number);
  /**
   * icmp_type is the ICMP type allowed; -1 = any type.
   */
  'icmpType'?: (number);
  /**
   * icmp_code is the ICMP code allowed; -1 = any code.
   */
  'icmpCode'?: (number);
  /**
   * remote_cidr is the peer prefix; empty when the peer is a group.
   */
  'remoteCidr'?: (string);
  /**
   * remote_group_id is the peer group (its IP set of this ethertype); empty when the peer is a prefix.
   */
  'remoteGroupId'?: (string);
}

/**
 * FirewallRule is one stateful allow rule of a PortPolicy.
 */
export interface FirewallRule__Output {
  /**
   * ethertype is "IPv4" or "IPv6".
   */
  'ethertype': (string);
  /**
   * protocol is "any" or an IP protocol number as text (e.g. "6").
   */
  'protocol': (string);
  /**
   * port_min is the first destination port allowed; 0 = any port.
   */
  'portMin': (number);
  /**
   * port_max is the last destination port allowed; 0 = any port.
   */
  'portMax': (number);
  /**
   * icmp_type is the ICMP type allowed; -1 = any type.
   */
  'icmpType': (number);
  /**
   * icmp_code is the ICMP code allowed; -1 = any code.
   */
  'icmpCode': (number);
  /**
   * remote_cidr is the peer prefix; empty when the peer is a group.
   */
  'remoteCidr': (string);
  /**
   * remote_group_id is the peer group (its IP set of this ethertype); empty when the peer is a prefix.
   */
  'remoteGroupId': (string);
}
