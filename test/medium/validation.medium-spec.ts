import { api, dropPrefix, startController, uniquePrefix, type ApiResponse, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';

/**
 * Every kind of bad input, against a real overlayd and Redis: each refusal must carry the right
 * HTTP status, the stable error code and the offending field, and must leave the store
 * byte-for-byte as it was (every key under the deployment's prefix, change log included).
 */

type Client = ReturnType<typeof api>;
type Send = () => Promise<ApiResponse>;
/** [what is sent, how to send it, status, code, field (undefined = none)] */
type Case = [string, Send, number, string, string | undefined];

/** Well-formed UUIDv7 that names nothing, and a well-formed UUID that is not v7. */
const UNKNOWN_ID = '01900000-0000-7000-8000-000000000000';
const V4_ID = '3b241101-e2bb-4255-8caf-4136c566a962';

describe('overlayd refuses bad input and changes nothing', () => {
  const prefix = uniquePrefix('validation');
  let h: Harness;
  /** A second replica on the same keys, with a 2 KiB body limit. */
  let small: Harness;
  let client: Client;
  let make: ReturnType<typeof factories>;

  let tenant: any;
  let capped: any;
  let frozen: any;
  let seg4: any;
  let seg6: any;
  let plain: any;
  let quarantinedVni: number;
  let host: any;
  let host6: any;
  let port4: any;
  let port6: any;

  /** Sends, checks status, code and field, and that the store is exactly as before. */
  async function expectRefused(send: Send, status: number, code: string, field?: string): Promise<void> {
    const before = await h.dump();
    const res = await send();
    expect({ status: res.status, code: res.body?.code, field: res.body?.field }).toEqual({ status, code, field });
    expect(typeof res.body.message).toBe('string');
    expect(await h.dump()).toStrictEqual(before);
  }

  const runCases = (cases: () => Case[]) => {
    // The table is built lazily: ids exist only once beforeAll has run.
    it.each(cases().map((c, i) => [c[0], i] as const))('%s', async (_name, i) => {
      const [, send, status, code, field] = cases()[i];
      await expectRefused(send, status, code, field);
    });
  };

  beforeAll(async () => {
    const env = { OVERLAY_MAX_BATCH_SIZE: '5' };
    h = await startController({ prefix, env });
    small = await startController({ prefix, env: { ...env, OVERLAY_MAX_BODY_BYTES: '2048' } });
    client = api(h.url);
    make = factories(client);

    tenant = await make.tenant({ name: 'acme' });
    capped = await make.tenant({ name: 'capped', maxSegments: 1 });
    frozen = await make.tenant({ name: 'frozen', maxSegments: 0 });
    await make.segment(capped.id, { name: 'only' });

    seg4 = await make.segment(tenant.id, { name: 'web', vni: 5000, vlanId: 100, cidr: '10.0.0.0/24' });
    seg6 = await make.segment(tenant.id, { name: 'db', cidr: 'fd00:1::/64' });
    plain = await make.segment(tenant.id, { name: 'l2-only' });
    const gone = await make.segment(tenant.id, { name: 'gone', vni: 5100 });
    expect((await client.delete(`/v1/segments/${gone.id}`)).status).toBe(204);
    quarantinedVni = gone.vni;

    host = await make.host({ name: 'hv1', vtepIp: '192.0.2.11' });
    host6 = await make.host({ name: 'hv6', vtepIp: '2001:db8::11' });

    port4 = await make.port(seg4.id, { mac: '02:00:00:00:00:01', ips: ['10.0.0.10'], hostId: host.id, vmId: 'vm-1' });
    port6 = await make.port(seg6.id, { mac: '02:00:00:00:00:02', ips: ['fd00:1::10'] });
  });

  afterAll(async () => {
    await small?.close();
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  describe('request bodies', () => {
    runCases(() => [
      ['invalid JSON: 400 INVALID_JSON', () => client.post('/v1/tenants', '{"name":'), 400, 'INVALID_JSON', undefined],
      ['JSON followed by garbage: 400 INVALID_JSON', () => client.post('/v1/tenants', '{"name":"x"} trailing'), 400, 'INVALID_JSON', undefined],
      ['an empty JSON body: 400 INVALID_JSON', () => client.post('/v1/tenants', ''), 400, 'INVALID_JSON', undefined],
      ['no body at all: 400 INVALID_JSON', () => client.post('/v1/tenants'), 400, 'INVALID_JSON', undefined],
      ['a JSON null body: 400 INVALID_JSON', () => client.post('/v1/tenants', 'null'), 400, 'INVALID_JSON', undefined],
      ['a JSON array body: 400 INVALID_TYPE', () => client.post('/v1/tenants', [{ name: 'x' }]), 400, 'INVALID_TYPE', undefined],
      ['a JSON string body: 400 INVALID_TYPE', () => client.post('/v1/tenants', '"acme2"'), 400, 'INVALID_TYPE', undefined],
      ['a text/plain body: 415 UNSUPPORTED_MEDIA_TYPE', () => client.post('/v1/tenants', '{"name":"t2"}', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', undefined],
      ['a form body: 415 UNSUPPORTED_MEDIA_TYPE', () => client.post('/v1/tenants', 'name=t2', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE', undefined],
      ['a body over OVERLAY_MAX_BODY_BYTES: 413 BODY_TOO_LARGE', () => api(small.url).post('/v1/tenants', { name: 'big', pad: 'x'.repeat(3000) }), 413, 'BODY_TOO_LARGE', undefined],
      [
        'a port batch over OVERLAY_MAX_BODY_BYTES: 413 BODY_TOO_LARGE',
        () => {
          // Otherwise valid: five ports of 16 IPs each, over the 2 KiB limit.
          const ports = Array.from({ length: 5 }, (_, i) => ({ segmentId: seg6.id, vmId: `vm-${i}`.padEnd(100, 'x'), ips: Array.from({ length: 16 }, (_, j) => `fd00:1:0:0:0:0:${i + 1}:${j + 1}`) }));
          expect(JSON.stringify({ ports }).length).toBeGreaterThan(2048);
          return api(small.url).post('/v1/ports/batch', { ports });
        },
        413,
        'BODY_TOO_LARGE',
        undefined,
      ],
      ['an unknown route: 404 NOT_FOUND', () => client.post('/v1/tenant', { name: 't2' }), 404, 'NOT_FOUND', undefined],
    ]);

    it('accepts a body just under OVERLAY_MAX_BODY_BYTES on the small replica', async () => {
      const res = await api(small.url).post('/v1/tenants', { name: 'fits', maxSegments: 1 });
      expect(res.status).toBe(201);
    });
  });

  describe('tenants', () => {
    runCases(() => [
      ['a name that is a number: 400 INVALID_TYPE on name', () => client.post('/v1/tenants', { name: 42 }), 400, 'INVALID_TYPE', 'name'],
      ['a name starting with a dash: 400 INVALID_NAME', () => client.post('/v1/tenants', { name: '-acme' }), 400, 'INVALID_NAME', 'name'],
      ['a name of 64 characters: 400 INVALID_NAME', () => client.post('/v1/tenants', { name: 'a'.repeat(64) }), 400, 'INVALID_NAME', 'name'],
      ['an empty name: 400 INVALID_NAME', () => client.post('/v1/tenants', { name: '' }), 400, 'INVALID_NAME', 'name'],
      ['no name: 400 MISSING_FIELD on name', () => client.post('/v1/tenants', { maxSegments: 3 }), 400, 'MISSING_FIELD', 'name'],
      ['an unknown field: 400 UNKNOWN_FIELD', () => client.post('/v1/tenants', { name: 'new', colour: 'red' }), 400, 'UNKNOWN_FIELD', 'colour'],
      ['a negative quota: 400 INVALID_VALUE', () => client.post('/v1/tenants', { name: 'new', maxSegments: -1 }), 400, 'INVALID_VALUE', 'maxSegments'],
      ['a quota as a string: 400 INVALID_TYPE', () => client.post('/v1/tenants', { name: 'new', maxSegments: '3' }), 400, 'INVALID_TYPE', 'maxSegments'],
      ['a name already taken: 409 TENANT_NAME_TAKEN', () => client.post('/v1/tenants', { name: 'acme' }), 409, 'TENANT_NAME_TAKEN', 'name'],
      ['GET with a malformed id: 400 INVALID_ID', () => client.get('/v1/tenants/acme'), 400, 'INVALID_ID', 'id'],
      ['GET with a UUIDv4 id: 400 INVALID_ID', () => client.get(`/v1/tenants/${V4_ID}`), 400, 'INVALID_ID', 'id'],
      ['GET of an unknown tenant: 404 TENANT_NOT_FOUND', () => client.get(`/v1/tenants/${UNKNOWN_ID}`), 404, 'TENANT_NOT_FOUND', 'id'],
      ['DELETE with a malformed id: 400 INVALID_ID', () => client.delete('/v1/tenants/not-an-id'), 400, 'INVALID_ID', 'id'],
      ['DELETE of an unknown tenant: 404 TENANT_NOT_FOUND', () => client.delete(`/v1/tenants/${UNKNOWN_ID}`), 404, 'TENANT_NOT_FOUND', 'id'],
      ['DELETE of a tenant that has segments: 409 TENANT_HAS_SEGMENTS', () => client.delete(`/v1/tenants/${tenant.id}`), 409, 'TENANT_HAS_SEGMENTS', 'id'],
    ]);
  });

  describe('segments', () => {
    runCases(() => [
      ['VNI 0: 400 VNI_OUT_OF_RANGE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vni: 0 }), 400, 'VNI_OUT_OF_RANGE', 'vni'],
      ['VNI 16777216: 400 VNI_OUT_OF_RANGE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vni: 16_777_216 }), 400, 'VNI_OUT_OF_RANGE', 'vni'],
      ['VNI -1: 400 VNI_OUT_OF_RANGE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vni: -1 }), 400, 'VNI_OUT_OF_RANGE', 'vni'],
      ['VNI 1.5: 400 INVALID_TYPE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vni: 1.5 }), 400, 'INVALID_TYPE', 'vni'],
      ['VNI "5000" as a string: 400 INVALID_TYPE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vni: '5000' }), 400, 'INVALID_TYPE', 'vni'],
      ['VNI null: 400 INVALID_TYPE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vni: null }), 400, 'INVALID_TYPE', 'vni'],
      ['VNI 5e3, the integer 5000 in exponent form, already taken: 409 VNI_TAKEN', () => client.post('/v1/segments', `{"tenantId":"${tenant.id}","name":"s","vni":5e3}`), 409, 'VNI_TAKEN', 'vni'],
      ['a VNI already taken: 409 VNI_TAKEN', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vni: 5000 }), 409, 'VNI_TAKEN', 'vni'],
      ['a VNI in quarantine: 409 VNI_QUARANTINED', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vni: quarantinedVni }), 409, 'VNI_QUARANTINED', 'vni'],
      ['VLAN 0: 400 VLAN_OUT_OF_RANGE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vlanId: 0 }), 400, 'VLAN_OUT_OF_RANGE', 'vlanId'],
      ['VLAN 4095: 400 VLAN_OUT_OF_RANGE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vlanId: 4095 }), 400, 'VLAN_OUT_OF_RANGE', 'vlanId'],
      ['VLAN "100" as a string: 400 INVALID_TYPE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vlanId: '100' }), 400, 'INVALID_TYPE', 'vlanId'],
      ['a VLAN already taken: 409 VLAN_TAKEN', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', vlanId: 100 }), 409, 'VLAN_TAKEN', 'vlanId'],
      ['an unknown tenant: 404 TENANT_NOT_FOUND on tenantId', () => client.post('/v1/segments', { tenantId: UNKNOWN_ID, name: 's' }), 404, 'TENANT_NOT_FOUND', 'tenantId'],
      ['a malformed tenantId: 400 INVALID_ID on tenantId', () => client.post('/v1/segments', { tenantId: 'acme', name: 's' }), 400, 'INVALID_ID', 'tenantId'],
      ['no tenantId: 400 MISSING_FIELD', () => client.post('/v1/segments', { name: 's' }), 400, 'MISSING_FIELD', 'tenantId'],
      ['no name: 400 MISSING_FIELD', () => client.post('/v1/segments', { tenantId: tenant.id }), 400, 'MISSING_FIELD', 'name'],
      ['a name that is a number: 400 INVALID_TYPE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 7 }), 400, 'INVALID_TYPE', 'name'],
      ['an unknown field: 400 UNKNOWN_FIELD', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', mtu: 9000 }), 400, 'UNKNOWN_FIELD', 'mtu'],
      ['a CIDR with host bits set: 400 INVALID_CIDR', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', cidr: '10.1.0.1/24' }), 400, 'INVALID_CIDR', 'cidr'],
      ['an IPv6 CIDR with host bits set: 400 INVALID_CIDR', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', cidr: 'fd00:2::1/64' }), 400, 'INVALID_CIDR', 'cidr'],
      ['a CIDR prefix too long: 400 INVALID_CIDR', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', cidr: '10.1.0.0/33' }), 400, 'INVALID_CIDR', 'cidr'],
      ['a CIDR without a prefix: 400 INVALID_CIDR', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', cidr: '10.1.0.0' }), 400, 'INVALID_CIDR', 'cidr'],
      ['a CIDR as a number: 400 INVALID_TYPE', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', cidr: 24 }), 400, 'INVALID_TYPE', 'cidr'],
      ['a tenant at its quota: 409 TENANT_QUOTA_EXCEEDED', () => client.post('/v1/segments', { tenantId: capped.id, name: 's' }), 409, 'TENANT_QUOTA_EXCEEDED', 'tenantId'],
      ['a tenant with a quota of 0: 409 TENANT_QUOTA_EXCEEDED', () => client.post('/v1/segments', { tenantId: frozen.id, name: 's' }), 409, 'TENANT_QUOTA_EXCEEDED', 'tenantId'],
      ['GET with a malformed id: 400 INVALID_ID', () => client.get('/v1/segments/web'), 400, 'INVALID_ID', 'id'],
      ['GET of an unknown segment: 404 SEGMENT_NOT_FOUND', () => client.get(`/v1/segments/${UNKNOWN_ID}`), 404, 'SEGMENT_NOT_FOUND', 'id'],
      ['DELETE of an unknown segment: 404 SEGMENT_NOT_FOUND', () => client.delete(`/v1/segments/${UNKNOWN_ID}`), 404, 'SEGMENT_NOT_FOUND', 'id'],
      ['DELETE of a segment that has ports: 409 SEGMENT_HAS_PORTS', () => client.delete(`/v1/segments/${seg4.id}`), 409, 'SEGMENT_HAS_PORTS', 'id'],
      ['mappings of an unknown segment: 404 SEGMENT_NOT_FOUND', () => client.get(`/v1/segments/${UNKNOWN_ID}/mappings`), 404, 'SEGMENT_NOT_FOUND', 'id'],
      ['mappings with a malformed id: 400 INVALID_ID', () => client.get('/v1/segments/web/mappings'), 400, 'INVALID_ID', 'id'],
    ]);
  });

  describe('hosts', () => {
    runCases(() => [
      ['a host name already taken: 409 HOST_NAME_TAKEN', () => client.post('/v1/hosts', { name: 'hv1', vtepIp: '192.0.2.99' }), 409, 'HOST_NAME_TAKEN', 'name'],
      ['a VTEP IP already taken: 409 VTEP_IP_TAKEN', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.11' }), 409, 'VTEP_IP_TAKEN', 'vtepIp'],
      ['a VTEP IP already taken, spelt differently: 409 VTEP_IP_TAKEN', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '2001:DB8:0::0011' }), 409, 'VTEP_IP_TAKEN', 'vtepIp'],
      ['a multicast VTEP: 400 INVALID_IP', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '239.1.1.1' }), 400, 'INVALID_IP', 'vtepIp'],
      ['an IPv6 multicast VTEP: 400 INVALID_IP', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: 'ff02::1' }), 400, 'INVALID_IP', 'vtepIp'],
      ['the unspecified VTEP 0.0.0.0: 400 INVALID_IP', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '0.0.0.0' }), 400, 'INVALID_IP', 'vtepIp'],
      ['the unspecified VTEP ::: 400 INVALID_IP', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '::' }), 400, 'INVALID_IP', 'vtepIp'],
      ['a VTEP that is not an address: 400 INVALID_IP', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: 'hv9.example' }), 400, 'INVALID_IP', 'vtepIp'],
      ['a VTEP as a number: 400 INVALID_TYPE', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: 3221225995 }), 400, 'INVALID_TYPE', 'vtepIp'],
      ['no VTEP: 400 MISSING_FIELD', () => client.post('/v1/hosts', { name: 'hv9' }), 400, 'MISSING_FIELD', 'vtepIp'],
      [
        'an unknown field deep in the inventory: 400 UNKNOWN_FIELD with its path',
        () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.99', inventory: { uplinks: [{ name: 'eth0' }, { name: 'eth1', speed: 25 }] } }),
        400,
        'UNKNOWN_FIELD',
        'inventory.uplinks[1].speed',
      ],
      [
        'a trunked VLAN 4095: 400 VLAN_OUT_OF_RANGE with its path',
        () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.99', inventory: { trunkedVlans: [100, 200, 4095] } }),
        400,
        'VLAN_OUT_OF_RANGE',
        'inventory.trunkedVlans[2]',
      ],
      [
        'an uplink listed twice: 400 INVALID_VALUE on the second',
        () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.99', inventory: { uplinks: [{ name: 'eth0' }, { name: 'eth0' }] } }),
        400,
        'INVALID_VALUE',
        'inventory.uplinks[1].name',
      ],
      ['a rename to a taken name: 409 HOST_NAME_TAKEN', () => client.patch(`/v1/hosts/${host6.id}`, { name: 'hv1' }), 409, 'HOST_NAME_TAKEN', 'name'],
      ['a VTEP change to a taken VTEP: 409 VTEP_IP_TAKEN', () => client.patch(`/v1/hosts/${host6.id}`, { vtepIp: '192.0.2.11' }), 409, 'VTEP_IP_TAKEN', 'vtepIp'],
      ['PATCH of an unknown host: 404 HOST_NOT_FOUND', () => client.patch(`/v1/hosts/${UNKNOWN_ID}`, { name: 'x' }), 404, 'HOST_NOT_FOUND', 'id'],
      ['PATCH with an unknown field: 400 UNKNOWN_FIELD', () => client.patch(`/v1/hosts/${host.id}`, { id: UNKNOWN_ID }), 400, 'UNKNOWN_FIELD', 'id'],
      ['GET with a malformed id: 400 INVALID_ID', () => client.get('/v1/hosts/hv1'), 400, 'INVALID_ID', 'id'],
      ['DELETE of an unknown host: 404 HOST_NOT_FOUND', () => client.delete(`/v1/hosts/${UNKNOWN_ID}`), 404, 'HOST_NOT_FOUND', 'id'],
      ['DELETE of a host with bound ports: 409 HOST_HAS_PORTS', () => client.delete(`/v1/hosts/${host.id}`), 409, 'HOST_HAS_PORTS', 'id'],
    ]);
  });

  describe('ports', () => {
    const post = (body: Record<string, unknown>) => client.post('/v1/ports', body);
    runCases(() => [
      ['a malformed MAC: 400 INVALID_MAC', () => post({ segmentId: seg4.id, mac: '02:00:00:00:01' }), 400, 'INVALID_MAC', 'mac'],
      ['a MAC with mixed separators: 400 INVALID_MAC', () => post({ segmentId: seg4.id, mac: '02:00-00:00:00:09' }), 400, 'INVALID_MAC', 'mac'],
      ['the all-zero MAC: 400 INVALID_MAC', () => post({ segmentId: seg4.id, mac: '00:00:00:00:00:00' }), 400, 'INVALID_MAC', 'mac'],
      ['a multicast MAC: 400 MULTICAST_MAC', () => post({ segmentId: seg4.id, mac: '01:00:5e:00:00:01' }), 400, 'MULTICAST_MAC', 'mac'],
      ['the broadcast MAC: 400 MULTICAST_MAC', () => post({ segmentId: seg4.id, mac: 'FF-FF-FF-FF-FF-FF' }), 400, 'MULTICAST_MAC', 'mac'],
      ['a MAC as a number: 400 INVALID_TYPE', () => post({ segmentId: seg4.id, mac: 2 }), 400, 'INVALID_TYPE', 'mac'],
      ['a MAC already used on the segment: 409 DUPLICATE_MAC', () => post({ segmentId: seg4.id, mac: '02:00:00:00:00:01' }), 409, 'DUPLICATE_MAC', 'mac'],
      ['a MAC already used, in upper case with dashes: 409 DUPLICATE_MAC', () => post({ segmentId: seg4.id, mac: '02-00-00-00-00-01' }), 409, 'DUPLICATE_MAC', 'mac'],
      ['an IP outside the CIDR: 400 IP_OUTSIDE_CIDR', () => post({ segmentId: seg4.id, ips: ['10.0.1.5'] }), 400, 'IP_OUTSIDE_CIDR', 'ips[0]'],
      ['an IPv6 IP outside the CIDR: 400 IP_OUTSIDE_CIDR', () => post({ segmentId: seg6.id, ips: ['fd00:2::5'] }), 400, 'IP_OUTSIDE_CIDR', 'ips[0]'],
      ['an IPv6 address on an IPv4 segment: 400 IP_FAMILY_MISMATCH', () => post({ segmentId: seg4.id, ips: ['10.0.0.20', 'fd00:1::20'] }), 400, 'IP_FAMILY_MISMATCH', 'ips[1]'],
      ['an IPv4 address on an IPv6 segment: 400 IP_FAMILY_MISMATCH', () => post({ segmentId: seg6.id, ips: ['10.0.0.20'] }), 400, 'IP_FAMILY_MISMATCH', 'ips[0]'],
      ['the network address: 400 RESERVED_IP', () => post({ segmentId: seg4.id, ips: ['10.0.0.0'] }), 400, 'RESERVED_IP', 'ips[0]'],
      ['the broadcast address: 400 RESERVED_IP', () => post({ segmentId: seg4.id, ips: ['10.0.0.255'] }), 400, 'RESERVED_IP', 'ips[0]'],
      ['the IPv6 subnet-router anycast address: 400 RESERVED_IP', () => post({ segmentId: seg6.id, ips: ['fd00:1::'] }), 400, 'RESERVED_IP', 'ips[0]'],
      ['an IP already used on the segment: 409 DUPLICATE_IP', () => post({ segmentId: seg4.id, ips: ['10.0.0.11', '10.0.0.10'] }), 409, 'DUPLICATE_IP', 'ips[1]'],
      ['an IPv6 IP already used, spelt differently: 409 DUPLICATE_IP', () => post({ segmentId: seg6.id, ips: ['FD00:1:0:0::0010'] }), 409, 'DUPLICATE_IP', 'ips[0]'],
      ['the same IP twice in one port: 409 DUPLICATE_IP on the second', () => post({ segmentId: seg4.id, ips: ['10.0.0.30', '10.0.0.31', '10.0.0.30'] }), 409, 'DUPLICATE_IP', 'ips[2]'],
      ['the same IPv6 IP twice in one port, spelt differently: 409 DUPLICATE_IP', () => post({ segmentId: seg6.id, ips: ['fd00:1::30', 'fd00:1:0::30'] }), 409, 'DUPLICATE_IP', 'ips[1]'],
      ['an IP that is not an address: 400 INVALID_IP', () => post({ segmentId: seg4.id, ips: ['10.0.0.300'] }), 400, 'INVALID_IP', 'ips[0]'],
      ['an IP with a prefix: 400 INVALID_IP', () => post({ segmentId: seg4.id, ips: ['10.0.0.5/24'] }), 400, 'INVALID_IP', 'ips[0]'],
      ['ips as a string: 400 INVALID_TYPE', () => post({ segmentId: seg4.id, ips: '10.0.0.5' }), 400, 'INVALID_TYPE', 'ips'],
      ['an IP as a number: 400 INVALID_TYPE', () => post({ segmentId: seg4.id, ips: ['10.0.0.5', 167772166] }), 400, 'INVALID_TYPE', 'ips[1]'],
      ['17 IPs: 400 INVALID_VALUE', () => post({ segmentId: seg4.id, ips: Array.from({ length: 17 }, (_, i) => `10.0.0.${100 + i}`) }), 400, 'INVALID_VALUE', 'ips'],
      ['an unknown segment: 404 SEGMENT_NOT_FOUND on segmentId', () => post({ segmentId: UNKNOWN_ID }), 404, 'SEGMENT_NOT_FOUND', 'segmentId'],
      ['a malformed segmentId: 400 INVALID_ID', () => post({ segmentId: 'web' }), 400, 'INVALID_ID', 'segmentId'],
      ['no segmentId: 400 MISSING_FIELD', () => post({ mac: '02:00:00:00:00:09' }), 400, 'MISSING_FIELD', 'segmentId'],
      ['an unknown host: 404 HOST_NOT_FOUND on hostId', () => post({ segmentId: seg4.id, hostId: UNKNOWN_ID }), 404, 'HOST_NOT_FOUND', 'hostId'],
      ['a vmId with a space: 400 INVALID_VALUE', () => post({ segmentId: seg4.id, vmId: 'vm 1' }), 400, 'INVALID_VALUE', 'vmId'],
      ['an unknown field: 400 UNKNOWN_FIELD', () => post({ segmentId: seg4.id, vlan: 5 }), 400, 'UNKNOWN_FIELD', 'vlan'],
      ['binding to an unknown host: 404 HOST_NOT_FOUND', () => client.patch(`/v1/ports/${port6.id}`, { hostId: UNKNOWN_ID }), 404, 'HOST_NOT_FOUND', 'hostId'],
      ['binding to a malformed host id: 400 INVALID_ID', () => client.patch(`/v1/ports/${port6.id}`, { hostId: 'hv1' }), 400, 'INVALID_ID', 'hostId'],
      ['a tap name with a space: 400 INVALID_VALUE', () => client.patch(`/v1/ports/${port6.id}`, { tapName: 'vnet0 up' }), 400, 'INVALID_VALUE', 'tapName'],
      ['a tap name over 15 characters: 400 INVALID_VALUE', () => client.patch(`/v1/ports/${port6.id}`, { tapName: 'vnet0123456789ab' }), 400, 'INVALID_VALUE', 'tapName'],
      ['a tap name with a slash: 400 INVALID_VALUE', () => client.patch(`/v1/ports/${port6.id}`, { tapName: 'vnet/0' }), 400, 'INVALID_VALUE', 'tapName'],
      ['a tap name with a colon: 400 INVALID_VALUE', () => client.patch(`/v1/ports/${port6.id}`, { tapName: 'eth0:1' }), 400, 'INVALID_VALUE', 'tapName'],
      ['the tap name "..": 400 INVALID_VALUE', () => client.patch(`/v1/ports/${port6.id}`, { tapName: '..' }), 400, 'INVALID_VALUE', 'tapName'],
      ['an empty tap name: 400 INVALID_VALUE', () => client.patch(`/v1/ports/${port6.id}`, { tapName: '' }), 400, 'INVALID_VALUE', 'tapName'],
      ['a tap name of the agent’s own devices: 400 INVALID_VALUE', () => client.patch(`/v1/ports/${port6.id}`, { tapName: 'br5000' }), 400, 'INVALID_VALUE', 'tapName'],
      ['a tap name that is not a string: 400 INVALID_TYPE', () => client.patch(`/v1/ports/${port6.id}`, { tapName: 7 }), 400, 'INVALID_TYPE', 'tapName'],
      ['a bad tap name in a new port: 400 INVALID_VALUE', () => post({ segmentId: seg6.id, tapName: 'vx7' }), 400, 'INVALID_VALUE', 'tapName'],
      ['changing the MAC of a port: 400 UNKNOWN_FIELD', () => client.patch(`/v1/ports/${port6.id}`, { mac: '02:00:00:00:00:99' }), 400, 'UNKNOWN_FIELD', 'mac'],
      ['PATCH of an unknown port: 404 PORT_NOT_FOUND', () => client.patch(`/v1/ports/${UNKNOWN_ID}`, { hostId: null }), 404, 'PORT_NOT_FOUND', 'id'],
      ['PATCH with a malformed id: 400 INVALID_ID', () => client.patch('/v1/ports/p1', { hostId: null }), 400, 'INVALID_ID', 'id'],
      ['GET of an unknown port: 404 PORT_NOT_FOUND', () => client.get(`/v1/ports/${UNKNOWN_ID}`), 404, 'PORT_NOT_FOUND', 'id'],
      ['DELETE with a malformed id: 400 INVALID_ID', () => client.delete(`/v1/ports/${UNKNOWN_ID}x`), 400, 'INVALID_ID', 'id'],
      ['DELETE of an unknown port: 404 PORT_NOT_FOUND', () => client.delete(`/v1/ports/${UNKNOWN_ID}`), 404, 'PORT_NOT_FOUND', 'id'],
    ]);

    it('allows the same MAC and IP on two different segments (uniqueness is per segment)', async () => {
      const other = await make.segment(tenant.id, { name: 'web-b', cidr: '10.0.0.0/24' });
      const twin = await created(post({ segmentId: other.id, mac: port4.mac, ips: port4.ips }));
      expect(twin).toMatchObject({ mac: '02:00:00:00:00:01', ips: ['10.0.0.10'] });
    });

    it('names a port’s tap at creation, renames it and forgets it (null); a port without one shows null', async () => {
      const p = await created(post({ segmentId: seg6.id, tapName: 'vnet7' }));
      expect(p.tapName).toBe('vnet7');
      expect((await client.patch(`/v1/ports/${p.id}`, { tapName: 'macvtap-0.1' })).body.tapName).toBe('macvtap-0.1');
      expect((await client.patch(`/v1/ports/${p.id}`, { vmId: 'vm-7' })).body.tapName).toBe('macvtap-0.1');
      expect((await client.patch(`/v1/ports/${p.id}`, { tapName: null })).body.tapName).toBeNull();
      expect((await client.get(`/v1/ports/${p.id}`)).body.tapName).toBeNull();
      expect((await client.get(`/v1/ports/${port4.id}`)).body.tapName).toBeNull();
    });

    it('stores a MAC and IPs in their canonical form', async () => {
      const p = await created(post({ segmentId: seg6.id, mac: '02-00-00-AB-CD-EF', ips: ['FD00:1:0:0:0:0:0:0042'] }));
      expect(p).toMatchObject({ mac: '02:00:00:ab:cd:ef', ips: ['fd00:1::42'] });
    });
  });

  describe('port batches', () => {
    const batch = (...ports: unknown[]) => client.post('/v1/ports/batch', { ports });
    const ok = (n: number) => ({ segmentId: seg4.id, mac: `02:00:00:00:01:${n.toString(16).padStart(2, '0')}`, ips: [`10.0.0.${100 + n}`] });
    /** Port n of the IPv6 segment, with these host numbers as IPs (0x10 is port6's). */
    const v6 = (n: number, ...hosts: number[]) => ({ segmentId: seg6.id, mac: `02:00:00:00:02:${n.toString(16).padStart(2, '0')}`, ips: hosts.map((h) => `fd00:1::${h.toString(16)}`) });
    runCases(() => [
      ['the same MAC twice in one batch: 409 DUPLICATE_MAC on ports[1].mac', () => batch(ok(1), { ...ok(2), mac: ok(1).mac }), 409, 'DUPLICATE_MAC', 'ports[1].mac'],
      ['the same MAC twice in one batch, spelt differently: 409 DUPLICATE_MAC', () => batch(ok(1), ok(2), { ...ok(3), mac: ok(1).mac.toUpperCase().replace(/:/g, '-') }), 409, 'DUPLICATE_MAC', 'ports[2].mac'],
      ['the same IP in two ports of one batch: 409 DUPLICATE_IP on ports[1].ips[0]', () => batch(ok(1), { ...ok(2), ips: ok(1).ips }), 409, 'DUPLICATE_IP', 'ports[1].ips[0]'],
      ['the same IP twice in one port of a batch: 409 DUPLICATE_IP', () => batch(ok(1), { ...ok(2), ips: ['10.0.0.50', '10.0.0.50'] }), 409, 'DUPLICATE_IP', 'ports[1].ips[1]'],
      ['a batch whose last port has a multicast MAC: none created', () => batch(ok(1), ok(2), ok(3), ok(4), { ...ok(5), mac: '33:33:00:00:00:01' }), 400, 'MULTICAST_MAC', 'ports[4].mac'],
      ['a batch whose last port reuses a stored MAC: none created', () => batch(ok(1), ok(2), ok(3), ok(4), { ...ok(5), mac: port4.mac }), 409, 'DUPLICATE_MAC', 'ports[4].mac'],
      ['a batch whose last port reuses a stored IP: none created', () => batch(ok(1), ok(2), ok(3), ok(4), { ...ok(5), ips: port4.ips }), 409, 'DUPLICATE_IP', 'ports[4].ips[0]'],
      ['a batch whose last port has an IP outside the CIDR: none created', () => batch(ok(1), ok(2), ok(3), ok(4), { ...ok(5), ips: ['10.9.9.9'] }), 400, 'IP_OUTSIDE_CIDR', 'ports[4].ips[0]'],
      ['a batch whose last port names an unknown segment: none created', () => batch(ok(1), ok(2), ok(3), ok(4), { ...ok(5), segmentId: UNKNOWN_ID }), 404, 'SEGMENT_NOT_FOUND', 'ports[4].segmentId'],
      ['a batch whose last port names an unknown host: none created', () => batch(ok(1), ok(2), ok(3), ok(4), { ...ok(5), hostId: UNKNOWN_ID }), 404, 'HOST_NOT_FOUND', 'ports[4].hostId'],
      // Ports of two segments interleaved: the refusal names the port and the address it reuses (what the script reads for the batch lines up with its ports).
      ['a batch over two segments whose last port reuses a MAC stored on its segment: none created', () => batch(ok(1), v6(1), ok(2), { ...v6(2), mac: port6.mac }), 409, 'DUPLICATE_MAC', 'ports[3].mac'],
      ['a batch over two segments whose last port reuses an IP stored on its segment: none created', () => batch(ok(1), v6(1, 1, 2), ok(2), v6(3, 3, 4, 0x10)), 409, 'DUPLICATE_IP', 'ports[3].ips[2]'],
      ['a batch over two segments whose last port takes an IP of an earlier one on its segment: none created', () => batch(v6(1, 1, 2), ok(1), ok(2), v6(3, 3, 2)), 409, 'DUPLICATE_IP', 'ports[3].ips[1]'],
      ['a batch larger than OVERLAY_MAX_BATCH_SIZE: 400 BATCH_TOO_LARGE', () => batch(ok(1), ok(2), ok(3), ok(4), ok(5), ok(6)), 400, 'BATCH_TOO_LARGE', 'ports'],
      ['an empty batch: 400 INVALID_VALUE', () => batch(), 400, 'INVALID_VALUE', 'ports'],
      ['ports not an array: 400 INVALID_TYPE', () => client.post('/v1/ports/batch', { ports: ok(1) }), 400, 'INVALID_TYPE', 'ports'],
      ['no ports: 400 MISSING_FIELD', () => client.post('/v1/ports/batch', {}), 400, 'MISSING_FIELD', 'ports'],
      ['a wrong type deep inside: 400 INVALID_TYPE on ports[3].ips[1]', () => batch(ok(1), ok(2), ok(3), { ...ok(4), ips: ['10.0.0.60', 60] }), 400, 'INVALID_TYPE', 'ports[3].ips[1]'],
      ['an unknown field inside a port: 400 UNKNOWN_FIELD on ports[2].vlan', () => batch(ok(1), ok(2), { ...ok(3), vlan: 7 }), 400, 'UNKNOWN_FIELD', 'ports[2].vlan'],
      ['a port without a segment: 400 MISSING_FIELD on ports[1].segmentId', () => batch(ok(1), { mac: ok(2).mac }), 400, 'MISSING_FIELD', 'ports[1].segmentId'],
      ['a port that is not an object: 400 INVALID_TYPE on ports[1]', () => batch(ok(1), 'port'), 400, 'INVALID_TYPE', 'ports[1]'],
    ]);

    it('creates a batch over two segments that puts the same MAC on each (uniqueness is per segment)', async () => {
      const res = await batch(v6(9, 0x90), { ...ok(9), mac: v6(9).mac }, v6(10, 0x91));
      expect(res.status).toBe(201);
      expect(res.body.items.map((p: any) => [p.segmentId, p.mac])).toEqual([
        [seg6.id, v6(9).mac],
        [seg4.id, v6(9).mac],
        [seg6.id, v6(10).mac],
      ]);
      // Stored in the indexes: the same addresses again are refused, on their own segment only.
      expect((await batch({ ...ok(11), mac: v6(9).mac })).body.code).toBe('DUPLICATE_MAC');
      expect((await batch({ ...v6(11), ips: ['fd00:1::91'] })).body).toMatchObject({ code: 'DUPLICATE_IP', field: 'ports[0].ips[0]' });
    });

    it('creates a valid batch of OVERLAY_MAX_BATCH_SIZE ports all together', async () => {
      const res = await batch(ok(1), ok(2), ok(3), ok(4), ok(5));
      expect(res.status).toBe(201);
      expect(res.body.items.map((p: any) => p.mac)).toEqual([1, 2, 3, 4, 5].map((n) => ok(n).mac));
    });
  });

  describe('pagination', () => {
    const lists = ['/v1/tenants', '/v1/segments', '/v1/hosts', '/v1/ports'];
    runCases(() => [
      ...lists.flatMap((path): Case[] => [
        [`${path}?limit=0: 400 INVALID_VALUE on limit`, () => client.get(`${path}?limit=0`), 400, 'INVALID_VALUE', 'limit'],
        [`${path}?limit=abc: 400 INVALID_VALUE on limit`, () => client.get(`${path}?limit=abc`), 400, 'INVALID_VALUE', 'limit'],
        [`${path}?cursor=bad: 400 INVALID_CURSOR`, () => client.get(`${path}?cursor=bad`), 400, 'INVALID_CURSOR', 'cursor'],
      ]),
      ['limit=1001: 400 INVALID_VALUE', () => client.get('/v1/tenants?limit=1001'), 400, 'INVALID_VALUE', 'limit'],
      ['limit=-1: 400 INVALID_VALUE', () => client.get('/v1/tenants?limit=-1'), 400, 'INVALID_VALUE', 'limit'],
      ['limit=2.5: 400 INVALID_VALUE', () => client.get('/v1/tenants?limit=2.5'), 400, 'INVALID_VALUE', 'limit'],
      ['an empty limit: 400 INVALID_VALUE', () => client.get('/v1/tenants?limit='), 400, 'INVALID_VALUE', 'limit'],
      ['limit given twice: 400 INVALID_VALUE', () => client.get('/v1/tenants?limit=1&limit=2'), 400, 'INVALID_VALUE', 'limit'],
      ['a UUIDv4 cursor: 400 INVALID_CURSOR', () => client.get(`/v1/tenants?cursor=${V4_ID}`), 400, 'INVALID_CURSOR', 'cursor'],
      ['cursor given twice: 400 INVALID_CURSOR', () => client.get(`/v1/tenants?cursor=${UNKNOWN_ID}&cursor=${UNKNOWN_ID}`), 400, 'INVALID_CURSOR', 'cursor'],
      ['a malformed tenantId filter: 400 INVALID_ID', () => client.get('/v1/segments?tenantId=acme'), 400, 'INVALID_ID', 'tenantId'],
      ['a malformed segmentId filter: 400 INVALID_ID', () => client.get('/v1/ports?segmentId=web'), 400, 'INVALID_ID', 'segmentId'],
      ['a malformed hostId filter: 400 INVALID_ID', () => client.get('/v1/ports?hostId=hv1'), 400, 'INVALID_ID', 'hostId'],
      ['a tenantId filter given twice: 400 INVALID_ID', () => client.get(`/v1/segments?tenantId=${tenant.id}&tenantId=${tenant.id}`), 400, 'INVALID_ID', 'tenantId'],
      ['a segmentId filter given twice: 400 INVALID_ID', () => client.get(`/v1/ports?segmentId=${seg4.id}&segmentId=${seg4.id}`), 400, 'INVALID_ID', 'segmentId'],
      ['a hostId filter given twice: 400 INVALID_ID', () => client.get(`/v1/ports?hostId=${host.id}&hostId=${host.id}`), 400, 'INVALID_ID', 'hostId'],
    ]);

    async function walk(path: string, limit: number): Promise<{ ids: string[]; pages: number }> {
      const ids: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const sep = path.includes('?') ? '&' : '?';
        const res: ApiResponse = await client.get(`${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        expect(res.body.items.length).toBeLessThanOrEqual(limit);
        ids.push(...res.body.items.map((x: any) => x.id as string));
        cursor = res.body.nextCursor;
        pages++;
        expect(pages).toBeLessThan(100);
      } while (cursor);
      return { ids, pages };
    }

    it('walks every port of a segment exactly once, in creation order, with nextCursor', async () => {
      const seg = await make.segment(tenant.id, { name: 'paged', cidr: '10.7.0.0/24' });
      const portAt = (n: number) => ({ segmentId: seg.id, ips: [`10.7.0.${n}`] });
      const first = await created(client.post('/v1/ports/batch', { ports: [1, 2, 3, 4, 5].map(portAt) }));
      const second = await created(client.post('/v1/ports/batch', { ports: [6, 7].map(portAt) }));
      const all = [...first.items, ...second.items].map((p: any) => p.id as string).sort();

      for (const limit of [1, 3, 7, 100]) {
        const { ids, pages } = await walk(`/v1/ports?segmentId=${seg.id}`, limit);
        expect(ids).toEqual(all);
        // A page that ends exactly at the last item says so (no empty trailing page).
        expect(pages).toBe(Math.max(1, Math.ceil(all.length / limit)));
      }
    });

    it('walks every tenant exactly once, whatever the page size', async () => {
      const everything = (await client.get('/v1/tenants?limit=1000')).body.items.map((t: any) => t.id as string);
      expect(everything.length).toBeGreaterThanOrEqual(4);
      for (const limit of [1, 2, 3]) {
        const { ids } = await walk('/v1/tenants', limit);
        expect(ids).toEqual(everything);
        expect(new Set(ids).size).toBe(ids.length);
      }
    });

    it('returns an empty last page with no cursor after the last id', async () => {
      const everything = (await client.get('/v1/hosts?limit=1000')).body.items as any[];
      const res = await client.get(`/v1/hosts?cursor=${everything[everything.length - 1].id}`);
      expect(res.body).toEqual({ items: [], nextCursor: null });
    });
  });

  describe('binding and mappings', () => {
    const hostPortIds = async (hostId: string): Promise<string[]> => (await client.get(`/v1/ports?hostId=${hostId}&limit=1000`)).body.items.map((p: any) => p.id);

    it('binds, moves and unbinds a port, and each host’s port list follows', async () => {
      const hvA = await make.host({ name: 'hv-a', vtepIp: '192.0.2.21' });
      const hvB = await make.host({ name: 'hv-b', vtepIp: '192.0.2.22' });
      const p = await make.port(seg4.id, { ips: ['10.0.0.40'] });
      expect(p.hostId).toBeNull();

      const bound = await client.patch(`/v1/ports/${p.id}`, { hostId: hvA.id });
      expect(bound.status).toBe(200);
      expect(bound.body.hostId).toBe(hvA.id);
      expect(await hostPortIds(hvA.id)).toEqual([p.id]);
      expect(await hostPortIds(hvB.id)).toEqual([]);

      const moved = await client.patch(`/v1/ports/${p.id}`, { hostId: hvB.id });
      expect(moved.body.hostId).toBe(hvB.id);
      expect(await hostPortIds(hvA.id)).toEqual([]);
      expect(await hostPortIds(hvB.id)).toEqual([p.id]);
      // hv-a has nothing bound any more, so it may go; hv-b may not.
      expect((await client.delete(`/v1/hosts/${hvA.id}`)).status).toBe(204);
      await expectRefused(() => client.delete(`/v1/hosts/${hvB.id}`), 409, 'HOST_HAS_PORTS', 'id');

      const relabelled = await client.patch(`/v1/ports/${p.id}`, { vmId: 'vm-40' });
      expect(relabelled.body).toMatchObject({ hostId: hvB.id, vmId: 'vm-40' });

      const unbound = await client.patch(`/v1/ports/${p.id}`, { hostId: null });
      expect(unbound.body).toMatchObject({ hostId: null, vmId: 'vm-40' });
      expect(await hostPortIds(hvB.id)).toEqual([]);
      expect((await client.get(`/v1/ports/${p.id}`)).body).toMatchObject({ hostId: null, vmId: 'vm-40', mac: p.mac, ips: ['10.0.0.40'] });
      expect((await client.delete(`/v1/hosts/${hvB.id}`)).status).toBe(204);
    });

    it('lists exactly the bound ports of a segment, each with its host’s VTEP', async () => {
      const seg = await make.segment(tenant.id, { name: 'mapped', cidr: '10.8.0.0/24' });
      const { items } = await created(
        client.post('/v1/ports/batch', {
          ports: [
            { segmentId: seg.id, mac: '02:00:00:00:08:01', ips: ['10.8.0.1'], hostId: host.id },
            { segmentId: seg.id, mac: '02:00:00:00:08:02', ips: ['10.8.0.2'] },
            { segmentId: seg.id, mac: '02:00:00:00:08:03', ips: ['10.8.0.3', '10.8.0.4'], hostId: host6.id },
          ],
        }),
      );
      const sortByMac = (rows: any[]) => [...rows].sort((x, y) => (x.mac < y.mac ? -1 : 1));

      const before = await client.get(`/v1/segments/${seg.id}/mappings`);
      expect(before.status).toBe(200);
      expect({ ...before.body, items: sortByMac(before.body.items) }).toEqual({
        segmentId: seg.id,
        vni: seg.vni,
        items: [
          { portId: items[0].id, mac: '02:00:00:00:08:01', ips: ['10.8.0.1'], hostId: host.id, vtepIp: '192.0.2.11' },
          { portId: items[2].id, mac: '02:00:00:00:08:03', ips: ['10.8.0.3', '10.8.0.4'], hostId: host6.id, vtepIp: '2001:db8::11' },
        ],
      });

      // Bind the second, unbind the first: the table follows.
      await client.patch(`/v1/ports/${items[1].id}`, { hostId: host6.id });
      await client.patch(`/v1/ports/${items[0].id}`, { hostId: null });
      const after = await client.get(`/v1/segments/${seg.id}/mappings`);
      expect(sortByMac(after.body.items)).toEqual([
        { portId: items[1].id, mac: '02:00:00:00:08:02', ips: ['10.8.0.2'], hostId: host6.id, vtepIp: '2001:db8::11' },
        { portId: items[2].id, mac: '02:00:00:00:08:03', ips: ['10.8.0.3', '10.8.0.4'], hostId: host6.id, vtepIp: '2001:db8::11' },
      ]);
    });

    it('gives an empty table for a segment without bound ports', async () => {
      const res = await client.get(`/v1/segments/${plain.id}/mappings`);
      expect(res.body).toEqual({ segmentId: plain.id, vni: plain.vni, items: [] });
    });
  });

  describe('deletion guards, cleared in order', () => {
    it('refuses to delete a tenant, segment or host still in use, then allows it once emptied', async () => {
      const t = await make.tenant({ name: 'short-lived' });
      const hv = await make.host({ name: 'hv-tmp', vtepIp: '192.0.2.31' });
      const s = await make.segment(t.id, { name: 's', cidr: '10.9.0.0/24' });
      const p = await make.port(s.id, { ips: ['10.9.0.9'], hostId: hv.id });

      await expectRefused(() => client.delete(`/v1/tenants/${t.id}`), 409, 'TENANT_HAS_SEGMENTS', 'id');
      await expectRefused(() => client.delete(`/v1/segments/${s.id}`), 409, 'SEGMENT_HAS_PORTS', 'id');
      await expectRefused(() => client.delete(`/v1/hosts/${hv.id}`), 409, 'HOST_HAS_PORTS', 'id');

      expect((await client.delete(`/v1/ports/${p.id}`)).status).toBe(204);
      // The port's MAC and IP are free again on that segment.
      const again = await make.port(s.id, { mac: p.mac, ips: ['10.9.0.9'] });
      expect((await client.delete(`/v1/ports/${again.id}`)).status).toBe(204);
      expect((await client.delete(`/v1/hosts/${hv.id}`)).status).toBe(204);
      expect((await client.delete(`/v1/segments/${s.id}`)).status).toBe(204);
      expect((await client.delete(`/v1/tenants/${t.id}`)).status).toBe(204);
      expect((await client.get(`/v1/tenants/${t.id}`)).status).toBe(404);
    });
  });
});

describe('a refused segment create once a VNI quarantine has ended', () => {
  // Quarantine 0 s: a released VNI is soon due for reuse, and is then released by the next create.
  const prefix = uniquePrefix('validation-q');
  let h: Harness;
  let client: Client;
  let tenantId: string;
  let first: any;

  beforeAll(async () => {
    h = await startController({ prefix, env: { OVERLAY_VNI_QUARANTINE_SECONDS: '0', OVERLAY_VNI_RANGES: '6000-6001' } });
    client = api(h.url);
    tenantId = (await client.post('/v1/tenants', { name: 't' })).body.id;
    first = (await client.post('/v1/segments', { tenantId, name: 'first' })).body;
    const second = (await client.post('/v1/segments', { tenantId, name: 'second' })).body;
    expect([first.vni, second.vni]).toEqual([6000, 6001]);
  });

  /**
   * Released VNIs are due at once here: the quarantine is 0 s, and no agent ever connected to
   * this deployment, so there is no acknowledgement to wait for.
   */
  async function waitUntilReleasesAreDue(): Promise<void> {}

  /** Takes and releases a VNI outside the ranges: due, but no use to automatic allocation. */
  async function releaseOutsideTheRanges(vni: number): Promise<void> {
    const outside = (await client.post('/v1/segments', { tenantId, name: `outside-${vni}`, vni })).body;
    expect((await client.delete(`/v1/segments/${outside.id}`)).status).toBe(204);
    await waitUntilReleasesAreDue();
  }

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  it('refuses a taken VNI with 409 VNI_TAKEN and releases nothing', async () => {
    await releaseOutsideTheRanges(7000);
    const before = await h.dump();
    const refused = await client.post('/v1/segments', { tenantId, name: 'dup', vni: 6001 });
    expect({ status: refused.status, code: refused.body.code, field: refused.body.field }).toEqual({ status: 409, code: 'VNI_TAKEN', field: 'vni' });
    expect(await h.dump()).toStrictEqual(before);
  });

  it('refuses with 409 VNI_RANGE_EXHAUSTED when only VNIs outside the ranges are due, and releases nothing', async () => {
    await releaseOutsideTheRanges(7001);
    const before = await h.dump();
    const refused = await client.post('/v1/segments', { tenantId, name: 'auto' });
    expect({ status: refused.status, code: refused.body.code, field: refused.body.field }).toEqual({ status: 409, code: 'VNI_RANGE_EXHAUSTED', field: 'vni' });
    expect(await h.dump()).toStrictEqual(before);
  });

  it('counts a VNI whose quarantine has ended as free, for automatic and requested allocation', async () => {
    expect((await client.delete(`/v1/segments/${first.id}`)).status).toBe(204);
    await waitUntilReleasesAreDue();
    const auto = await client.post('/v1/segments', { tenantId, name: 'auto' });
    expect({ status: auto.status, vni: auto.body.vni }).toEqual({ status: 201, vni: 6000 });
    const requested = await client.post('/v1/segments', { tenantId, name: 'requested', vni: 7001 });
    expect({ status: requested.status, vni: requested.body.vni }).toEqual({ status: 201, vni: 7001 });
  });
});
