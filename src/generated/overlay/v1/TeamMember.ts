// Original file: proto/overlay/v1/sync.proto


/**
 * TeamMember is one device of a bond or team.
 */
export interface TeamMember {
  'name'?: (string);
  /**
   * up says whether the member's link is up as the bond or team sees it.
   */
  'up'?: (boolean);
  /**
   * active says whether the member carries traffic (the active slave of an active-backup
   * bond; every up member in the load-balancing modes).
   */
  'active'?: (boolean);
}

/**
 * TeamMember is one device of a bond or team.
 */
export interface TeamMember__Output {
  'name': (string);
  /**
   * up says whether the member's link is up as the bond or team sees it.
   */
  'up': (boolean);
  /**
   * active says whether the member carries traffic (the active slave of an active-backup
   * bond; every up member in the load-balancing modes).
   */
  'active': (boolean);
}
