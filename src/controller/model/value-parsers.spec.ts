import { ErrorCode, OverlayError } from '../errors';
import { type Cidr, type IpAddress } from '../../common/values';
import { assertIpInCidr, generateMac, NAME_PATTERN, newId, parseCidr, parseHostIp, parseId, parseIp, parseIpOrCidr, parseIsoTime, parseMac, parseSegmentCidr, parseVtepIp } from './value-parsers';

/** Runs `fn` and returns the `OverlayError` it threw (failing the test if it threw anything else or nothing). */
function refusal(fn: () => unknown): OverlayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OverlayError);
    return err as OverlayError;
  }
  throw new Error('expected an OverlayError, nothing was thrown');
}

const refused = (fn: () => unknown) => {
  const err = refusal(fn);
  return { code: err.code, field: err.field };
};

describe('parseMac', () => {
  it('keeps a lower-case, colon-separated unicast MAC as it is', () => {
    expect(parseMac('02:00:00:00:00:01')).toBe('02:00:00:00:00:01');
    expect(parseMac('52:54:00:ab:cd:ef')).toBe('52:54:00:ab:cd:ef');
  });

  it('normalizes upper case and dashes to lower case with colons', () => {
    expect(parseMac('52:54:00:AB:CD:EF')).toBe('52:54:00:ab:cd:ef');
    expect(parseMac('52-54-00-Ab-cD-eF')).toBe('52:54:00:ab:cd:ef');
  });

  it('refuses a MAC as multicast exactly when its first octet is odd, in every spelling', () => {
    for (let octet = 0; octet < 256; octet++) {
      const hex = octet.toString(16).padStart(2, '0');
      for (const raw of [`${hex}:00:00:00:00:01`, `${hex.toUpperCase()}-00-00-00-00-01`]) {
        if (octet & 1) {
          expect(() => parseMac(raw)).toThrow(expect.objectContaining({ code: 'MULTICAST_MAC' }));
        } else {
          expect(parseMac(raw)).toBe(`${hex}:00:00:00:00:01`);
        }
      }
    }
  });

  it.each([
    ['the broadcast MAC', 'ff:ff:ff:ff:ff:ff'],
    ['an IPv4 multicast MAC', '01:00:5e:00:00:01'],
    ['an IPv6 multicast MAC', '33:33:00:00:00:01'],
    ['a multicast MAC written with dashes and upper case', '01-80-C2-00-00-0E'],
    ['a locally administered multicast MAC', '03:00:00:00:00:01'],
  ])('refuses %s with MULTICAST_MAC', (_what, raw) => {
    expect(refused(() => parseMac(raw, 'ports[2].mac'))).toEqual({ code: ErrorCode.MulticastMac, field: 'ports[2].mac' });
  });

  it('refuses the all-zero MAC with INVALID_MAC', () => {
    expect(refused(() => parseMac('00:00:00:00:00:00'))).toEqual({ code: ErrorCode.InvalidMac, field: 'mac' });
    expect(refused(() => parseMac('00-00-00-00-00-00'))).toEqual({ code: ErrorCode.InvalidMac, field: 'mac' });
  });

  it.each([
    ['empty', ''],
    ['five octets', '02:00:00:00:01'],
    ['seven octets', '02:00:00:00:00:00:01'],
    ['mixed separators', '02:00-00:00:00:01'],
    ['no separators', '020000000001'],
    ['Cisco dotted notation', '0200.0000.0001'],
    ['single-digit octets', '2:0:0:0:0:1'],
    ['a non-hex digit', '02:00:00:00:00:0g'],
    ['surrounding spaces', ' 02:00:00:00:00:01 '],
    ['a trailing separator', '02:00:00:00:00:01:'],
  ])('refuses %s with INVALID_MAC naming the field', (_what, raw) => {
    expect(refused(() => parseMac(raw, 'ports[0].mac'))).toEqual({ code: ErrorCode.InvalidMac, field: 'ports[0].mac' });
  });
});

describe('generateMac', () => {
  it('generates locally administered unicast MACs that parse back unchanged', () => {
    for (let i = 0; i < 200; i++) {
      const mac = generateMac();
      expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      const first = parseInt(mac.slice(0, 2), 16);
      expect(first & 0b01).toBe(0); // unicast
      expect(first & 0b10).toBe(0b10); // locally administered
      expect(parseMac(mac)).toBe(mac);
    }
  });

  it('does not repeat itself in a small sample', () => {
    const macs = new Set(Array.from({ length: 1000 }, () => generateMac()));
    expect(macs.size).toBe(1000);
  });
});

describe('parseIp', () => {
  it('returns the canonical text of either family', () => {
    expect(parseIp('10.0.0.1')).toBe('10.0.0.1');
    expect(parseIp('FD00:0:0::0001')).toBe('fd00::1');
  });

  it.each([['10.0.0.256'], ['10.0.0.1/32'], ['fe80::1%eth0'], ['host.example'], ['']])('refuses %j with INVALID_IP naming the field', (raw) => {
    expect(refused(() => parseIp(raw, 'ips[1]'))).toEqual({ code: ErrorCode.InvalidIp, field: 'ips[1]' });
  });
});

describe('parseVtepIp', () => {
  it('accepts unicast addresses and returns them canonically', () => {
    expect(parseVtepIp('192.0.2.10')).toBe('192.0.2.10');
    expect(parseVtepIp('2001:DB8::A')).toBe('2001:db8::a');
    expect(parseVtepIp('223.255.255.255')).toBe('223.255.255.255');
    expect(parseVtepIp('1.0.0.0')).toBe('1.0.0.0');
    expect(parseVtepIp('126.255.255.255')).toBe('126.255.255.255');
    expect(parseVtepIp('128.0.0.0')).toBe('128.0.0.0');
    expect(parseVtepIp('169.253.255.255')).toBe('169.253.255.255');
    expect(parseVtepIp('fe7f::1')).toBe('fe7f::1');
    expect(parseVtepIp('64:ff9b::192.0.2.1')).toBe('64:ff9b::c000:201');
  });

  it.each([
    ['IPv4 multicast (lowest)', '224.0.0.1'],
    ['IPv4 multicast (highest)', '239.255.255.255'],
    ['IPv6 multicast', 'ff02::1'],
    ['IPv6 multicast, upper case', 'FF05::1:3'],
    ['the IPv4 unspecified address', '0.0.0.0'],
    ['the IPv6 unspecified address', '::'],
    ['the IPv4 limited broadcast address', '255.255.255.255'],
    ['something that is not an address', 'vtep-1'],
    ['IPv4 loopback', '127.0.0.1'],
    ['IPv4 loopback, not the usual one', '127.8.9.10'],
    ['IPv6 loopback', '::1'],
    ['IPv4 link-local multicast', '224.0.0.251'],
    ['IPv6 link-local multicast', 'ff02::fb'],
    ['an address of "this network" (0.0.0.0/8)', '0.1.2.3'],
    ['a reserved (class E) address', '240.0.0.1'],
    ['IPv4 link-local', '169.254.10.1'],
    ['IPv6 link-local', 'fe80::1'],
    ['an IPv4-mapped IPv6 address', '::ffff:192.0.2.11'],
    ['an IPv4-mapped IPv6 address in hex', '::ffff:c000:20b'],
    ['an IPv4-mapped IPv6 address in full', '0:0:0:0:0:ffff:192.0.2.11'],
    ['an IPv4-compatible IPv6 address', '::192.0.2.11'],
  ])('refuses %s with INVALID_IP on vtepIp', (_what, raw) => {
    expect(refused(() => parseVtepIp(raw))).toEqual({ code: ErrorCode.InvalidIp, field: 'vtepIp' });
  });
});

describe('IPv6 spellings of an IPv4 address', () => {
  it.each([
    ['::ffff:192.0.2.11', '192.0.2.11', 'IPv4-mapped'],
    ['::FFFF:C000:020B', '192.0.2.11', 'IPv4-mapped'],
    ['0:0:0:0:0:ffff:10.0.0.5', '10.0.0.5', 'IPv4-mapped'],
    ['::ffff:0.0.0.0', '0.0.0.0', 'IPv4-mapped'],
    ['::192.0.2.11', '192.0.2.11', 'IPv4-compatible'],
    ['::2', '0.0.0.2', 'IPv4-compatible'],
  ])('refuses %s everywhere an address enters, naming %s', (raw, ipv4, form) => {
    for (const parse of [parseIp, parseHostIp, parseVtepIp, parseIpOrCidr]) {
      const err = refusal(() => parse(raw, 'f'));
      expect({ code: err.code, field: err.field }).toEqual({ code: ErrorCode.InvalidIp, field: 'f' });
      expect(err.message).toContain(`${form} IPv6 address; write it as the IPv4 address ${ipv4}`);
    }
  });

  it.each([
    ['::ffff:10.0.0.0/104', '10.0.0.0/8', 'IPv4-mapped'],
    ['::ffff:0:0/96', '0.0.0.0/0', 'IPv4-mapped'],
    ['::ffff:192.0.2.11/128', '192.0.2.11/32', 'IPv4-mapped'],
    ['::10.0.0.0/104', '10.0.0.0/8', 'IPv4-compatible'],
    ['::/96', '0.0.0.0/0', 'IPv4-compatible'],
  ])('refuses the prefix %s everywhere a prefix enters, naming %s', (raw, ipv4, form) => {
    for (const parse of [parseCidr, parseSegmentCidr, parseIpOrCidr]) {
      const err = refusal(() => parse(raw, 'f'));
      expect({ code: err.code, field: err.field }).toEqual({ code: ErrorCode.InvalidCidr, field: 'f' });
      expect(err.message).toContain(`${form} IPv6 prefix; write it as the IPv4 prefix ${ipv4}`);
    }
  });

  it('leaves IPv6 addresses of translators alone, and :: and ::1 to IPv6', () => {
    expect(parseIp('64:ff9b::192.0.2.1')).toBe('64:ff9b::c000:201');
    expect(parseIp('2002:c000:20b::1')).toBe('2002:c000:20b::1');
    expect(parseIp('::')).toBe('::');
    expect(parseIp('::1')).toBe('::1');
    expect(parseIp('::1:0:0')).toBe('::1:0:0');
    expect(parseCidr('::/0')).toBe('::/0');
    expect(parseCidr('::/64')).toBe('::/64');
    expect(parseCidr('::ffff:0:0:0/96')).toBe('::ffff:0:0:0/96');
  });
});

describe('parseHostIp (a port address)', () => {
  it('accepts unicast addresses a VM can hold, canonically', () => {
    for (const [raw, canonical] of [
      ['10.0.0.5', '10.0.0.5'],
      ['192.168.1.255', '192.168.1.255'],
      ['169.254.169.254', '169.254.169.254'],
      ['FD00::5', 'fd00::5'],
      ['fe80::1', 'fe80::1'],
      ['2001:db8::1', '2001:db8::1'],
    ]) {
      expect(parseHostIp(raw, 'ips[0]')).toBe(canonical);
    }
  });

  it.each([
    ['0.0.0.0', 'the unspecified address'],
    ['::', 'the unspecified address'],
    ['255.255.255.255', 'the limited broadcast address'],
    ['127.0.0.1', 'a loopback address (127.0.0.0/8)'],
    ['127.255.0.1', 'a loopback address (127.0.0.0/8)'],
    ['::1', 'the loopback address'],
    ['224.0.0.1', 'a link-local multicast address (224.0.0.0/24)'],
    ['ff02::1', 'a link-local multicast address (ff02::/16)'],
    ['239.1.2.3', 'a multicast address (224.0.0.0/4)'],
    ['ff0e::1', 'a multicast address (ff00::/8)'],
    ['0.0.0.1', 'a "this network" address (0.0.0.0/8)'],
    ['250.1.2.3', 'a reserved address (240.0.0.0/4)'],
  ])('refuses %s with RESERVED_IP: %s', (raw, why) => {
    const err = refusal(() => parseHostIp(raw, 'ips[0]'));
    expect({ code: err.code, field: err.field }).toEqual({ code: ErrorCode.ReservedIp, field: 'ips[0]' });
    expect(err.message).toContain(`is ${why}`);
  });
});

describe('parseSegmentCidr', () => {
  it('accepts subnets of host addresses, canonically', () => {
    for (const [raw, canonical] of [
      ['10.0.0.0/24', '10.0.0.0/24'],
      ['1.0.0.0/8', '1.0.0.0/8'],
      ['128.0.0.0/2', '128.0.0.0/2'],
      ['192.0.2.7/32', '192.0.2.7/32'],
      ['FD00:1::/64', 'fd00:1::/64'],
      ['2000::/3', '2000::/3'],
      ['fe80::/64', 'fe80::/64'],
    ]) {
      expect(parseSegmentCidr(raw)).toBe(canonical);
    }
  });

  it.each([
    ['0.0.0.0/0', 'is a default route'],
    ['::/0', 'is a default route'],
    ['224.0.0.0/4', 'overlaps 224.0.0.0/4 (multicast)'],
    ['239.1.0.0/16', 'overlaps 224.0.0.0/4 (multicast)'],
    ['ff00::/8', 'overlaps ff00::/8 (multicast)'],
    ['ff02::/16', 'overlaps ff00::/8 (multicast)'],
    ['127.0.0.0/8', 'overlaps 127.0.0.0/8 (loopback)'],
    ['127.0.0.0/24', 'overlaps 127.0.0.0/8 (loopback)'],
    ['::1/128', 'overlaps ::1/128 (loopback)'],
    ['0.0.0.0/8', 'overlaps 0.0.0.0/8 ("this network")'],
    ['0.0.0.0/1', 'overlaps 0.0.0.0/8 ("this network")'],
    ['240.0.0.0/4', 'overlaps 240.0.0.0/4 (reserved)'],
    ['255.255.255.255/32', 'overlaps 240.0.0.0/4 (reserved)'],
    ['192.0.0.0/2', 'overlaps 224.0.0.0/4 (multicast)'],
    ['::/64', 'overlaps ::/128 (the unspecified address)'],
  ])('refuses %s with INVALID_CIDR: %s', (raw, why) => {
    const err = refusal(() => parseSegmentCidr(raw));
    expect({ code: err.code, field: err.field }).toEqual({ code: ErrorCode.InvalidCidr, field: 'cidr' });
    expect(err.message).toContain(why);
  });
});

describe('parseCidr', () => {
  it('returns the canonical network', () => {
    expect(parseCidr('10.0.0.0/24')).toBe('10.0.0.0/24');
    expect(parseCidr('FD00:0001::/64')).toBe('fd00:1::/64');
  });

  it('refuses host bits with INVALID_CIDR and says so', () => {
    const err = refusal(() => parseCidr('10.0.0.1/24'));
    expect({ code: err.code, field: err.field }).toEqual({ code: ErrorCode.InvalidCidr, field: 'cidr' });
    expect(err.message).toMatch(/host bits/);
  });

  it.each([['10.0.0.0/33'], ['fd00::/129'], ['10.0.0.0'], ['10.0.0.0/x'], ['']])('refuses %j with INVALID_CIDR', (raw) => {
    expect(refused(() => parseCidr(raw))).toEqual({ code: ErrorCode.InvalidCidr, field: 'cidr' });
  });
});

describe('assertIpInCidr', () => {
  const v4 = '10.0.0.0/24' as Cidr;
  const v6 = 'fd00:1::/64' as Cidr;
  const check = (ipText: string, cidr: Cidr) => () => assertIpInCidr(parseIp(ipText), cidr, 'ips[0]');

  it('accepts a usable address inside the CIDR', () => {
    expect(check('10.0.0.1', v4)).not.toThrow();
    expect(check('10.0.0.254', v4)).not.toThrow();
    expect(check('fd00:1::1', v6)).not.toThrow();
    expect(check('fd00:1::ffff:ffff:ffff:ffff', v6)).not.toThrow();
  });

  it('refuses an address of the other family with IP_FAMILY_MISMATCH', () => {
    expect(refused(check('fd00:1::5', v4))).toEqual({ code: ErrorCode.IpFamilyMismatch, field: 'ips[0]' });
    expect(refused(check('10.0.0.5', v6))).toEqual({ code: ErrorCode.IpFamilyMismatch, field: 'ips[0]' });
    // An IPv4-mapped address never gets this far: parseIp refuses it (INVALID_IP).
    expect(refused(check('::ffff:10.0.0.5', v4))).toEqual({ code: ErrorCode.InvalidIp, field: 'ip' });
  });

  it('refuses an address outside the CIDR with IP_OUTSIDE_CIDR', () => {
    expect(refused(check('10.0.1.1', v4))).toEqual({ code: ErrorCode.IpOutsideCidr, field: 'ips[0]' });
    expect(refused(check('fd00:2::1', v6))).toEqual({ code: ErrorCode.IpOutsideCidr, field: 'ips[0]' });
  });

  it('refuses the network and broadcast addresses with RESERVED_IP', () => {
    expect(refused(check('10.0.0.0', v4))).toEqual({ code: ErrorCode.ReservedIp, field: 'ips[0]' });
    expect(refused(check('10.0.0.255', v4))).toEqual({ code: ErrorCode.ReservedIp, field: 'ips[0]' });
    expect(refused(check('fd00:1::', v6))).toEqual({ code: ErrorCode.ReservedIp, field: 'ips[0]' });
  });

  it('lets every address of a /31 or /32 be used', () => {
    expect(check('10.0.0.0', '10.0.0.0/31' as Cidr)).not.toThrow();
    expect(check('10.0.0.1', '10.0.0.0/31' as Cidr)).not.toThrow();
    expect(check('10.0.0.9', '10.0.0.9/32' as Cidr)).not.toThrow();
  });

  it('compares canonical forms, so any spelling of an inside address passes', () => {
    expect(() => assertIpInCidr(parseIp('FD00:1:0:0::7'), v6, 'ips[0]')).not.toThrow();
    expect(() => assertIpInCidr('fd00:1::7' as IpAddress, v6, 'ips[0]')).not.toThrow();
  });

  it('checks against each CIDR of many (each parsed once and kept, a bounded number of them)', () => {
    // 3 x 1,000 segments' CIDRs, more than are kept: each still checks as its own.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1_000; i++) {
        const cidr = `10.${round}.${i % 250}.${(i % 4) * 64}/26` as Cidr;
        const base = (i % 4) * 64;
        expect(check(`10.${round}.${i % 250}.${base + 1}`, cidr)).not.toThrow();
        expect(refused(check(`10.${round}.${i % 250}.${(base + 64) % 256 + 1}`, cidr))).toEqual({ code: ErrorCode.IpOutsideCidr, field: 'ips[0]' });
        expect(refused(check(`10.${round}.${i % 250}.${base + 63}`, cidr))).toEqual({ code: ErrorCode.ReservedIp, field: 'ips[0]' });
      }
    }
  });
});

describe('newId and parseId', () => {
  it('makes RFC 9562 version 7 UUIDs carrying the creation time in the first 48 bits', () => {
    const now = Date.UTC(2026, 10, 27, 12, 0, 0, 123);
    const id = newId(now);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(now);
  });

  it('sorts ids by creation time, as plain strings', () => {
    const start = Date.UTC(2026, 0, 1);
    const times = [0, 1, 2, 255, 256, 65_535, 65_536, 1_000_000, 86_400_000, 10 * 365 * 86_400_000].map((d) => start + d);
    const ids = times.map((t) => newId(t));
    const shuffled = [...ids].reverse();
    expect([...shuffled].sort()).toEqual(ids);
  });

  it('makes distinct ids within one millisecond', () => {
    const now = Date.now();
    const ids = new Set(Array.from({ length: 1000 }, () => newId(now)));
    expect(ids.size).toBe(1000);
  });

  it('accepts its own ids, and upper case, returning lower case', () => {
    const id = newId();
    expect(parseId(id)).toBe(id);
    expect(parseId(id.toUpperCase())).toBe(id);
  });

  it.each([
    ['a version 4 UUID', '3b241101-e2bb-4255-8caf-4136c566a962'],
    ['a UUID with the wrong variant', '01890a5d-ac96-774b-cfff-7b3a5d3a4b70'],
    ['a UUID without dashes', '01890a5dac96774bbcff7b3a5d3a4b70'],
    ['a UUID in braces', '{01890a5d-ac96-774b-bcff-7b3a5d3a4b70}'],
    ['a truncated UUID', '01890a5d-ac96-774b-bcff-7b3a5d3a4b7'],
    ['a name', 'tenant-1'],
    ['empty', ''],
  ])('refuses %s with INVALID_ID naming the field', (_what, raw) => {
    expect(refused(() => parseId(raw, 'tenantId'))).toEqual({ code: ErrorCode.InvalidId, field: 'tenantId' });
  });
});

describe('NAME_PATTERN', () => {
  it.each([['a'], ['web'], ['web-01'], ['a.b_c-d'], ['A1'], ['x'.repeat(63)]])('accepts %j', (name) => {
    expect(NAME_PATTERN.test(name)).toBe(true);
  });

  it.each([[''], ['-web'], ['web-'], ['.web'], ['we b'], ['wéb'], ['web/1'], ['x'.repeat(64)]])('refuses %j', (name) => {
    expect(NAME_PATTERN.test(name)).toBe(false);
  });
});

describe('parseIpOrCidr', () => {
  it.each([
    ['10.0.0.5', '10.0.0.5'],
    ['10.0.0.5/32', '10.0.0.5'],
    ['10.1.0.0/16', '10.1.0.0/16'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['FD00:0::1/128', 'fd00::1'],
    ['fd00:0:0::/64', 'fd00::/64'],
    ['::/0', '::/0'],
    ['169.254.169.254', '169.254.169.254'],
  ])('reads %j as %j', (raw, canonical) => {
    expect(parseIpOrCidr(raw, 'ip')).toBe(canonical);
  });

  it('refuses what is neither, with the code of what it looked like', () => {
    expect(refused(() => parseIpOrCidr('vip', 'pairs[0].ip'))).toEqual({ code: ErrorCode.InvalidIp, field: 'pairs[0].ip' });
    expect(refused(() => parseIpOrCidr('10.0.0.1/24', 'pairs[0].ip'))).toEqual({ code: ErrorCode.InvalidCidr, field: 'pairs[0].ip' });
    expect(refused(() => parseIpOrCidr('10.0.0.0/33', 'pairs[0].ip'))).toEqual({ code: ErrorCode.InvalidCidr, field: 'pairs[0].ip' });
  });

  it.each([
    ['224.0.0.1'],
    ['255.255.255.255'],
    ['0.0.0.0'],
    ['127.0.0.1/32'],
    ['::/128'],
    ['::1'],
    ['ff02::1'],
    ['224.0.0.0/4'],
    ['239.0.0.0/8'],
    ['127.0.0.0/8'],
    ['ff00::/8'],
    ['240.0.0.0/5'],
  ])('refuses %j, which no VM can send from, with RESERVED_IP', (raw) => {
    expect(refused(() => parseIpOrCidr(raw, 'pairs[0].ip'))).toEqual({ code: ErrorCode.ReservedIp, field: 'pairs[0].ip' });
  });
});

describe('parseIsoTime', () => {
  it.each([
    ['2027-01-31T00:00:00Z', Date.UTC(2027, 0, 31)],
    ['2027-01-31T00:00Z', Date.UTC(2027, 0, 31)],
    ['2027-01-31T02:00:00+02:00', Date.UTC(2027, 0, 31)],
    ['2027-01-30T19:00:00.5-05:00', Date.UTC(2027, 0, 31, 0, 0, 0, 500)],
    ['2027-01-31T00:00:00.123456789Z', Date.UTC(2027, 0, 31, 0, 0, 0, 123)],
    ['2028-02-29T23:59:59Z', Date.UTC(2028, 1, 29, 23, 59, 59)],
    ['1970-01-01T00:00:00Z', 0],
  ])('reads %s', (raw, ms) => {
    expect(parseIsoTime(raw, 'since')).toBe(ms);
  });

  it.each([
    ['2027-01-31T00:00:00', 'no zone'],
    ['2027-01-31', 'no time'],
    ['2027-02-29T00:00:00Z', 'not a leap year'],
    ['2027-04-31T00:00:00Z', 'April has 30 days'],
    ['2027-13-01T00:00:00Z', 'no month 13'],
    ['2027-00-01T00:00:00Z', 'no month 0'],
    ['2027-01-00T00:00:00Z', 'no day 0'],
    ['2027-01-01T24:00:00Z', '24:00'],
    ['2027-01-01T00:60:00Z', 'minute 60'],
    ['2027-01-01T00:00:60Z', 'a leap second'],
    ['2027-01-01T00:00:00+24:00', 'offset of a day'],
    ['1969-12-31T23:59:59Z', 'before 1970'],
    ['2027-01-01T00:00:00.Z', 'an empty fraction'],
    [' 2027-01-01T00:00:00Z', 'a space'],
  ])('refuses %s (%s) with INVALID_VALUE naming the field', (raw) => {
    expect(refused(() => parseIsoTime(raw, 'until'))).toEqual({ code: ErrorCode.InvalidValue, field: 'until' });
  });
});
