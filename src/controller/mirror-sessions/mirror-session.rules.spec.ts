import { ErrorCode, OverlayError } from '../errors';
import { parseId } from '../model/value-parsers';
import type { MirrorSession } from '../model/mirror-session';
import type { Port } from '../model/port';
import { portRecord } from '../../../test/support/records';
import { normalizeFilter, normalizeSink, normalizeSources } from './mirror-session.rules';
import { createMirrorSessionSchema, parseInterfaceName, sinkSchema, updateMirrorSessionSchema } from './mirror-session.schemas';
import { sourceState } from './mirror-session.service';

const A = parseId('01890a5d-ac96-774b-bcce-b302099a8051');
const B = parseId('01890a5d-ac96-774b-bcce-b302099a8052');
const HOST = parseId('01890a5d-ac96-774b-bcce-b302099a8053');

/** The code and field of what `fn` throws. */
function refusal(fn: () => unknown): { code: ErrorCode; field?: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof OverlayError) {
      return { code: err.code, field: err.field };
    }
    throw err;
  }
  throw new Error('nothing thrown');
}

describe('mirror session schemas', () => {
  it('parses each sink type by its own fields', () => {
    expect(sinkSchema.parse({ type: 'port', portId: A }, 'sink')).toEqual({ type: 'port', portId: A });
    expect(sinkSchema.parse({ type: 'vxlan', remoteIp: '2001:DB8::1' }, 'sink')).toEqual({ type: 'vxlan', remoteIp: '2001:db8::1' });
    expect(sinkSchema.parse({ type: 'uplink', hostId: HOST, interface: 'enp3s0f1' }, 'sink')).toEqual({ type: 'uplink', hostId: HOST, interface: 'enp3s0f1' });
    expect(sinkSchema.parse({ type: 'erspan', remoteIp: '192.0.2.7', erspanId: 1023, version: 1 }, 'sink')).toEqual({ type: 'erspan', remoteIp: '192.0.2.7', erspanId: 1023, version: 1 });
    expect(refusal(() => sinkSchema.parse({ type: 'vxlan', portId: A, remoteIp: '192.0.2.1' }, 'sink'))).toEqual({ code: ErrorCode.UnknownField, field: 'sink.portId' });
    expect(refusal(() => sinkSchema.parse({ type: 'port' }, 'sink'))).toEqual({ code: ErrorCode.MissingField, field: 'sink.portId' });
    expect(refusal(() => sinkSchema.parse({ type: 7 }, 'sink'))).toEqual({ code: ErrorCode.InvalidValue, field: 'sink.type' });
    expect(refusal(() => sinkSchema.parse('port', 'sink'))).toEqual({ code: ErrorCode.InvalidType, field: 'sink' });
    // One schema per sink, each with its own `type`, which tells them apart (the OpenAPI document's oneOf).
    expect((sinkSchema.json.oneOf as { properties: { type: { enum: string[] } } }[]).map((sink) => sink.properties.type.enum)).toEqual([['port'], ['vxlan'], ['uplink'], ['erspan']]);
  });

  it.each([
    ['no session id', { type: 'erspan', remoteIp: '192.0.2.7' }, ErrorCode.MissingField, 'sink.erspanId'],
    ['session id 0', { type: 'erspan', remoteIp: '192.0.2.7', erspanId: 0 }, ErrorCode.InvalidValue, 'sink.erspanId'],
    ['session id 1024 (10 bits)', { type: 'erspan', remoteIp: '192.0.2.7', erspanId: 1024 }, ErrorCode.InvalidValue, 'sink.erspanId'],
    ['a fractional session id', { type: 'erspan', remoteIp: '192.0.2.7', erspanId: 1.5 }, ErrorCode.InvalidType, 'sink.erspanId'],
    ['version 3', { type: 'erspan', remoteIp: '192.0.2.7', erspanId: 5, version: 3 }, ErrorCode.InvalidValue, 'sink.version'],
    ['version 0 (type I)', { type: 'erspan', remoteIp: '192.0.2.7', erspanId: 5, version: 0 }, ErrorCode.InvalidValue, 'sink.version'],
    ['a multicast collector', { type: 'erspan', remoteIp: '239.1.1.1', erspanId: 5 }, ErrorCode.InvalidIp, 'sink.remoteIp'],
    ['a VNI (vxlan only)', { type: 'erspan', remoteIp: '192.0.2.7', erspanId: 5, vni: 7000 }, ErrorCode.UnknownField, 'sink.vni'],
    ['a UDP port (vxlan only)', { type: 'erspan', remoteIp: '192.0.2.7', erspanId: 5, udpPort: 4789 }, ErrorCode.UnknownField, 'sink.udpPort'],
  ])('refuses an erspan sink with %s', (_what, raw, code, field) => {
    expect(refusal(() => sinkSchema.parse(raw, 'sink'))).toEqual({ code, field });
  });

  it.each([
    ['eth0', true],
    ['bond0.100', true],
    ['enp3s0f1np1', true],
    ['', false],
    ['.', false],
    ['..', false],
    ['eth 0', false],
    ['eth0:1', false],
    ['a'.repeat(16), false],
    ['vx5000', false],
    ['br5000', false],
    ['mx5000', false],
    ['ms5', false],
    ['tapabc', false],
    ['lo', false],
  ])('takes %j as an uplink interface: %s', (name, accepted) => {
    if (accepted) {
      expect(parseInterfaceName(name, 'sink.interface')).toBe(name);
    } else {
      expect(refusal(() => parseInterfaceName(name, 'sink.interface'))).toEqual({ code: ErrorCode.InvalidValue, field: 'sink.interface' });
    }
  });

  it('refuses a tenant change and takes nulls that clear the filter and snap length', () => {
    expect(refusal(() => updateMirrorSessionSchema.parse({ tenantId: A }, ''))).toEqual({ code: ErrorCode.UnknownField, field: 'tenantId' });
    expect(updateMirrorSessionSchema.parse({ filter: null, snapLength: null }, '')).toEqual({ filter: null, snapLength: null });
    expect(refusal(() => createMirrorSessionSchema.parse({ tenantId: A, name: 'x', sources: [{ portId: A }], sink: { type: 'port', portId: B }, snapLength: 65536 }, ''))).toEqual({ code: ErrorCode.InvalidValue, field: 'snapLength' });
  });
});

/** Inputs as the parser hands them over. */
const sources = (raw: unknown[]) => updateMirrorSessionSchema.parse({ sources: raw }, '').sources!;
const filter = (raw: Record<string, unknown> | undefined) => updateMirrorSessionSchema.parse({ filter: raw }, '').filter;
const sinkOf = (raw: Record<string, unknown>) => sinkSchema.parse(raw, 'sink');

describe('mirror session rules', () => {
  it('defaults directions to both and refuses a port listed twice', () => {
    expect(normalizeSources(sources([{ portId: A }, { portId: B, direction: 'egress' }]))).toEqual([
      { portId: A, direction: 'both' },
      { portId: B, direction: 'egress' },
    ]);
    expect(refusal(() => normalizeSources(sources([{ portId: A }, { portId: B }, { portId: A, direction: 'ingress' }])))).toEqual({ code: ErrorCode.InvalidValue, field: 'sources[2].portId' });
  });

  it('stores a vxlan sink with the session VNI and the default UDP port, and refuses a port sink among the sources', () => {
    expect(normalizeSink(sinkOf({ type: 'vxlan', remoteIp: '192.0.2.1', vni: 7000 }), [], 5000)).toEqual({ type: 'vxlan', remoteIp: '192.0.2.1', vni: 5000, udpPort: 4789 });
    // An erspan sink: version 2 (type III) unless told; the session VNI is not in it (the session keeps one all the same).
    expect(normalizeSink(sinkOf({ type: 'erspan', remoteIp: '2001:DB8::7', erspanId: 12 }), [], 5000)).toEqual({ type: 'erspan', remoteIp: '2001:db8::7', erspanId: 12, version: 2 });
    expect(normalizeSink({ type: 'erspan', remoteIp: '192.0.2.7', erspanId: 12, version: 1 }, [], 5000)).toEqual({ type: 'erspan', remoteIp: '192.0.2.7', erspanId: 12, version: 1 });
    expect(refusal(() => normalizeSink(sinkOf({ type: 'port', portId: B }), [{ portId: A, direction: 'both' }, { portId: B, direction: 'both' }], 5000))).toEqual({ code: ErrorCode.MirrorSinkIsSource, field: 'sink.portId' });
  });

  it('stores protocols by number, an empty filter as none, and checks families', () => {
    expect(normalizeFilter(undefined)).toBeNull();
    expect(normalizeFilter(filter({ ethertype: null, protocol: null }))).toBeNull();
    expect(normalizeFilter(filter({ ethertype: 'IPv4', protocol: 'udp', remoteCidr: '10.0.0.0/8' }))).toEqual({ ethertype: 'IPv4', protocol: 17, remoteCidr: '10.0.0.0/8' });
    expect(normalizeFilter(filter({ ethertype: 'IPv6', protocol: 132 }))).toEqual({ ethertype: 'IPv6', protocol: 132, remoteCidr: null });
    expect(refusal(() => normalizeFilter(filter({ protocol: 6 })))).toEqual({ code: ErrorCode.MissingField, field: 'filter.ethertype' });
    expect(refusal(() => normalizeFilter(filter({ ethertype: 'IPv4', protocol: 'icmpv6' })))).toEqual({ code: ErrorCode.ProtocolFamilyMismatch, field: 'filter.protocol' });
    expect(refusal(() => normalizeFilter(filter({ ethertype: 'IPv6', protocol: 1 })))).toEqual({ code: ErrorCode.ProtocolFamilyMismatch, field: 'filter.protocol' });
    expect(refusal(() => normalizeFilter(filter({ ethertype: 'IPv6', remoteCidr: '10.0.0.0/8' })))).toEqual({ code: ErrorCode.CidrFamilyMismatch, field: 'filter.remoteCidr' });
  });
});

describe('sourceState', () => {
  const session = (fields: Partial<MirrorSession> = {}): MirrorSession => ({
    id: 's',
    tenantId: 't',
    name: 'n',
    enabled: true,
    sources: [{ portId: A, direction: 'both' }],
    sink: { type: 'port', portId: B },
    filter: null,
    snapLength: null,
    vni: 5000,
    createdAt: '',
    updatedAt: '',
    ...fields,
  });
  const port = (fields: Partial<Port> = {}): Port => portRecord({ id: A, hostId: HOST, ...fields });
  const sink = portRecord({ id: B, hostId: HOST, role: 'analyzer' });
  const ok = { packets: 1, bytes: 2, error: '', at: 0 };

  it('takes the first reason that applies: disabled, unbound, sink unbound, tap error, NACK, migration', () => {
    const nack = { revision: 9, error: 'boom', at: '' };
    expect(sourceState(session({ enabled: false }), A, undefined, undefined, undefined, nack)).toEqual({ state: 'disabled', lastError: null });
    expect(sourceState(session(), A, port({ hostId: null }), sink, ok, null).state).toBe('broken');
    expect(sourceState(session(), A, port(), { ...sink, hostId: null }, ok, null)).toEqual({ state: 'broken', lastError: `the sink port ${B} is not bound to a host` });
    expect(sourceState(session(), A, port(), sink, { ...ok, error: 'no dev' }, nack)).toEqual({ state: 'broken', lastError: 'no dev' });
    expect(sourceState(session(), A, port({ migration: { id: 'm', destinationHostId: B } }), sink, ok, nack).lastError).toContain('boom');
    expect(sourceState(session(), A, port({ migration: { id: 'm', destinationHostId: B } }), sink, ok, null)).toEqual({ state: 're-homing', lastError: null });
    expect(sourceState(session({ sink: { type: 'vxlan', remoteIp: '192.0.2.1', vni: 5000, udpPort: 4789 } }), A, port(), undefined, undefined, null)).toEqual({ state: 'active', lastError: null });
    // An agent on a kernel without ERSPAN reports the tap's error: the source is broken, and says why.
    const erspan = session({ sink: { type: 'erspan', remoteIp: '192.0.2.7', erspanId: 5, version: 2 } });
    const noErspan = 'this kernel has no ERSPAN (ip link add name ms5 type erspan ...: Error: Unknown device type.)';
    expect(sourceState(erspan, A, port(), undefined, { ...ok, error: noErspan }, null)).toEqual({ state: 'broken', lastError: noErspan });
    expect(sourceState(erspan, A, port(), undefined, ok, null)).toEqual({ state: 'active', lastError: null });
  });
});
