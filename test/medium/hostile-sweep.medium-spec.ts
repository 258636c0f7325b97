import { apiRoutes, buildOpenApiDocument } from '../../src/controller/app.module';
import { openApiPath, routeKey } from '../../src/controller/auth/route-table';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';

/**
 * A sweep of every route that takes a body, against a real overlayd and Redis: from a body the
 * route accepts, each field in turn (and each field of a nested object or of an array's first
 * element) is replaced by each of a set of hostile values, or left out; an unknown field is added;
 * and the whole body is replaced by each value. Several thousand requests. Every answer must be a
 * 2xx or a 4xx the OpenAPI document lists for the route (the tests' client checks that), a 4xx
 * with a stable code, a message and (unless the body was refused whole) the field, and a refused
 * request must leave the store as it was (every key under the prefix, by digest). At the end every resource the accepted requests stored must
 * read back. hostile-input.medium-spec.ts checks named cases with their exact codes and fields;
 * this checks the class, on routes and fields as they are added.
 */

type Body = Record<string, unknown>;

/**
 * Values of every JSON type and of the shapes the schemas read: numbers at integer and float
 * edges, text that is not well-formed or not printable, ids, addresses, deep and long arrays, and
 * objects with `__proto__` / `constructor` keys of their own (JSON.parse makes those; a literal
 * would set the prototype instead).
 */
const HOSTILE: unknown[] = [
  null, true, false, 0, -1, -0.5, 1.5, 1e308, -1e308, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53, 2 ** 64,
  '', ' ', 'a', 'x'.repeat(70_000), '\u0000', '\ud800', '\u202e', 'é', '../..', '%00', '1', '-1', '0x10', '1e3', 'null', 'true',
  '__proto__', 'constructor', '10.0.0.1', '10.0.0.0/8', '::1', 'ff02::1', '224.0.0.1', '255.255.255.255', '02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff',
  '01a24988-0000-7000-8000-000000000000', '2026-13-45T99:99:99Z', '9999-12-31T23:59:59.999Z',
  [], [null], [[]], [1, 2, 3], ['a'.repeat(300)], Array.from({ length: 2_000 }, () => 'a'), JSON.parse('['.repeat(200) + ']'.repeat(200)),
  {}, { a: 1 }, JSON.parse('{"__proto__":{"polluted":1}}'), JSON.parse('{"constructor":{"prototype":{"polluted":1}}}'),
];

function without(body: Body, field: string): Body {
  const copy = { ...body };
  delete copy[field];
  return copy;
}

/** Each request body the sweep sends for a route, with a short name of what it changed from `base`. */
function* mutations(base: Body): Generator<[string, unknown]> {
  const named = (v: unknown): string => (JSON.stringify(v) ?? String(v)).slice(0, 24);
  for (const [field, value] of Object.entries(base)) {
    for (const v of HOSTILE) {
      yield [`${field} = ${named(v)}`, { ...base, [field]: v }];
    }
    yield [`without ${field}`, without(base, field)];
    const inner = Array.isArray(value) ? value[0] : value;
    if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
      const wrap = (o: unknown) => (Array.isArray(value) ? [o] : o);
      const where = Array.isArray(value) ? `${field}[0]` : field;
      for (const innerField of Object.keys(inner)) {
        for (const v of HOSTILE) {
          yield [`${where}.${innerField} = ${named(v)}`, { ...base, [field]: wrap({ ...inner, [innerField]: v }) }];
        }
        yield [`${where} without ${innerField}`, { ...base, [field]: wrap(without(inner as Body, innerField)) }];
      }
      yield [`${where} with an unknown field`, { ...base, [field]: wrap({ ...inner, unknownField: 1 }) }];
    } else if (Array.isArray(value)) {
      for (const v of HOSTILE) {
        yield [`${field}[0] = ${named(v)}`, { ...base, [field]: [v] }];
      }
    }
  }
  yield ['an unknown field', { ...base, unknownField: 1 }];
  for (const v of HOSTILE) {
    yield [`the body = ${named(v)}`, v];
  }
}

describe('every route that takes a body refuses hostile values field by field, and a refusal changes nothing', () => {
  const prefix = uniquePrefix('sweep');
  let h: Harness;
  let client: ReturnType<typeof api>;
  /** routeKey -> the path with its id and bodies the route accepts. */
  let bases: Map<string, [string, ...Body[]]>;

  beforeAll(async () => {
    h = await startController({ prefix });
    client = api(h.url);
    const make = factories(client);
    const tenant = await make.tenant({ name: 'sweep' });
    const segment = await make.segment(tenant.id, { name: 'web', cidr: '10.9.0.0/16' });
    const host1 = await make.host({ name: 'hv1', vtepIp: '192.0.2.11' });
    const host2 = await make.host({ name: 'hv2', vtepIp: '192.0.2.12' });
    const rule = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteCidr: '10.0.0.0/8' };
    const group = await make.securityGroup(tenant.id, { name: 'ssh', rules: [rule] });
    const port = await make.port(segment.id, { vmId: 'vm-1', mac: '02:00:00:00:00:01', ips: ['10.9.0.5'], hostId: host1.id, securityGroupIds: [group.id] });
    const analyzer = await make.port(segment.id, { role: 'analyzer', hostId: host2.id });
    // Migrated by the migration route's body only: the other bodies rebind `port`.
    const mover = await make.port(segment.id, { vmId: 'vm-9', hostId: host1.id });
    const session = await created(client.post('/v1/mirror-sessions', { tenantId: tenant.id, name: 'tap', sources: [{ portId: port.id, direction: 'both' }], sink: { type: 'port', portId: analyzer.id } }));
    const portBody = { segmentId: segment.id, vmId: 'vm-2', mac: '02:00:00:00:00:02', ips: ['10.9.0.6'], hostId: host1.id, tapName: 'tap2', role: 'vm', securityGroupIds: [group.id], portSecurity: true, allowedAddressPairs: [{ ip: '10.9.1.0/24', mac: '02:00:00:00:00:09' }] };
    bases = new Map<string, [string, ...Body[]]>([
      ['POST /v1/tenants', ['/v1/tenants', { name: 'other', maxSegments: 10 }]],
      ['POST /v1/segments', ['/v1/segments', { tenantId: tenant.id, name: 'db', vni: 777, vlanId: 12, cidr: '10.10.0.0/16' }]],
      ['POST /v1/hosts', ['/v1/hosts', { name: 'hv9', vtepIp: '192.0.2.99', inventory: { uplinks: [{ name: 'eth0' }] } }]],
      ['PATCH /v1/hosts/:id', [`/v1/hosts/${host2.id}`, { name: 'hv2b', vtepIp: '192.0.2.13' }]],
      ['POST /v1/ports', ['/v1/ports', portBody]],
      ['POST /v1/ports/batch', ['/v1/ports/batch', { ports: [{ ...portBody, vmId: 'vm-3', mac: '02:00:00:00:00:03', ips: ['10.9.0.7'] }] }]],
      ['PATCH /v1/ports/:id', [`/v1/ports/${port.id}`, { hostId: host2.id, vmId: 'vm-1b', tapName: 'tap1', securityGroupIds: [group.id], portSecurity: true, allowedAddressPairs: [{ ip: '10.9.0.8' }] }]],
      ['POST /v1/security-groups', ['/v1/security-groups', { tenantId: tenant.id, name: 'dns', description: 'out', rules: [{ direction: 'egress', ethertype: 'IPv4', protocol: 'udp', portRangeMin: 53, portRangeMax: 53, remoteGroupId: group.id }] }]],
      ['PUT /v1/security-groups/:id', [`/v1/security-groups/${group.id}`, { name: 'ssh', description: 'v6', rules: [{ direction: 'ingress', ethertype: 'IPv6', protocol: 'icmpv6', icmpType: 128, icmpCode: 0, remoteCidr: '::/0' }] }]],
      ['PATCH /v1/security-groups/:id', [`/v1/security-groups/${group.id}`, { name: 'ssh2', rules: [{ direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp', icmpType: 8, remoteCidr: '0.0.0.0/0' }] }]],
      ['POST /v1/mirror-sessions', ['/v1/mirror-sessions', { tenantId: tenant.id, name: 'tap2', enabled: true, sources: [{ portId: port.id, direction: 'ingress' }], sink: { type: 'vxlan', remoteIp: '198.51.100.7', udpPort: 4790 }, filter: { ethertype: 'IPv4', protocol: 'tcp' }, snapLength: 128 }]],
      ['PATCH /v1/mirror-sessions/:id', [`/v1/mirror-sessions/${session.id}`, { name: 'tap1', enabled: false, sources: [{ portId: port.id, direction: 'egress' }], sink: { type: 'port', portId: analyzer.id }, snapLength: 96 }]],
      ['POST /v1/migrations', ['/v1/migrations', { portIds: [mover.id], sourceHostId: host1.id, destinationHostId: host2.id, ttlMs: 60_000 }]],
      ['POST /v1/tokens', ['/v1/tokens', { name: 'acme', role: 'tenant', tenantId: tenant.id, allowVniPinning: false, expiresAt: '2030-01-01T00:00:00.000Z' }, { name: 'hook', role: 'migration-hook', hostIds: [host1.id] }]],
    ]);
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  it('has a body for every route whose OpenAPI operation takes one', () => {
    const doc = buildOpenApiDocument(10_000) as { paths: Record<string, Record<string, { requestBody?: unknown }>> };
    const takesBody = apiRoutes()
      .filter((route) => doc.paths[openApiPath(route.path)]?.[route.method.toLowerCase()]?.requestBody !== undefined)
      .map(routeKey)
      .sort();
    expect([...bases.keys()].sort()).toEqual(takesBody);
  });

  // About 30 s alone on 2 cores: a deadline with room for the other suites' load beside it.
  it('answers each hostile body with a 2xx, or a documented 4xx that changed nothing; what it accepted reads back', async () => {
    const refusals = new Map<string, number>();
    const broken: string[] = [];
    let sent = 0;
    /** Sends `base` (it must be accepted), then each of its mutations, recording what breaks the rules above. */
    const sweep = async (route: string, path: string, base: Body): Promise<void> => {
      const method = route.split(' ')[0];
      const accepted = await client.raw(method, path, base);
      expect({ route, accepted: accepted.status >= 200 && accepted.status < 300, answer: accepted.status < 300 ? undefined : accepted.body }).toEqual({ route, accepted: true, answer: undefined });
      let before = await h.digest();
      for (const [what, body] of mutations(base)) {
        // A body that is a JSON string is sent as JSON text, not as the raw string.
        const res = await client.raw(method, path, typeof body === 'string' ? JSON.stringify(body) : body);
        sent++;
        const after = await h.digest();
        if (res.status >= 200 && res.status < 300) {
          before = after;
          continue;
        }
        const { code, message, field } = (res.body ?? {}) as { code?: unknown; message?: unknown; field?: unknown };
        // A field's value refused names a field; only a body refused whole (not JSON, not an object) may name none.
        const wholeBody = what.startsWith('the body') || code === 'INVALID_JSON';
        if (res.status < 400 || res.status >= 500 || typeof code !== 'string' || !/^[A-Z][A-Z0-9_]*$/.test(code) || typeof message !== 'string' || (!wholeBody && typeof field !== 'string')) {
          broken.push(`${route}, ${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        } else if (after !== before) {
          broken.push(`${route}, ${what}: ${res.status} ${code}, yet the store changed`);
          before = after;
        } else {
          refusals.set(code, (refusals.get(code) ?? 0) + 1);
        }
      }
    };
    for (const [route, [path, ...bodies]] of bases) {
      for (const base of bodies) {
        await sweep(route, path, base);
      }
    }
    expect(broken).toEqual([]);
    // The sweep reached the checks, not only the parser's first refusal.
    expect(sent).toBeGreaterThan(4_000);
    expect([...refusals.keys()]).toEqual(expect.arrayContaining(['INVALID_JSON', 'UNKNOWN_FIELD', 'INVALID_VALUE']));

    for (const list of ['/v1/tenants', '/v1/segments', '/v1/hosts', '/v1/ports', '/v1/security-groups', '/v1/mirror-sessions', '/v1/migrations', '/v1/tokens']) {
      const page = await client.get(`${list}?limit=1000`);
      expect({ list, status: page.status }).toEqual({ list, status: 200 });
      for (const item of page.body.items as { id: string }[]) {
        const one = await client.get(`${list}/${item.id}`);
        expect({ item: `${list}/${item.id}`, status: one.status }).toEqual({ item: `${list}/${item.id}`, status: 200 });
      }
    }
  }, 300_000);
});
