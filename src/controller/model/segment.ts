/**
 * A tenant's layer-2 segment. Every segment has a VXLAN VNI (the overlay id its frames travel
 * under); a segment that is also carried as a VLAN on the physical network names its `vlanId`
 * (unique per deployment), which the audit checks against the hosts' trunks (VM-VN-R1).
 */
export interface Segment {
  id: string;
  tenantId: string;
  name: string;
  vni: number;
  vlanId: number | null;
  /** The segment's subnet; ports' IPs must lie inside it. Null = no IP management. */
  cidr: string | null;
  createdAt: string;
}
