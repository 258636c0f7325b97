import { compile, groupCatalog } from '../../src/controller/desired-state/firewall';
import { parseStreamEntry, type ChangeRecord } from '../../src/controller/store/change-log';
import { keysFor } from '../../src/controller/store/keys';
import { createSecurityGroupSchema, replaceSecurityGroupSchema, updateSecurityGroupSchema } from '../../src/controller/security-groups/security-group.schemas';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import { RedisStore } from '../../src/controller/store/redis-store';
import { api, dropPrefix, startController, uniquePrefix, type ApiResponse, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';

/**
 * Security groups against a real overlayd and Redis: CRUD, the default group every tenant gets
 * in the step that creates it, refusals (each with its status, code and field, leaving the store
 * exactly as it was), deletion refused while in use, and ports with groups, address pairs and
 * port security, including the member index that makes the in-use check O(1).
 */

type Send = () => Promise<ApiResponse>;
/** [what is sent, how to send it, status, code, field (undefined = none)] */
type Case = [string, Send, number, string, string | undefined];

const UNKNOWN_ID = '01900000-0000-7000-8000-000000000000';

const ssh = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22 };
const web = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80 };
const egressAll = [
  { direction: 'egress', ethertype: 'IPv4', protocol: 'any', remoteCidr: '0.0.0.0/0' },
  { direction: 'egress', ethertype: 'IPv6', protocol: 'any', remoteCidr: '::/0' },
];

describe('security groups', () => {
  const prefix = uniquePrefix('security-groups');
  const keys = keysFor(prefix);
  let h: Harness;
  let client: ReturnType<typeof api>;
  let make: ReturnType<typeof factories>;
  const put = (path: string, body: unknown) => client.raw('PUT', path, body);

  let acme: any;
  let other: any;
  let seg: any;
  let otherSeg: any;
  let bastion: any;
  let otherGroup: any;
  let port: any;

  async function lastRecord(): Promise<ChangeRecord> {
    const [entry] = (await h.redis.xrevrange(keys.changeLog(), '+', '-', 'COUNT', 1)) as [string, string[]][];
    return parseStreamEntry(entry);
  }

  const members = (groupId: string) => h.redis.zrange(keys.securityGroupPorts(groupId), 0, -1);

  beforeAll(async () => {
    h = await startController({ prefix });
    client = api(h.url);
    make = factories(client);
    acme = await make.tenant({ name: 'acme' });
    other = await make.tenant({ name: 'other' });
    seg = await make.segment(acme.id, { name: 'web', cidr: '10.0.0.0/24' });
    otherSeg = await make.segment(other.id, { name: 'web', cidr: '10.0.0.0/24' });
    bastion = await make.securityGroup(acme.id, { name: 'bastion', rules: [ssh, ...egressAll] });
    otherGroup = await make.securityGroup(other.id, { name: 'elsewhere', rules: [] });
    port = await make.port(seg.id, { ips: ['10.0.0.10'], securityGroupIds: [bastion.id] });
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  describe('the default group', () => {
    it('comes with every tenant, in the same revision and change record', async () => {
      const before = Number(await h.redis.get(keys.revision()));
      const tenant = await make.tenant({ name: 'fresh' });
      expect(Number(await h.redis.get(keys.revision()))).toBe(before + 1);
      const record = await lastRecord();
      expect(record.ops.map((o) => [o.k, o.id])).toEqual([
        ['tenant', tenant.id],
        ['securityGroup', tenant.defaultSecurityGroupId],
      ]);

      const group = (await client.get(`/v1/security-groups/${tenant.defaultSecurityGroupId}`)).body;
      expect(group).toMatchObject({ id: tenant.defaultSecurityGroupId, tenantId: tenant.id, name: 'default', isDefault: true });
      const summary = group.rules.map((r: any) => [r.direction, r.ethertype, r.protocol, r.remoteGroupId ?? r.remoteCidr]);
      expect(summary).toEqual([
        ['ingress', 'IPv4', 'any', group.id],
        ['ingress', 'IPv6', 'any', group.id],
        ['egress', 'IPv4', 'any', '0.0.0.0/0'],
        ['egress', 'IPv6', 'any', '::/0'],
      ]);
      expect(new Set(group.rules.map((r: any) => r.id)).size).toBe(4);
    });

    it('goes with its tenant, in the same revision, leaving no key behind', async () => {
      const tenant = await make.tenant({ name: 'short-lived' });
      const before = Object.keys(await h.dump());
      expect((await client.delete(`/v1/tenants/${tenant.id}`)).status).toBe(204);
      const record = await lastRecord();
      expect(record.ops.map((o) => [o.k, o.id, o.v])).toEqual([
        ['securityGroup', tenant.defaultSecurityGroupId, null],
        ['tenant', tenant.id, null],
      ]);
      expect((await client.get(`/v1/security-groups/${tenant.defaultSecurityGroupId}`)).status).toBe(404);
      const after = Object.keys(await h.dump());
      expect(after.filter((k) => k.includes(tenant.id) || k.includes(tenant.defaultSecurityGroupId))).toEqual([]);
      expect(before.filter((k) => !after.includes(k)).sort()).toEqual([keys.tenantSecurityGroupNames(tenant.id), keys.tenantSecurityGroups(tenant.id)].sort());
      // Its name and its default group's name are free again.
      const again = await make.tenant({ name: 'short-lived' });
      expect((await client.delete(`/v1/tenants/${again.id}`)).status).toBe(204);
    });

    it('is what a port listing no group belongs to', async () => {
      const p = await make.port(seg.id, { ips: ['10.0.0.11'] });
      expect(p).toMatchObject({ securityGroupIds: [], portSecurity: true, allowedAddressPairs: [] });
      expect(await members(acme.defaultSecurityGroupId)).toContain(p.id);
      expect((await client.delete(`/v1/ports/${p.id}`)).status).toBe(204);
      expect(await members(acme.defaultSecurityGroupId)).not.toContain(p.id);
    });

    it('keeps its rules editable, but not its name', async () => {
      const id = acme.defaultSecurityGroupId;
      const current = (await client.get(`/v1/security-groups/${id}`)).body;
      const res = await client.patch(`/v1/security-groups/${id}`, { rules: [...current.rules, web] });
      expect(res.status).toBe(200);
      expect(res.body.rules.slice(0, 4)).toEqual(current.rules);
      const back = await client.patch(`/v1/security-groups/${id}`, { rules: current.rules, name: 'default' });
      expect(back.body.rules).toEqual(current.rules);
    });
  });

  describe('CRUD', () => {
    it('creates, reads, lists, replaces, patches and deletes a group, keeping rule ids stable', async () => {
      const g = await make.securityGroup(acme.id, { name: 'web', description: 'the web tier', rules: [web, { ...ssh, remoteGroupId: bastion.id }, ...egressAll] });
      expect(g).toMatchObject({ tenantId: acme.id, name: 'web', description: 'the web tier', isDefault: false });
      expect(g.rules[0]).toEqual({ id: expect.any(String), direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80, portRangeMax: 80, icmpType: null, icmpCode: null, remoteCidr: null, remoteGroupId: null, description: null });
      expect((await client.get(`/v1/security-groups/${g.id}`)).body).toEqual(g);

      const listed = (await client.get(`/v1/security-groups?tenantId=${acme.id}&limit=1000`)).body.items.map((x: any) => x.name);
      expect(listed).toEqual(expect.arrayContaining(['default', 'bastion', 'web']));
      expect(listed).not.toContain('elsewhere');
      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const res: ApiResponse = await client.get(`/v1/security-groups?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
        paged.push(...res.body.items.map((x: any) => x.id as string));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(paged).toEqual((await client.get('/v1/security-groups?limit=1000')).body.items.map((x: any) => x.id));
      expect(paged).toEqual(expect.arrayContaining([g.id, otherGroup.id, acme.defaultSecurityGroupId]));

      // PUT: the web rule comes back unchanged (same id), the ssh one is edited in place by id, one is new.
      const replaced = await put(`/v1/security-groups/${g.id}`, {
        name: 'web-tier',
        rules: [{ ...g.rules[1], portRangeMin: 2222, portRangeMax: 2222 }, web, { direction: 'ingress', ethertype: 'IPv6', protocol: 'icmpv6', icmpType: 128 }],
      });
      expect(replaced.status).toBe(200);
      expect(replaced.body.name).toBe('web-tier');
      expect(replaced.body.description).toBeNull();
      expect(replaced.body.rules.map((r: any) => r.id).slice(0, 2)).toEqual([g.rules[1].id, g.rules[0].id]);
      expect(g.rules.map((r: any) => r.id)).not.toContain(replaced.body.rules[2].id);

      const patched = await client.patch(`/v1/security-groups/${g.id}`, { description: 'renamed back', name: 'web' });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ name: 'web', description: 'renamed back', rules: replaced.body.rules });
      expect((await client.get(`/v1/security-groups/${g.id}`)).body).toEqual(patched.body);

      expect((await client.delete(`/v1/security-groups/${g.id}`)).status).toBe(204);
      expect((await client.get(`/v1/security-groups/${g.id}`)).status).toBe(404);
      // Its name is free again, and the bastion no longer counts it as a referrer.
      expect(await h.redis.zcard(keys.securityGroupReferrers(bastion.id))).toBe(0);
      const again = await make.securityGroup(acme.id, { name: 'web', rules: [] });
      expect((await client.delete(`/v1/security-groups/${again.id}`)).status).toBe(204);
    });

    it('gives a group created without rules the two egress rules, and one created with [] none', async () => {
      const open = await make.securityGroup(acme.id, { name: 'out-only' });
      expect(open.rules.map((r: any) => [r.direction, r.ethertype, r.protocol, r.remoteCidr])).toEqual([
        ['egress', 'IPv4', 'any', '0.0.0.0/0'],
        ['egress', 'IPv6', 'any', '::/0'],
      ]);
      const closed = await make.securityGroup(acme.id, { name: 'closed', rules: [] });
      expect(closed.rules).toEqual([]);
      for (const g of [open, closed]) {
        expect((await client.delete(`/v1/security-groups/${g.id}`)).status).toBe(204);
      }
    });

    it('stores protocols and ports in one spelling', async () => {
      const g = await created(
        client.post('/v1/security-groups', {
          tenantId: acme.id,
          name: 'spelling',
          rules: [
            { direction: 'ingress', ethertype: 'IPv4', protocol: 6, portRangeMin: 1, portRangeMax: 65535 },
            { direction: 'ingress', ethertype: 'IPv6', protocol: 58 },
            { direction: 'egress', ethertype: 'IPv4', protocol: 132, portRangeMin: 3868, remoteCidr: '10.0.0.0/8' },
          ],
        }),
      );
      expect(g.rules.map((r: any) => [r.protocol, r.portRangeMin, r.portRangeMax])).toEqual([
        ['tcp', null, null],
        ['icmpv6', null, null],
        [132, 3868, 3868],
      ]);
      expect((await client.delete(`/v1/security-groups/${g.id}`)).status).toBe(204);
    });

    it('lets a group name itself as remote group, and be deleted then', async () => {
      const g = await make.securityGroup(acme.id, { name: 'self', rules: [] });
      const res = await client.patch(`/v1/security-groups/${g.id}`, { rules: [{ direction: 'ingress', ethertype: 'IPv4', protocol: 'any', remoteGroupId: g.id }] });
      expect(res.status).toBe(200);
      expect(await h.redis.zcard(keys.securityGroupReferrers(g.id))).toBe(0);
      expect((await client.delete(`/v1/security-groups/${g.id}`)).status).toBe(204);
    });
  });

  describe('refusals change nothing', () => {
    async function expectRefused(send: Send, status: number, code: string, field?: string): Promise<void> {
      const before = await h.dump();
      const res = await send();
      expect({ status: res.status, code: res.body?.code, field: res.body?.field }).toEqual({ status, code, field });
      expect(typeof res.body.message).toBe('string');
      expect(await h.dump()).toStrictEqual(before);
    }

    const runCases = (cases: () => Case[]) => {
      it.each(cases().map((c, i) => [c[0], i] as const))('%s', async (_name, i) => {
        const [, send, status, code, field] = cases()[i];
        await expectRefused(send, status, code, field);
      });
    };

    const create = (rules: unknown[], extra: Record<string, unknown> = {}) => client.post('/v1/security-groups', { tenantId: acme.id, name: 'new', rules, ...extra });
    const rule = (fields: Record<string, unknown>) => ({ direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', ...fields });

    describe('group bodies', () => {
      runCases(() => [
        ['no tenantId: 400 MISSING_FIELD', () => client.post('/v1/security-groups', { name: 'new', rules: [] }), 400, 'MISSING_FIELD', 'tenantId'],
        ['an unknown tenant: 404 TENANT_NOT_FOUND', () => create([], { tenantId: UNKNOWN_ID }), 404, 'TENANT_NOT_FOUND', 'tenantId'],
        ['a malformed tenantId: 400 INVALID_ID', () => create([], { tenantId: 'acme' }), 400, 'INVALID_ID', 'tenantId'],
        ['a name taken in the tenant: 409 SECURITY_GROUP_NAME_TAKEN', () => create([], { name: 'bastion' }), 409, 'SECURITY_GROUP_NAME_TAKEN', 'name'],
        ['the name default: 409 SECURITY_GROUP_NAME_TAKEN', () => create([], { name: 'default' }), 409, 'SECURITY_GROUP_NAME_TAKEN', 'name'],
        ['a bad name: 400 INVALID_NAME', () => create([], { name: '-web' }), 400, 'INVALID_NAME', 'name'],
        ['a description of 256 characters: 400 INVALID_VALUE', () => create([], { description: 'x'.repeat(256) }), 400, 'INVALID_VALUE', 'description'],
        ['an unknown field: 400 UNKNOWN_FIELD', () => create([], { stateful: true }), 400, 'UNKNOWN_FIELD', 'stateful'],
        ['rules not an array: 400 INVALID_TYPE', () => create(ssh as unknown as unknown[]), 400, 'INVALID_TYPE', 'rules'],
        ['201 rules: 400 INVALID_VALUE', () => create(Array.from({ length: 201 }, (_, i) => rule({ portRangeMin: i + 1 }))), 400, 'INVALID_VALUE', 'rules'],
      ]);
    });

    describe('rules', () => {
      runCases(() => [
        ['a direction sideways: 400 INVALID_VALUE', () => create([rule({ direction: 'both' })]), 400, 'INVALID_VALUE', 'rules[0].direction'],
        ['no ethertype: 400 MISSING_FIELD', () => create([{ direction: 'ingress', protocol: 'tcp' }]), 400, 'MISSING_FIELD', 'rules[0].ethertype'],
        ['ethertype ipv4 in lower case: 400 INVALID_VALUE', () => create([rule({ ethertype: 'ipv4' })]), 400, 'INVALID_VALUE', 'rules[0].ethertype'],
        ['no protocol: 400 MISSING_FIELD', () => create([{ direction: 'ingress', ethertype: 'IPv4' }]), 400, 'MISSING_FIELD', 'rules[0].protocol'],
        ['protocol gre by name: 400 INVALID_VALUE', () => create([rule({ protocol: 'gre' })]), 400, 'INVALID_VALUE', 'rules[0].protocol'],
        ['protocol 256: 400 INVALID_VALUE', () => create([rule({ protocol: 256 })]), 400, 'INVALID_VALUE', 'rules[0].protocol'],
        ['protocol 6.5: 400 INVALID_TYPE', () => create([rule({ protocol: 6.5 })]), 400, 'INVALID_TYPE', 'rules[0].protocol'],
        ['protocol true: 400 INVALID_TYPE', () => create([rule({ protocol: true })]), 400, 'INVALID_TYPE', 'rules[0].protocol'],
        ['port 0: 400 INVALID_VALUE', () => create([rule({ portRangeMin: 0 })]), 400, 'INVALID_VALUE', 'rules[0].portRangeMin'],
        ['port 65536: 400 INVALID_VALUE', () => create([rule({ portRangeMin: 1, portRangeMax: 65536 })]), 400, 'INVALID_VALUE', 'rules[0].portRangeMax'],
        ['a port as a string: 400 INVALID_TYPE', () => create([rule({ portRangeMin: '22' })]), 400, 'INVALID_TYPE', 'rules[0].portRangeMin'],
        ['a range upside down: 400 INVALID_PORT_RANGE', () => create([ssh, rule({ portRangeMin: 90, portRangeMax: 80 })]), 400, 'INVALID_PORT_RANGE', 'rules[1].portRangeMax'],
        ['a max without a min: 400 INVALID_PORT_RANGE', () => create([rule({ portRangeMax: 80 })]), 400, 'INVALID_PORT_RANGE', 'rules[0].portRangeMin'],
        ['ports on icmp: 400 PORT_RANGE_NOT_ALLOWED', () => create([rule({ protocol: 'icmp', portRangeMin: 8 })]), 400, 'PORT_RANGE_NOT_ALLOWED', 'rules[0].portRangeMin'],
        ['ports on any: 400 PORT_RANGE_NOT_ALLOWED', () => create([rule({ protocol: 'any', portRangeMin: 1, portRangeMax: 10 })]), 400, 'PORT_RANGE_NOT_ALLOWED', 'rules[0].portRangeMin'],
        ['ports on protocol 47: 400 PORT_RANGE_NOT_ALLOWED', () => create([rule({ protocol: 47, portRangeMax: 10 })]), 400, 'PORT_RANGE_NOT_ALLOWED', 'rules[0].portRangeMax'],
        ['icmp over IPv6: 400 PROTOCOL_FAMILY_MISMATCH', () => create([rule({ ethertype: 'IPv6', protocol: 'icmp' })]), 400, 'PROTOCOL_FAMILY_MISMATCH', 'rules[0].protocol'],
        ['icmpv6 over IPv4: 400 PROTOCOL_FAMILY_MISMATCH', () => create([rule({ protocol: 'icmpv6' })]), 400, 'PROTOCOL_FAMILY_MISMATCH', 'rules[0].protocol'],
        ['protocol 1 over IPv6: 400 PROTOCOL_FAMILY_MISMATCH', () => create([rule({ ethertype: 'IPv6', protocol: 1 })]), 400, 'PROTOCOL_FAMILY_MISMATCH', 'rules[0].protocol'],
        ['an icmp type on tcp: 400 ICMP_NOT_ALLOWED', () => create([rule({ icmpType: 8 })]), 400, 'ICMP_NOT_ALLOWED', 'rules[0].icmpType'],
        ['an icmp code without a type: 400 ICMP_NOT_ALLOWED', () => create([rule({ protocol: 'icmp', icmpCode: 0 })]), 400, 'ICMP_NOT_ALLOWED', 'rules[0].icmpCode'],
        ['icmp type 256: 400 INVALID_VALUE', () => create([rule({ protocol: 'icmp', icmpType: 256 })]), 400, 'INVALID_VALUE', 'rules[0].icmpType'],
        ['an IPv6 prefix on an IPv4 rule: 400 CIDR_FAMILY_MISMATCH', () => create([rule({ remoteCidr: 'fd00::/8' })]), 400, 'CIDR_FAMILY_MISMATCH', 'rules[0].remoteCidr'],
        ['an IPv4 prefix on an IPv6 rule: 400 CIDR_FAMILY_MISMATCH', () => create([rule({ ethertype: 'IPv6', remoteCidr: '0.0.0.0/0' })]), 400, 'CIDR_FAMILY_MISMATCH', 'rules[0].remoteCidr'],
        ['a prefix with host bits: 400 INVALID_CIDR', () => create([rule({ remoteCidr: '10.0.0.1/8' })]), 400, 'INVALID_CIDR', 'rules[0].remoteCidr'],
        ['not a prefix: 400 INVALID_CIDR', () => create([rule({ remoteCidr: '10.0.0.1' })]), 400, 'INVALID_CIDR', 'rules[0].remoteCidr'],
        ['both remotes: 400 CONFLICTING_REMOTES', () => create([rule({ remoteCidr: '10.0.0.0/8', remoteGroupId: bastion.id })]), 400, 'CONFLICTING_REMOTES', 'rules[0].remoteGroupId'],
        ['a malformed remote group: 400 INVALID_ID', () => create([rule({ remoteGroupId: 'bastion' })]), 400, 'INVALID_ID', 'rules[0].remoteGroupId'],
        ['an unknown remote group: 404 SECURITY_GROUP_NOT_FOUND', () => create([ssh, rule({ remoteGroupId: UNKNOWN_ID })]), 404, 'SECURITY_GROUP_NOT_FOUND', 'rules[1].remoteGroupId'],
        ["another tenant's remote group: 400 SECURITY_GROUP_TENANT_MISMATCH", () => create([ssh, web, rule({ remoteGroupId: otherGroup.id })]), 400, 'SECURITY_GROUP_TENANT_MISMATCH', 'rules[2].remoteGroupId'],
        ['the same rule twice: 409 DUPLICATE_RULE', () => create([ssh, web, { ...ssh, portRangeMax: undefined }]), 409, 'DUPLICATE_RULE', 'rules[2]'],
        ['tcp and 6, no remote and 0.0.0.0/0: 409 DUPLICATE_RULE', () => create([web, { ...web, protocol: 6, remoteCidr: '0.0.0.0/0' }]), 409, 'DUPLICATE_RULE', 'rules[1]'],
        ['a rule id on a new group: 400 INVALID_VALUE', () => create([{ ...ssh, id: UNKNOWN_ID }]), 400, 'INVALID_VALUE', 'rules[0].id'],
        ['an unknown field in a rule: 400 UNKNOWN_FIELD', () => create([rule({ port: 22 })]), 400, 'UNKNOWN_FIELD', 'rules[0].port'],
        ['a rule that is not an object: 400 INVALID_TYPE', () => create(['ssh']), 400, 'INVALID_TYPE', 'rules[0]'],
      ]);
    });

    describe('updates, reads and deletes', () => {
      runCases(() => [
        ['PUT without a name: 400 MISSING_FIELD', () => put(`/v1/security-groups/${bastion.id}`, { rules: [] }), 400, 'MISSING_FIELD', 'name'],
        ['PUT without rules: 400 MISSING_FIELD', () => put(`/v1/security-groups/${bastion.id}`, { name: 'bastion' }), 400, 'MISSING_FIELD', 'rules'],
        ['PUT of an unknown group: 404 SECURITY_GROUP_NOT_FOUND', () => put(`/v1/security-groups/${UNKNOWN_ID}`, { name: 'x', rules: [] }), 404, 'SECURITY_GROUP_NOT_FOUND', 'id'],
        ['PUT with a malformed id: 400 INVALID_ID', () => put('/v1/security-groups/bastion', { name: 'x', rules: [] }), 400, 'INVALID_ID', 'id'],
        ['PUT with a rule id of another group: 400 INVALID_VALUE', () => put(`/v1/security-groups/${bastion.id}`, { name: 'bastion', rules: [{ ...web, id: otherGroup.id }] }), 400, 'INVALID_VALUE', 'rules[0].id'],
        ['PUT with a rule that names itself and another tenant: 400 SECURITY_GROUP_TENANT_MISMATCH', () => put(`/v1/security-groups/${bastion.id}`, { name: 'bastion', rules: [rule({ remoteGroupId: bastion.id }), rule({ protocol: 'udp', remoteGroupId: otherGroup.id })] }), 400, 'SECURITY_GROUP_TENANT_MISMATCH', 'rules[1].remoteGroupId'],
        ['PATCH to a name taken: 409 SECURITY_GROUP_NAME_TAKEN', () => client.patch(`/v1/security-groups/${bastion.id}`, { name: 'default' }), 409, 'SECURITY_GROUP_NAME_TAKEN', 'name'],
        ['PATCH renaming the default group: 409 SECURITY_GROUP_IS_DEFAULT', () => client.patch(`/v1/security-groups/${acme.defaultSecurityGroupId}`, { name: 'fallback' }), 409, 'SECURITY_GROUP_IS_DEFAULT', 'name'],
        ['PATCH with duplicate rules: 409 DUPLICATE_RULE', () => client.patch(`/v1/security-groups/${bastion.id}`, { rules: [ssh, ssh] }), 409, 'DUPLICATE_RULE', 'rules[1]'],
        ['PATCH changing the tenant: 400 UNKNOWN_FIELD', () => client.patch(`/v1/security-groups/${bastion.id}`, { tenantId: other.id }), 400, 'UNKNOWN_FIELD', 'tenantId'],
        ['GET of an unknown group: 404 SECURITY_GROUP_NOT_FOUND', () => client.get(`/v1/security-groups/${UNKNOWN_ID}`), 404, 'SECURITY_GROUP_NOT_FOUND', 'id'],
        ['GET with a malformed id: 400 INVALID_ID', () => client.get('/v1/security-groups/bastion'), 400, 'INVALID_ID', 'id'],
        ['a malformed tenantId filter: 400 INVALID_ID', () => client.get('/v1/security-groups?tenantId=acme'), 400, 'INVALID_ID', 'tenantId'],
        ['limit=0: 400 INVALID_VALUE', () => client.get('/v1/security-groups?limit=0'), 400, 'INVALID_VALUE', 'limit'],
        ['a bad cursor: 400 INVALID_CURSOR', () => client.get('/v1/security-groups?cursor=bad'), 400, 'INVALID_CURSOR', 'cursor'],
        ['DELETE of an unknown group: 404 SECURITY_GROUP_NOT_FOUND', () => client.delete(`/v1/security-groups/${UNKNOWN_ID}`), 404, 'SECURITY_GROUP_NOT_FOUND', 'id'],
        ['DELETE of a default group: 409 SECURITY_GROUP_IS_DEFAULT', () => client.delete(`/v1/security-groups/${acme.defaultSecurityGroupId}`), 409, 'SECURITY_GROUP_IS_DEFAULT', 'id'],
        ['DELETE of a group a port uses: 409 SECURITY_GROUP_IN_USE', () => client.delete(`/v1/security-groups/${bastion.id}`), 409, 'SECURITY_GROUP_IN_USE', 'id'],
      ]);
    });

    it('DELETE of a tenant with a group besides its default: 409 TENANT_HAS_SECURITY_GROUPS, then its deletion once the group is gone', async () => {
      const lonely = await make.tenant({ name: 'lonely' });
      const extra = await make.securityGroup(lonely.id, { name: 'extra', rules: [] });
      await expectRefused(() => client.delete(`/v1/tenants/${lonely.id}`), 409, 'TENANT_HAS_SECURITY_GROUPS', 'id');
      expect((await client.delete(`/v1/security-groups/${extra.id}`)).status).toBe(204);
      expect((await client.delete(`/v1/tenants/${lonely.id}`)).status).toBe(204);
    });

    describe('ports', () => {
      const post = (body: Record<string, unknown>) => client.post('/v1/ports', { segmentId: seg.id, ...body });
      runCases(() => [
        ['an unknown group: 404 SECURITY_GROUP_NOT_FOUND', () => post({ securityGroupIds: [bastion.id, UNKNOWN_ID] }), 404, 'SECURITY_GROUP_NOT_FOUND', 'securityGroupIds[1]'],
        ["another tenant's group: 400 SECURITY_GROUP_TENANT_MISMATCH", () => post({ securityGroupIds: [otherGroup.id] }), 400, 'SECURITY_GROUP_TENANT_MISMATCH', 'securityGroupIds[0]'],
        ['a malformed group id: 400 INVALID_ID', () => post({ securityGroupIds: ['bastion'] }), 400, 'INVALID_ID', 'securityGroupIds[0]'],
        ['a group listed twice: 400 INVALID_VALUE', () => post({ securityGroupIds: [bastion.id, bastion.id] }), 400, 'INVALID_VALUE', 'securityGroupIds[1]'],
        ['17 groups: 400 INVALID_VALUE', () => post({ securityGroupIds: Array.from({ length: 17 }, () => bastion.id) }), 400, 'INVALID_VALUE', 'securityGroupIds'],
        ['groups without port security: 400 PORT_SECURITY_CONFLICT', () => post({ portSecurity: false, securityGroupIds: [bastion.id] }), 400, 'PORT_SECURITY_CONFLICT', 'securityGroupIds'],
        ['address pairs without port security: 400 PORT_SECURITY_CONFLICT', () => post({ portSecurity: false, allowedAddressPairs: [{ ip: '10.0.0.100' }] }), 400, 'PORT_SECURITY_CONFLICT', 'allowedAddressPairs'],
        ['portSecurity as a string: 400 INVALID_TYPE', () => post({ portSecurity: 'no' }), 400, 'INVALID_TYPE', 'portSecurity'],
        ['11 address pairs: 400 INVALID_VALUE', () => post({ allowedAddressPairs: Array.from({ length: 11 }, (_, i) => ({ ip: `10.0.1.${i + 1}` })) }), 400, 'INVALID_VALUE', 'allowedAddressPairs'],
        ['a pair that is no address: 400 INVALID_IP', () => post({ allowedAddressPairs: [{ ip: 'vip' }] }), 400, 'INVALID_IP', 'allowedAddressPairs[0].ip'],
        ['a pair prefix with host bits: 400 INVALID_CIDR', () => post({ allowedAddressPairs: [{ ip: '10.0.0.1/24' }] }), 400, 'INVALID_CIDR', 'allowedAddressPairs[0].ip'],
        ['a pair with a multicast MAC: 400 MULTICAST_MAC', () => post({ allowedAddressPairs: [{ ip: '10.0.0.100', mac: '01:00:5e:00:00:01' }] }), 400, 'MULTICAST_MAC', 'allowedAddressPairs[0].mac'],
        ['a pair without ip: 400 MISSING_FIELD', () => post({ allowedAddressPairs: [{ mac: '02:00:00:00:00:99' }] }), 400, 'MISSING_FIELD', 'allowedAddressPairs[0].ip'],
        ['the same pair twice, spelt differently: 409 DUPLICATE_ADDRESS_PAIR', () => post({ mac: '02:00:00:00:aa:01', allowedAddressPairs: [{ ip: '10.0.0.100' }, { ip: '10.0.0.100/32', mac: '02-00-00-00-AA-01' }] }), 409, 'DUPLICATE_ADDRESS_PAIR', 'allowedAddressPairs[1]'],
        ['a batch whose second port has an unknown group: none created', () => client.post('/v1/ports/batch', { ports: [{ segmentId: seg.id }, { segmentId: seg.id, securityGroupIds: [UNKNOWN_ID] }] }), 404, 'SECURITY_GROUP_NOT_FOUND', 'ports[1].securityGroupIds[0]'],
        ["a port of another tenant with this tenant's group: 400 SECURITY_GROUP_TENANT_MISMATCH", () => client.post('/v1/ports', { segmentId: otherSeg.id, securityGroupIds: [bastion.id] }), 400, 'SECURITY_GROUP_TENANT_MISMATCH', 'securityGroupIds[0]'],
        ['PATCH turning port security off while groups remain: 400 PORT_SECURITY_CONFLICT', () => client.patch(`/v1/ports/${port.id}`, { portSecurity: false }), 400, 'PORT_SECURITY_CONFLICT', 'portSecurity'],
        ["PATCH to another tenant's group: 400 SECURITY_GROUP_TENANT_MISMATCH", () => client.patch(`/v1/ports/${port.id}`, { securityGroupIds: [otherGroup.id] }), 400, 'SECURITY_GROUP_TENANT_MISMATCH', 'securityGroupIds[0]'],
        ['PATCH to an unknown group: 404 SECURITY_GROUP_NOT_FOUND', () => client.patch(`/v1/ports/${port.id}`, { securityGroupIds: [UNKNOWN_ID] }), 404, 'SECURITY_GROUP_NOT_FOUND', 'securityGroupIds[0]'],
      ]);
    });
  });

  describe('ports with groups', () => {
    it('keeps each group member index equal to the ports whose effective groups include it', async () => {
      const dflt = acme.defaultSecurityGroupId;
      const web1 = await make.securityGroup(acme.id, { name: 'members', rules: [web] });
      const p = await make.port(seg.id, { ips: ['10.0.0.20'], securityGroupIds: [web1.id, bastion.id], allowedAddressPairs: [{ ip: '10.0.0.0/28' }] });
      expect(p).toMatchObject({ securityGroupIds: [web1.id, bastion.id], portSecurity: true, allowedAddressPairs: [{ ip: '10.0.0.0/28', mac: null }] });
      expect(await members(web1.id)).toEqual([p.id]);
      expect(await members(bastion.id)).toContain(p.id);

      // Back to the default group: [] = the tenant's default.
      expect((await client.patch(`/v1/ports/${p.id}`, { securityGroupIds: [] })).body.securityGroupIds).toEqual([]);
      expect(await members(web1.id)).toEqual([]);
      expect(await members(bastion.id)).not.toContain(p.id);
      expect(await members(dflt)).toContain(p.id);

      // No port security: in no group at all; the pairs had to go with it.
      const off = await client.patch(`/v1/ports/${p.id}`, { portSecurity: false, allowedAddressPairs: [] });
      expect(off.status).toBe(200);
      expect(await members(dflt)).not.toContain(p.id);
      const on = await client.patch(`/v1/ports/${p.id}`, { portSecurity: true, securityGroupIds: [web1.id] });
      expect(on.status).toBe(200);
      expect(await members(web1.id)).toEqual([p.id]);

      const refused = await client.delete(`/v1/security-groups/${web1.id}`);
      expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: 'SECURITY_GROUP_IN_USE' });
      expect((await client.delete(`/v1/ports/${p.id}`)).status).toBe(204);
      expect(await members(web1.id)).toEqual([]);
      expect((await client.delete(`/v1/security-groups/${web1.id}`)).status).toBe(204);
    });

    it('refuses to delete a group another group names as remote, until that rule is gone', async () => {
      const target = await make.securityGroup(acme.id, { name: 'db', rules: [] });
      const user = await make.securityGroup(acme.id, { name: 'app', rules: [{ ...ssh, remoteGroupId: target.id }] });
      const refused = await client.delete(`/v1/security-groups/${target.id}`);
      expect({ status: refused.status, code: refused.body.code, field: refused.body.field }).toEqual({ status: 409, code: 'SECURITY_GROUP_IN_USE', field: 'id' });
      expect(refused.body.message).toContain(user.id);
      expect((await client.patch(`/v1/security-groups/${user.id}`, { rules: [ssh] })).status).toBe(200);
      expect((await client.delete(`/v1/security-groups/${target.id}`)).status).toBe(204);
      expect((await client.delete(`/v1/security-groups/${user.id}`)).status).toBe(204);
    });

    it('never lets a port and the deletion of its group both succeed when they race', async () => {
      for (let round = 0; round < 20; round++) {
        const g = await make.securityGroup(acme.id, { name: `race-${round}`, rules: [] });
        const [made, removed] = await Promise.all([client.post('/v1/ports', { segmentId: seg.id, securityGroupIds: [g.id] }), client.delete(`/v1/security-groups/${g.id}`)]);
        expect(made.status === 201 && removed.status === 204).toBe(false);
        expect(made.status === 201 || removed.status === 204).toBe(true);
        if (made.status === 201) {
          expect(await members(g.id)).toEqual([made.body.id]);
          expect((await client.delete(`/v1/ports/${made.body.id}`)).status).toBe(204);
          expect((await client.delete(`/v1/security-groups/${g.id}`)).status).toBe(204);
        } else {
          expect(made.body.code).toBe('SECURITY_GROUP_NOT_FOUND');
        }
      }
    });

    it('documents the endpoints at /docs from the schemas that validate them', async () => {
      const doc = (await client.get('/docs-json')).body;
      expect(Object.keys(doc.paths['/v1/security-groups']).sort()).toEqual(['get', 'post']);
      expect(Object.keys(doc.paths['/v1/security-groups/{id}']).sort()).toEqual(['delete', 'get', 'patch', 'put']);
      const body = (method: string, path = '/v1/security-groups/{id}') => doc.paths[path][method].requestBody.content['application/json'].schema;
      expect(body('post', '/v1/security-groups')).toEqual(JSON.parse(JSON.stringify(createSecurityGroupSchema.json)));
      expect(body('put')).toEqual(JSON.parse(JSON.stringify(replaceSecurityGroupSchema.json)));
      expect(body('patch')).toEqual(JSON.parse(JSON.stringify(updateSecurityGroupSchema.json)));
      expect(Object.keys(body('patch', '/v1/ports/{id}').properties)).toEqual(expect.arrayContaining(['securityGroupIds', 'portSecurity', 'allowedAddressPairs']));
    });

    it('brings groups into every replica view, from which the compiler makes the port policy', async () => {
      const store = h.app.get(RedisStore);
      const view = h.app.get(MaterializedView);
      const snap = await MaterializedView.readSnapshot(h.redis, store);
      await view.waitForRevision(snap.revision, 10_000);
      expect(view.current.securityGroups).toEqual(snap.securityGroups);
      expect(snap.securityGroups.get(bastion.id)).toEqual((await client.get(`/v1/security-groups/${bastion.id}`)).body);

      const policy = compile(view.current.ports.get(port.id)!, groupCatalog(view.current.securityGroups, view.current.tenants));
      expect(policy).toMatchObject({ portId: port.id, ips: ['10.0.0.10'], portSecurity: true, remoteGroups: [] });
      expect(policy.ingress).toEqual([{ ethertype: 'IPv4', protocol: 6, ports: [22, 22], remote: { cidr: '0.0.0.0/0' } }]);
      expect(policy.egress).toHaveLength(2);
    });
  });
});
