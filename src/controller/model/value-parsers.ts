import { randomBytes } from 'node:crypto';
import { ErrorCode, OverlayError } from '../errors';
import {
  cidrContains,
  embeddedIpv4,
  embeddedIpv4Cidr,
  enclosingRange,
  formatCidr,
  formatIp,
  isReservedInCidr,
  LINK_LOCAL_RANGES,
  nonHostAddress,
  overlappingRange,
  parseCidrText,
  parseIpText,
  type ParsedCidr,
  type ParsedIp,
} from '../../common/ip';
import { tapNameProblem } from '../../common/tap-name';
import type { Cidr, IpAddress, MacAddress, ResourceId, VlanId, Vni } from '../../common/values';

/** Parsers of the domain values (src/common/values.ts), each throwing `OverlayError` naming the offending field. */

const MAC_RE = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i;

/** A MAC as stored: `test` on it allocates nothing, and such a MAC is returned as given. */
const CANONICAL_MAC_RE = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** A unicast MAC, written `aa:bb:cc:dd:ee:ff` (dashes accepted), stored lower case with colons. */
export function parseMac(raw: string, field = 'mac'): MacAddress {
  const mac = CANONICAL_MAC_RE.test(raw) ? raw : canonicalMac(raw, field);
  // The group bit is the low bit of the first octet, that of its second hex digit's value.
  const digit = mac.charCodeAt(1);
  if ((digit <= 0x39 ? digit - 0x30 : digit - 0x57) & 1) {
    throw new OverlayError(ErrorCode.MulticastMac, `${field} ${raw} is a multicast or broadcast MAC; a port needs a unicast MAC`, { field });
  }
  if (mac === '00:00:00:00:00:00') {
    throw new OverlayError(ErrorCode.InvalidMac, `${field} must not be the all-zero MAC`, { field });
  }
  return mac as MacAddress;
}

function canonicalMac(raw: string, field: string): string {
  const m = MAC_RE.exec(raw);
  if (!m) {
    throw new OverlayError(ErrorCode.InvalidMac, `${field} must be a MAC address like 02:00:00:00:00:01, got ${JSON.stringify(raw)}`, { field });
  }
  return [m[1], m[3], m[4], m[5], m[6], m[7]].map((o) => o.toLowerCase()).join(':');
}

/** A locally administered unicast MAC (02:xx:..) from 5 random bytes; uniqueness is checked by the store. */
export function generateMac(): MacAddress {
  const bytes = randomBytes(5);
  return ['02', ...Array.from(bytes, (b) => b.toString(16).padStart(2, '0'))].join(':') as MacAddress;
}

/**
 * Every IP and CIDR input has one spelling: RFC 5952 for IPv6, and an IPv4 address written as
 * IPv4. IPv6 forms that stand for an IPv4 address (`::ffff:192.0.2.11`, `::192.0.2.11`) are
 * refused rather than rewritten, naming the IPv4 form: a silent rewrite would change the family
 * of what the client sent (a segment's, a rule's), and two spellings of one endpoint must never
 * pass a uniqueness check as two.
 */
function parseAnyIp(raw: string, field: string): ParsedIp {
  const ip = parseIpText(raw);
  if (!ip) {
    throw new OverlayError(ErrorCode.InvalidIp, `${field} must be an IPv4 or IPv6 address, got ${JSON.stringify(raw)}`, { field });
  }
  const embedded = embeddedIpv4(ip);
  if (embedded) {
    throw new OverlayError(ErrorCode.InvalidIp, `${field} ${raw} is an ${embedded.form} IPv6 address; write it as the IPv4 address ${formatIp(embedded.ipv4)}`, { field });
  }
  return ip;
}

/**
 * The address's canonical text. An IPv4 address parses only as four decimal octets without
 * leading zeros (parseIpText), which is its canonical text already: `raw` itself, not a new string.
 */
const canonicalText = (raw: string, ip: ParsedIp): IpAddress => (ip.family === 4 ? raw : formatIp(ip)) as IpAddress;

/** Any unicast or multicast address, canonical (security-group peers and the like: not a host's own address). */
export function parseIp(raw: string, field = 'ip'): IpAddress {
  return formatIp(parseAnyIp(raw, field)) as IpAddress;
}

/**
 * A port's address: one a VM can hold, on any segment (with or without a CIDR). Unspecified,
 * loopback, multicast, broadcast, "this network" and reserved addresses are refused with
 * RESERVED_IP.
 */
export function parseHostIp(raw: string, field = 'ip'): IpAddress {
  const ip = parseAnyIp(raw, field);
  const why = nonHostAddress(ip);
  if (why) {
    throw new OverlayError(ErrorCode.ReservedIp, `${field} ${raw} is ${why}; a port's address must be a unicast address a VM can hold`, { field });
  }
  return canonicalText(raw, ip);
}

/**
 * A VTEP: a unicast address every other host can send a tunnel to. Besides what no host may
 * hold (see parseHostIp), link-local addresses are refused: they are usable on one link only,
 * and a VTEP carries no interface to scope one with.
 */
export function parseVtepIp(raw: string, field = 'vtepIp'): IpAddress {
  const ip = parseAnyIp(raw, field);
  const why = nonHostAddress(ip, LINK_LOCAL_RANGES);
  if (why) {
    throw new OverlayError(ErrorCode.InvalidIp, `${field} ${raw} is ${why}; a VTEP must be a unicast address the other hosts can reach`, { field });
  }
  return formatIp(ip) as IpAddress;
}

function parseAnyCidr(raw: string, field: string): ParsedCidr {
  const cidr = parseCidrText(raw);
  if (cidr === 'host-bits') {
    throw new OverlayError(ErrorCode.InvalidCidr, `${field} ${raw} has host bits set; give the network address`, { field });
  }
  if (!cidr) {
    throw new OverlayError(ErrorCode.InvalidCidr, `${field} must be a CIDR like 10.0.0.0/24 or fd00::/64, got ${JSON.stringify(raw)}`, { field });
  }
  const embedded = embeddedIpv4Cidr(cidr);
  if (embedded) {
    throw new OverlayError(ErrorCode.InvalidCidr, `${field} ${raw} is an ${embedded.form} IPv6 prefix; write it as the IPv4 prefix ${formatCidr(embedded.ipv4)}`, { field });
  }
  return cidr;
}

/** Any prefix, canonical (a security-group rule's peer: `0.0.0.0/0` and multicast prefixes are fine there). */
export function parseCidr(raw: string, field = 'cidr'): Cidr {
  return formatCidr(parseAnyCidr(raw, field)) as Cidr;
}

/**
 * A segment's subnet: a prefix of host addresses. A default route (`/0`) and any prefix that
 * shares an address with the ranges no host can hold (loopback, multicast, "this network",
 * reserved, `::`) are refused with INVALID_CIDR.
 */
export function parseSegmentCidr(raw: string, field = 'cidr'): Cidr {
  const cidr = parseAnyCidr(raw, field);
  if (cidr.prefix === 0) {
    throw new OverlayError(ErrorCode.InvalidCidr, `${field} ${raw} is a default route, not a subnet`, { field });
  }
  const range = overlappingRange(cidr);
  if (range) {
    throw new OverlayError(ErrorCode.InvalidCidr, `${field} ${raw} overlaps ${range.text} (${range.kind}); a segment's subnet must hold only unicast host addresses`, { field });
  }
  return formatCidr(cidr) as Cidr;
}

/** Checks that `ip` may be given to a VM on a segment with `cidr`. */
/** Segments' CIDRs as parsed, by their text (a batch checks each of its ports' addresses against its segment's). */
const parsedCidrs = new Map<string, ParsedCidr>();
const PARSED_CIDRS_MAX = 1_024;

function parsedCidrOf(cidr: Cidr): ParsedCidr {
  let parsed = parsedCidrs.get(cidr);
  if (parsed === undefined) {
    parsed = parseCidrText(cidr) as ParsedCidr;
    if (parsedCidrs.size >= PARSED_CIDRS_MAX) {
      parsedCidrs.clear();
    }
    parsedCidrs.set(cidr, parsed);
  }
  return parsed;
}

export function assertIpInCidr(ip: IpAddress, cidr: Cidr, field: string): void {
  const parsedCidr = parsedCidrOf(cidr);
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

/** Whether `raw` is a resource id as stored (lower case): an agent's ids are checked with it before they name a key. */
export const isResourceId = (raw: unknown): raw is ResourceId => typeof raw === 'string' && ID_RE.test(raw);

/** Resource ids are UUIDv7: unique without coordination, and sorted by creation time, which orders list pages. */
// Random bytes drawn in blocks: one syscall-backed fill per 256 ids rather than one per id.
const ID_POOL_IDS = 256;
let idPool = Buffer.alloc(0);
let idPoolOffset = 0;
/** An id's bytes, then its text, written here before the text is read as one string (newId's only allocation: a batch makes 1,000). */
const idBytes = Buffer.alloc(16);
const idText = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** The positions of an id's 16 bytes in its text, around the dashes at 8, 13, 18 and 23. */
const ID_BYTE_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
idText[8] = idText[13] = idText[18] = idText[23] = 0x2d;

export function newId(now = Date.now()): ResourceId {
  if (idPoolOffset >= idPool.length) {
    idPool = randomBytes(16 * ID_POOL_IDS);
    idPoolOffset = 0;
  }
  // The 48-bit millisecond time big-endian, then 10 random bytes with the version and variant set.
  idBytes.writeUIntBE(now, 0, 6);
  idPool.copy(idBytes, 6, idPoolOffset + 6, idPoolOffset + 16);
  idPoolOffset += 16;
  idBytes[6] = (idBytes[6] & 0x0f) | 0x70;
  idBytes[8] = (idBytes[8] & 0x3f) | 0x80;
  for (let i = 0; i < 16; i++) {
    idText[ID_BYTE_AT[i]] = HEX[idBytes[i] >>> 4];
    idText[ID_BYTE_AT[i] + 1] = HEX[idBytes[i] & 0x0f];
  }
  return idText.toString('latin1') as ResourceId;
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
 * one thing has one spelling. An address must be one a VM can hold (see parseHostIp); a prefix
 * may hold such addresses (`0.0.0.0/0` is a valid pair) but not lie wholly among them
 * (`224.0.0.0/4`): RESERVED_IP.
 */
export function parseIpOrCidr(raw: string, field = 'ip'): IpAddress | Cidr {
  if (!raw.includes('/')) {
    return parseHostIp(raw, field);
  }
  const cidr = parseAnyCidr(raw, field);
  if (cidr.prefix === (cidr.family === 4 ? 32 : 128)) {
    return parseHostIp(formatIp({ family: cidr.family, value: cidr.network }), field);
  }
  const range = enclosingRange(cidr);
  if (range) {
    throw new OverlayError(ErrorCode.ReservedIp, `${field} ${raw} lies within ${range.text} (${range.kind}); no VM can send from those addresses`, { field });
  }
  return formatCidr(cidr) as Cidr;
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2}))$/;

/**
 * An ISO 8601 time with its zone (`2027-01-31T00:00:00Z`, `...+02:00`; fractions to the ns,
 * kept to the ms), as ms since the epoch. A day, hour or offset that does not exist (Feb 30,
 * 24:00, 60 s) is refused, not rolled over as Date.parse does; so are times before 1970.
 */
export function parseIsoTime(raw: string, field: string): number {
  const m = ISO_TIME.exec(raw);
  const [year, month, day, hour, minute, second] = m ? [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) : [];
  const valid =
    m !== null &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= new Date(Date.UTC(year, month, 0)).getUTCDate() &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    (m[7] === 'Z' || (Number(m[8]) <= 23 && Number(m[9]) <= 59));
  const ms = valid ? Date.parse(raw) : NaN;
  if (Number.isNaN(ms) || ms < 0) {
    throw new OverlayError(ErrorCode.InvalidValue, `${field} must be an ISO 8601 time with its zone, e.g. 2027-01-31T00:00:00Z`, { field });
  }
  return ms;
}

/** A port's tap name (see common/tap-name.ts): a Linux interface name the agent may attach. */
export function parseTapName(raw: string, field = 'tapName'): string {
  const problem = tapNameProblem(raw);
  if (problem) {
    throw new OverlayError(ErrorCode.InvalidValue, `${field} ${JSON.stringify(raw)} ${problem}`, { field });
  }
  return raw;
}
