import { prng } from '../../test/support/prng';
import { isIPv4 } from 'node:net';
import {
  cidrContains,
  cidrsOverlap,
  cidrWithin,
  embeddedIpv4,
  embeddedIpv4Cidr,
  formatCidr,
  formatIp,
  isReservedInCidr,
  LINK_LOCAL_RANGES,
  NON_HOST_RANGES,
  nonHostAddress,
  parseCidrText,
  parseIpText,
  type ParsedCidr,
  type ParsedIp,
} from './ip';

const ip = (text: string): ParsedIp => {
  const parsed = parseIpText(text);
  if (!parsed) {
    throw new Error(`test setup: ${text} is not an address`);
  }
  return parsed;
};

const cidr = (text: string): ParsedCidr => {
  const parsed = parseCidrText(text);
  if (parsed === undefined || parsed === 'host-bits') {
    throw new Error(`test setup: ${text} is not a CIDR (${parsed})`);
  }
  return parsed;
};

const canonical = (text: string): string => formatIp(ip(text));

describe('parseIpText', () => {
  it('reads an IPv4 address into its 32-bit value', () => {
    expect(parseIpText('10.1.2.3')).toEqual({ family: 4, value: 0x0a010203n });
    expect(parseIpText('0.0.0.0')).toEqual({ family: 4, value: 0n });
    expect(parseIpText('255.255.255.255')).toEqual({ family: 4, value: 0xffffffffn });
  });

  it('reads an IPv6 address into its 128-bit value', () => {
    expect(parseIpText('::')).toEqual({ family: 6, value: 0n });
    expect(parseIpText('::1')).toEqual({ family: 6, value: 1n });
    expect(parseIpText('1::')).toEqual({ family: 6, value: 1n << 112n });
    expect(parseIpText('2001:db8::1')).toEqual({ family: 6, value: (0x2001n << 112n) | (0xdb8n << 96n) | 1n });
    expect(parseIpText('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toEqual({ family: 6, value: (1n << 128n) - 1n });
  });

  it('reads an IPv4 address embedded in the low 32 bits of an IPv6 address', () => {
    expect(parseIpText('::ffff:192.0.2.1')).toEqual({ family: 6, value: (0xffffn << 32n) | 0xc0000201n });
    expect(parseIpText('64:ff9b::192.0.2.33')).toEqual({ family: 6, value: (0x64n << 112n) | (0xff9bn << 96n) | 0xc0000221n });
    expect(parseIpText('1:2:3:4:5:6:1.2.3.4')).toEqual(parseIpText('1:2:3:4:5:6:102:304'));
    expect(parseIpText('::1.2.3.4')).toEqual({ family: 6, value: 0x01020304n });
  });

  it.each([
    ['empty', ''],
    ['an IPv4 address with an octet over 255', '10.0.0.256'],
    ['an IPv4 address with three octets', '10.0.1'],
    ['an IPv4 address with a leading zero', '010.0.0.1'],
    ['an IPv4 address with a prefix', '10.0.0.1/32'],
    ['two compressions', '1::2::3'],
    ['nine groups', '1:2:3:4:5:6:7:8:9'],
    ['a group of five digits', '12345::1'],
    ['a zone id', 'fe80::1%eth0'],
    ['a hostname', 'localhost'],
    ['surrounding spaces', ' 10.0.0.1'],
  ])('refuses %s', (_what, text) => {
    expect(parseIpText(text)).toBeUndefined();
  });

  it("reads IPv4 as node's isIPv4 does: the same texts accepted, the same value", () => {
    const texts = [
      '1.2.3.4', '0.0.0.0', '255.255.255.255', '10.0.0.1', '192.168.100.200', '9.99.199.249',
      '256.0.0.0', '1.2.3.256', '1.2.3', '1.2.3.4.5', '1.2.3.4.', '.1.2.3.4', '1..2.3', '1.2.3.',
      '01.2.3.4', '1.2.3.04', '1.2.3.00', '00.0.0.0', '1000.1.1.1', '1.2.3.1000', '1.2.3.-4', '1.2.3.+4',
      '1.2.3.4 ', '1.2.3.4\n', '1.2.3.4/32', '1.2.3.a', '１.2.3.4', '1.2.3.٤', '0x1.2.3.4', '1e2.2.3.4', '',
    ];
    // And random ones: 3-5 groups of 0-4 digits (leading zeros, over 255), a character sometimes replaced.
    const next = prng(7);
    const random = (n: number) => Math.floor(next() * n);
    for (let k = 0; k < 20_000; k++) {
      const groups = Array.from({ length: [4, 4, 4, 3, 5][random(5)] }, () => Array.from({ length: [1, 2, 3, 3, 0, 4][random(6)] }, () => String(random(10))).join(''));
      let text = groups.join('.');
      if (random(4) === 0 && text.length > 0) {
        const at = random(text.length);
        text = text.slice(0, at) + '.0x /'[random(5)] + text.slice(at + 1);
      }
      texts.push(text);
    }
    let accepted = 0;
    for (const text of texts) {
      const parsed = parseIpText(text);
      if (!isIPv4(text)) {
        expect([text, parsed]).toEqual([text, undefined]);
        continue;
      }
      accepted++;
      const value = text.split('.').reduce((v, octet) => v * 256n + BigInt(octet), 0n);
      expect([text, parsed]).toEqual([text, { family: 4, value }]);
    }
    expect(accepted).toBeGreaterThan(20);
  });
});

describe('formatIp (RFC 5952 canonical text)', () => {
  it('writes IPv4 as dotted decimal', () => {
    expect(canonical('192.168.0.1')).toBe('192.168.0.1');
    expect(formatIp({ family: 4, value: 0n })).toBe('0.0.0.0');
  });

  it.each([
    // 4.1: leading zeros suppressed.
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:00aa::0001', '2001:db8:aa::1'],
    // 4.2.1: "::" used to the maximum extent.
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    // 4.2.2: "::" never shortens a single 16-bit 0 field.
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8::1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // 4.2.3: the longest run is compressed; on a tie, the first.
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    // 4.3: lower case.
    ['2001:DB8::AbCd', '2001:db8::abcd'],
    // Runs at either end and the extremes.
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['0:0:1:0:0:0:0:0', '0:0:1::'],
    ['fe80:0:0:0:0:0:0:0', 'fe80::'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
  ])('writes %s as %s', (input, expected) => {
    expect(canonical(input)).toBe(expected);
  });

  it('writes every spelling of one address the same way, so uniqueness compares like with like', () => {
    const spellings = ['fd00::5', 'FD00::5', 'fd00:0::5', 'fd00:0:0:0:0:0:0:5', 'fd00:0000:0000:0000:0000:0000:0000:0005', 'fd00::0.0.0.5'];
    expect(new Set(spellings.map(canonical))).toEqual(new Set(['fd00::5']));
  });

  it('writes an IPv4-embedded address in hexadecimal, the same as its all-hex spelling', () => {
    // Note: RFC 5952 section 5 recommends mixed notation (::ffff:192.0.2.1) for IPv4-mapped
    // addresses; overlayd's canonical form is all-hex, which keeps one spelling per address.
    expect(canonical('::ffff:192.0.2.1')).toBe('::ffff:c000:201');
    expect(canonical('::ffff:c000:0201')).toBe('::ffff:c000:201');
    expect(canonical('64:ff9b::192.0.2.33')).toBe('64:ff9b::c000:221');
    expect(canonical('::0.0.0.1')).toBe('::1');
  });

  it('round-trips: formatting then parsing gives the same value', () => {
    for (const text of ['2001:db8::1:0:0:1', '::ffff:c000:201', '1::', '::', 'fe80::1:2', '10.0.0.1']) {
      expect(parseIpText(canonical(text))).toEqual(ip(text));
    }
  });
});

describe('parseCidrText', () => {
  it('reads IPv4 and IPv6 networks', () => {
    expect(parseCidrText('10.0.0.0/24')).toEqual({ family: 4, network: 0x0a000000n, prefix: 24 });
    expect(parseCidrText('0.0.0.0/0')).toEqual({ family: 4, network: 0n, prefix: 0 });
    expect(parseCidrText('10.0.0.7/32')).toEqual({ family: 4, network: 0x0a000007n, prefix: 32 });
    expect(parseCidrText('fd00:1::/64')).toEqual({ family: 6, network: (0xfd00n << 112n) | (1n << 96n), prefix: 64 });
    expect(parseCidrText('::/0')).toEqual({ family: 6, network: 0n, prefix: 0 });
    expect(parseCidrText('2001:db8::1/128')).toEqual({ family: 6, network: (0x2001n << 112n) | (0xdb8n << 96n) | 1n, prefix: 128 });
  });

  it.each([
    ['10.0.0.1/24'],
    ['10.0.1.0/23'],
    ['10.0.0.128/24'],
    ['192.168.1.1/31'],
    ['fd00::1/64'],
    ['fd00:0:0:0:8000::/64'],
    ['2001:db8::1/127'],
  ])('refuses %s because host bits are set', (text) => {
    expect(parseCidrText(text)).toBe('host-bits');
  });

  it.each([
    ['a prefix longer than 32 bits on IPv4', '10.0.0.0/33'],
    ['a prefix longer than 128 bits on IPv6', 'fd00::/129'],
    ['a four-digit prefix', '10.0.0.0/0024'],
    ['a negative prefix', '10.0.0.0/-1'],
    ['a missing prefix', '10.0.0.0'],
    ['an empty prefix', '10.0.0.0/'],
    ['a non-numeric prefix', '10.0.0.0/abc'],
    ['a netmask instead of a prefix', '10.0.0.0/255.255.255.0'],
    ['an invalid address', '10.0.0.256/24'],
    ['two slashes', '10.0.0.0/24/24'],
    ['a zone id', 'fe80::%eth0/64'],
  ])('refuses %s', (_what, text) => {
    expect(parseCidrText(text)).toBeUndefined();
  });

  it('formats the network canonically', () => {
    expect(formatCidr(cidr('FD00:0001:0000::/48'))).toBe('fd00:1::/48');
    expect(formatCidr(cidr('10.0.0.0/8'))).toBe('10.0.0.0/8');
  });
});

describe('cidrContains', () => {
  it('holds the addresses from the network to the broadcast address and no others', () => {
    const net = cidr('10.0.0.0/24');
    expect(cidrContains(net, ip('10.0.0.0'))).toBe(true);
    expect(cidrContains(net, ip('10.0.0.77'))).toBe(true);
    expect(cidrContains(net, ip('10.0.0.255'))).toBe(true);
    expect(cidrContains(net, ip('10.0.1.0'))).toBe(false);
    expect(cidrContains(net, ip('9.255.255.255'))).toBe(false);
  });

  it('handles IPv6 prefixes that do not fall on a group boundary', () => {
    const net = cidr('fd00:0:0:8000::/49');
    expect(cidrContains(net, ip('fd00:0:0:8000::1'))).toBe(true);
    expect(cidrContains(net, ip('fd00:0:0:ffff:ffff:ffff:ffff:ffff'))).toBe(true);
    expect(cidrContains(net, ip('fd00:0:0:7fff:ffff:ffff:ffff:ffff'))).toBe(false);
  });

  it('holds every address of its family at /0, and exactly one at /32 or /128', () => {
    expect(cidrContains(cidr('0.0.0.0/0'), ip('255.255.255.255'))).toBe(true);
    expect(cidrContains(cidr('::/0'), ip('ffff::1'))).toBe(true);
    expect(cidrContains(cidr('10.0.0.7/32'), ip('10.0.0.7'))).toBe(true);
    expect(cidrContains(cidr('10.0.0.7/32'), ip('10.0.0.8'))).toBe(false);
    expect(cidrContains(cidr('fd00::7/128'), ip('fd00::7'))).toBe(true);
    expect(cidrContains(cidr('fd00::7/128'), ip('fd00::6'))).toBe(false);
  });

  it('never holds an address of the other family, even one with the same bits', () => {
    expect(cidrContains(cidr('0.0.0.0/0'), ip('::1'))).toBe(false);
    expect(cidrContains(cidr('::/0'), ip('10.0.0.1'))).toBe(false);
    expect(cidrContains(cidr('::/96'), ip('0.0.0.1'))).toBe(false);
  });
});

describe('isReservedInCidr', () => {
  it('reserves the IPv4 network and broadcast addresses of a /24', () => {
    const net = cidr('10.0.0.0/24');
    expect(isReservedInCidr(net, ip('10.0.0.0'))).toBe(true);
    expect(isReservedInCidr(net, ip('10.0.0.255'))).toBe(true);
    expect(isReservedInCidr(net, ip('10.0.0.1'))).toBe(false);
    expect(isReservedInCidr(net, ip('10.0.0.254'))).toBe(false);
  });

  it('reserves both ends of a /30, leaving two usable addresses', () => {
    const net = cidr('192.168.1.4/30');
    expect(['192.168.1.4', '192.168.1.5', '192.168.1.6', '192.168.1.7'].map((a) => isReservedInCidr(net, ip(a)))).toEqual([true, false, false, true]);
  });

  it('reserves nothing in a /31 point-to-point link (RFC 3021) or a /32', () => {
    expect(isReservedInCidr(cidr('192.168.1.4/31'), ip('192.168.1.4'))).toBe(false);
    expect(isReservedInCidr(cidr('192.168.1.4/31'), ip('192.168.1.5'))).toBe(false);
    expect(isReservedInCidr(cidr('192.168.1.4/32'), ip('192.168.1.4'))).toBe(false);
  });

  it('reserves the IPv6 subnet-router anycast address but not the last address', () => {
    const net = cidr('fd00:1::/64');
    expect(isReservedInCidr(net, ip('fd00:1::'))).toBe(true);
    expect(isReservedInCidr(net, ip('fd00:1::1'))).toBe(false);
    expect(isReservedInCidr(net, ip('fd00:1::ffff:ffff:ffff:ffff'))).toBe(false);
  });

  it('reserves nothing in an IPv6 /127 (RFC 6164) or /128', () => {
    expect(isReservedInCidr(cidr('fd00::/127'), ip('fd00::'))).toBe(false);
    expect(isReservedInCidr(cidr('fd00::/127'), ip('fd00::1'))).toBe(false);
    expect(isReservedInCidr(cidr('fd00::5/128'), ip('fd00::5'))).toBe(false);
  });
});

describe('embeddedIpv4', () => {
  it('finds the IPv4 address of IPv4-mapped and IPv4-compatible addresses, whatever the spelling', () => {
    for (const text of ['::ffff:192.0.2.11', '::ffff:c000:20b', '0:0:0:0:0:FFFF:C000:020B']) {
      expect(embeddedIpv4(ip(text))).toEqual({ ipv4: ip('192.0.2.11'), form: 'IPv4-mapped' });
    }
    expect(embeddedIpv4(ip('::192.0.2.11'))).toEqual({ ipv4: ip('192.0.2.11'), form: 'IPv4-compatible' });
    expect(embeddedIpv4(ip('::0.0.0.2'))).toEqual({ ipv4: ip('0.0.0.2'), form: 'IPv4-compatible' });
  });

  it('finds none in IPv4 addresses, ::, ::1, translators and other IPv6 addresses', () => {
    for (const text of ['192.0.2.11', '::', '::1', '64:ff9b::192.0.2.11', '::ffff:0:192.0.2.11', '::1:c000:20b', '2002:c000:20b::1', 'fd00::1']) {
      expect(embeddedIpv4(ip(text))).toBeUndefined();
    }
  });

  it('maps prefixes within ::ffff:0:0/96 and ::/96 to their IPv4 prefix', () => {
    expect(embeddedIpv4Cidr(cidr('::ffff:10.0.0.0/104'))).toEqual({ ipv4: cidr('10.0.0.0/8'), form: 'IPv4-mapped' });
    expect(embeddedIpv4Cidr(cidr('::ffff:0:0/96'))).toEqual({ ipv4: cidr('0.0.0.0/0'), form: 'IPv4-mapped' });
    expect(embeddedIpv4Cidr(cidr('::10.0.0.0/120'))).toEqual({ ipv4: cidr('10.0.0.0/24'), form: 'IPv4-compatible' });
    for (const text of ['::/0', '::/64', '::/95', '::/128', '::1/128', '::fffe:0:0/95', 'fd00::/96', '10.0.0.0/8']) {
      expect(embeddedIpv4Cidr(cidr(text))).toBeUndefined();
    }
  });
});

describe('cidrsOverlap and cidrWithin', () => {
  it('overlap when one holds the other, in either order, and only within one family', () => {
    expect(cidrsOverlap(cidr('10.0.0.0/8'), cidr('10.1.0.0/16'))).toBe(true);
    expect(cidrsOverlap(cidr('10.1.0.0/16'), cidr('10.0.0.0/8'))).toBe(true);
    expect(cidrsOverlap(cidr('0.0.0.0/0'), cidr('127.0.0.0/8'))).toBe(true);
    expect(cidrsOverlap(cidr('10.0.0.0/8'), cidr('11.0.0.0/8'))).toBe(false);
    expect(cidrsOverlap(cidr('0.0.0.0/0'), cidr('::/0'))).toBe(false);
  });

  it('within only when the outer prefix holds every address of the inner one', () => {
    expect(cidrWithin(cidr('10.1.0.0/16'), cidr('10.0.0.0/8'))).toBe(true);
    expect(cidrWithin(cidr('10.0.0.0/8'), cidr('10.0.0.0/8'))).toBe(true);
    expect(cidrWithin(cidr('10.0.0.0/8'), cidr('10.1.0.0/16'))).toBe(false);
    expect(cidrWithin(cidr('0.0.0.0/0'), cidr('127.0.0.0/8'))).toBe(false);
  });
});

describe('nonHostAddress', () => {
  it('says why an address is never a host\'s, the most specific reason first', () => {
    expect(nonHostAddress(ip('0.0.0.0'))).toBe('the unspecified address');
    expect(nonHostAddress(ip('255.255.255.255'))).toBe('the limited broadcast address');
    expect(nonHostAddress(ip('224.0.0.5'))).toBe('a link-local multicast address (224.0.0.0/24)');
    expect(nonHostAddress(ip('224.0.1.5'))).toBe('a multicast address (224.0.0.0/4)');
    expect(nonHostAddress(ip('::'))).toBe('the unspecified address');
    expect(nonHostAddress(ip('::1'))).toBe('the loopback address');
  });

  it('finds nothing in unicast addresses, and link-local ones only when asked to', () => {
    for (const text of ['1.0.0.0', '126.255.255.255', '128.0.0.0', '223.255.255.255', '169.254.0.1', 'fe80::1', '2001:db8::1', '::2:0:0']) {
      expect(nonHostAddress(ip(text))).toBeUndefined();
    }
    expect(nonHostAddress(ip('169.254.0.1'), LINK_LOCAL_RANGES)).toBe('a link-local address (169.254.0.0/16)');
    expect(nonHostAddress(ip('febf::1'), LINK_LOCAL_RANGES)).toBe('a link-local address (fe80::/10)');
  });

  it('places an IPv4 address in a range as the prefix arithmetic does, at every range\'s edges and inside it', () => {
    const ranges = [...NON_HOST_RANGES, ...LINK_LOCAL_RANGES].filter((r) => r.cidr.family === 4);
    const reference = (address: ParsedIp, extra = LINK_LOCAL_RANGES): string | undefined => {
      const cidr: ParsedCidr = { family: 4, network: address.value, prefix: 32 };
      const range = [...NON_HOST_RANGES, ...extra].find((r) => cidrWithin(cidr, r.cidr));
      return range && (range.cidr.prefix === 32 ? range.address : `${range.address} (${range.text})`);
    };
    const random = prng(7);
    const values = ranges.flatMap(({ cidr }) => {
      const last = cidr.network + (1n << BigInt(32 - cidr.prefix)) - 1n;
      return [cidr.network - 1n, cidr.network, cidr.network + 1n, last - 1n, last, last + 1n].filter((v) => v >= 0n && v <= 0xffffffffn);
    });
    values.push(...Array.from({ length: 2_000 }, () => BigInt(Math.floor(random() * 2 ** 32))));
    for (const value of values) {
      const address: ParsedIp = { family: 4, value };
      const special = address.value === 0n || address.value === 0xffffffffn || address.value >> 8n === 0xe00000n;
      if (!special) {
        expect([formatIp(address), nonHostAddress(address, LINK_LOCAL_RANGES)]).toEqual([formatIp(address), reference(address)]);
      }
    }
  });
});
