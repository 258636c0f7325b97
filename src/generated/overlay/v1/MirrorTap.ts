// Original file: proto/overlay/v1/sync.proto


/**
 * MirrorTap is one source of a mirror session on a port local to the receiving host (bound or
 * prepared here): copies of the frames the VM sends (egress) and/or receives (ingress), those
 * that match the filter, go to one sink. The sink is, from this host: a local analyzer port's tap
 * (sink_port_id), a local interface (sink_interface), or else a VXLAN tunnel (remote_ip,
 * udp_port, vni) to the sink's host or to a remote collector, or an ERSPAN (GRE) tunnel
 * (remote_ip, erspan_id, erspan_version) to a remote collector.
 */
export interface MirrorTap {
  /**
   * session_id is the mirror session.
   */
  'sessionId'?: (string);
  /**
   * port_id is the source port (the tap it is read on).
   */
  'portId'?: (string);
  /**
   * ingress: copies of the frames the VM receives (after the firewall let them through).
   */
  'ingress'?: (boolean);
  /**
   * egress: copies of the frames the VM sends (before the firewall judges them).
   */
  'egress'?: (boolean);
  /**
   * filter_ethertype is "IPv4", "IPv6" or empty (any).
   */
  'filterEthertype'?: (string);
  /**
   * filter_protocol is an IP protocol number; 0 = any. Only with filter_ethertype.
   */
  'filterProtocol'?: (number);
  /**
   * filter_remote_cidr is the peer's prefix (the destination of what the VM sends, the source of
   * what it receives); empty = any. Only with filter_ethertype, of its family.
   */
  'filterRemoteCidr'?: (string);
  /**
   * snap_length is the number of bytes kept of each copy; 0 = whole frames.
   */
  'snapLength'?: (number);
  /**
   * sink_port_id is the analyzer port the copies go to when it is local to this host.
   */
  'sinkPortId'?: (string);
  /**
   * sink_interface is the local interface the copies go out of (an uplink sink on this host).
   */
  'sinkInterface'?: (string);
  /**
   * vni is the session's mirror VNI: copies to a sink elsewhere travel under it.
   */
  'vni'?: (number);
  /**
   * remote_ip is where those go: the sink host's VTEP, or a remote collector.
   */
  'remoteIp'?: (string);
  /**
   * udp_port is the VXLAN destination port for them (4789 to a sink host).
   */
  'udpPort'?: (number);
  /**
   * erspan_id is the ERSPAN session ID (1..1023); when set, copies go to remote_ip over ERSPAN
   * (GRE) instead of VXLAN, and vni and udp_port are 0.
   */
  'erspanId'?: (number);
  /**
   * erspan_version is the ERSPAN version with erspan_id: 1 (type II) or 2 (type III).
   */
  'erspanVersion'?: (number);
}

/**
 * MirrorTap is one source of a mirror session on a port local to the receiving host (bound or
 * prepared here): copies of the frames the VM sends (egress) and/or receives (ingress), those
 * that match the filter, go to one sink. The sink is, from this host: a local analyzer port's tap
 * (sink_port_id), a local interface (sink_interface), or else a VXLAN tunnel (remote_ip,
 * udp_port, vni) to the sink's host or to a remote collector, or an ERSPAN (GRE) tunnel
 * (remote_ip, erspan_id, erspan_version) to a remote collector.
 */
export interface MirrorTap__Output {
  /**
   * session_id is the mirror session.
   */
  'sessionId': (string);
  /**
   * port_id is the source port (the tap it is read on).
   */
  'portId': (string);
  /**
   * ingress: copies of the frames the VM receives (after the firewall let them through).
   */
  'ingress': (boolean);
  /**
   * egress: copies of the frames the VM sends (before the firewall judges them).
   */
  'egress': (boolean);
  /**
   * filter_ethertype is "IPv4", "IPv6" or empty (any).
   */
  'filterEthertype': (string);
  /**
   * filter_protocol is an IP protocol number; 0 = any. Only with filter_ethertype.
   */
  'filterProtocol': (number);
  /**
   * filter_remote_cidr is the peer's prefix (the destination of what the VM sends, the source of
   * what it receives); empty = any. Only with filter_ethertype, of its family.
   */
  'filterRemoteCidr': (string);
  /**
   * snap_length is the number of bytes kept of each copy; 0 = whole frames.
   */
  'snapLength': (number);
  /**
   * sink_port_id is the analyzer port the copies go to when it is local to this host.
   */
  'sinkPortId': (string);
  /**
   * sink_interface is the local interface the copies go out of (an uplink sink on this host).
   */
  'sinkInterface': (string);
  /**
   * vni is the session's mirror VNI: copies to a sink elsewhere travel under it.
   */
  'vni': (number);
  /**
   * remote_ip is where those go: the sink host's VTEP, or a remote collector.
   */
  'remoteIp': (string);
  /**
   * udp_port is the VXLAN destination port for them (4789 to a sink host).
   */
  'udpPort': (number);
  /**
   * erspan_id is the ERSPAN session ID (1..1023); when set, copies go to remote_ip over ERSPAN
   * (GRE) instead of VXLAN, and vni and udp_port are 0.
   */
  'erspanId': (number);
  /**
   * erspan_version is the ERSPAN version with erspan_id: 1 (type II) or 2 (type III).
   */
  'erspanVersion': (number);
}
