/**
 * Kernel object names. The agent owns exactly the objects with these prefixes: `vx<vni>` VXLAN
 * devices, `br<vni>` bridges, `mx<vni>` mirror VXLAN devices and `ms<id>` mirror ERSPAN devices
 * (and its nftables tables, named `overlay`); a VM's tap is named from its
 * port id, like Neutron's `tap<port id prefix>`, and is created by the hypervisor, not by us.
 * Linux caps interface names at 15 characters.
 */
export const vxlanName = (vni: number): string => `vx${vni}`;
export const bridgeName = (vni: number): string => `br${vni}`;
/** A mirror session's VXLAN device (its mirror VNI), in no bridge: see MirrorDeviceState. */
export const mirrorVxlanName = (vni: number): string => `mx${vni}`;
/** A mirror session's ERSPAN device (its ERSPAN session ID), in no bridge: see ErspanDeviceState. */
export const mirrorErspanName = (erspanId: number): string => `ms${erspanId}`;

/** `tap` + the last 11 hex digits of the port id (the random part of a UUIDv7). */
export function tapName(portId: string): string {
  return `tap${portId.replace(/-/g, '').slice(-11)}`;
}
