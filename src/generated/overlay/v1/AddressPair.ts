// Original file: proto/overlay/v1/sync.proto


/**
 * AddressPair is an address a port may send from besides its own.
 */
export interface AddressPair {
  /**
   * ip is an IP address or a prefix.
   */
  'ip'?: (string);
  /**
   * mac is the MAC address that goes with it.
   */
  'mac'?: (string);
}

/**
 * AddressPair is an address a port may send from besides its own.
 */
export interface AddressPair__Output {
  /**
   * ip is an IP address or a prefix.
   */
  'ip': (string);
  /**
   * mac is the MAC address that goes with it.
   */
  'mac': (string);
}
