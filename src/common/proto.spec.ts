import { encodeDelta, encodeResourceReflect, encodeSnapshotChunk, overlayProto } from './proto';
import { encodeResource, encodeResourceKey } from './span/span-kinds';

describe('protocol encoding', () => {
  const resources = [
    { segment: { id: 's1', tenantId: 't1', vni: 16_777_215, vteps: ['192.0.2.1', '2001:db8::1'] } },
    { segment: { id: 's2', tenantId: 't1', vni: 1, vteps: [] } },
    { port: { id: 'p1', segmentId: 's1', mac: '02:00:00:00:00:01', ips: ['10.0.0.1', 'fd00::1'], hostId: 'h1', vtepIp: '192.0.2.1', vmId: 'vm-1' } },
    { port: { id: 'p2', segmentId: 's1', mac: '02:00:00:00:00:02', ips: [], hostId: 'h2', vtepIp: '192.0.2.2', vmId: '' } },
    {
      policy: {
        portId: 'p1',
        portSecurity: true,
        mac: '02:00:00:00:00:01',
        ips: ['10.0.0.1'],
        allowedAddressPairs: [{ ip: '10.9.0.0/24', mac: '02:00:00:00:00:01' }],
        ingress: [
          { ethertype: 'IPv4', protocol: '6', portMin: 80, portMax: 80, icmpType: -1, icmpCode: -1, remoteCidr: '0.0.0.0/0', remoteGroupId: '' },
          { ethertype: 'IPv6', protocol: '58', portMin: 0, portMax: 0, icmpType: 128, icmpCode: -1, remoteCidr: '', remoteGroupId: 'g1' },
        ],
        egress: [{ ethertype: 'IPv4', protocol: 'any', portMin: 0, portMax: 0, icmpType: -1, icmpCode: -1, remoteCidr: '0.0.0.0/0', remoteGroupId: '' }],
      },
    },
    { policy: { portId: 'p2', portSecurity: false, mac: '02:00:00:00:00:02', ips: [], allowedAddressPairs: [], ingress: [], egress: [] } },
    { member: { groupId: 'g1', family: 'IPv4', cidr: '10.0.0.1' } },
    { member: { groupId: 'g1', family: 'IPv6', cidr: 'fd00::/64' } },
    { port: { id: 'p3', segmentId: 's1', mac: '02:00:00:00:00:03', ips: [], hostId: 'h1', vtepIp: '192.0.2.1', vmId: 'ids', analyzer: true } },
    {
      mirror: {
        sessionId: 'm1',
        portId: 'p1',
        ingress: true,
        egress: true,
        filterEthertype: 'IPv6',
        filterProtocol: 58,
        filterRemoteCidr: 'fd00::/64',
        snapLength: 65_535,
        vni: 16_000_000,
        remoteIp: '2001:db8::9',
        udpPort: 4790,
      },
    },
    { mirror: { sessionId: 'm2', portId: 'p2', egress: true, sinkPortId: 'p3' } },
    { mirror: { sessionId: 'm3', portId: 'p2', ingress: true, sinkInterface: 'eth1' } },
    { mirrorSink: { sessionId: 'm1', vni: 1001, portId: 'p3' } },
    { mirrorSink: { sessionId: 'm4', vni: 1002, interface: 'eth1' } },
    { mirror: { sessionId: 'm5', portId: 'p1', ingress: true, egress: true, remoteIp: '2001:db8::7', erspanId: 1023, erspanVersion: 2 } },
  ];

  const decodeResource = (bytes: Uint8Array) => {
    // Wrap as a snapshot chunk so the gRPC decoder (proto-loader options) reads it.
    const type = (overlayProto.SyncResponse as unknown as { deserialize: (b: Buffer) => any }).deserialize;
    return type(encodeSnapshotChunk(1, 'e', [bytes])).snapshotChunk.resources[0];
  };

  it.each(resources.map((r) => [Object.keys(r)[0], r]))('hand-encodes a %s that decodes as the reflective encoding does', (_kind, resource) => {
    expect(decodeResource(encodeResource(resource))).toEqual(decodeResource(encodeResourceReflect(resource)));
  });

  it('omits empty fields (proto3 defaults), so it is never larger than the reflective encoding', () => {
    for (const resource of resources) {
      expect(encodeResource(resource).length).toBeLessThanOrEqual(encodeResourceReflect(resource).length);
    }
  });

  it('assembles a Delta from pre-encoded parts that the gRPC decoder reads back', () => {
    const delta = encodeDelta(42, resources.slice(0, 4).map(encodeResource), [encodeResourceKey('port', 'gone')]);
    const type = (overlayProto.SyncResponse as unknown as { deserialize: (b: Buffer) => any }).deserialize;
    const decoded = type(delta);
    expect(decoded.delta.revision).toBe(42);
    expect(decoded.delta.upserts).toHaveLength(4);
    expect(decoded.delta.upserts[2].port).toMatchObject({ id: 'p1', ips: ['10.0.0.1', 'fd00::1'], vmId: 'vm-1' });
    expect(decoded.delta.removals).toEqual([{ kind: 'RESOURCE_KIND_PORT', id: 'gone' }]);
  });

  it('carries policies and members, and their removal keys, through a Delta', () => {
    const type = (overlayProto.SyncResponse as unknown as { deserialize: (b: Buffer) => any }).deserialize;
    const decoded = type(encodeDelta(3, resources.slice(4).map(encodeResource), [encodeResourceKey('policy', 'p9'), encodeResourceKey('member', 'g1/IPv4/10.0.0.2')]));
    expect(decoded.delta.upserts[0].policy).toMatchObject({ portId: 'p1', portSecurity: true, allowedAddressPairs: [{ ip: '10.9.0.0/24', mac: '02:00:00:00:00:01' }] });
    expect(decoded.delta.upserts[0].policy.ingress[1]).toEqual({ ethertype: 'IPv6', protocol: '58', portMin: 0, portMax: 0, icmpType: 128, icmpCode: -1, remoteCidr: '', remoteGroupId: 'g1' });
    expect(decoded.delta.upserts[2].member).toEqual({ groupId: 'g1', family: 'IPv4', cidr: '10.0.0.1' });
    expect(decoded.delta.removals).toEqual([
      { kind: 'RESOURCE_KIND_POLICY', id: 'p9' },
      { kind: 'RESOURCE_KIND_MEMBER', id: 'g1/IPv4/10.0.0.2' },
    ]);
  });

  it('assembles a snapshot chunk the decoder reads back', () => {
    const type = (overlayProto.SyncResponse as unknown as { deserialize: (b: Buffer) => any }).deserialize;
    const decoded = type(encodeSnapshotChunk(7, 'epoch1', resources.map(encodeResource)));
    expect(decoded.snapshotChunk).toMatchObject({ revision: 7, epoch: 'epoch1' });
    expect(decoded.snapshotChunk.resources[0].segment).toMatchObject({ vni: 16_777_215, vteps: ['192.0.2.1', '2001:db8::1'] });
  });

  it('matches protobufjs on odd inputs: empty and non-ASCII strings, large numbers, empty repeated entries', () => {
    const type = (overlayProto.SyncResponse as unknown as { deserialize: (b: Buffer) => any }).deserialize;
    const strings = ['', 'a', 'é', '日本', 'x'.repeat(130), 'x'.repeat(20_000)];
    const pick = <T>(values: T[], i: number): T => values[i % values.length];
    for (let i = 0; i < 200; i++) {
      const port = { port: { id: pick(strings, i), segmentId: pick(strings, i + 1), mac: pick(strings, i + 2), ips: strings.slice(0, i % 4), hostId: pick(strings, i + 3), vtepIp: pick(strings, i + 4), vmId: pick(strings, i + 5) } };
      const segment = { segment: { id: pick(strings, i), tenantId: pick(strings, i + 2), vni: pick([0, 127, 128, 4_294_967_295], i), vteps: strings.slice(i % 3, (i % 3) + (i % 5)) } };
      for (const resource of [port, segment]) {
        expect(decodeResource(encodeResource(resource))).toEqual(decodeResource(encodeResourceReflect(resource)));
      }
      const revision = pick([0, 1, 127, 128, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER], i);
      const epoch = pick(strings, i);
      expect(type(encodeSnapshotChunk(revision, epoch, [encodeResource(port)])).snapshotChunk).toMatchObject({ revision, epoch });
      const key = pick(strings, i);
      const record = pick(['', `${revision}-4294967296`, `${revision}-18446744073709551614`], i);
      expect(type(encodeDelta(revision, [], [encodeResourceKey('segment', key)], record)).delta).toEqual({ revision, upserts: [], removals: [{ kind: 'RESOURCE_KIND_SEGMENT', id: key }], record });
    }
  });
});
