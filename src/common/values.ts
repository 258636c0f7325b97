import { randomBytes } from 'node:crypto';
import { ErrorCode, OverlayError } from './errors';
import { cidrContains, formatCidr, formatIp, isReservedInCidr, parseCidrText, parseIpText, type ParsedCidr } from './ip';

/**
 * Domain values, parsed once at the edge into branded types so the inside of the program never
 * re-validates a string. Every parser throws `OverlayError` naming the offending field.
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

const MAC_RE = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i;

/** A unicast MAC, written `aa:bb:cc:dd:ee:ff` (dashes accepted), stored lower case with colons. */
export function parseMac(raw: string, field = 'mac'): MacAddress {
  const m = MAC_RE.exec(raw);
  if (!m) {
    throw new OverlayError(ErrorCode.InvalidMac, `${field} must be a MAC address like 02:00:00:00:00:01, got ${JSON.stringify(raw)}`, { field });
  }
  const octets = [m[1], m[3], m[4], m[5], m[6], m[7]].map((o) => o.toLowerCase());
  const first = parseInt(octets[0], 16);
  if (first & 1) {
    throw new OverlayError(ErrorCode.MulticastMac, `${field} ${raw} is a multicast or broadcast MAC; a port needs a unicast MAC`, { field });
  }
  if (octets.every((o) => o === '00')) {
    throw new OverlayError(ErrorCode.InvalidMac, `${field} must not be the all-zero MAC`, { field });
  }
  return octets.join(':') as MacAddress;
}

/** A locally administered unicast MAC (02:xx:..) from 5 random bytes; uniqueness is checked by the store. */
export function generateMac(): MacAddress {
  const bytes = randomBytes(5);
  return ['02', ...Array.from(bytes, (b) => b.toString(16).padStart(2, '0'))].join(':') as MacAddress;
}

export function parseIp(raw: string, field = 'ip'): IpAddress {
  const ip = parseIpText(raw);
  if (!ip) {
    throw new OverlayError(ErrorCode.InvalidIp, `${field} must be an IPv4 or IPv6 address, got ${JSON.stringify(raw)}`, { field });
  }
  return formatIp(ip) as IpAddress;
}

/** A VTEP address: a unicast IP a tunnel can be sent to (not unspecified, loopback-free is not required for tests). */
export function parseVtepIp(raw: string, field = 'vtepIp'): IpAddress {
  const ip = parseIpText(raw);
  if (!ip) {
    throw new OverlayError(ErrorCode.InvalidIp, `${field} must be an IPv4 or IPv6 address, got ${JSON.stringify(raw)}`, { field });
  }
  const isMulticast = ip.family === 4 ? ip.value >> 28n === 0xen : ip.value >> 120n === 0xffn;
  const isUnspecified = ip.value === 0n;
  const isBroadcast = ip.family === 4 && ip.value === 0xffffffffn;
  if (isMulticast || isUnspecified || isBroadcast) {
    throw new OverlayError(ErrorCode.InvalidIp, `${field} must be a unicast address, got ${raw}`, { field });
  }
  return formatIp(ip) as IpAddress;
}

export function parseCidr(raw: string, field = 'cidr'): Cidr {
  const cidr = parseCidrText(raw);
  if (cidr === 'host-bits') {
    throw new OverlayError(ErrorCode.InvalidCidr, `${field} ${raw} has host bits set; give the network address`, { field });
  }
  if (!cidr) {
    throw new OverlayError(ErrorCode.InvalidCidr, `${field} must be a CIDR like 10.0.0.0/24 or fd00::/64, got ${JSON.stringify(raw)}`, { field });
  }
  return formatCidr(cidr) as Cidr;
}

/** Checks that `ip` may be given to a VM on a segment with `cidr`. */
export function assertIpInCidr(ip: IpAddress, cidr: Cidr, field: string): void {
  const parsedCidr = parseCidrText(cidr) as ParsedCidr;
  const parsedIp = parseIpText(ip)!;
  if (parsedIp.family !== parsedCidr.family) {
    throw new OverlayError(ErrorCode.IpFamilyMismatch, `${field} ${ip} is IPv${parsedIp.family} but the segment's CIDR ${cidr} is IPv${parsedCidr.family}`, { field });
  }
  if (!cidrContains(parsedCidr, parsedIp)) {
    throw new OverlayError(ErrorCode.IpOutsideCidr, `${field} ${ip} is outside the segment's CIDR ${cidr}`, { field });
  }
  if (isReservedInCidr(parsedCidr, parsedIp)) {
    throw new OverlayError(ErrorCode.ReservedIp, `${field} ${ip} is the network or broadcast address of ${cidr}`, { field });
  }
}

export function asVni(value: number): Vni {
  return value as Vni;
}

export function asVlanId(value: number): VlanId {
  return value as VlanId;
}

const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Resource ids are UUIDv7: unique without coordination, and sorted by creation time, which orders list pages. */
// Random bytes drawn in blocks: one syscall-backed fill per 256 ids rather than one per id.
const ID_POOL_IDS = 256;
let idPool = Buffer.alloc(0);
let idPoolOffset = 0;

function idRandomBytes(): Buffer {
  if (idPoolOffset >= idPool.length) {
    idPool = randomBytes(16 * ID_POOL_IDS);
    idPoolOffset = 0;
  }
  const bytes = Buffer.from(idPool.subarray(idPoolOffset, idPoolOffset + 16));
  idPoolOffset += 16;
  return bytes;
}

export function newId(now = Date.now()): ResourceId {
  const bytes = idRandomBytes();
  const ts = BigInt(now);
  for (let i = 0; i < 6; i++) {
    bytes[i] = Number((ts >> BigInt(8 * (5 - i))) & 0xffn);
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` as ResourceId;
}

export function parseId(raw: unknown, field = 'id'): ResourceId {
  // Query parameters reach here unchecked: a repeated one (`?hostId=a&hostId=b`) is an array.
  const lower = typeof raw === 'string' ? raw.toLowerCase() : '';
  if (!ID_RE.test(lower)) {
    throw new OverlayError(ErrorCode.InvalidId, `${field} must be a resource id (UUIDv7), got ${JSON.stringify(raw)}`, { field });
  }
  return lower as ResourceId;
}

/** Names of tenants, segments and hosts: DNS-label-like, so they are safe in logs, URLs and kernel names. */
export const NAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/**
 * An address or a prefix (`10.0.0.5`, `10.1.0.0/16`, `fd00::/64`), as an allowed address pair
 * takes it. A full-length prefix is the address itself (`10.0.0.5/32` -> `10.0.0.5`), so that
 * one thing has one spelling.
 */
export function parseIpOrCidr(raw: string, field = 'ip'): IpAddress | Cidr {
  if (!raw.includes('/')) {
    return parseIp(raw, field);
  }
  const cidr = parseCidr(raw, field);
  const parsed = parseCidrText(cidr) as ParsedCidr;
  return parsed.prefix === (parsed.family === 4 ? 32 : 128) ? (formatIp({ family: parsed.family, value: parsed.network }) as IpAddress) : cidr;
}
