import { ErrorCode, OverlayError } from '../errors';
import { normalizeRules, ruleKey } from './security-group.rules';
import { ruleSchema } from './security-group.schemas';

const parse = (...raw: Record<string, unknown>[]) => raw.map((r, i) => ruleSchema.parse(r, `rules[${i}]`));

/** Rule ids as the server makes them (UUIDv7-shaped, so they can be sent back), from a counter. */
const ruleId = (n: number) => `01900000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;
function ids(): () => string {
  let n = 0;
  return () => ruleId(++n);
}

function refused(fn: () => unknown): { code: ErrorCode; field: string | undefined } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OverlayError);
    return { code: (err as OverlayError).code, field: (err as OverlayError).field };
  }
  throw new Error('expected an OverlayError, nothing was thrown');
}

const ssh = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22 };
const web = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80 };
const ping = { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp', icmpType: 8 };

describe('normalizeRules', () => {
  it('stores one shape: protocol by name, a single port as min = max, unused fields null', () => {
    const [rule] = normalizeRules(parse({ direction: 'egress', ethertype: 'IPv6', protocol: 17, portRangeMin: 53 }), undefined, ids());
    expect(rule).toEqual({
      id: ruleId(1),
      direction: 'egress',
      ethertype: 'IPv6',
      protocol: 'udp',
      portRangeMin: 53,
      portRangeMax: 53,
      icmpType: null,
      icmpCode: null,
      remoteCidr: null,
      remoteGroupId: null,
      description: null,
    });
  });

  it('keeps the id of a rule kept unchanged, of a rule sent back with its id, and gives new rules new ids', () => {
    const current = normalizeRules(parse(ssh, web, ping), undefined, ids());
    expect(current.map((r) => r.id)).toEqual([ruleId(1), ruleId(2), ruleId(3)]);
    const next = normalizeRules(parse({ ...web }, { ...ssh, id: null }, { ...ping, icmpType: 0, id: current[2].id }, { ...ssh, portRangeMin: 2222 }), current, () => 'fresh');
    expect(next.map((r) => r.id)).toEqual([current[1].id, current[0].id, current[2].id, 'fresh']);
    expect(next[2].icmpType).toBe(0);
  });

  it('matches a kept rule by what it allows, not by its description', () => {
    const current = normalizeRules(parse(ssh), undefined, ids());
    const next = normalizeRules(parse({ ...ssh, description: 'ssh' }, { ...ssh, remoteCidr: '10.0.0.0/8' }), current, () => 'fresh');
    expect(next.map((r) => r.id)).toEqual([current[0].id, 'fresh']);
  });

  it.each([
    ['the same rule twice', [ssh, web, { ...ssh, portRangeMax: 22 }], ErrorCode.DuplicateRule, 'rules[2]'],
    ['tcp and 6', [web, { ...web, protocol: 6 }], ErrorCode.DuplicateRule, 'rules[1]'],
    ['no remote and 0.0.0.0/0', [web, { ...web, remoteCidr: '0.0.0.0/0' }], ErrorCode.DuplicateRule, 'rules[1]'],
    ['both remotes', [{ ...ssh, remoteCidr: '10.0.0.0/8', remoteGroupId: '01900000-0000-7000-8000-000000000001' }], ErrorCode.ConflictingRemotes, 'rules[0].remoteGroupId'],
    ['an IPv6 prefix on an IPv4 rule', [{ ...ssh, remoteCidr: 'fd00::/8' }], ErrorCode.CidrFamilyMismatch, 'rules[0].remoteCidr'],
    ['an IPv4 prefix on an IPv6 rule', [{ ...ssh, ethertype: 'IPv6', remoteCidr: '10.0.0.0/8' }], ErrorCode.CidrFamilyMismatch, 'rules[0].remoteCidr'],
    ['icmp over IPv6', [{ ...ping, ethertype: 'IPv6' }], ErrorCode.ProtocolFamilyMismatch, 'rules[0].protocol'],
    ['protocol 58 over IPv4', [{ direction: 'ingress', ethertype: 'IPv4', protocol: 58 }], ErrorCode.ProtocolFamilyMismatch, 'rules[0].protocol'],
    ['ports on icmp', [{ direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp', portRangeMin: 8 }], ErrorCode.PortRangeNotAllowed, 'rules[0].portRangeMin'],
    ['ports on any', [{ direction: 'ingress', ethertype: 'IPv4', protocol: 'any', portRangeMax: 8 }], ErrorCode.PortRangeNotAllowed, 'rules[0].portRangeMax'],
    ['ports on protocol 47', [{ direction: 'ingress', ethertype: 'IPv4', protocol: 47, portRangeMin: 1 }], ErrorCode.PortRangeNotAllowed, 'rules[0].portRangeMin'],
    ['a range upside down', [{ ...ssh, portRangeMin: 30, portRangeMax: 20 }], ErrorCode.InvalidPortRange, 'rules[0].portRangeMax'],
    ['a max without a min', [{ ...ssh, portRangeMin: undefined, portRangeMax: 20 }], ErrorCode.InvalidPortRange, 'rules[0].portRangeMin'],
    ['an icmp type on tcp', [{ ...ssh, icmpType: 8 }], ErrorCode.IcmpNotAllowed, 'rules[0].icmpType'],
    ['an icmp code without a type', [{ ...ping, icmpType: undefined, icmpCode: 0 }], ErrorCode.IcmpNotAllowed, 'rules[0].icmpCode'],
  ])('refuses %s', (_name, raw, code, field) => {
    expect(refused(() => normalizeRules(parse(...(raw as Record<string, unknown>[])), undefined, ids()))).toEqual({ code, field });
  });

  it('accepts sctp ports by protocol number', () => {
    const [rule] = normalizeRules(parse({ direction: 'ingress', ethertype: 'IPv6', protocol: 132, portRangeMin: 3868, portRangeMax: 3870 }), undefined, ids());
    expect(rule).toMatchObject({ protocol: 132, portRangeMin: 3868, portRangeMax: 3870 });
  });

  it('refuses an id on a new group, an unknown id, and one id twice', () => {
    const current = normalizeRules(parse(ssh, web), undefined, ids());
    expect(refused(() => normalizeRules(parse({ ...ssh, id: current[0].id })))).toEqual({ code: ErrorCode.InvalidValue, field: 'rules[0].id' });
    expect(refused(() => normalizeRules(parse({ ...ssh, id: ruleId(9) }), current))).toEqual({ code: ErrorCode.InvalidValue, field: 'rules[0].id' });
    expect(refused(() => normalizeRules(parse({ ...ssh, id: current[0].id }, { ...web, id: current[0].id }), current))).toEqual({ code: ErrorCode.InvalidValue, field: 'rules[1].id' });
  });

  it('keys a full port range as no range', () => {
    const [a, b] = normalizeRules(parse({ ...ssh, portRangeMin: 1, portRangeMax: 65535 }, { ...web, portRangeMin: undefined, protocol: 'udp' }), undefined, ids());
    expect(ruleKey(a)).toBe(ruleKey({ ...b, protocol: 'tcp' }));
  });
});
