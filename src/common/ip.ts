import { isIPv6 } from 'node:net';

/**
 * IP address and prefix arithmetic on bigint, for both families. Addresses are normalized to
 * one canonical text form (RFC 5952 for IPv6) so that uniqueness checks compare like with like;
 * the IPv6 forms that spell an IPv4 address are found here (`embeddedIpv4`) and refused by the
 * parsers in values.ts. Also: the ranges whose addresses are never one host's.
 */
export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  value: bigint;
}

export interface ParsedCidr {
  family: IpFamily;
  network: bigint;
  prefix: number;
}

const bitsOf = (family: IpFamily): number => (family === 4 ? 32 : 128);

/** Parses an address; returns undefined when it is not one. Zone ids (`%eth0`) are not addresses here. */
export function parseIpText(text: string): ParsedIp | undefined {
  const v4 = ipv4Value(text);
  if (v4 !== undefined) {
    return { family: 4, value: BigInt(v4) };
  }
  if (isIPv6(text) && !text.includes('%')) {
    return { family: 6, value: ipv6ToBigInt(text) };
  }
  return undefined;
}

/**
 * The value of a dotted-quad IPv4 address, or undefined: exactly what node's `isIPv4` accepts
 * (four decimal octets of 0-255, no leading zero, nothing else), read in one pass of char codes.
 * IPv4 is the hot path of port validation: a batch of 1,000 ports parses each address three
 * times (the body, the segment's CIDR, the policy index), and the regular expression, the split
 * and a Number per octet were about 2 µs a port of the controller's CPU.
 */
function ipv4Value(text: string): number | undefined {
  const n = text.length;
  if (n < 7 || n > 15) {
    return undefined;
  }
  let value = 0;
  let octets = 0;
  let i = 0;
  while (i < n) {
    const start = i;
    let octet = 0;
    while (i < n && i - start < 3) {
      const c = text.charCodeAt(i);
      if (c < 0x30 || c > 0x39) {
        break;
      }
      octet = octet * 10 + (c - 0x30);
      i++;
    }
    const digits = i - start;
    // No digit, a leading zero (`01`), or over 255.
    if (digits === 0 || (digits > 1 && text.charCodeAt(start) === 0x30) || octet > 255) {
      return undefined;
    }
    value = value * 256 + octet;
    octets++;
    if (i === n) {
      break;
    }
    if (octets === 4 || text.charCodeAt(i) !== 0x2e /* . */) {
      return undefined;
    }
    i++;
    if (i === n) {
      return undefined; // a trailing dot
    }
  }
  return octets === 4 ? value : undefined;
}

function ipv6ToBigInt(text: string): bigint {
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    tailV4 = parseIpText(tail)!.value;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const leftGroups = left ? left.split(':') : [];
  const rightGroups = right ? right.split(':') : [];
  const missing = 8 - leftGroups.length - rightGroups.length;
  const groups = [...leftGroups, ...Array<string>(right === undefined ? 0 : missing).fill('0'), ...rightGroups];
  let value = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
  if (tailV4 !== undefined) {
    value = (value & ~0xffffffffn) | tailV4;
  }
  return value;
}

export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return `${Math.floor(v / 16777216) % 256}.${Math.floor(v / 65536) % 256}.${Math.floor(v / 256) % 256}.${v % 256}`;
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) {
    groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  }
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) {
      j++;
    }
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) {
    return hex.join(':');
  }
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parses `a.b.c.d/n` or `x::/n`. Host bits must be zero (`10.0.0.1/24` is refused, as Neutron does). */
export function parseCidrText(text: string): ParsedCidr | 'host-bits' | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) {
    return undefined;
  }
  const ip = parseIpText(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) {
    return undefined;
  }
  const prefix = Number(prefixText);
  const bits = bitsOf(ip.family);
  if (prefix > bits) {
    return undefined;
  }
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((ip.value & hostMask) !== 0n) {
    return 'host-bits';
  }
  return { family: ip.family, network: ip.value, prefix };
}

export function formatCidr(cidr: ParsedCidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`;
}

export function cidrContains(cidr: ParsedCidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) {
    return false;
  }
  const shift = BigInt(bitsOf(cidr.family) - cidr.prefix);
  return ip.value >> shift === cidr.network >> shift;
}

/**
 * Addresses of a subnet that no VM may hold: the IPv4 network and broadcast addresses (for
 * prefixes up to /30; /31 and /32 have none, RFC 3021) and the IPv6 subnet-router anycast address.
 */
export function isReservedInCidr(cidr: ParsedCidr, ip: ParsedIp): boolean {
  const bits = bitsOf(cidr.family);
  const hostBits = BigInt(bits - cidr.prefix);
  if (cidr.family === 4) {
    if (cidr.prefix > 30) {
      return false;
    }
    const broadcast = cidr.network | ((1n << hostBits) - 1n);
    return ip.value === cidr.network || ip.value === broadcast;
  }
  return cidr.prefix < 127 && ip.value === cidr.network;
}

/**
 * The IPv4 address an IPv6 address stands for, when it is one of the forms that embed one in
 * its low 32 bits and name the same IPv4 endpoint: IPv4-mapped `::ffff:a.b.c.d` (RFC 4291
 * 2.5.5.2; a dual-stack socket sends to it over IPv4) and the deprecated IPv4-compatible
 * `::a.b.c.d` (2.5.5.1: all of ::/96 but `::` and `::1`). Undefined for any other address.
 * Translation prefixes (64:ff9b::/96, 6to4) are left alone: they are IPv6 addresses of a
 * translator, not spellings of an IPv4 address.
 */
export function embeddedIpv4(ip: ParsedIp): { ipv4: ParsedIp; form: 'IPv4-mapped' | 'IPv4-compatible' } | undefined {
  if (ip.family !== 6) {
    return undefined;
  }
  const high = ip.value >> 32n;
  if (high === 0xffffn) {
    return { ipv4: { family: 4, value: ip.value & 0xffffffffn }, form: 'IPv4-mapped' };
  }
  if (high === 0n && ip.value > 1n) {
    return { ipv4: { family: 4, value: ip.value }, form: 'IPv4-compatible' };
  }
  return undefined;
}

/** A prefix inside ::ffff:0:0/96 or ::/96, as the IPv4 prefix it stands for (`::ffff:10.0.0.0/104` is 10.0.0.0/8). */
export function embeddedIpv4Cidr(cidr: ParsedCidr): { ipv4: ParsedCidr; form: 'IPv4-mapped' | 'IPv4-compatible' } | undefined {
  if (cidr.family !== 6 || cidr.prefix < 96) {
    return undefined;
  }
  const high = cidr.network >> 32n;
  if (high !== 0xffffn && high !== 0n) {
    return undefined;
  }
  if (high === 0n && cidr.prefix === 128 && cidr.network <= 1n) {
    return undefined; // ::/128 and ::1/128 are IPv6's own
  }
  return { ipv4: { family: 4, network: cidr.network & 0xffffffffn, prefix: cidr.prefix - 96 }, form: high === 0xffffn ? 'IPv4-mapped' : 'IPv4-compatible' };
}

/** A range of addresses with what it is for, in words for error messages. */
export interface SpecialRange {
  cidr: ParsedCidr;
  /** `127.0.0.0/8` */
  text: string;
  /** What the range is: `loopback`. */
  kind: string;
  /** What one address of it is: `a loopback address`. */
  address: string;
}

const special = (text: string, kind: string, address: string): SpecialRange => ({ cidr: parseCidrText(text) as ParsedCidr, text, kind, address });

/**
 * Addresses that are never one host's, whatever the subnet: a VM cannot hold them and a tunnel
 * cannot be sent to them (RFC 6890). Widest first within each family.
 */
export const NON_HOST_RANGES: readonly SpecialRange[] = [
  special('0.0.0.0/8', '"this network"', 'a "this network" address'),
  special('127.0.0.0/8', 'loopback', 'a loopback address'),
  special('224.0.0.0/4', 'multicast', 'a multicast address'),
  special('240.0.0.0/4', 'reserved', 'a reserved address'),
  special('::/128', 'the unspecified address', 'the unspecified address'),
  special('::1/128', 'loopback', 'the loopback address'),
  special('ff00::/8', 'multicast', 'a multicast address'),
];

/** Link-local unicast: usable on one link only, which a VTEP (reached across routers, without a zone) is not. */
export const LINK_LOCAL_RANGES: readonly SpecialRange[] = [special('169.254.0.0/16', 'link-local', 'a link-local address'), special('fe80::/10', 'link-local', 'a link-local address')];

const prefixBits = (cidr: ParsedCidr, prefix: number): bigint => cidr.network >> BigInt(bitsOf(cidr.family) - prefix);

/** Whether two prefixes share an address (then one holds the other). */
export function cidrsOverlap(a: ParsedCidr, b: ParsedCidr): boolean {
  if (a.family !== b.family) {
    return false;
  }
  const shorter = Math.min(a.prefix, b.prefix);
  return prefixBits(a, shorter) === prefixBits(b, shorter);
}

/** Whether `outer` holds every address of `inner`. */
export function cidrWithin(inner: ParsedCidr, outer: ParsedCidr): boolean {
  return inner.family === outer.family && inner.prefix >= outer.prefix && prefixBits(inner, outer.prefix) === prefixBits(outer, outer.prefix);
}

const asCidr = (ip: ParsedIp): ParsedCidr => ({ family: ip.family, network: ip.value, prefix: bitsOf(ip.family) });

/**
 * The first of `ranges` holding the address. An IPv4 address is compared as a number: a port's
 * address is checked against every range, and bigint shifts made four bigints a range (about
 * 0.7 kB a port, 1,000 ports a batch).
 */
function rangeHolding(ip: ParsedIp, ranges: readonly SpecialRange[]): SpecialRange | undefined {
  const v4 = ip.family === 4 ? Number(ip.value) : -1;
  for (const range of ranges) {
    const { cidr } = range;
    if (cidr.family !== ip.family) {
      continue;
    }
    if (v4 >= 0) {
      const { size, block } = ipv4Block(range);
      if (Math.floor(v4 / size) === block) {
        return range;
      }
    } else if (cidrWithin(asCidr(ip), cidr)) {
      return range;
    }
  }
  return undefined;
}

/** An IPv4 range as numbers: its size, and its network's index in blocks of that size (the ranges are constants: made once). */
const ipv4Blocks = new WeakMap<SpecialRange, { size: number; block: number }>();
function ipv4Block(range: SpecialRange): { size: number; block: number } {
  let numbers = ipv4Blocks.get(range);
  if (numbers === undefined) {
    const size = 2 ** (32 - range.cidr.prefix);
    numbers = { size, block: Math.floor(Number(range.cidr.network) / size) };
    ipv4Blocks.set(range, numbers);
  }
  return numbers;
}

/**
 * Why an address can never be a host's, in words for an error message (`the limited broadcast
 * address`, `a multicast address (224.0.0.0/4)`), or undefined for an address a host may hold.
 * `ranges` adds to the addresses that are never a host's (a VTEP must not be link-local either).
 */
export function nonHostAddress(ip: ParsedIp, extra: readonly SpecialRange[] = []): string | undefined {
  if (ip.family === 4 && ip.value === 0n) {
    return 'the unspecified address';
  }
  if (ip.family === 4 && ip.value === 0xffffffffn) {
    return 'the limited broadcast address';
  }
  if ((ip.family === 4 && ip.value >> 8n === 0xe00000n) || (ip.family === 6 && ip.value >> 112n === 0xff02n)) {
    return `a link-local multicast address (${ip.family === 4 ? '224.0.0.0/24' : 'ff02::/16'})`;
  }
  const range = rangeHolding(ip, NON_HOST_RANGES) ?? rangeHolding(ip, extra);
  if (!range) {
    return undefined;
  }
  return range.cidr.prefix === bitsOf(range.cidr.family) ? range.address : `${range.address} (${range.text})`;
}

/** The first range of `ranges` a prefix shares an address with. */
export function overlappingRange(cidr: ParsedCidr, ranges: readonly SpecialRange[] = NON_HOST_RANGES): SpecialRange | undefined {
  return ranges.find((r) => cidrsOverlap(cidr, r.cidr));
}

/** The range of `ranges` that holds all of a prefix. */
export function enclosingRange(cidr: ParsedCidr, ranges: readonly SpecialRange[] = NON_HOST_RANGES): SpecialRange | undefined {
  return ranges.find((r) => cidrWithin(cidr, r.cidr));
}
