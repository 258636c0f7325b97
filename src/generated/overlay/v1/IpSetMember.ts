// Original file: proto/overlay/v1/sync.proto


/**
 * IpSetMember is one address of a security group's IP set of one family: an address of a
 * port whose effective groups include the group, or one of its allowed address pairs.
 */
export interface IpSetMember {
  /**
   * group_id is the security group.
   */
  'groupId'?: (string);
  /**
   * family is "IPv4" or "IPv6".
   */
  'family'?: (string);
  /**
   * cidr is the member's address or prefix.
   */
  'cidr'?: (string);
}

/**
 * IpSetMember is one address of a security group's IP set of one family: an address of a
 * port whose effective groups include the group, or one of its allowed address pairs.
 */
export interface IpSetMember__Output {
  /**
   * group_id is the security group.
   */
  'groupId': (string);
  /**
   * family is "IPv4" or "IPv6".
   */
  'family': (string);
  /**
   * cidr is the member's address or prefix.
   */
  'cidr': (string);
}
