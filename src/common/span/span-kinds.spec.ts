import { join } from 'node:path';
import * as protobuf from 'protobufjs';
import { memberId, parseMemberId } from './member.kind';
import { parseSpanKey, spanKey } from './span-kind';
import { copySpanMaps, emptySpanMaps, putResource, removeResource, SPAN_KINDS } from './span-kinds';

describe('span kinds', () => {
  const root = protobuf.loadSync(join(__dirname, '../../../proto/overlay/v1/sync.proto'));
  const resourceKind = root.lookupEnum('overlay.v1.ResourceKind');
  const resource = root.lookupType('overlay.v1.Resource');

  it.each(Object.values(SPAN_KINDS).map((k) => [k.name, k]))('defines %s as the proto does: its ResourceKind, its number and its Resource field', (name, kind) => {
    expect(resourceKind.values[kind.protoKind as string]).toBe(kind.protoNumber);
    expect(resource.oneofs.resource.fieldsArray.map((f) => f.name)).toContain(name);
    expect(resource.fields[name].id).toBe(kind.protoNumber);
  });

  it('lists every kind of the proto, and no other', () => {
    expect(Object.keys(SPAN_KINDS).sort()).toEqual(resource.oneofs.resource.fieldsArray.map((f) => f.name).sort());
    expect(Object.keys(resourceKind.values).filter((v) => v !== 'RESOURCE_KIND_UNSPECIFIED')).toHaveLength(Object.keys(SPAN_KINDS).length);
  });

  it('keys a resource as <kind>/<id>, and reads a member id, which holds slashes, back whole', () => {
    const id = memberId('g1', 'IPv6', 'fd00::/64');
    expect(parseSpanKey(spanKey('member', id))).toEqual({ kind: 'member', id: 'g1/IPv6/fd00::/64' });
    expect(parseMemberId(id)).toEqual({ groupId: 'g1', family: 'IPv6', cidr: 'fd00::/64' });
    expect(SPAN_KINDS.member.idOf(parseMemberId(id))).toBe(id);
  });

  it('stores a received resource under its id and removes it by the key a removal carries', () => {
    const maps = emptySpanMaps();
    const segment = { id: 's1', tenantId: 't', vni: 5, vteps: [] };
    const member = { groupId: 'g1', family: 'IPv4', cidr: '10.0.0.1' };
    const policy = { portId: 'p1', portSecurity: true, mac: '', ips: [], allowedAddressPairs: [], ingress: [], egress: [] };
    expect(putResource(maps, { segment, resource: 'segment' })).toBe('segment');
    expect(putResource(maps, { member, resource: 'member' })).toBe('member');
    expect(putResource(maps, { policy, resource: 'policy' })).toBe('policy');
    expect(putResource(maps, {})).toBeUndefined();
    expect(maps.segments.get('s1')).toBe(segment);
    expect(maps.members.get('g1/IPv4/10.0.0.1')).toBe(member);
    expect(maps.policies.get('p1')).toBe(policy);
    const copy = copySpanMaps(maps);
    expect(removeResource(copy, { kind: 'RESOURCE_KIND_MEMBER', id: 'g1/IPv4/10.0.0.1' })).toBe('member');
    expect(removeResource(copy, { kind: 'RESOURCE_KIND_UNSPECIFIED', id: 's1' })).toBeUndefined();
    expect(copy.members.size).toBe(0);
    expect(maps.members.size).toBe(1); // the copy has maps of its own
    expect(copy.segments.get('s1')).toBe(segment);
  });
});
