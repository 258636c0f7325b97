import { MirrorCountersRepository } from '../../src/controller/distribution/mirror-counters.repository';
import { newId } from '../../src/controller/model/value-parsers';
import { parseStreamEntry, type ChangeRecord } from '../../src/controller/store/change-log';
import { keysFor } from '../../src/controller/store/keys';
import { api, dropPrefix, startController, uniquePrefix, type ApiResponse, type Harness } from '../support/controller-harness';
import { factories } from '../support/factories';

/**
 * Mirror sessions against a real overlayd and Redis: the API round trip, every refusal (status,
 * code and field, with the store left exactly as it was), overlaps, the session VNI from the
 * segments' allocator (pinned, clashing with a segment's, quarantined on deletion), the deletion
 * guards of ports and hosts, a tenant token's view, ports' role, and the per-source status.
 */

type Send = () => Promise<ApiResponse>;
/** [what is sent, how to send it, status, code, field (undefined = none)] */
type Case = [string, Send, number, string, string | undefined];

const UNKNOWN_ID = '01900000-0000-7000-8000-000000000000';
const QUOTA = 10;

describe('mirror sessions', () => {
  const prefix = uniquePrefix('mirror-sessions');
  const keys = keysFor(prefix);
  let h: Harness;
  let client: ReturnType<typeof api>;
  let make: ReturnType<typeof factories>;
  let n = 0;

  let acme: any;
  let other: any;
  let seg: any;
  let otherSeg: any;
  let hv1: any;
  let hv2: any;
  /** acme's vm ports, bound to hv1. */
  let vm: any[];
  /** acme's analyzer ports: bound to hv2, and unbound. */
  let analyzer: any;
  let spareAnalyzer: any;
  let otherVm: any;
  let otherAnalyzer: any;

  const ok = async (res: Promise<ApiResponse>, status: number): Promise<any> => {
    const r = await res;
    expect({ status: r.status, body: r.body }).toMatchObject({ status });
    return r.body;
  };
  const session = (fields: Record<string, unknown>) => client.post('/v1/mirror-sessions', { tenantId: acme.id, name: `mirror-${++n}`, ...fields });
  const toAnalyzer = (...portIds: string[]) => ({ sources: portIds.map((portId) => ({ portId })), sink: { type: 'port', portId: analyzer.id } });
  const revision = async () => Number((await h.redis.get(keys.revision())) ?? 0);
  async function lastRecord(): Promise<ChangeRecord> {
    const [entry] = (await h.redis.xrevrange(keys.changeLog(), '+', '-', 'COUNT', 1)) as [string, string[]][];
    return parseStreamEntry(entry);
  }

  /** Each case answers as said, and changes nothing (the audit trail of refused calls aside). */
  async function expectRefusals(cases: Case[]): Promise<void> {
    const problems: string[] = [];
    for (const [what, send, status, code, field] of cases) {
      const before = await h.dump();
      const rev = await revision();
      const res = await send();
      const after = await h.dump();
      delete before[keys.deniedEvents()];
      delete after[keys.deniedEvents()];
      const got = { status: res.status, code: res.body?.code, field: res.body?.field };
      if (JSON.stringify(got) !== JSON.stringify({ status, code, field })) {
        problems.push(`${what}: want ${status} ${code} ${field}, got ${JSON.stringify(res.body)} (${res.status})`);
      }
      const changed = Object.keys({ ...before, ...after }).filter((k) => before[k] !== after[k]);
      if (changed.length || (await revision()) !== rev) {
        problems.push(`${what}: changed ${changed.join(', ')}`);
      }
    }
    expect(problems).toEqual([]);
  }

  beforeAll(async () => {
    h = await startController({ prefix, env: { OVERLAY_MAX_MIRROR_SESSIONS_PER_TENANT: String(QUOTA) } });
    client = api(h.url);
    make = factories(client);
    acme = await make.tenant({ name: 'acme' });
    other = await make.tenant({ name: 'other' });
    seg = await make.segment(acme.id, { cidr: '10.0.0.0/24' });
    otherSeg = await make.segment(other.id);
    hv1 = await make.host();
    hv2 = await make.host();
    vm = [];
    for (let i = 0; i < 6; i++) {
      vm.push(await make.port(seg.id, { hostId: hv1.id }));
    }
    analyzer = await make.port(seg.id, { role: 'analyzer', hostId: hv2.id });
    spareAnalyzer = await make.port(seg.id, { role: 'analyzer' });
    otherVm = await make.port(otherSeg.id);
    otherAnalyzer = await make.port(otherSeg.id, { role: 'analyzer' });
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  it("gives ports a role: vm by default, analyzer without port security, fixed once created", async () => {
    expect(vm[0]).toMatchObject({ role: 'vm', portSecurity: true });
    expect(analyzer).toMatchObject({ role: 'analyzer', portSecurity: false, securityGroupIds: [], allowedAddressPairs: [] });
    expect((await client.get(`/v1/ports/${analyzer.id}`)).body).toMatchObject({ role: 'analyzer', portSecurity: false });
    expect((await client.get(`/v1/ports?segmentId=${seg.id}`)).body.items.map((p: any) => p.role)).toEqual(['vm', 'vm', 'vm', 'vm', 'vm', 'vm', 'analyzer', 'analyzer']);
    // A vm port's record is as it was before roles existed; an analyzer's says so.
    expect(JSON.parse((await h.redis.hget(keys.ports(), vm[0].id))!)).not.toHaveProperty('role');
    expect(JSON.parse((await h.redis.hget(keys.ports(), analyzer.id))!)).toHaveProperty('role', 'analyzer');
    const batch = await ok(client.post('/v1/ports/batch', { ports: [{ segmentId: otherSeg.id }, { segmentId: otherSeg.id, role: 'analyzer' }] }), 201);
    expect(batch.items.map((p: any) => [p.role, p.portSecurity])).toEqual([['vm', true], ['analyzer', false]]);
    await expectRefusals([
      ['an analyzer with port security', () => client.post('/v1/ports', { segmentId: seg.id, role: 'analyzer', portSecurity: true }), 400, 'PORT_SECURITY_CONFLICT', 'portSecurity'],
      ['an analyzer with security groups', () => client.post('/v1/ports', { segmentId: seg.id, role: 'analyzer', securityGroupIds: [acme.defaultSecurityGroupId] }), 400, 'PORT_SECURITY_CONFLICT', 'securityGroupIds'],
      ['an unknown role', () => client.post('/v1/ports', { segmentId: seg.id, role: 'promiscuous' }), 400, 'INVALID_VALUE', 'role'],
      ['a role change', () => client.patch(`/v1/ports/${vm[0].id}`, { role: 'analyzer' }), 400, 'UNKNOWN_FIELD', 'role'],
      ['port security on an analyzer', () => client.patch(`/v1/ports/${analyzer.id}`, { portSecurity: true }), 400, 'PORT_SECURITY_CONFLICT', 'portSecurity'],
    ]);
  });

  it('creates, lists, reads, changes and deletes a session, each write one audited change record', async () => {
    const made = await ok(session({ name: 'tap-web', sources: [{ portId: vm[0].id }, { portId: vm[1].id, direction: 'ingress' }], sink: { type: 'port', portId: analyzer.id } }), 201);
    expect(made).toEqual({
      id: expect.any(String),
      tenantId: acme.id,
      name: 'tap-web',
      enabled: true,
      sources: [
        { portId: vm[0].id, direction: 'both' },
        { portId: vm[1].id, direction: 'ingress' },
      ],
      sink: { type: 'port', portId: analyzer.id },
      filter: null,
      snapLength: null,
      vni: expect.any(Number),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(made.vni).toBeGreaterThanOrEqual(1000);
    expect(await h.redis.hget(keys.vniOwners(), String(made.vni))).toBe(`mirror:${made.id}`);
    expect((await lastRecord()).ops).toEqual([{ k: 'mirrorSession', id: made.id, v: made, o: null }]);
    const [[, audit]] = (await h.redis.xrevrange(keys.events(), '+', '-', 'COUNT', 1)) as [string, string[]][];
    expect(audit).toEqual(expect.arrayContaining(['res', `mirrorSession:${made.id}`]));
    const events = (await client.get(`/v1/events?kind=mirrorSession&resourceId=${made.id}`)).body.items;
    expect(events).toEqual([expect.objectContaining({ type: 'write', resources: [{ kind: 'mirrorSession', id: made.id }] })]);

    const read = (await client.get(`/v1/mirror-sessions/${made.id}`)).body;
    expect(read).toMatchObject({ ...made, status: [expect.objectContaining({ portId: vm[0].id }), expect.objectContaining({ portId: vm[1].id })] });
    expect((await client.get(`/v1/mirror-sessions?tenantId=${acme.id}`)).body).toEqual({ items: [read], nextCursor: null });
    expect((await client.get(`/v1/mirror-sessions?tenantId=${other.id}`)).body).toEqual({ items: [], nextCursor: null });
    expect((await client.get('/v1/mirror-sessions?limit=1')).body.items.map((s: any) => s.id)).toEqual([made.id]);

    const changed = await ok(
      client.patch(`/v1/mirror-sessions/${made.id}`, {
        name: 'tap-db',
        enabled: false,
        sources: [{ portId: vm[2].id, direction: 'egress' }],
        filter: { ethertype: 'IPv4', protocol: 'tcp', remoteCidr: '10.1.0.0/16' },
        snapLength: 128,
      }),
      200,
    );
    expect(changed).toEqual({
      ...made,
      name: 'tap-db',
      enabled: false,
      sources: [{ portId: vm[2].id, direction: 'egress' }],
      filter: { ethertype: 'IPv4', protocol: 6, remoteCidr: '10.1.0.0/16' },
      snapLength: 128,
      updatedAt: expect.any(String),
    });
    expect((await lastRecord()).ops).toEqual([{ k: 'mirrorSession', id: made.id, v: changed, o: made }]);
    expect(await h.redis.zrange(keys.portMirrorSessions(vm[0].id), 0, -1)).toEqual([]);
    expect(await h.redis.zrange(keys.portMirrorSessions(vm[2].id), 0, -1)).toEqual([made.id]);
    expect(await h.redis.hgetall(keys.tenantMirrorSessionNames(acme.id))).toEqual({ 'tap-db': made.id });
    // The filter can be cleared, and a protocol needs no prefix.
    expect((await ok(client.patch(`/v1/mirror-sessions/${made.id}`, { filter: null, snapLength: null }), 200))).toMatchObject({ filter: null, snapLength: null });
    expect((await ok(client.patch(`/v1/mirror-sessions/${made.id}`, { filter: { ethertype: 'IPv6', protocol: 'icmpv6' } }), 200)).filter).toEqual({ ethertype: 'IPv6', protocol: 58, remoteCidr: null });

    expect((await client.delete(`/v1/mirror-sessions/${made.id}`)).status).toBe(204);
    expect((await lastRecord()).ops).toEqual([expect.objectContaining({ k: 'mirrorSession', id: made.id, v: null })]);
    expect(await client.get(`/v1/mirror-sessions/${made.id}`)).toEqual({ status: 404, body: { code: 'MIRROR_SESSION_NOT_FOUND', message: `no mirror session ${made.id}`, field: 'id' } });
    for (const key of [keys.portMirrorSessions(vm[2].id), keys.portMirrorSessions(analyzer.id), keys.tenantMirrorSessions(acme.id), keys.tenantMirrorSessionNames(acme.id)]) {
      expect(await h.redis.exists(key)).toBe(0);
    }
    expect(await h.redis.hexists(keys.mirrorSessions(), made.id)).toBe(0);
  });

  it('refuses what is wrong with a session, naming the field, and changes nothing', async () => {
    const taken = await ok(session({ name: 'taken', ...toAnalyzer(vm[0].id) }), 201);
    const v = vm[3].id;
    const sink = { type: 'vxlan', remoteIp: '192.0.2.10' };
    const fresh = (fields: Record<string, unknown>) => () => session({ sources: [{ portId: v }], sink, ...fields });
    await expectRefusals([
      ['no sink', fresh({ sink: undefined }), 400, 'MISSING_FIELD', 'sink'],
      ['no sink type', fresh({ sink: { portId: analyzer.id } }), 400, 'MISSING_FIELD', 'sink.type'],
      ['an unknown sink type', fresh({ sink: { type: 'gre', remoteIp: '192.0.2.1' } }), 400, 'INVALID_VALUE', 'sink.type'],
      ['a field of another sink type', fresh({ sink: { type: 'port', portId: analyzer.id, remoteIp: '192.0.2.1' } }), 400, 'UNKNOWN_FIELD', 'sink.remoteIp'],
      ['no sources', fresh({ sources: [] }), 400, 'INVALID_VALUE', 'sources'],
      ['1,001 sources', fresh({ sources: Array.from({ length: 1001 }, () => ({ portId: newId() })) }), 400, 'INVALID_VALUE', 'sources'],
      ['a port twice', fresh({ sources: [{ portId: v }, { portId: v, direction: 'egress' }] }), 400, 'INVALID_VALUE', 'sources[1].portId'],
      ['an unknown direction', fresh({ sources: [{ portId: v, direction: 'sideways' }] }), 400, 'INVALID_VALUE', 'sources[0].direction'],
      ['an unknown source port', fresh({ sources: [{ portId: v }, { portId: UNKNOWN_ID }] }), 404, 'PORT_NOT_FOUND', 'sources[1].portId'],
      ["another tenant's source port", fresh({ sources: [{ portId: v }, { portId: otherVm.id }] }), 400, 'PORT_TENANT_MISMATCH', 'sources[1].portId'],
      ['an analyzer as source', fresh({ sources: [{ portId: spareAnalyzer.id }] }), 400, 'MIRROR_SOURCE_IS_ANALYZER', 'sources[0].portId'],
      ['a vm port as sink', fresh({ sink: { type: 'port', portId: vm[4].id } }), 400, 'MIRROR_SINK_NOT_ANALYZER', 'sink.portId'],
      ['the sink among the sources', fresh({ sources: [{ portId: analyzer.id }], sink: { type: 'port', portId: analyzer.id } }), 400, 'MIRROR_SINK_IS_SOURCE', 'sink.portId'],
      ['an unknown sink port', fresh({ sink: { type: 'port', portId: UNKNOWN_ID } }), 404, 'PORT_NOT_FOUND', 'sink.portId'],
      ["another tenant's analyzer", fresh({ sink: { type: 'port', portId: otherAnalyzer.id } }), 400, 'PORT_TENANT_MISMATCH', 'sink.portId'],
      ['an uplink of an unknown host', fresh({ sink: { type: 'uplink', hostId: UNKNOWN_ID, interface: 'eth1' } }), 404, 'HOST_NOT_FOUND', 'sink.hostId'],
      ['an interface name with a slash', fresh({ sink: { type: 'uplink', hostId: hv1.id, interface: 'eth0/1' } }), 400, 'INVALID_VALUE', 'sink.interface'],
      ['an interface name of 16 characters', fresh({ sink: { type: 'uplink', hostId: hv1.id, interface: 'e'.repeat(16) } }), 400, 'INVALID_VALUE', 'sink.interface'],
      ["a VM's tap as uplink", fresh({ sink: { type: 'uplink', hostId: hv1.id, interface: 'tap0123456789a' } }), 400, 'INVALID_VALUE', 'sink.interface'],
      ["the agent's VXLAN device as uplink", fresh({ sink: { type: 'uplink', hostId: hv1.id, interface: 'vx5000' } }), 400, 'INVALID_VALUE', 'sink.interface'],
      ['a multicast collector', fresh({ sink: { type: 'vxlan', remoteIp: '239.1.1.1' } }), 400, 'INVALID_IP', 'sink.remoteIp'],
      ['VNI 0', fresh({ sink: { ...sink, vni: 0 } }), 400, 'VNI_OUT_OF_RANGE', 'sink.vni'],
      ['UDP port 0', fresh({ sink: { ...sink, udpPort: 0 } }), 400, 'INVALID_VALUE', 'sink.udpPort'],
      ['a protocol without ethertype', fresh({ filter: { protocol: 'tcp' } }), 400, 'MISSING_FIELD', 'filter.ethertype'],
      ['a prefix without ethertype', fresh({ filter: { remoteCidr: '10.0.0.0/8' } }), 400, 'MISSING_FIELD', 'filter.ethertype'],
      ['icmp over IPv6', fresh({ filter: { ethertype: 'IPv6', protocol: 'icmp' } }), 400, 'PROTOCOL_FAMILY_MISMATCH', 'filter.protocol'],
      ['an IPv6 prefix for IPv4', fresh({ filter: { ethertype: 'IPv4', remoteCidr: 'fd00::/8' } }), 400, 'CIDR_FAMILY_MISMATCH', 'filter.remoteCidr'],
      ['protocol 0', fresh({ filter: { ethertype: 'IPv4', protocol: 0 } }), 400, 'INVALID_VALUE', 'filter.protocol'],
      ['a snap length of 63', fresh({ snapLength: 63 }), 400, 'INVALID_VALUE', 'snapLength'],
      ['an unknown tenant', fresh({ tenantId: UNKNOWN_ID }), 404, 'TENANT_NOT_FOUND', 'tenantId'],
      ['a name taken', fresh({ name: 'taken' }), 409, 'MIRROR_SESSION_NAME_TAKEN', 'name'],
      ['a change of tenant', () => client.patch(`/v1/mirror-sessions/${taken.id}`, { tenantId: other.id }), 400, 'UNKNOWN_FIELD', 'tenantId'],
      ['an analyzer as source, by PATCH', () => client.patch(`/v1/mirror-sessions/${taken.id}`, { sources: [{ portId: spareAnalyzer.id }] }), 400, 'MIRROR_SOURCE_IS_ANALYZER', 'sources[0].portId'],
      ["another tenant's port, by PATCH", () => client.patch(`/v1/mirror-sessions/${taken.id}`, { sources: [{ portId: otherVm.id }] }), 400, 'PORT_TENANT_MISMATCH', 'sources[0].portId'],
      ['the sink as a source, by PATCH', () => client.patch(`/v1/mirror-sessions/${taken.id}`, { sources: [{ portId: vm[0].id }, { portId: analyzer.id }] }), 400, 'MIRROR_SINK_IS_SOURCE', 'sources[1].portId'],
      ['a vm sink, by PATCH', () => client.patch(`/v1/mirror-sessions/${taken.id}`, { sink: { type: 'port', portId: vm[4].id } }), 400, 'MIRROR_SINK_NOT_ANALYZER', 'sink.portId'],
      ['another VNI, by PATCH', () => client.patch(`/v1/mirror-sessions/${taken.id}`, { sink: { ...sink, vni: taken.vni + 1 } }), 400, 'INVALID_VALUE', 'sink.vni'],
      ['an unknown session', () => client.patch(`/v1/mirror-sessions/${UNKNOWN_ID}`, { enabled: false }), 404, 'MIRROR_SESSION_NOT_FOUND', 'id'],
      ['the deletion of an unknown session', () => client.delete(`/v1/mirror-sessions/${UNKNOWN_ID}`), 404, 'MIRROR_SESSION_NOT_FOUND', 'id'],
    ]);
    expect((await client.delete(`/v1/mirror-sessions/${taken.id}`)).status).toBe(204);
  });

  it('refuses a second session copying the same traffic of a port to the same sink', async () => {
    const [a, b] = [vm[0].id, vm[1].id];
    const collector = { type: 'vxlan', remoteIp: '192.0.2.20' };
    const first = await ok(session({ name: 'first', ...toAnalyzer(a) }), 201);
    const second = await ok(session({ name: 'second', sources: [{ portId: b, direction: 'ingress' }], sink: collector }), 201);
    await expectRefusals([
      ['the same port and sink', () => session(toAnalyzer(a)), 409, 'MIRROR_SESSION_OVERLAP', 'sources[0]'],
      ['one direction of a port copied both ways', () => session({ sources: [{ portId: vm[5].id }, { portId: a, direction: 'egress' }], sink: { type: 'port', portId: analyzer.id } }), 409, 'MIRROR_SESSION_OVERLAP', 'sources[1]'],
      ['both ways of a port copied one way', () => session({ sources: [{ portId: b }], sink: collector }), 409, 'MIRROR_SESSION_OVERLAP', 'sources[0]'],
      ['the same collector, another filter', () => session({ sources: [{ portId: b, direction: 'ingress' }], sink: collector, filter: { ethertype: 'IPv6' } }), 409, 'MIRROR_SESSION_OVERLAP', 'sources[0]'],
      ['an overlap made by PATCH', () => client.patch(`/v1/mirror-sessions/${second.id}`, { sources: [{ portId: a }], sink: { type: 'port', portId: analyzer.id } }), 409, 'MIRROR_SESSION_OVERLAP', 'sources[0]'],
    ]);
    const overlap = await session(toAnalyzer(a));
    expect(overlap.body.message).toContain(first.id);
    // Not an overlap: the other direction, another sink, another collector port; a session's own sources.
    const others = [
      await ok(session({ sources: [{ portId: b, direction: 'egress' }], sink: collector }), 201),
      await ok(session({ sources: [{ portId: a }], sink: { type: 'port', portId: spareAnalyzer.id } }), 201),
      await ok(session({ sources: [{ portId: b }], sink: { ...collector, udpPort: 4790 } }), 201),
    ];
    await ok(client.patch(`/v1/mirror-sessions/${first.id}`, { sources: [{ portId: a, direction: 'ingress' }] }), 200);
    for (const s of [first, second, ...others]) {
      expect((await client.delete(`/v1/mirror-sessions/${s.id}`)).status).toBe(204);
    }
  });

  it('takes an ERSPAN collector from a tenant token (version 2 by default, a VNI all the same), and refuses one overlapping on address and session id', async () => {
    const mine = api(h.url, (await ok(client.post('/v1/tokens', { name: 'acme-erspan', role: 'tenant', tenantId: acme.id }), 201)).token);
    const [a, b] = [vm[0].id, vm[1].id];
    const collector = { type: 'erspan', remoteIp: '192.0.2.70', erspanId: 42 };
    const first = await ok(mine.post('/v1/mirror-sessions', { tenantId: acme.id, name: 'erspan-first', sources: [{ portId: a }], sink: collector }), 201);
    expect(first.sink).toEqual({ ...collector, version: 2 });
    expect(first.vni).toEqual(expect.any(Number));
    expect(JSON.parse((await h.redis.hget(keys.mirrorSessions(), first.id))!).sink).toEqual({ ...collector, version: 2 });
    await expectRefusals([
      ['the same collector and session id, another version', () => session({ sources: [{ portId: a, direction: 'egress' }], sink: { ...collector, version: 1 } }), 409, 'MIRROR_SESSION_OVERLAP', 'sources[0]'],
      ['a session id of 11 bits', () => session({ sources: [{ portId: b }], sink: { ...collector, erspanId: 1024 } }), 400, 'INVALID_VALUE', 'sink.erspanId'],
      ['an ERSPAN version 3', () => session({ sources: [{ portId: b }], sink: { ...collector, version: 3 } }), 400, 'INVALID_VALUE', 'sink.version'],
      ['a VNI on an ERSPAN sink', () => session({ sources: [{ portId: b }], sink: { ...collector, vni: 7300 } }), 400, 'UNKNOWN_FIELD', 'sink.vni'],
    ]);
    // Not an overlap: another session id, another collector, a source in common in no shared direction.
    const others = [
      await ok(session({ sources: [{ portId: a }], sink: { ...collector, erspanId: 43 } }), 201),
      await ok(session({ sources: [{ portId: a }], sink: { ...collector, remoteIp: '192.0.2.71', version: 1 } }), 201),
      await ok(session({ sources: [{ portId: b }], sink: collector }), 201),
    ];
    expect(others[1].sink).toEqual({ type: 'erspan', remoteIp: '192.0.2.71', erspanId: 42, version: 1 });
    // PATCH to an ERSPAN sink, and back to VXLAN: the session VNI stays.
    const moved = await ok(client.patch(`/v1/mirror-sessions/${others[2].id}`, { sink: { type: 'vxlan', remoteIp: '192.0.2.72' } }), 200);
    expect(moved.sink).toEqual({ type: 'vxlan', remoteIp: '192.0.2.72', vni: others[2].vni, udpPort: 4789 });
    expect((await ok(client.patch(`/v1/mirror-sessions/${moved.id}`, { sink: { ...collector, erspanId: 44, version: 1 } }), 200)).vni).toBe(others[2].vni);
    for (const s of [first, ...others]) {
      expect((await client.delete(`/v1/mirror-sessions/${s.id}`)).status).toBe(204);
    }
  });

  it('takes 1,000 sources in one write, and lets exactly one of racing overlapping sessions in', async () => {
    const big = await make.tenant({ name: 'big' });
    const bigSeg = await make.segment(big.id);
    const ports = (await ok(client.post('/v1/ports/batch', { ports: Array.from({ length: 1000 }, () => ({ segmentId: bigSeg.id, hostId: hv1.id })) }), 201)).items;
    const rev = await revision();
    const s = await ok(client.post('/v1/mirror-sessions', { tenantId: big.id, name: 'all', sources: ports.map((p: any) => ({ portId: p.id })), sink: { type: 'vxlan', remoteIp: '192.0.2.70' } }), 201);
    expect(await revision()).toBe(rev + 1);
    const read = (await client.get(`/v1/mirror-sessions/${s.id}`)).body;
    expect(read.status).toHaveLength(1000);
    expect(new Set(read.status.map((x: any) => x.state))).toEqual(new Set(['active']));

    const racers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => client.post('/v1/mirror-sessions', { tenantId: big.id, name: `racer-${i}`, sources: [{ portId: ports[i].id, direction: 'egress' }], sink: { type: 'vxlan', remoteIp: '192.0.2.71' } })),
    );
    // Each racer names another port: all in. The same port, one sink: one in, the rest refused.
    expect(racers.map((r) => r.status)).toEqual(Array(6).fill(201));
    const same = await Promise.all(
      Array.from({ length: 8 }, (_, i) => client.post('/v1/mirror-sessions', { tenantId: big.id, name: `same-${i}`, sources: [{ portId: ports[999].id, direction: 'ingress' }], sink: { type: 'vxlan', remoteIp: '192.0.2.72' } })),
    );
    expect(same.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    expect(new Set(same.filter((r) => r.status === 409).map((r) => r.body.code))).toEqual(new Set(['MIRROR_SESSION_OVERLAP']));
  });

  it('takes session VNIs from the segments’ allocator: pinned, never a segment’s, quarantined on deletion', async () => {
    const segmentVni = (await make.segment(acme.id, { vni: 7100 })).vni;
    const pinned = await ok(session({ sources: [{ portId: vm[0].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.30', vni: 7101 } }), 201);
    expect(pinned).toMatchObject({ vni: 7101, sink: { type: 'vxlan', remoteIp: '192.0.2.30', vni: 7101, udpPort: 4789 } });
    const allocated = await ok(session({ sources: [{ portId: vm[1].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.31', udpPort: 6343 } }), 201);
    expect(allocated.sink.vni).toBe(allocated.vni);
    expect(allocated.sink.udpPort).toBe(6343);
    const segmentAfter = await make.segment(acme.id);
    expect(new Set([segmentVni, pinned.vni, allocated.vni, segmentAfter.vni]).size).toBe(4);

    await expectRefusals([
      ["a segment's VNI", () => session({ sources: [{ portId: vm[2].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.32', vni: 7100 } }), 409, 'VNI_TAKEN', 'sink.vni'],
      ["another session's VNI", () => session({ sources: [{ portId: vm[2].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.32', vni: 7101 } }), 409, 'VNI_TAKEN', 'sink.vni'],
      ["a segment on a session's VNI", () => client.post('/v1/segments', { tenantId: acme.id, name: 'clash', vni: 7101 }), 409, 'VNI_TAKEN', 'vni'],
    ]);
    // Each refusal names the right kind of owner.
    expect((await session({ sources: [{ portId: vm[2].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.32', vni: 7100 } })).body.message).toBe(`VNI 7100 is in use by segment ${(await client.get(`/v1/segments?tenantId=${acme.id}`)).body.items.find((s: any) => s.vni === 7100).id}`);
    expect((await client.post('/v1/segments', { tenantId: acme.id, name: 'clash', vni: 7101 })).body.message).toBe(`VNI 7101 is in use by mirror session ${pinned.id}`);

    expect((await client.delete(`/v1/mirror-sessions/${pinned.id}`)).status).toBe(204);
    expect(await h.redis.zscore(keys.vniQuarantine(), '7101')).not.toBeNull();
    expect(await h.redis.hget(keys.vniReleasedAt(), '7101')).toBe(String(await revision()));
    expect(await h.redis.hexists(keys.vniOwners(), '7101')).toBe(0);
    await expectRefusals([
      ['a quarantined VNI for a session', () => session({ sources: [{ portId: vm[2].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.33', vni: 7101 } }), 409, 'VNI_QUARANTINED', 'sink.vni'],
      ['a quarantined VNI for a segment', () => client.post('/v1/segments', { tenantId: acme.id, name: 'after', vni: 7101 }), 409, 'VNI_QUARANTINED', 'vni'],
    ]);
    expect((await client.delete(`/v1/mirror-sessions/${allocated.id}`)).status).toBe(204);
  });

  it('caps the sessions of a tenant', async () => {
    const quota = await make.tenant({ name: 'quota' });
    const qseg = await make.segment(quota.id);
    const ports: any[] = [];
    for (let i = 0; i <= QUOTA; i++) {
      ports.push(await make.port(qseg.id));
    }
    for (let i = 0; i < QUOTA; i++) {
      await ok(client.post('/v1/mirror-sessions', { tenantId: quota.id, name: `q-${i}`, sources: [{ portId: ports[i].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.40' } }), 201);
    }
    await expectRefusals([
      ['one past the quota', () => client.post('/v1/mirror-sessions', { tenantId: quota.id, name: 'q-over', sources: [{ portId: ports[QUOTA].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.40' } }), 409, 'TENANT_QUOTA_EXCEEDED', 'tenantId'],
    ]);
  });

  it('refuses to delete a port, a host or a tenant a session names, until the session is gone', async () => {
    const hv3 = await make.host();
    const byPort = await ok(session(toAnalyzer(vm[4].id)), 201);
    const byUplink = await ok(session({ sources: [{ portId: vm[5].id }], sink: { type: 'uplink', hostId: hv3.id, interface: 'eth2' } }), 201);
    await expectRefusals([
      ['a source port', () => client.delete(`/v1/ports/${vm[4].id}`), 409, 'PORT_IN_MIRROR_SESSION', 'id'],
      ['the sink port', () => client.delete(`/v1/ports/${analyzer.id}`), 409, 'PORT_IN_MIRROR_SESSION', 'id'],
      ['the uplink host', () => client.delete(`/v1/hosts/${hv3.id}`), 409, 'HOST_HAS_MIRROR_SESSIONS', 'id'],
      // A session's ports are on the tenant's segments: those are what the tenant's deletion names first.
      ['the tenant', () => client.delete(`/v1/tenants/${acme.id}`), 409, 'TENANT_HAS_SEGMENTS', 'id'],
    ]);
    expect((await client.delete(`/v1/ports/${vm[4].id}`)).body.message).toContain(byPort.id);
    expect((await client.delete(`/v1/hosts/${hv3.id}`)).body.message).toContain(byUplink.id);
    // Unbinding the sink is allowed (the status says broken).
    await ok(client.patch(`/v1/ports/${analyzer.id}`, { hostId: null }), 200);
    await ok(client.patch(`/v1/ports/${analyzer.id}`, { hostId: hv2.id }), 200);
    for (const s of [byPort, byUplink]) {
      expect((await client.delete(`/v1/mirror-sessions/${s.id}`)).status).toBe(204);
    }
    expect((await client.delete(`/v1/hosts/${hv3.id}`)).status).toBe(204);
    const spare = await make.port(seg.id);
    const s = await ok(session(toAnalyzer(spare.id)), 201);
    await ok(client.patch(`/v1/mirror-sessions/${s.id}`, { sources: [{ portId: vm[4].id }] }), 200);
    expect((await client.delete(`/v1/ports/${spare.id}`)).status).toBe(204);
    expect((await client.delete(`/v1/mirror-sessions/${s.id}`)).status).toBe(204);
  });

  it("shows a tenant token its own sessions only; another tenant's answer as ones that never existed", async () => {
    const mine = api(h.url, (await ok(client.post('/v1/tokens', { name: 'acme-tenant', role: 'tenant', tenantId: acme.id }), 201)).token);
    const theirs = await ok(client.post('/v1/mirror-sessions', { tenantId: other.id, name: 'theirs', sources: [{ portId: otherVm.id }], sink: { type: 'port', portId: otherAnalyzer.id } }), 201);
    const own = await ok(mine.post('/v1/mirror-sessions', { tenantId: acme.id, name: 'own', ...toAnalyzer(vm[3].id) }), 201);
    expect((await mine.get('/v1/mirror-sessions')).body.items.map((s: any) => s.id)).toEqual([own.id]);
    expect((await mine.get(`/v1/mirror-sessions?tenantId=${other.id}`)).body).toEqual({ items: [], nextCursor: null });

    const norm = (res: ApiResponse, id: string) => JSON.stringify({ status: res.status, body: res.body }).replaceAll(id, '<id>');
    const probes: [string, string, (id: string) => Promise<ApiResponse>][] = [
      ['get', theirs.id, (id) => mine.get(`/v1/mirror-sessions/${id}`)],
      ['patch', theirs.id, (id) => mine.patch(`/v1/mirror-sessions/${id}`, { enabled: false })],
      ['delete', theirs.id, (id) => mine.delete(`/v1/mirror-sessions/${id}`)],
      ['their port as source', otherVm.id, (id) => mine.post('/v1/mirror-sessions', { tenantId: acme.id, name: 'probe', sources: [{ portId: id }], sink: { type: 'vxlan', remoteIp: '192.0.2.60' } })],
      ['their analyzer as sink', otherAnalyzer.id, (id) => mine.post('/v1/mirror-sessions', { tenantId: acme.id, name: 'probe', sources: [{ portId: vm[2].id }], sink: { type: 'port', portId: id } })],
      ['their port by PATCH', otherVm.id, (id) => mine.patch(`/v1/mirror-sessions/${own.id}`, { sources: [{ portId: id }] })],
      ['their tenant', other.id, (id) => mine.post('/v1/mirror-sessions', { tenantId: id, name: 'probe', sources: [{ portId: vm[2].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.60' } })],
    ];
    const before = await h.dump();
    for (const [what, id, send] of probes) {
      const withTheirs = await send(id);
      expect({ what, status: withTheirs.status, code: withTheirs.body.code }).toEqual({ what, status: 404, code: expect.stringMatching(/_NOT_FOUND$/) });
      const fresh = newId();
      expect({ what, answer: norm(withTheirs, id) }).toEqual({ what, answer: norm(await send(fresh), fresh) });
    }
    const after = await h.dump();
    expect(after).toEqual(before);

    await expectRefusals([
      ['an uplink sink', () => mine.post('/v1/mirror-sessions', { tenantId: acme.id, name: 'probe', sources: [{ portId: vm[2].id }], sink: { type: 'uplink', hostId: hv1.id, interface: 'eth1' } }), 403, 'FORBIDDEN', 'sink.type'],
      ['a pinned VNI', () => mine.post('/v1/mirror-sessions', { tenantId: acme.id, name: 'probe', sources: [{ portId: vm[2].id }], sink: { type: 'vxlan', remoteIp: '192.0.2.60', vni: 7200 } }), 403, 'FORBIDDEN', 'sink.vni'],
    ]);
    for (const s of [own, theirs]) {
      expect((await client.delete(`/v1/mirror-sessions/${s.id}`)).status).toBe(204);
    }
  });

  it('says where each source stands: host, state, the revision its agent applied, counters, errors', async () => {
    const unbound = await make.port(seg.id);
    const migrating = vm[5];
    const s = await ok(session({ ...toAnalyzer(vm[0].id, unbound.id, migrating.id) }), 201);
    await ok(client.post('/v1/migrations?timeout=0', { portIds: [migrating.id], sourceHostId: hv1.id, destinationHostId: hv2.id }), 202);
    const status = async () => (await client.get(`/v1/mirror-sessions/${s.id}`)).body.status;
    const entry = (fields: Record<string, unknown>) => ({ hostId: hv1.id, state: 'active', realizedRevision: null, packets: 0, bytes: 0, lastError: null, ...fields });

    expect(await status()).toEqual([
      entry({ portId: vm[0].id }),
      entry({ portId: unbound.id, hostId: null, state: 'broken', lastError: `port ${unbound.id} is not bound to a host` }),
      entry({ portId: migrating.id, state: 're-homing' }),
    ]);

    await h.redis.hset(keys.agentApplied(), hv1.id, '41');
    await h.app.get(MirrorCountersRepository).write(hv1.id, new Map([[`${s.id}/${vm[0].id}`, { packets: 12, bytes: 1500, error: '', at: Date.now() }], [`${s.id}/${migrating.id}`, { packets: 1, bytes: 2, error: 'tc filter add: no such device', at: Date.now() }]]));
    expect(await status()).toEqual([
      entry({ portId: vm[0].id, realizedRevision: 41, packets: 12, bytes: 1500 }),
      entry({ portId: unbound.id, hostId: null, state: 'broken', lastError: `port ${unbound.id} is not bound to a host` }),
      entry({ portId: migrating.id, realizedRevision: 41, packets: 1, bytes: 2, state: 'broken', lastError: 'tc filter add: no such device' }),
    ]);
    // The list shows the same.
    expect((await client.get(`/v1/mirror-sessions?tenantId=${acme.id}`)).body.items.find((x: any) => x.id === s.id).status).toEqual(await status());

    await h.redis.hset(keys.agentLastErrors(), hv1.id, JSON.stringify({ revision: 42, error: 'nft: syntax error', at: new Date().toISOString() }));
    expect((await status())[0]).toEqual(entry({ portId: vm[0].id, realizedRevision: 41, packets: 12, bytes: 1500, state: 'broken', lastError: `the agent of host ${hv1.id} failed to apply revision 42: nft: syntax error` }));
    await h.redis.hdel(keys.agentLastErrors(), hv1.id);

    // The sink unbound: every source is broken.
    await ok(client.patch(`/v1/ports/${analyzer.id}`, { hostId: null }), 200);
    expect((await status())[0]).toMatchObject({ state: 'broken', lastError: `the sink port ${analyzer.id} is not bound to a host` });
    await ok(client.patch(`/v1/ports/${analyzer.id}`, { hostId: hv2.id }), 200);

    await ok(client.patch(`/v1/mirror-sessions/${s.id}`, { enabled: false }), 200);
    expect((await status()).map((x: any) => [x.state, x.lastError])).toEqual([
      ['disabled', null],
      ['disabled', null],
      ['disabled', null],
    ]);
  });
});
