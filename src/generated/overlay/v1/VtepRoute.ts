// Original file: proto/overlay/v1/sync.proto


/**
 * VtepRoute is where the kernel routes packets for one peer VTEP.
 */
export interface VtepRoute {
  /**
   * destination is the peer VTEP's address.
   */
  'destination'?: (string);
  /**
   * devices are the output devices (several with multipath), at most 64.
   */
  'devices'?: (string)[];
}

/**
 * VtepRoute is where the kernel routes packets for one peer VTEP.
 */
export interface VtepRoute__Output {
  /**
   * destination is the peer VTEP's address.
   */
  'destination': (string);
  /**
   * devices are the output devices (several with multipath), at most 64.
   */
  'devices': (string)[];
}
