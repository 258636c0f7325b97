// Original file: proto/overlay/v1/sync.proto


/**
 * ObservedBridge is one segment bridge as the kernel shows it.
 */
export interface ObservedBridge {
  /**
   * vni is the segment's VNI (the bridge br<vni>).
   */
  'vni'?: (number);
  /**
   * ageing_seconds is the bridge's MAC ageing time; 0 = hub mode: every frame is flooded to
   * every port, so every VM on the segment sees every other's traffic.
   */
  'ageingSeconds'?: (number);
}

/**
 * ObservedBridge is one segment bridge as the kernel shows it.
 */
export interface ObservedBridge__Output {
  /**
   * vni is the segment's VNI (the bridge br<vni>).
   */
  'vni': (number);
  /**
   * ageing_seconds is the bridge's MAC ageing time; 0 = hub mode: every frame is flooded to
   * every port, so every VM on the segment sees every other's traffic.
   */
  'ageingSeconds': (number);
}
