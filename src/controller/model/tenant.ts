/** A tenant: the unit of isolation. Its segments never exchange frames with another tenant's. */
export interface Tenant {
  id: string;
  name: string;
  /** Most segments the tenant may hold; null = no quota. */
  maxSegments: number | null;
  /** The tenant's default security group, created with it: what its ports get when they list no group. */
  defaultSecurityGroupId: string;
  createdAt: string;
}
