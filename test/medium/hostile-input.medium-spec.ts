import { apiRoutes } from '../../src/controller/app.module';
import { routeKey } from '../../src/controller/auth/route-table';
import { api, dropPrefix, startController, uniquePrefix, type ApiResponse, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';
import { AUTHORIZATION, rawRequest, requestBytes, type RawResponse } from '../support/raw-http';

/**
 * Hostile input, against a real overlayd and Redis: text that is not well-formed Unicode, bytes
 * that are not UTF-8, IPv6 spellings of IPv4 addresses, addresses that are never a host's, query
 * parameters a route does not take. Each is refused with a 4xx, `{code, message, field}`, and the store stays
 * byte-for-byte as it was (every key under the prefix, change log and audit trail included: a
 * refused request is no write, and only 401 and 403 are recorded as refusals). Requests carry the
 * tests' admin token, so what is refused is the input, never the caller.
 */

type Client = ReturnType<typeof api>;
type Send = () => Promise<ApiResponse | RawResponse>;

describe('overlayd refuses hostile input and changes nothing', () => {
  const prefix = uniquePrefix('hostile');
  let h: Harness;
  let client: Client;
  let make: ReturnType<typeof factories>;
  let tenant: any;
  let seg4: any;
  let seg6: any;
  let plain: any;
  let host: any;
  let host2: any;
  let port: any;
  let group: any;
  let token: any;

  async function expectRefused(send: Send, status: number, code: string, field?: string): Promise<void> {
    const before = await h.dump();
    const res = await send();
    expect({ status: res.status, code: res.body?.code, field: res.body?.field }).toEqual({ status, code, field });
    expect(typeof res.body.message).toBe('string');
    expect(await h.dump()).toStrictEqual(before);
  }

  beforeAll(async () => {
    h = await startController({ prefix, env: { OVERLAY_MAX_BODY_BYTES: '4096' } });
    client = api(h.url);
    make = factories(client);
    tenant = await make.tenant({ name: 'acme' });
    seg4 = await make.segment(tenant.id, { name: 'web', cidr: '10.0.0.0/24' });
    seg6 = await make.segment(tenant.id, { name: 'db', cidr: 'fd00:1::/64' });
    plain = await make.segment(tenant.id, { name: 'l2-only' });
    host = await make.host({ name: 'hv1', vtepIp: '192.0.2.11', inventory: { uplinks: [{ name: 'eth0' }] } });
    host2 = await make.host({ name: 'hv2', vtepIp: '2001:db8::12' });
    port = await make.port(seg4.id, { ips: ['10.0.0.10'], hostId: host.id, vmId: 'vm-1' });
    group = await make.securityGroup(tenant.id, { name: 'web', description: 'front' });
    token = (await client.post('/v1/tokens', { name: 'reader', role: 'auditor' })).body;
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  describe('text that is not well-formed Unicode, or holds control characters, in any string field', () => {
    const LONE_HIGH = 'x\ud800y';
    const LONE_LOW = 'x\udc00';
    const hostile: [string, string][] = [
      ['a lone high surrogate', LONE_HIGH],
      ['a lone low surrogate', LONE_LOW],
      ['NUL', 'nul\u0000x'],
      ['a newline', 'two\nlines'],
      ['an ANSI escape', '\u001b[2Jx'],
      ['a C1 control', 'x\u0085y'],
      ['a bidirectional override', 'abc\u202etxt'],
    ];
    const uplink = (extra: Record<string, unknown>) => ({ inventory: { uplinks: [{ name: 'eth1', ...extra }] } });
    /** [where, how to send a given hostile string, the field it lands in] */
    const fields: [string, (t: string) => Promise<ApiResponse>, string][] = [
      ['tenant name', (t) => client.post('/v1/tenants', { name: t }), 'name'],
      ['segment name', (t) => client.post('/v1/segments', { tenantId: tenant.id, name: t }), 'name'],
      ['host name', (t) => client.post('/v1/hosts', { name: t, vtepIp: '192.0.2.50' }), 'name'],
      ['uplink driver', (t) => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.50', ...uplink({ driver: t }) }), 'inventory.uplinks[0].driver'],
      ['uplink switch', (t) => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.50', ...uplink({ switch: t }) }), 'inventory.uplinks[0].switch'],
      ['uplink switch port', (t) => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.50', ...uplink({ switchPort: t }) }), 'inventory.uplinks[0].switchPort'],
      ['uplink team', (t) => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.50', ...uplink({ team: t }) }), 'inventory.uplinks[0].team'],
      ['uplink name', (t) => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.50', ...uplink({ name: t }) }), 'inventory.uplinks[0].name'],
      ['uplink mode', (t) => client.post('/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.50', ...uplink({ mode: t }) }), 'inventory.uplinks[0].mode'],
      ['inventory in a host PATCH', (t) => client.patch(`/v1/hosts/${host.id}`, uplink({ switch: t })), 'inventory.uplinks[0].switch'],
      ['host name in a PATCH', (t) => client.patch(`/v1/hosts/${host.id}`, { name: t }), 'name'],
      ['VTEP', (t) => client.post('/v1/hosts', { name: 'hv9', vtepIp: `192.0.2.50${t}` }), 'vtepIp'],
      ['port vmId', (t) => client.post('/v1/ports', { segmentId: seg4.id, vmId: t }), 'vmId'],
      ['port vmId in a batch', (t) => client.post('/v1/ports/batch', { ports: [{ segmentId: seg4.id }, { segmentId: seg4.id, vmId: t }] }), 'ports[1].vmId'],
      ['port vmId in a PATCH', (t) => client.patch(`/v1/ports/${port.id}`, { vmId: t }), 'vmId'],
      ['port segmentId', (t) => client.post('/v1/ports', { segmentId: `${seg4.id}${t}` }), 'segmentId'],
      ['port MAC', (t) => client.post('/v1/ports', { segmentId: seg4.id, mac: `02:00:00:00:00:09${t}` }), 'mac'],
      ['port IP', (t) => client.post('/v1/ports', { segmentId: seg4.id, ips: [`10.0.0.9${t}`] }), 'ips[0]'],
      ['address pair IP', (t) => client.patch(`/v1/ports/${port.id}`, { allowedAddressPairs: [{ ip: `10.0.0.99${t}` }] }), 'allowedAddressPairs[0].ip'],
      ['security group name', (t) => client.post('/v1/security-groups', { tenantId: tenant.id, name: t }), 'name'],
      ['security group description', (t) => client.post('/v1/security-groups', { tenantId: tenant.id, name: 'db', description: t }), 'description'],
      [
        'rule description',
        (t) => client.post('/v1/security-groups', { tenantId: tenant.id, name: 'db', rules: [{ direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', description: t }] }),
        'rules[0].description',
      ],
      ['rule direction', (t) => client.post('/v1/security-groups', { tenantId: tenant.id, name: 'db', rules: [{ direction: `ingress${t}`, ethertype: 'IPv4', protocol: 'tcp' }] }), 'rules[0].direction'],
      ['rule protocol', (t) => client.post('/v1/security-groups', { tenantId: tenant.id, name: 'db', rules: [{ direction: 'ingress', ethertype: 'IPv4', protocol: `tcp${t}` }] }), 'rules[0].protocol'],
      ['description in a security group PUT', (t) => client.raw('PUT', `/v1/security-groups/${group.id}`, { name: 'web', description: t, rules: [] }), 'description'],
      ['description in a security group PATCH', (t) => client.patch(`/v1/security-groups/${group.id}`, { description: t }), 'description'],
      ['migration vmId', (t) => client.post('/v1/migrations', { vmId: t, sourceHostId: host.id, destinationHostId: host2.id }), 'vmId'],
      ['migration host id', (t) => client.post('/v1/migrations', { vmId: 'vm-1', sourceHostId: `${host.id}${t}`, destinationHostId: host2.id }), 'sourceHostId'],
    ];
    const cases = fields.flatMap(([where, send, field]) => hostile.map(([what, text]) => [`${what} in the ${where}: 400 INVALID_CHARACTER on ${field}`, send, field, text] as const));

    it.each(cases.map((c) => [c[0], c]))('%s', async (_name, [, send, field, text]) => {
      await expectRefused(() => send(text), 400, 'INVALID_CHARACTER', field);
    });

    it('refuses a field name holding a lone surrogate as an unknown field', async () => {
      await expectRefused(() => client.post('/v1/tenants', `{"name":"ok","k\\ud800":1}`), 400, 'UNKNOWN_FIELD', 'k\ud800');
    });

    it('stores well-formed text beyond ASCII as it was sent, and can delete it again', async () => {
      const description = 'Zürich 🚀 東京 — front';
      const g = await make.securityGroup(tenant.id, { name: 'intl', description });
      expect((await client.get(`/v1/security-groups/${g.id}`)).body.description).toBe(description);
      expect((await client.delete(`/v1/security-groups/${g.id}`)).status).toBe(204);
    });

    it('leaves the tenant of a refused object deletable (no record the store scripts cannot decode)', async () => {
      const t = await make.tenant({ name: 'short-lived' });
      await expectRefused(() => client.post('/v1/security-groups', { tenantId: t.id, name: 'g', description: LONE_HIGH }), 400, 'INVALID_CHARACTER', 'description');
      expect((await client.delete(`/v1/tenants/${t.id}`)).status).toBe(204);
    });
  });

  describe('IP addresses have one spelling: IPv6 forms of an IPv4 address are refused', () => {
    type Case = [string, () => Promise<ApiResponse>, number, string, string];
    const cases: Case[] = [
      ['a VTEP ::ffff:192.0.2.11 while 192.0.2.11 is taken', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '::ffff:192.0.2.11' }), 400, 'INVALID_IP', 'vtepIp'],
      ['a VTEP ::ffff:c000:20b (the same, in hex)', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '::ffff:c000:20b' }), 400, 'INVALID_IP', 'vtepIp'],
      ['a VTEP 0:0:0:0:0:ffff:192.0.2.11 (the same, uncompressed)', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '0:0:0:0:0:FFFF:192.0.2.11' }), 400, 'INVALID_IP', 'vtepIp'],
      ['a VTEP ::192.0.2.11 (IPv4-compatible)', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '::192.0.2.11' }), 400, 'INVALID_IP', 'vtepIp'],
      ['a free IPv4-mapped VTEP', () => client.post('/v1/hosts', { name: 'hv9', vtepIp: '::ffff:198.51.100.7' }), 400, 'INVALID_IP', 'vtepIp'],
      ['a VTEP change to ::ffff:192.0.2.11', () => client.patch(`/v1/hosts/${host2.id}`, { vtepIp: '::ffff:192.0.2.11' }), 400, 'INVALID_IP', 'vtepIp'],
      ['an IPv4-mapped port IP on an IPv6 segment', () => client.post('/v1/ports', { segmentId: seg6.id, ips: ['::ffff:10.0.0.5'] }), 400, 'INVALID_IP', 'ips[0]'],
      ['an IPv4-mapped port IP on an IPv4 segment', () => client.post('/v1/ports', { segmentId: seg4.id, ips: ['10.0.0.6', '::ffff:10.0.0.5'] }), 400, 'INVALID_IP', 'ips[1]'],
      ['an IPv4-mapped port IP on a segment without a CIDR', () => client.post('/v1/ports', { segmentId: plain.id, ips: ['::ffff:10.0.0.5'] }), 400, 'INVALID_IP', 'ips[0]'],
      ['an IPv4-mapped duplicate of a stored port IP', () => client.post('/v1/ports', { segmentId: seg4.id, ips: ['::ffff:10.0.0.10'] }), 400, 'INVALID_IP', 'ips[0]'],
      ['an IPv4-mapped port IP in a batch', () => client.post('/v1/ports/batch', { ports: [{ segmentId: plain.id }, { segmentId: plain.id, ips: ['::ffff:10.0.0.5'] }] }), 400, 'INVALID_IP', 'ports[1].ips[0]'],
      ['an IPv4-mapped address pair', () => client.patch(`/v1/ports/${port.id}`, { allowedAddressPairs: [{ ip: '::ffff:10.0.0.7' }] }), 400, 'INVALID_IP', 'allowedAddressPairs[0].ip'],
      ['an IPv4-mapped address pair prefix', () => client.post('/v1/ports', { segmentId: seg4.id, allowedAddressPairs: [{ ip: '::ffff:10.0.0.0/120' }] }), 400, 'INVALID_CIDR', 'allowedAddressPairs[0].ip'],
      ['an IPv4-mapped segment CIDR', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', cidr: '::ffff:10.9.0.0/112' }), 400, 'INVALID_CIDR', 'cidr'],
      ['an IPv4-compatible segment CIDR', () => client.post('/v1/segments', { tenantId: tenant.id, name: 's', cidr: '::10.9.0.0/112' }), 400, 'INVALID_CIDR', 'cidr'],
      [
        'an IPv4-mapped remote CIDR in a rule',
        () => client.post('/v1/security-groups', { tenantId: tenant.id, name: 'db', rules: [{ direction: 'ingress', ethertype: 'IPv6', protocol: 'tcp', remoteCidr: '::ffff:10.0.0.0/104' }] }),
        400,
        'INVALID_CIDR',
        'rules[0].remoteCidr',
      ],
      [
        'an IPv4-mapped remote CIDR in a PATCH',
        () => client.patch(`/v1/security-groups/${group.id}`, { rules: [{ direction: 'ingress', ethertype: 'IPv6', protocol: 'any', remoteCidr: '::ffff:0:0/96' }] }),
        400,
        'INVALID_CIDR',
        'rules[0].remoteCidr',
      ],
    ];

    it.each(cases.map((c) => [c[0], c]))('%s: refused', async (_name, [, send, status, code, field]) => {
      await expectRefused(send, status, code, field);
    });

    it('names the IPv4 form to use', async () => {
      const res = await client.post('/v1/hosts', { name: 'hv9', vtepIp: '::ffff:c000:20b' });
      expect(res.body.message).toContain('write it as the IPv4 address 192.0.2.11');
      const cidr = await client.post('/v1/segments', { tenantId: tenant.id, name: 's', cidr: '::ffff:10.9.0.0/112' });
      expect(cidr.body.message).toContain('write it as the IPv4 prefix 10.9.0.0/16');
    });

    it('still finds a taken VTEP whatever the IPv6 spelling', async () => {
      await expectRefused(() => client.post('/v1/hosts', { name: 'hv-taken', vtepIp: '2001:DB8:0:0::12' }), 409, 'VTEP_IP_TAKEN', 'vtepIp');
    });
  });

  describe('a VTEP must be a unicast address the other hosts can reach', () => {
    it.each([
      ['IPv4 loopback', '127.0.0.1'],
      ['IPv4 loopback elsewhere in 127/8', '127.1.2.3'],
      ['IPv6 loopback', '::1'],
      ['the limited broadcast address', '255.255.255.255'],
      ['IPv4 link-local multicast', '224.0.0.1'],
      ['IPv6 link-local multicast', 'ff02::1'],
      ['IPv4 multicast', '239.255.0.1'],
      ['IPv4 link-local', '169.254.7.7'],
      ['IPv6 link-local', 'fe80::7'],
      ['an address of 0.0.0.0/8', '0.0.0.7'],
      ['a reserved (class E) address', '240.0.0.7'],
      ['the unspecified address', '0.0.0.0'],
    ])('%s (%s): 400 INVALID_IP', async (_what, vtepIp) => {
      await expectRefused(() => client.post('/v1/hosts', { name: 'hv9', vtepIp }), 400, 'INVALID_IP', 'vtepIp');
      await expectRefused(() => client.patch(`/v1/hosts/${host2.id}`, { vtepIp }), 400, 'INVALID_IP', 'vtepIp');
    });
  });

  describe('addresses that are never a VM\'s or a segment\'s', () => {
    const never = ['224.0.0.1', '224.0.0.251', '239.1.1.1', '255.255.255.255', '0.0.0.0', '0.1.2.3', '127.0.0.1', '240.0.0.1', '::', '::1', 'ff02::1', 'ff0e::1'];

    it.each(never)('port IP %s on a segment without a CIDR: 400 RESERVED_IP', async (ip) => {
      await expectRefused(() => client.post('/v1/ports', { segmentId: plain.id, ips: [ip] }), 400, 'RESERVED_IP', 'ips[0]');
    });

    it.each(never)('port IP %s in a batch: 400 RESERVED_IP on its path', async (ip) => {
      await expectRefused(() => client.post('/v1/ports/batch', { ports: [{ segmentId: plain.id, ips: ['10.1.1.1'] }, { segmentId: plain.id, ips: ['10.1.1.2', ip] }] }), 400, 'RESERVED_IP', 'ports[1].ips[1]');
    });

    it.each(never)('address pair %s, on create and in a PATCH: 400 RESERVED_IP', async (ip) => {
      await expectRefused(() => client.post('/v1/ports', { segmentId: plain.id, allowedAddressPairs: [{ ip }] }), 400, 'RESERVED_IP', 'allowedAddressPairs[0].ip');
      await expectRefused(() => client.patch(`/v1/ports/${port.id}`, { allowedAddressPairs: [{ ip: '10.0.0.50' }, { ip }] }), 400, 'RESERVED_IP', 'allowedAddressPairs[1].ip');
    });

    it.each(['224.0.0.0/4', '239.0.0.0/8', '127.0.0.0/8', 'ff00::/8', '240.0.0.0/5'])('address pair prefix %s, which no VM can send from: 400 RESERVED_IP', async (ip) => {
      await expectRefused(() => client.patch(`/v1/ports/${port.id}`, { allowedAddressPairs: [{ ip }] }), 400, 'RESERVED_IP', 'allowedAddressPairs[0].ip');
    });

    it('port IP that is multicast on a segment with a CIDR: 400 RESERVED_IP', async () => {
      await expectRefused(() => client.post('/v1/ports', { segmentId: seg6.id, ips: ['ff02::1:ff00:5'] }), 400, 'RESERVED_IP', 'ips[0]');
    });

    it.each([
      ['a multicast prefix', '224.0.0.0/4'],
      ['a multicast /24', '239.1.2.0/24'],
      ['IPv6 multicast', 'ff00::/8'],
      ['IPv6 link-local multicast', 'ff02::/16'],
      ['loopback', '127.0.0.0/8'],
      ['part of loopback', '127.0.0.0/24'],
      ['IPv6 loopback', '::1/128'],
      ['the IPv4 default route', '0.0.0.0/0'],
      ['the IPv6 default route', '::/0'],
      ['a prefix holding loopback', '64.0.0.0/2'],
      ['"this network"', '0.0.0.0/8'],
      ['class E', '240.0.0.0/4'],
      ['the broadcast address', '255.255.255.255/32'],
    ])('segment CIDR that is %s (%s): 400 INVALID_CIDR', async (_what, cidr) => {
      await expectRefused(() => client.post('/v1/segments', { tenantId: tenant.id, name: 's', cidr }), 400, 'INVALID_CIDR', 'cidr');
    });

    it('still takes unicast addresses on a segment without a CIDR, a catch-all address pair and a multicast peer in a rule', async () => {
      const p = await make.port(plain.id, { ips: ['10.1.1.1', 'fd00:9::1', '169.254.169.254'], allowedAddressPairs: [{ ip: '0.0.0.0/0' }, { ip: '::/0' }] });
      expect(p.ips).toEqual(['10.1.1.1', 'fd00:9::1', '169.254.169.254']);
      const g = await created(
        client.post('/v1/security-groups', { tenantId: tenant.id, name: 'mdns', rules: [{ direction: 'egress', ethertype: 'IPv4', protocol: 'udp', portRangeMin: 5353, remoteCidr: '224.0.0.251/32' }] }),
      );
      expect(g.rules[0].remoteCidr).toBe('224.0.0.251/32');
      expect((await client.delete(`/v1/security-groups/${g.id}`)).status).toBe(204);
      expect((await client.delete(`/v1/ports/${p.id}`)).status).toBe(204);
    });
  });

  describe('query parameters: unknown, repeated or malformed ones are refused on every route', () => {
    const json = { 'content-type': 'application/json' };
    /** [method, path, body]: every route, with a body it would accept; `{x}` stands for the id of fixture x. */
    const routes: [string, string, unknown][] = [
      ['GET', '/healthz', undefined],
      ['GET', '/readyz', undefined],
      ['GET', '/v1/tenants', undefined],
      ['POST', '/v1/tenants', { name: 'q-new' }],
      ['GET', '/v1/tenants/{tenant}', undefined],
      ['DELETE', '/v1/tenants/{tenant}', undefined],
      ['GET', '/v1/segments', undefined],
      ['POST', '/v1/segments', { tenantId: '{tenant}', name: 'q-new' }],
      ['GET', '/v1/segments/{plain}', undefined],
      ['DELETE', '/v1/segments/{plain}', undefined],
      ['GET', '/v1/segments/{seg4}/mappings', undefined],
      ['GET', '/v1/hosts', undefined],
      ['POST', '/v1/hosts', { name: 'q-new', vtepIp: '192.0.2.77' }],
      ['GET', '/v1/hosts/{host}', undefined],
      ['PATCH', '/v1/hosts/{host2}', { name: 'q-new' }],
      ['DELETE', '/v1/hosts/{host2}', undefined],
      ['GET', '/v1/ports', undefined],
      ['POST', '/v1/ports', { segmentId: '{plain}' }],
      ['POST', '/v1/ports/batch', { ports: [{ segmentId: '{plain}' }] }],
      ['GET', '/v1/ports/{port}', undefined],
      ['PATCH', '/v1/ports/{port}', { vmId: 'q-new' }],
      ['DELETE', '/v1/ports/{port}', undefined],
      ['GET', '/v1/security-groups', undefined],
      ['POST', '/v1/security-groups', { tenantId: '{tenant}', name: 'q-new' }],
      ['GET', '/v1/security-groups/{group}', undefined],
      ['PUT', '/v1/security-groups/{group}', { name: 'web', rules: [] }],
      ['PATCH', '/v1/security-groups/{group}', { description: 'q' }],
      ['DELETE', '/v1/security-groups/{group}', undefined],
      ['POST', '/v1/migrations', { vmId: 'vm-1', sourceHostId: '{host}', destinationHostId: '{host2}' }],
      ['GET', '/v1/migrations/{port}', undefined],
      ['POST', '/v1/migrations/{port}/commit', undefined],
      ['POST', '/v1/migrations/{port}/abort', undefined],
      ['GET', '/v1/tokens', undefined],
      ['POST', '/v1/tokens', { name: 'q-new', role: 'auditor' }],
      ['GET', '/v1/tokens/{token}', undefined],
      ['DELETE', '/v1/tokens/{token}', undefined],
      ['GET', '/v1/events', undefined],
    ];
    const fill = (text: string): string =>
      text.replace(/\{(\w+)\}/g, (_m, name: string) => ({ tenant, seg4, plain, host, host2, port, group, token })[name as 'tenant'].id as string);

    it.each(routes.map((r) => [`${r[0]} ${r[1]}`, r] as const))('%s?colour=red: 400 UNKNOWN_PARAMETER on colour, nothing done', async (_name, [method, path, body]) => {
      const sent = body === undefined ? undefined : JSON.parse(fill(JSON.stringify(body)));
      await expectRefused(() => client.raw(method, `${fill(path)}?colour=red`, sent, sent === undefined ? {} : json), 400, 'UNKNOWN_PARAMETER', 'colour');
    });

    type Case = [string, string, string, string];
    const cases: Case[] = [
      ['a filter the ports list does not have', '/v1/ports?vmid=vm-1', 'UNKNOWN_PARAMETER', 'vmid'],
      ['a filter of another list', '/v1/tenants?tenantId={tenant}', 'UNKNOWN_PARAMETER', 'tenantId'],
      ['a host name filter', '/v1/hosts?name=hv1', 'UNKNOWN_PARAMETER', 'name'],
      ['a parameter named __proto__', '/v1/ports?__proto__=1', 'UNKNOWN_PARAMETER', '__proto__'],
      ['a parameter without a name', '/v1/ports?=1', 'UNKNOWN_PARAMETER', ''],
      ['a percent-encoded unknown name', '/v1/ports?vm%69d=vm-1', 'UNKNOWN_PARAMETER', 'vmid'],
      ['vmId given twice', '/v1/ports?vmId=vm-1&vmId=vm-2', 'INVALID_VALUE', 'vmId'],
      ['vmId given twice, the same', '/v1/ports?vmId=vm-1&vmId=vm-1', 'INVALID_VALUE', 'vmId'],
      ['an empty vmId', '/v1/ports?vmId=', 'INVALID_VALUE', 'vmId'],
      ['a vmId with a space', '/v1/ports?vmId=vm%201', 'INVALID_VALUE', 'vmId'],
      ['a vmId of 129 characters', `/v1/ports?vmId=${'v'.repeat(129)}`, 'INVALID_VALUE', 'vmId'],
      ['a vmId with NUL', '/v1/ports?vmId=vm%00', 'INVALID_CHARACTER', 'vmId'],
      ['a vmId with a newline', '/v1/ports?vmId=vm%0A1', 'INVALID_CHARACTER', 'vmId'],
      ['a vmId that is not UTF-8', '/v1/ports?vmId=vm%ff', 'INVALID_CHARACTER', 'vmId'],
      ['a vmId holding an encoded surrogate', '/v1/ports?vmId=%ED%A0%80', 'INVALID_CHARACTER', 'vmId'],
      ['a limit with bad percent-encoding', '/v1/ports?limit=%zz', 'INVALID_CHARACTER', 'limit'],
      ['a hostId with a bidirectional override', '/v1/ports?hostId=%E2%80%AE{host}', 'INVALID_CHARACTER', 'hostId'],
      ['a malformed hostId', '/v1/ports?hostId=hv1', 'INVALID_ID', 'hostId'],
      ['a limit of 1e3', '/v1/ports?limit=1e3', 'INVALID_VALUE', 'limit'],
      ['a limit with a sign', '/v1/ports?limit=+5', 'INVALID_VALUE', 'limit'],
    ];
    it.each(cases.map((c) => [c[0], c] as const))('GET: %s', async (_name, [, path, code, field]) => {
      await expectRefused(() => client.get(fill(path)), 400, code, field);
    });

    it.each([
      ['wait given twice', '?wait=realized&wait=realized', 'INVALID_VALUE', 'wait'],
      ['wait in upper case', '?wait=REALIZED', 'INVALID_VALUE', 'wait'],
      ['a timeout without wait', '?timeout=5000', 'INVALID_VALUE', 'timeout'],
      ['a timeout of 0', '?wait=realized&timeout=0', 'INVALID_VALUE', 'timeout'],
      ['a timeout given twice', '?wait=realized&timeout=10&timeout=20', 'INVALID_VALUE', 'timeout'],
    ])('POST /v1/ports: %s: 400, nothing created', async (_name, query, code, field) => {
      await expectRefused(() => client.post(`/v1/ports${query}`, { segmentId: plain.id }), 400, code, field);
    });

    it.each([
      ['a negative timeout', '?timeout=-1', 'timeout'],
      ['a timeout given twice', '?timeout=0&timeout=0', 'timeout'],
      ['wait, which prepare does not take', '?wait=realized', 'wait'],
    ])('POST /v1/migrations: %s: 400, nothing prepared', async (_name, query, field) => {
      const res = await client.post(`/v1/migrations${query}`, { vmId: 'vm-1', sourceHostId: host.id, destinationHostId: host2.id });
      expect(res.status).toBe(400);
      expect(res.body.field).toBe(field);
    });
  });

  describe('GET /v1/ports filters by VM, and by segment and host together', () => {
    let other: Harness;
    let ids: Record<string, string>;

    beforeAll(async () => {
      // A second replica on the same keys: what it writes must be listed by the first at once.
      other = await startController({ prefix });
      const make = (segmentId: string, hostId: string | null, vmId: string | null) => api(other.url).post('/v1/ports', { segmentId, hostId, vmId });
      ids = {};
      for (const [name, segmentId, hostId, vmId] of [
        ['a', seg4.id, host.id, 'vm-f1'],
        ['b', seg4.id, host2.id, 'vm-f1'],
        ['c', plain.id, host.id, 'vm-f1'],
        ['d', plain.id, host.id, 'vm-f2'],
        ['e', seg4.id, null, 'vm-f1'],
        ['f', plain.id, host2.id, null],
      ] as const) {
        const res = await make(segmentId, hostId, vmId);
        expect(res.status).toBe(201);
        ids[name] = res.body.id;
      }
    });

    afterAll(async () => {
      await other?.close();
    });

    const list = async (query: string): Promise<string[]> => {
      const res = await client.get(`/v1/ports?${query}&limit=1000`);
      expect(res.status).toBe(200);
      return res.body.items.map((p: any) => p.id);
    };
    const named = (...names: string[]) => names.map((n) => ids[n]).sort();

    it('lists the ports of a VM (written by another replica a moment ago), in creation order', async () => {
      expect(await list('vmId=vm-f1')).toEqual(named('a', 'b', 'c', 'e'));
      expect(await list('vmId=vm-f2')).toEqual(named('d'));
      expect(await list('vmId=vm-none')).toEqual([]);
    });

    it('combines filters: every one given must hold', async () => {
      expect(await list(`segmentId=${seg4.id}&hostId=${host.id}`)).toEqual(expect.arrayContaining(named('a')));
      expect((await list(`segmentId=${seg4.id}&hostId=${host.id}`)).filter((id) => Object.values(ids).includes(id))).toEqual(named('a'));
      expect(await list(`segmentId=${plain.id}&hostId=${host.id}`)).toEqual(named('c', 'd'));
      expect(await list(`vmId=vm-f1&hostId=${host.id}`)).toEqual(named('a', 'c'));
      expect(await list(`vmId=vm-f1&segmentId=${seg4.id}`)).toEqual(named('a', 'b', 'e'));
      expect(await list(`vmId=vm-f1&segmentId=${plain.id}&hostId=${host.id}`)).toEqual(named('c'));
      expect(await list(`vmId=vm-f2&segmentId=${seg4.id}`)).toEqual([]);
    });

    it('pages a filtered list with nextCursor, each port once', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const res: ApiResponse = await client.get(`/v1/ports?vmId=vm-f1&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        seen.push(...res.body.items.map((p: any) => p.id));
        cursor = res.body.nextCursor;
        if (!cursor) {
          break;
        }
      }
      expect(seen).toEqual(named('a', 'b', 'c', 'e'));
    });

    it('follows a relabel at once', async () => {
      expect((await api(other.url).patch(`/v1/ports/${ids.f}`, { vmId: 'vm-f2' })).status).toBe(200);
      expect(await list('vmId=vm-f2')).toEqual(named('d', 'f'));
      expect((await api(other.url).patch(`/v1/ports/${ids.f}`, { vmId: null })).status).toBe(200);
      expect(await list('vmId=vm-f2')).toEqual(named('d'));
    });
  });

  describe('a path parameter of any length reaches its route', () => {
    // Beyond the router's limit on a parameter's length a path matched no route: 404 "no such route", before any token was checked.
    const cases = apiRoutes()
      .filter((route) => route.path.includes('/:id'))
      .flatMap((route) => [101, 5000].map((length) => [`${routeKey(route)} with an id of ${length} characters`, route, length] as const));

    it.each(cases)('%s: 400 INVALID_ID on id', async (_name, route, length) => {
      await expectRefused(() => client.raw(route.method, route.path.replace(':id', 'x'.repeat(length))), 400, 'INVALID_ID', 'id');
    });

    it('asks for a token first: 401 without one', async () => {
      // Not expectRefused: a 401 is recorded in the audit trail.
      const res = await api(h.url, null).get(`/v1/ports/${'x'.repeat(5000)}`);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    });
  });

  describe('a body is read on every route whose method carries one, whether or not the route takes a body', () => {
    // The tests' client holds each answer to the OpenAPI document: these refusals must be documented on every such operation.
    const unknownId = '01a24988-0000-7000-8000-000000000000';
    const cases = apiRoutes()
      .filter((route) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(route.method))
      .flatMap((route) => [
        [`${routeKey(route)}, a body that is not JSON: 400 INVALID_JSON`, route, '{', 'application/json', 400, 'INVALID_JSON'] as const,
        [`${routeKey(route)}, a text/plain body: 415 UNSUPPORTED_MEDIA_TYPE`, route, 'hello', 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE'] as const,
      ]);

    it.each(cases)('%s', async (_name, route, body, contentType, status, code) => {
      await expectRefused(() => client.raw(route.method, route.path.replace(':id', unknownId), body, { 'content-type': contentType }), status, code, undefined);
    });
  });

  describe('a header the controller reads, given twice, is refused rather than resolved', () => {
    // Node keeps the first of several Authorization or Content-Type headers; a proxy in front may act on another.
    const body = JSON.stringify({ name: 'twice' });
    const request = (...headers: string[]) =>
      Buffer.from(['POST /v1/tenants HTTP/1.1', 'Host: test', ...headers, 'Connection: close', `Content-Length: ${body.length}`, '', body].join('\r\n'));
    const json = 'Content-Type: application/json';

    it.each([
      ['the tests\' token, then another', [AUTHORIZATION, 'Authorization: Bearer not-the-admin-token']],
      ['another token, then the tests\' one', ['Authorization: Bearer not-the-admin-token', AUTHORIZATION]],
      ['the same token twice', [AUTHORIZATION, AUTHORIZATION]],
    ])('Authorization: %s: 401 UNAUTHENTICATED, nothing created', async (_name, authorization) => {
      const tenants = async () => (await client.get('/v1/tenants?limit=1000')).body.items.map((t: any) => t.name);
      const before = await tenants();
      const res = await rawRequest(h.url, request(...authorization, json));
      expect({ status: res.status, code: res.body?.code }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
      expect(await tenants()).toEqual(before);
    });

    it.each([
      ['application/json, then text/plain', [json, 'Content-Type: text/plain']],
      ['application/json twice', [json, json]],
    ])('Content-Type: %s: 415 UNSUPPORTED_MEDIA_TYPE', async (_name, contentType) => {
      await expectRefused(() => rawRequest(h.url, request(AUTHORIZATION, ...contentType)), 415, 'UNSUPPORTED_MEDIA_TYPE', undefined);
    });
  });

  describe('bodies that are not UTF-8', () => {
    const body = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));
    const sg = (...description: (string | number[])[]) => body(`{"tenantId":"${tenant.id}","name":"db","description":"`, ...description, '"}');
    const invalid: [string, () => Buffer][] = [
      ['a stray 0xff byte', () => sg('ab', [0xff], 'cd')],
      ['a lone continuation byte', () => sg('ab', [0x80])],
      ['an overlong encoding of "/"', () => sg([0xc0, 0xaf])],
      ['an overlong NUL', () => sg([0xc0, 0x80])],
      ['a surrogate encoded in UTF-8 (CESU)', () => sg([0xed, 0xa0, 0x80])],
      ['a sequence cut short', () => sg([0xe2, 0x82], 'x')],
      ['a code point above U+10FFFF', () => sg([0xf4, 0x90, 0x80, 0x80])],
      ['a 0xf8 lead byte', () => sg([0xf8, 0x88, 0x80, 0x80, 0x80])],
      ['Latin-1 text', () => sg([0x5a, 0xfc, 0x72, 0x69, 0x63, 0x68])],
      ['invalid bytes in a field name', () => body(`{"tenantId":"${tenant.id}","name":"db","`, [0xff], '":1}')],
      ['invalid bytes outside any string', () => body(`{"tenantId":"${tenant.id}",`, [0xff], '"name":"db"}')],
    ];
    const cases = invalid.flatMap(([what, make]) => [
      [`${what}, chunked: 400 INVALID_JSON`, make, true] as const,
      [`${what}, with a Content-Length: 400 INVALID_JSON`, make, false] as const,
    ]);

    it.each(cases.map((c) => [c[0], c]))('%s', async (_name, [, make, chunked]) => {
      await expectRefused(() => rawRequest(h.url, requestBytes('POST', '/v1/security-groups', make(), { chunked })), 400, 'INVALID_JSON', undefined);
    });

    it('says the body is not UTF-8, not that its length is wrong', async () => {
      const res = await rawRequest(h.url, requestBytes('POST', '/v1/security-groups', sg([0xff])));
      expect(res.body.message).toMatch(/UTF-8/);
    });

    it.each([
      ['chunked', true],
      ['with a Content-Length', false],
    ])('accepts valid multi-byte UTF-8 %s and stores it as sent', async (_name, chunked) => {
      const description = 'Zürich 🚀 東京';
      const res = await rawRequest(h.url, requestBytes('POST', '/v1/security-groups', sg(description), { chunked, chunkSize: 3 }));
      expect(res.status).toBe(201);
      expect(res.body.description).toBe(description);
      expect((await client.delete(`/v1/security-groups/${res.body.id}`)).status).toBe(204);
    });

    it('keeps the body limit for chunked bodies: 413 BODY_TOO_LARGE', async () => {
      await expectRefused(() => rawRequest(h.url, requestBytes('POST', '/v1/security-groups', sg('x'.repeat(5000)), { chunked: true, chunkSize: 1000 })), 413, 'BODY_TOO_LARGE', undefined);
    });

    it('refuses a charset other than UTF-8: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
      await expectRefused(
        () => rawRequest(h.url, requestBytes('POST', '/v1/security-groups', sg([0xfc]), { contentType: 'application/json; charset=iso-8859-1' })),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        undefined,
      );
    });

    it.each([['gzip'], ['deflate'], ['br']])('refuses a body with Content-Encoding %s: 415 UNSUPPORTED_MEDIA_TYPE', async (encoding) => {
      const request = requestBytes('POST', '/v1/tenants', body('{"name":"zipped"}')).toString('latin1').replace('Connection: close', `Connection: close\r\nContent-Encoding: ${encoding}`);
      await expectRefused(() => rawRequest(h.url, Buffer.from(request, 'latin1')), 415, 'UNSUPPORTED_MEDIA_TYPE', undefined);
    });

    it('accepts an explicit charset=utf-8', async () => {
      const res = await rawRequest(h.url, requestBytes('POST', '/v1/tenants', body('{"name":"charset-ok"}'), { contentType: 'application/json; charset=UTF-8' }));
      expect(res.status).toBe(201);
    });

    it.each([
      ['a tenant name', () => client.post('/v1/tenants', '{"name":"first","name":"second"}'), 'name'],
      ['a name spelled with an escape the second time', () => client.post('/v1/tenants', '{"name":"first","n\\u0061me":"second"}'), 'name'],
      ['a rule\'s protocol', () => client.post('/v1/security-groups', `{"tenantId":"${tenant.id}","name":"dup","rules":[{"direction":"ingress","ethertype":"IPv4","protocol":"tcp","protocol":"any"}]}`), 'rules[0].protocol'],
      ['a port\'s vmId in a PATCH', () => client.patch(`/v1/ports/${port.id}`, '{"vmId":"vm-2","vmId":null}'), 'vmId'],
      ['a segment id in a batch', () => client.post('/v1/ports/batch', `{"ports":[{"segmentId":"${plain.id}"},{"segmentId":"${plain.id}","segmentId":"${seg4.id}"}]}`), 'ports[1].segmentId'],
    ])('refuses %s given twice in one object (JSON.parse keeps the last, silently): 400 INVALID_JSON naming it', async (_name, send, field) => {
      await expectRefused(send, 400, 'INVALID_JSON', field);
    });

    it('still refuses prototype poisoning: 400 INVALID_JSON', async () => {
      await expectRefused(() => client.post('/v1/tenants', '{"name":"p","__proto__":{"admin":true}}'), 400, 'INVALID_JSON', undefined);
    });
  });
});
