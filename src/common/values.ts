/**
 * Network values as branded types: a string or number the controller parsed once at its edge
 * (controller/model/value-parsers.ts), so the inside of the program never re-validates it.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type MacAddress = Brand<string, 'MacAddress'>;
export type IpAddress = Brand<string, 'IpAddress'>;
export type Cidr = Brand<string, 'Cidr'>;
export type Vni = Brand<number, 'Vni'>;
export type VlanId = Brand<number, 'VlanId'>;
export type ResourceId = Brand<string, 'ResourceId'>;

/** VXLAN's 24-bit VNI space. 0 is never issued. */
export const VNI_MIN = 1;
export const VNI_MAX = 16_777_215;
export const VLAN_MIN = 1;
export const VLAN_MAX = 4094;

