import { newId } from '../../src/controller/model/value-parsers';
import { api, dropPrefix, startController, uniquePrefix, type ApiResponse, type Harness } from '../support/controller-harness';
import { prng } from '../support/prng';

/*
 * Tenant isolation against a real overlayd and Redis. Two tenants, alpha (A) and bravo (B), each
 * with a tenant token of its own, run a seeded random workload on their own objects; between
 * their steps A also calls every tenant route with B's ids, and the same call with an id that
 * never existed. Leaks are counted:
 *   (a) an answer to A that holds any of B's ids or names;
 *   (b) an answer to A about a B id that differs from the answer about a fresh id of the same
 *       kind (the id replaced by a placeholder in both);
 *   (c) a change to B's objects (read by admin) across one of A's calls.
 * All three must be 0. The seed is printed (OVERLAY_TEST_SEED replays a run).
 */

const SEED = Number(process.env.OVERLAY_TEST_SEED ?? 20_250_611);
const STEPS = 400;
const MAX_SEGMENTS = 4;
const MAX_PORTS = 16;
const MAX_GROUPS = 4;
const MAX_SESSIONS = 3;

type Client = ReturnType<typeof api>;
type Kind = 'tenant' | 'segment' | 'port' | 'securityGroup' | 'mirrorSession';

/** What a tenant's workload knows of its own objects (what it made and did not delete). */
interface Own {
  tenantId: string;
  defaultGroupId: string;
  segments: Set<string>;
  /** port id -> its segment and the groups it lists */
  ports: Map<string, { segmentId: string; groups: string[] }>;
  /** groups besides the default */
  groups: Set<string>;
  /** mirror session id -> its source ports (they cannot be deleted while it names them) */
  sessions: Map<string, string[]>;
}

const ruleTo = (remoteGroupId: string) => ({ direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, remoteGroupId });
const sshFromAnywhere = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, remoteCidr: '0.0.0.0/0' };

describe('tenant isolation', () => {
  const prefix = uniquePrefix('tenant-isolation');
  let h: Harness;
  let admin: Client;
  let n = 0;

  const ok = async (res: Promise<ApiResponse>, status = 201): Promise<any> => {
    const r = await res;
    expect({ status: r.status, body: r.body }).toMatchObject({ status });
    return r.body;
  };
  const token = async (fields: Record<string, unknown>): Promise<string> => (await ok(admin.post('/v1/tokens', { name: `token-${++n}`, ...fields }))).token;

  beforeAll(async () => {
    h = await startController({ prefix });
    admin = api(h.url);
  });

  afterAll(async () => {
    await h?.close();
    await dropPrefix(h.config.redisUrl, prefix);
  });

  it("a tenant pins a VNI only with a token that allows it, and VNI_TAKEN and VLAN_TAKEN never name another tenant's segment", async () => {
    const charlie = await ok(admin.post('/v1/tenants', { name: 'charlie-corp' }));
    const delta = await ok(admin.post('/v1/tenants', { name: 'delta-corp' }));
    const plain = api(h.url, await token({ role: 'tenant', tenantId: charlie.id }));
    const pinning = api(h.url, await token({ role: 'tenant', tenantId: charlie.id, allowVniPinning: true }));
    const deltaPinning = api(h.url, await token({ role: 'tenant', tenantId: delta.id, allowVniPinning: true }));

    const refused = await plain.post('/v1/segments', { tenantId: charlie.id, name: 'pinned', vni: 7001 });
    expect(refused).toMatchObject({ status: 403, body: { code: 'FORBIDDEN', field: 'vni', message: expect.stringContaining('allowVniPinning') } });
    expect(refused.body.message).toContain('operator');
    expect((await admin.get(`/v1/segments?tenantId=${charlie.id}`)).body.items).toEqual([]);
    expect((await ok(plain.post('/v1/segments', { tenantId: charlie.id, name: 'any-vni' }))).vni).toBeGreaterThanOrEqual(1000);

    const pinned = await ok(pinning.post('/v1/segments', { tenantId: charlie.id, name: 'pinned', vni: 7001, vlanId: 301 }));
    expect(pinned).toMatchObject({ vni: 7001, vlanId: 301 });
    const vniTaken = await deltaPinning.post('/v1/segments', { tenantId: delta.id, name: 'mine', vni: 7001 });
    expect(vniTaken).toEqual({ status: 409, body: { code: 'VNI_TAKEN', message: 'VNI 7001 is in use', field: 'vni' } });
    const vlanTaken = await deltaPinning.post('/v1/segments', { tenantId: delta.id, name: 'mine', vlanId: 301 });
    expect(vlanTaken).toEqual({ status: 409, body: { code: 'VLAN_TAKEN', message: 'VLAN 301 is in use', field: 'vlanId' } });
    // An operator is told which segment holds it.
    expect((await admin.post('/v1/segments', { tenantId: delta.id, name: 'mine', vni: 7001 })).body).toMatchObject({ code: 'VNI_TAKEN', message: expect.stringContaining(pinned.id) });
    // A tenant's own pinning token still names only its own tenant.
    expect(await pinning.post('/v1/segments', { tenantId: delta.id, name: 'theirs', vni: 7002 })).toEqual({
      status: 404,
      body: { code: 'TENANT_NOT_FOUND', message: `no tenant ${delta.id}`, field: 'tenantId' },
    });
  });

  it('a tenant token is refused with 403 on the routes of other roles, naming the role needed', async () => {
    const echo = await ok(admin.post('/v1/tenants', { name: 'echo-corp' }));
    const segment = await ok(admin.post('/v1/segments', { tenantId: echo.id, name: 'echo-net' }));
    const host = await ok(admin.post('/v1/hosts', { name: 'hv-echo', vtepIp: '198.51.100.40' }));
    const client = api(h.url, await token({ role: 'tenant', tenantId: echo.id }));
    const someId = newId();
    const calls: [string, string, unknown?][] = [
      ['GET', '/v1/hosts'],
      ['GET', `/v1/hosts/${host.id}`],
      ['POST', '/v1/hosts', { name: 'hv-mine', vtepIp: '198.51.100.41' }],
      ['PATCH', `/v1/hosts/${host.id}`, { name: 'hv-renamed' }],
      ['DELETE', `/v1/hosts/${host.id}`],
      ['GET', '/v1/tokens'],
      ['POST', '/v1/tokens', { name: 'mine', role: 'admin' }],
      ['GET', `/v1/tokens/${someId}`],
      ['DELETE', `/v1/tokens/${someId}`],
      ['GET', '/v1/events'],
      ['POST', '/v1/migrations', { portIds: [someId], sourceHostId: host.id, destinationHostId: someId }],
      ['GET', `/v1/migrations/${someId}`],
      ['POST', `/v1/migrations/${someId}/commit`],
      ['POST', `/v1/migrations/${someId}/abort`],
      ['GET', `/v1/segments/${segment.id}/mappings`],
      ['POST', '/v1/tenants', { name: 'another-corp' }],
      ['DELETE', `/v1/tenants/${echo.id}`],
    ];
    const before = await h.dump();
    for (const [method, path, body] of calls) {
      const res = await client.raw(method, path, body);
      expect({ call: `${method} ${path}`, status: res.status, code: res.body?.code }).toEqual({ call: `${method} ${path}`, status: 403, code: 'FORBIDDEN' });
      expect(res.body.message).toMatch(/needs role .*; token '[^']+' has role tenant/);
    }
    // Refused calls change nothing but the audit trail's record of them.
    const after = await h.dump();
    const events = Object.keys(after).filter((k) => k.endsWith(':events:denied'));
    for (const k of events) {
      delete before[k];
      delete after[k];
    }
    expect(after).toEqual(before);
  });

  it('a migration-hook token with host scope prepares, reads, commits and aborts only migrations from or to its hosts', async () => {
    const hosts: string[] = [];
    for (let i = 1; i <= 4; i++) {
      hosts.push((await ok(admin.post('/v1/hosts', { name: `hv-mig-${i}`, vtepIp: `198.51.100.${50 + i}` }))).id);
    }
    const [h1, h2, h3, h4] = hosts;
    const tenant = await ok(admin.post('/v1/tenants', { name: 'foxtrot-corp' }));
    const segment = await ok(admin.post('/v1/segments', { tenantId: tenant.id, name: 'foxtrot-net' }));
    const [p1, p2, p3] = [await ok(admin.post('/v1/ports', { segmentId: segment.id, hostId: h3 })), await ok(admin.post('/v1/ports', { segmentId: segment.id, hostId: h3 })), await ok(admin.post('/v1/ports', { segmentId: segment.id, hostId: h1 }))];
    // Operators filter ports by tenant too.
    expect((await admin.get(`/v1/ports?tenantId=${tenant.id}`)).body.items.map((p: any) => p.id)).toEqual([p1.id, p2.id, p3.id]);
    const hook = api(h.url, await token({ role: 'migration-hook', hostIds: [h1] }));
    const anyHost = api(h.url, await token({ role: 'migration-hook' }));

    // Neither host is the hook's: 403, naming the rule, and nothing prepared.
    const refused = await hook.post('/v1/migrations?timeout=0', { portIds: [p1.id], sourceHostId: h3, destinationHostId: h4 });
    expect(refused).toMatchObject({ status: 403, body: { code: 'FORBIDDEN', field: 'sourceHostId', message: expect.stringContaining('only migrations from or to its hosts') } });
    expect((await admin.get(`/v1/ports/${p1.id}`)).body.migration).toBeNull();

    // Another hosts' migration does not exist for it: the answers of a migration that never existed.
    const foreign = await ok(admin.post('/v1/migrations?timeout=0', { portIds: [p1.id], sourceHostId: h3, destinationHostId: h4 }), 202);
    const stored = (await admin.get(`/v1/migrations/${foreign.id}`)).body;
    const fresh = newId();
    const norm = (res: ApiResponse, id: string) => JSON.stringify({ status: res.status, body: res.body }).replaceAll(id, '<id>');
    for (const [what, send] of [
      ['get', (id: string) => hook.get(`/v1/migrations/${id}`)],
      ['commit', (id: string) => hook.post(`/v1/migrations/${id}/commit`)],
      ['abort', (id: string) => hook.post(`/v1/migrations/${id}/abort`)],
    ] as const) {
      const res = await send(foreign.id);
      expect({ what, status: res.status, code: res.body.code, field: res.body.field }).toEqual({ what, status: 404, code: 'MIGRATION_NOT_FOUND', field: 'id' });
      expect(norm(res, foreign.id)).toBe(norm(await send(fresh), fresh));
    }
    expect((await admin.get(`/v1/migrations/${foreign.id}`)).body).toEqual(stored);
    expect((await anyHost.get(`/v1/migrations/${foreign.id}`)).status).toBe(200);

    // To or from one of its hosts: its own to prepare, read and abort.
    const toMine = await ok(hook.post('/v1/migrations?timeout=0', { portIds: [p2.id], sourceHostId: h3, destinationHostId: h1 }), 202);
    const fromMine = await ok(hook.post('/v1/migrations?timeout=0', { portIds: [p3.id], sourceHostId: h1, destinationHostId: h2 }), 202);
    for (const m of [toMine, fromMine]) {
      expect((await hook.get(`/v1/migrations/${m.id}`)).body).toMatchObject({ id: m.id, state: 'preparing' });
      expect(await ok(hook.post(`/v1/migrations/${m.id}/abort`), 200)).toMatchObject({ state: 'aborted' });
    }
    await ok(admin.post(`/v1/migrations/${foreign.id}/abort`), 200);
  });

  it('a seeded random two-tenant workload leaks nothing of one tenant to the other', async () => {
    const rand = prng(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
    const chance = (p: number) => rand() < p;

    // Hosts are not tenant objects: both tenants bind to the shared ones; only B binds to bravoHost.
    const shared = [(await ok(admin.post('/v1/hosts', { name: 'hv-1', vtepIp: '198.51.100.1' }))).id, (await ok(admin.post('/v1/hosts', { name: 'hv-2', vtepIp: '198.51.100.2' }))).id];
    const bravoHost = (await ok(admin.post('/v1/hosts', { name: 'hv-bravo', vtepIp: '198.51.100.3' }))).id;

    const tenants: Record<'alpha' | 'bravo', Own> = {} as never;
    const clients: Record<'alpha' | 'bravo', Client> = {} as never;
    for (const name of ['alpha', 'bravo'] as const) {
      const tenant = await ok(admin.post('/v1/tenants', { name: `${name}-corp` }));
      tenants[name] = { tenantId: tenant.id, defaultGroupId: tenant.defaultSecurityGroupId, segments: new Set(), ports: new Map(), groups: new Set(), sessions: new Map() };
      clients[name] = api(h.url, await token({ role: 'tenant', tenantId: tenant.id }));
    }
    const A = tenants.alpha;
    const B = tenants.bravo;

    // Everything of B that A must never see: its ids (kept after deletion) and names.
    const bravoSecrets = new Set<string>([B.tenantId, B.defaultGroupId, 'bravo-corp']);
    const bravoIds: Record<Kind, Set<string>> = { tenant: new Set([B.tenantId]), segment: new Set(), port: new Set(), securityGroup: new Set([B.defaultGroupId]), mirrorSession: new Set() };

    let operations = 0;
    const failures: string[] = [];
    const leaks = { a: 0, b: 0, c: 0 };
    const examples: string[] = [];
    const leak = (kind: 'a' | 'b' | 'c', what: string) => {
      leaks[kind]++;
      if (examples.length < 10) {
        examples.push(`(${kind}) ${what}`);
      }
    };

    /** (a): an answer to A naming anything of B; `sent` is the B id A itself put in the request. */
    const scan = (what: string, res: ApiResponse, sent?: string) => {
      let text = JSON.stringify(res.body ?? null);
      if (sent) {
        text = text.replaceAll(sent, '<sent>');
      }
      for (const secret of bravoSecrets) {
        if (text.includes(secret)) {
          leak('a', `${what} answered ${res.status} with ${secret}: ${text.slice(0, 300)}`);
          return;
        }
      }
    };

    /** B as admin sees it: its tenant, segments, groups, mirror sessions and every port of its segments. */
    const bravoState = async (): Promise<string> => {
      const tenant = await admin.get(`/v1/tenants/${B.tenantId}`);
      const segments = await admin.get(`/v1/segments?tenantId=${B.tenantId}&limit=1000`);
      const groups = await admin.get(`/v1/security-groups?tenantId=${B.tenantId}&limit=1000`);
      const sessions = await admin.get(`/v1/mirror-sessions?tenantId=${B.tenantId}&limit=1000`);
      const ports = [];
      for (const s of segments.body.items) {
        ports.push((await admin.get(`/v1/ports?segmentId=${s.id}&limit=1000`)).body);
      }
      return JSON.stringify([tenant, segments, groups, sessions, ports]);
    };
    let bravoBefore = '';

    /** One call of A's, checked for (a) and, against B's state before it, (c). */
    const alphaCall = async (what: string, call: () => Promise<ApiResponse>, sent?: string): Promise<ApiResponse> => {
      operations++;
      const res = await call();
      scan(what, res, sent);
      const after = await bravoState();
      if (after !== bravoBefore) {
        leak('c', `${what} changed B's objects`);
        bravoBefore = after;
      }
      return res;
    };

    /** A tenant's own step that must succeed; a failure is counted and the model resynced from the store. */
    const own = async (who: 'alpha' | 'bravo', what: string, call: () => Promise<ApiResponse>, status: number): Promise<any> => {
      const res = who === 'alpha' ? await alphaCall(what, call) : (operations++, await call());
      if (res.status !== status) {
        failures.push(`${who} ${what}: ${res.status} ${JSON.stringify(res.body)}`);
        await resync(who);
        return undefined;
      }
      if (who === 'bravo') {
        bravoBefore = await bravoState();
      }
      return res.body ?? {};
    };

    const resync = async (who: 'alpha' | 'bravo') => {
      const t = tenants[who];
      t.segments = new Set((await admin.get(`/v1/segments?tenantId=${t.tenantId}&limit=1000`)).body.items.map((s: any) => s.id));
      t.groups = new Set((await admin.get(`/v1/security-groups?tenantId=${t.tenantId}&limit=1000`)).body.items.filter((g: any) => !g.isDefault).map((g: any) => g.id));
      t.sessions = new Map((await admin.get(`/v1/mirror-sessions?tenantId=${t.tenantId}&limit=1000`)).body.items.map((m: any) => [m.id, m.sources.map((x: any) => x.portId)]));
      t.ports = new Map();
      for (const s of t.segments) {
        for (const p of (await admin.get(`/v1/ports?segmentId=${s}&limit=1000`)).body.items) {
          t.ports.set(p.id, { segmentId: s, groups: p.securityGroupIds });
        }
      }
      if (who === 'bravo') {
        bravoBefore = await bravoState();
      }
    };

    const remember = (who: 'alpha' | 'bravo', kind: Kind, body: any) => {
      if (who === 'bravo' && body?.id) {
        bravoIds[kind].add(body.id);
        bravoSecrets.add(body.id);
        if (kind !== 'port') {
          bravoSecrets.add(body.name);
        } else if (body.vmId) {
          bravoSecrets.add(body.vmId);
        }
      }
    };

    const portBody = (who: 'alpha' | 'bravo', t: Own) => {
      const groups = chance(0.5) || !t.groups.size ? [] : [pick([...t.groups])];
      const hosts = who === 'bravo' ? [...shared, bravoHost] : shared;
      return { segmentId: pick([...t.segments]), vmId: `${who}-vm-${++n}`, hostId: chance(0.7) ? pick(hosts) : null, securityGroupIds: groups };
    };

    /** One random step of a tenant on its own objects. */
    const ownStep = async (who: 'alpha' | 'bravo') => {
      const t = tenants[who];
      const c = clients[who];
      const ports = [...t.ports.keys()];
      const usedGroups = new Set([...t.ports.values()].flatMap((p) => p.groups));
      // Ports a mirror session names cannot be deleted (PORT_IN_MIRROR_SESSION).
      const mirrored = new Set([...t.sessions.values()].flat());
      const deletable = ports.filter((p) => !mirrored.has(p));
      const sessionBody = () => ({
        sources: [...new Set([pick(ports), pick(ports)])].map((portId) => ({ portId, direction: pick(['ingress', 'egress', 'both']) })),
        // A collector of its own per session: never an overlap.
        sink: { type: 'vxlan', remoteIp: `192.0.2.${(++n % 250) + 1}`, udpPort: 10_000 + n },
      });
      const steps: [number, () => Promise<void>][] = [
        [t.segments.size < MAX_SEGMENTS ? 3 : 0, async () => {
          const body = await own(who, 'create segment', () => c.post('/v1/segments', { tenantId: t.tenantId, name: `${who}-segment-${++n}`, cidr: '10.0.0.0/24' }), 201);
          if (body) {
            t.segments.add(body.id);
            remember(who, 'segment', body);
          }
        }],
        [t.groups.size < MAX_GROUPS ? 2 : 0, async () => {
          const rules = chance(0.5) ? [sshFromAnywhere] : [ruleTo(t.defaultGroupId), sshFromAnywhere];
          const body = await own(who, 'create group', () => c.post('/v1/security-groups', { tenantId: t.tenantId, name: `${who}-group-${++n}`, rules }), 201);
          if (body) {
            t.groups.add(body.id);
            remember(who, 'securityGroup', body);
          }
        }],
        [t.segments.size && t.ports.size < MAX_PORTS ? 4 : 0, async () => {
          const input = portBody(who, t);
          const body = await own(who, 'create port', () => c.post('/v1/ports', input), 201);
          if (body) {
            t.ports.set(body.id, { segmentId: body.segmentId, groups: body.securityGroupIds });
            remember(who, 'port', body);
          }
        }],
        [t.segments.size && t.ports.size < MAX_PORTS - 3 ? 1 : 0, async () => {
          const inputs = [portBody(who, t), portBody(who, t), portBody(who, t)];
          const body = await own(who, 'create ports in a batch', () => c.post('/v1/ports/batch', { ports: inputs }), 201);
          for (const p of body?.items ?? []) {
            t.ports.set(p.id, { segmentId: p.segmentId, groups: p.securityGroupIds });
            remember(who, 'port', p);
          }
        }],
        [ports.length ? 3 : 0, async () => {
          const id = pick(ports);
          const hosts = who === 'bravo' ? [...shared, bravoHost] : shared;
          const change = chance(0.4) ? { hostId: chance(0.8) ? pick(hosts) : null } : chance(0.5) || !t.groups.size ? { vmId: `${who}-vm-${++n}` } : { securityGroupIds: [pick([...t.groups])] };
          const body = await own(who, 'update port', () => c.patch(`/v1/ports/${id}`, change), 200);
          if (body) {
            t.ports.set(id, { segmentId: body.segmentId, groups: body.securityGroupIds });
            remember(who, 'port', body);
          }
        }],
        [deletable.length ? 2 : 0, async () => {
          const id = pick(deletable);
          if (await own(who, 'delete port', () => c.delete(`/v1/ports/${id}`), 204)) {
            t.ports.delete(id);
          }
        }],
        [ports.length && t.sessions.size < MAX_SESSIONS ? 1 : 0, async () => {
          const body = await own(who, 'create mirror session', () => c.post('/v1/mirror-sessions', { tenantId: t.tenantId, name: `${who}-mirror-${++n}`, ...sessionBody() }), 201);
          if (body) {
            t.sessions.set(body.id, body.sources.map((x: any) => x.portId));
            remember(who, 'mirrorSession', body);
          }
        }],
        [ports.length && t.sessions.size ? 1 : 0, async () => {
          const id = pick([...t.sessions.keys()]);
          const change = chance(0.5) ? { enabled: chance(0.5) } : { sources: sessionBody().sources };
          const body = await own(who, 'update mirror session', () => c.patch(`/v1/mirror-sessions/${id}`, change), 200);
          if (body) {
            t.sessions.set(id, body.sources.map((x: any) => x.portId));
          }
        }],
        [t.sessions.size ? 1 : 0, async () => {
          const id = pick([...t.sessions.keys()]);
          if (await own(who, 'delete mirror session', () => c.delete(`/v1/mirror-sessions/${id}`), 204)) {
            t.sessions.delete(id);
          }
        }],
        [t.groups.size ? 2 : 0, async () => {
          const id = pick([...t.groups]);
          const name = `${who}-group-${++n}`;
          const body = chance(0.5)
            ? await own(who, 'replace group', () => c.raw('PUT', `/v1/security-groups/${id}`, { name, rules: [ruleTo(id), ruleTo(t.defaultGroupId)] }), 200)
            : await own(who, 'update group', () => c.patch(`/v1/security-groups/${id}`, { name, description: `${who} group` }), 200);
          remember(who, 'securityGroup', body);
        }],
        [[...t.groups].some((g) => !usedGroups.has(g)) ? 1 : 0, async () => {
          const id = pick([...t.groups].filter((g) => !usedGroups.has(g)));
          if (await own(who, 'delete group', () => c.delete(`/v1/security-groups/${id}`), 204)) {
            t.groups.delete(id);
          }
        }],
        [[...t.segments].some((s) => ![...t.ports.values()].some((p) => p.segmentId === s)) ? 1 : 0, async () => {
          const id = pick([...t.segments].filter((s) => ![...t.ports.values()].some((p) => p.segmentId === s)));
          if (await own(who, 'delete segment', () => c.delete(`/v1/segments/${id}`), 204)) {
            t.segments.delete(id);
          }
        }],
        [3, async () => {
          const reads: [string, string][] = [
            ['list tenants', '/v1/tenants'],
            ['get own tenant', `/v1/tenants/${t.tenantId}`],
            ['list segments', '/v1/segments'],
            ['list own segments', `/v1/segments?tenantId=${t.tenantId}`],
            ['list ports', '/v1/ports'],
            ['list ports of a host', `/v1/ports?hostId=${pick(shared)}`],
            ['list own ports', `/v1/ports?tenantId=${t.tenantId}`],
            ['list security groups', '/v1/security-groups'],
            ['get default group', `/v1/security-groups/${t.defaultGroupId}`],
            ...[...t.segments].map((s): [string, string] => ['get segment', `/v1/segments/${s}`]),
            ...[...t.segments].map((s): [string, string] => ['list ports of a segment', `/v1/ports?segmentId=${s}`]),
            ...ports.map((p): [string, string] => ['get port', `/v1/ports/${p}`]),
            ...[...t.groups].map((g): [string, string] => ['get group', `/v1/security-groups/${g}`]),
            ['list mirror sessions', '/v1/mirror-sessions'],
            ...[...t.sessions.keys()].map((m): [string, string] => ['get mirror session', `/v1/mirror-sessions/${m}`]),
          ];
          const [what, path] = pick(reads);
          const body = await own(who, what, () => c.get(path), 200);
          if (body?.items && path.startsWith('/v1/ports')) {
            // A tenant's list holds its own ports alone.
            const strays = body.items.filter((p: any) => p.tenantId !== t.tenantId);
            if (strays.length) {
              failures.push(`${who} ${what}: ${strays.length} port(s) of another tenant`);
            }
          }
        }],
      ];
      const total = steps.reduce((sum, [w]) => sum + w, 0);
      let r = rand() * total;
      for (const [weight, step] of steps) {
        if ((r -= weight) < 0) {
          await step();
          return;
        }
      }
    };

    /**
     * A's probes with one of B's ids: each call once with that id and once with an id that never
     * existed; the answers must be equal but for the id.
     */
    const probes: Record<Kind, ((id: string) => [string, () => Promise<ApiResponse>] | undefined)[]> = {
      tenant: [
        (id) => ['get tenant', () => clients.alpha.get(`/v1/tenants/${id}`)],
        (id) => ['create segment for tenant', () => clients.alpha.post('/v1/segments', { tenantId: id, name: `alpha-segment-${++n}` })],
        (id) => ['create group for tenant', () => clients.alpha.post('/v1/security-groups', { tenantId: id, name: `alpha-group-${++n}` })],
        (id) => ['list segments of tenant', () => clients.alpha.get(`/v1/segments?tenantId=${id}`)],
        (id) => ['list groups of tenant', () => clients.alpha.get(`/v1/security-groups?tenantId=${id}`)],
        (id) => ['list ports of tenant', () => clients.alpha.get(`/v1/ports?tenantId=${id}`)],
        (id) => ['list mirror sessions of tenant', () => clients.alpha.get(`/v1/mirror-sessions?tenantId=${id}`)],
        (id) => ['create mirror session for tenant', () => clients.alpha.post('/v1/mirror-sessions', { tenantId: id, name: `alpha-mirror-${++n}`, sources: [{ portId: newId() }], sink: { type: 'vxlan', remoteIp: '192.0.2.1' } })],
      ],
      segment: [
        (id) => ['get segment', () => clients.alpha.get(`/v1/segments/${id}`)],
        (id) => ['delete segment', () => clients.alpha.delete(`/v1/segments/${id}`)],
        (id) => ['list ports of segment', () => clients.alpha.get(`/v1/ports?segmentId=${id}`)],
        (id) => ['list ports of segment and host', () => clients.alpha.get(`/v1/ports?segmentId=${id}&hostId=${pick(shared)}`)],
        (id) => ['create port on segment', () => clients.alpha.post('/v1/ports', { segmentId: id, vmId: 'alpha-probe' })],
        (id) =>
          A.segments.size
            ? ['create ports in a batch, the second on segment', () => clients.alpha.post('/v1/ports/batch', { ports: [{ segmentId: [...A.segments][0] }, { segmentId: id }] })]
            : undefined,
      ],
      port: [
        (id) => ['get port', () => clients.alpha.get(`/v1/ports/${id}`)],
        (id) => ['bind port', () => clients.alpha.patch(`/v1/ports/${id}`, { hostId: shared[0] })],
        (id) => ['relabel port', () => clients.alpha.patch(`/v1/ports/${id}`, { vmId: 'alpha-probe' })],
        (id) => ['delete port', () => clients.alpha.delete(`/v1/ports/${id}`)],
        (id) => ['create mirror session of port', () => clients.alpha.post('/v1/mirror-sessions', { tenantId: A.tenantId, name: `alpha-mirror-${++n}`, sources: [{ portId: id }], sink: { type: 'vxlan', remoteIp: '192.0.2.1' } })],
        (id) => ['create mirror session to port', () => clients.alpha.post('/v1/mirror-sessions', { tenantId: A.tenantId, name: `alpha-mirror-${++n}`, sources: [{ portId: id }], sink: { type: 'port', portId: id } })],
        (id) => (A.ports.size ? ['create mirror session to port as sink', () => clients.alpha.post('/v1/mirror-sessions', { tenantId: A.tenantId, name: `alpha-mirror-${++n}`, sources: [{ portId: [...A.ports.keys()][0] }], sink: { type: 'port', portId: id } })] : undefined),
        (id) => (A.sessions.size ? ['add port to mirror session', () => clients.alpha.patch(`/v1/mirror-sessions/${[...A.sessions.keys()][0]}`, { sources: [{ portId: id }] })] : undefined),
      ],
      mirrorSession: [
        (id) => ['get mirror session', () => clients.alpha.get(`/v1/mirror-sessions/${id}`)],
        (id) => ['update mirror session', () => clients.alpha.patch(`/v1/mirror-sessions/${id}`, { enabled: false })],
        (id) => ['delete mirror session', () => clients.alpha.delete(`/v1/mirror-sessions/${id}`)],
      ],
      securityGroup: [
        (id) => ['get group', () => clients.alpha.get(`/v1/security-groups/${id}`)],
        (id) => ['replace group', () => clients.alpha.raw('PUT', `/v1/security-groups/${id}`, { name: 'alpha-probe', rules: [] })],
        (id) => ['update group', () => clients.alpha.patch(`/v1/security-groups/${id}`, { description: 'alpha was here' })],
        (id) => ['delete group', () => clients.alpha.delete(`/v1/security-groups/${id}`)],
        (id) => ['create group with remote group', () => clients.alpha.post('/v1/security-groups', { tenantId: A.tenantId, name: `alpha-group-${++n}`, rules: [sshFromAnywhere, ruleTo(id)] })],
        (id) =>
          A.groups.size ? ['update group with remote group', () => clients.alpha.patch(`/v1/security-groups/${[...A.groups][0]}`, { rules: [ruleTo(A.defaultGroupId), ruleTo(id)] })] : undefined,
        (id) => (A.segments.size ? ['create port with group', () => clients.alpha.post('/v1/ports', { segmentId: [...A.segments][0], securityGroupIds: [A.defaultGroupId, id] })] : undefined),
        (id) =>
          A.segments.size
            ? ['create ports in a batch with group', () => clients.alpha.post('/v1/ports/batch', { ports: [{ segmentId: [...A.segments][0] }, { segmentId: [...A.segments][0], securityGroupIds: [id] }] })]
            : undefined,
        (id) => (A.ports.size ? ['set port group', () => clients.alpha.patch(`/v1/ports/${[...A.ports.keys()][0]}`, { securityGroupIds: [id] })] : undefined),
      ],
    };
    let probesRun = 0;
    const probe = async () => {
      const kind = pick(['tenant', 'segment', 'port', 'securityGroup', 'mirrorSession'] as const);
      const ids = [...bravoIds[kind]];
      if (!ids.length) {
        return;
      }
      const id = pick(ids);
      const build = pick(probes[kind]);
      const made = build(id);
      if (!made) {
        return;
      }
      const [what, send] = made;
      // The same request, built again for an id that never existed.
      const fresh = newId();
      const [, sendFresh] = build(fresh)!;
      const withB = await alphaCall(`${what} of B's ${kind}`, send, id);
      const withFresh = await alphaCall(`${what} of a fresh ${kind}`, sendFresh);
      probesRun++;
      const norm = (res: ApiResponse, sent: string) => JSON.stringify({ status: res.status, body: res.body ?? null }).replaceAll(sent, '<id>');
      if (norm(withB, id) !== norm(withFresh, fresh)) {
        leak('b', `${what}: B's ${kind} -> ${norm(withB, id).slice(0, 200)}; fresh -> ${norm(withFresh, fresh).slice(0, 200)}`);
      }
    };

    // A few objects for each before the mix, so that probes have B ids from the start.
    for (const who of ['bravo', 'alpha'] as const) {
      const t = tenants[who];
      const seg = await own(who, 'create segment', () => clients[who].post('/v1/segments', { tenantId: t.tenantId, name: `${who}-segment-${++n}`, cidr: '10.0.0.0/24' }), 201);
      t.segments.add(seg.id);
      remember(who, 'segment', seg);
      const group = await own(who, 'create group', () => clients[who].post('/v1/security-groups', { tenantId: t.tenantId, name: `${who}-group-${++n}`, rules: [sshFromAnywhere] }), 201);
      t.groups.add(group.id);
      remember(who, 'securityGroup', group);
      const port = await own(who, 'create port', () => clients[who].post('/v1/ports', { segmentId: seg.id, vmId: `${who}-vm-${++n}`, hostId: who === 'bravo' ? bravoHost : shared[0] }), 201);
      t.ports.set(port.id, { segmentId: seg.id, groups: [] });
      remember(who, 'port', port);
    }
    bravoBefore = await bravoState();

    for (let step = 0; step < STEPS; step++) {
      const r = rand();
      if (r < 0.3) {
        await ownStep('bravo');
      } else if (r < 0.55) {
        await ownStep('alpha');
      } else if (r < 0.6) {
        // B's host holds only B's ports: A's view of it is that of a host that does not exist.
        const withB = await alphaCall('list ports of B-only host', () => clients.alpha.get(`/v1/ports?hostId=${bravoHost}`), bravoHost);
        const fresh = newId();
        const withFresh = await alphaCall('list ports of a fresh host', () => clients.alpha.get(`/v1/ports?hostId=${fresh}`));
        probesRun++;
        if (JSON.stringify([withB.status, withB.body]) !== JSON.stringify([withFresh.status, withFresh.body])) {
          leak('b', `ports of B's host: ${JSON.stringify(withB.body).slice(0, 200)}`);
        }
      } else {
        await probe();
      }
    }

    console.log(
      `tenant isolation (seed ${SEED}): ${operations} operations (${probesRun} probes with B's ids or fresh ids), ` +
        `leaks: (a) ${leaks.a} answers naming B, (b) ${leaks.b} answers unlike a missing id's, (c) ${leaks.c} changes to B; ` +
        `A: ${A.segments.size} segments, ${A.ports.size} ports, ${A.groups.size} groups, ${A.sessions.size} mirror sessions; B: ${B.segments.size} segments, ${B.ports.size} ports, ${B.groups.size} groups, ${B.sessions.size} mirror sessions (${bravoIds.mirrorSession.size} made)` +
        (examples.length ? `\n  ${examples.join('\n  ')}` : '') +
        (failures.length ? `\n  own steps that failed:\n  ${failures.slice(0, 10).join('\n  ')}` : ''),
    );
    expect(leaks).toEqual({ a: 0, b: 0, c: 0 });
    expect(failures).toEqual([]);
    // The workload did what it is for.
    expect(probesRun).toBeGreaterThan(STEPS / 4);
    expect(bravoIds.port.size + bravoIds.segment.size + bravoIds.securityGroup.size).toBeGreaterThan(10);
  });
});
