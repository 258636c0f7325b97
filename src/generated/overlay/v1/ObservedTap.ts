// Original file: proto/overlay/v1/sync.proto


/**
 * ObservedTap is one local port's tap as the kernel shows it.
 */
export interface ObservedTap {
  /**
   * port_id is the port whose tap this is.
   */
  'portId'?: (string);
  /**
   * promiscuity is the kernel's promiscuity count of the tap: one for its bridge when bridged,
   * one more for each promiscuous user (`ip link set promisc on`, a packet capture).
   */
  'promiscuity'?: (number);
  /**
   * bridged says whether the tap is attached to a bridge.
   */
  'bridged'?: (boolean);
}

/**
 * ObservedTap is one local port's tap as the kernel shows it.
 */
export interface ObservedTap__Output {
  /**
   * port_id is the port whose tap this is.
   */
  'portId': (string);
  /**
   * promiscuity is the kernel's promiscuity count of the tap: one for its bridge when bridged,
   * one more for each promiscuous user (`ip link set promisc on`, a packet capture).
   */
  'promiscuity': (number);
  /**
   * bridged says whether the tap is attached to a bridge.
   */
  'bridged': (boolean);
}
