import { isIPv4, isIPv6 } from 'node:net';

/**
 * IP address and prefix arithmetic on bigint, for both families. Addresses are normalized to
 * one canonical text form (RFC 5952 for IPv6) so that uniqueness checks compare like with like.
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
  if (isIPv4(text)) {
    // Number arithmetic, one BigInt at the end: IPv4 is the hot path of port validation.
    let value = 0;
    for (const octet of text.split('.')) {
      value = value * 256 + Number(octet);
    }
    return { family: 4, value: BigInt(value) };
  }
  if (isIPv6(text) && !text.includes('%')) {
    return { family: 6, value: ipv6ToBigInt(text) };
  }
  return undefined;
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
