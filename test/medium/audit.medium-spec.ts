import { HostObservationRepository, type StoredHostObservation } from '../../src/controller/distribution/host-observation.repository';
import type { ObservedInventory } from '../../src/controller/model/observed-inventory';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { created, factories } from '../support/factories';
import { bond, inventory, nic } from '../support/audit-worlds';

/**
 * GET /v1/audit over a small world built through the API (hosts with declared inventory, a VLAN
 * segment, ports, a mirror session) and one host's observation stored as its agent's report would
 * be: the statuses and findings of the 13 recommendations, who may read it, and a change of the
 * world seen at once.
 */
describe('GET /v1/audit', () => {
  const prefix = uniquePrefix('audit');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  const ids: Record<string, string> = {};

  const uplinks = [
    { name: 'eth0', driver: 'ixgbe', pciAddress: '0000:3b:00.0', switch: 'tor-a', switchPort: 'Ethernet1', team: 'bond0', mode: 'active', failureDetection: 'link-state' },
    { name: 'eth1', driver: 'i40e', pciAddress: '0000:5e:00.0', switch: 'tor-b', switchPort: 'Ethernet1', team: 'bond0', mode: 'standby', failureDetection: 'link-state' },
  ];

  /** What hv1's agent reports: eth1 turns out to be an ixgbe like eth0; the VTEP over the bond; LLDP says both switch ports carry VLAN 301; p1's tap promiscuous. */
  function hv1Observation(at: number, p1Promiscuity: number): StoredHostObservation {
    const observed: ObservedInventory = inventory(
      [
        nic('eth0', { driver: 'ixgbe', pci: '0000:3b:00.0', switch: 'tor-a', vlans: [301], master: 'bond0' }),
        nic('eth1', { driver: 'ixgbe', pci: '0000:5e:00.0', switch: 'tor-b', vlans: [301], master: 'bond0' }),
        bond('bond0', { members: [{ name: 'eth0', up: true, active: true }, { name: 'eth1', up: true, active: false }] }),
      ],
      'bond0',
      [{ destination: '192.0.2.62', devices: ['bond0'] }],
    );
    // `inventory` is written whether or not StoredHostObservation declares it yet (the agent's side is another change).
    return { at, taps: [{ portId: ids.p1, promiscuity: p1Promiscuity, bridged: true }], bridges: [], inventory: observed };
  }

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    const f = factories(client);
    const tenant = await f.tenant();
    ids.tenant = tenant.id;
    ids.segment = (await f.segment(tenant.id, { vlanId: 301 })).id;
    ids.hv1 = (await f.host({ name: 'audit-hv1', vtepIp: '192.0.2.61', inventory: { uplinks, trunkedVlans: [301] } })).id;
    // hv2's declared trunk lacks VLAN 301; its agent never reports.
    ids.hv2 = (await f.host({ name: 'audit-hv2', vtepIp: '192.0.2.62', inventory: { uplinks, trunkedVlans: [302] } })).id;
    ids.p1 = (await f.port(ids.segment, { hostId: ids.hv1 })).id;
    ids.p2 = (await f.port(ids.segment, { hostId: ids.hv2 })).id;
    ids.analyzer = (await f.port(ids.segment, { hostId: ids.hv1, role: 'analyzer' })).id;
    ids.session = (await created(client.post('/v1/mirror-sessions', { tenantId: tenant.id, name: 'tap-p1', sources: [{ portId: ids.p1, direction: 'ingress' }], sink: { type: 'port', portId: ids.analyzer } }))).id;
    await ctl.app.get(HostObservationRepository).write(ids.hv1, hv1Observation(Date.parse('2026-01-01T00:00:00.000Z'), 2));
  });

  afterAll(async () => {
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  const findings = async (query: string): Promise<any> => {
    const res = await client.get(`/v1/audit/findings${query}`);
    expect(res.status).toBe(200);
    return res.body;
  };
  const audit = async (c = client): Promise<any> => {
    const res = await c.get('/v1/audit');
    expect(res.status).toBe(200);
    return res.body;
  };
  const ID = expect.stringMatching(/^[0-9a-f]{16}$/);
  const SINCE = expect.stringMatching(/^\d{4}-\d\d-\d\dT/);
  const byId = (report: any): Record<string, any> => Object.fromEntries(report.recommendations.map((r: any) => [r.id, r]));

  it('answers the 13 recommendations in order, with statuses and findings from the declared and observed state', async () => {
    const report = await audit();
    expect(report.revision).toBeGreaterThan(0);
    expect(Date.parse(report.generatedAt)).not.toBeNaN();
    expect(report.recommendations.map((r: any) => r.id)).toEqual(['VM-VN-R1', 'VM-VN-R2', 'VM-VN-R3', 'VM-MP-R1', 'VM-MP-R2', 'VM-MP-R3', 'VM-FW-R1', 'VM-FW-R2', 'VM-FW-R3', 'VM-FW-R4', 'VM-TM-R1', 'VM-TM-R2', 'VM-TM-R3']);
    const r = byId(report);
    expect(Object.fromEntries(report.recommendations.map((x: any) => [x.id, x.status]))).toEqual({
      'VM-VN-R1': 'fail', // hv2's declared trunk lacks VLAN 301
      'VM-VN-R2': 'pass',
      'VM-VN-R3': 'fail', // hv1 reported but its agent is not connected; hv2 never heard from
      'VM-MP-R1': 'fail', // eth0 and eth1 both ixgbe on hv1 (declared i40e)
      'VM-MP-R2': 'unknown', // hv2's declaration unverified
      'VM-MP-R3': 'unknown',
      'VM-FW-R1': 'pass',
      'VM-FW-R2': 'fail', // hv1's rules may be stale: agent not connected
      'VM-FW-R3': 'pass',
      'VM-FW-R4': 'pass',
      'VM-TM-R1': 'pass', // one direction only: a low finding
      'VM-TM-R2': 'fail', // p1's tap promiscuous
      'VM-TM-R3': 'pass',
    });
    expect(r['VM-VN-R1'].findings).toEqual([
      { id: ID, severity: 'high', subject: { hostId: ids.hv2, segmentId: ids.segment }, evidence: 'host audit-hv2 has ports on VLAN 301 but its trunk carries 302 (declared)', since: SINCE },
      { id: ID, severity: 'low', subject: { hostId: ids.hv2 }, evidence: 'VLAN 302 trunked to host audit-hv2 belongs to no segment (declared): the infrastructure\'s, or sprawl', since: SINCE },
    ]);
    expect(r['VM-MP-R1'].findings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ severity: 'medium', subject: { hostId: ids.hv1, link: 'bond0' }, evidence: 'team bond0: eth0 ixgbe (observed), eth1 ixgbe (observed) share driver ixgbe' }),
        expect.objectContaining({ severity: 'medium', subject: { hostId: ids.hv1, link: 'eth1' }, evidence: expect.stringContaining('declared driver i40e, observed ixgbe') }),
        expect.objectContaining({ severity: 'unknown', subject: { hostId: ids.hv2 } }),
      ]),
    );
    expect(r['VM-MP-R1'].findings).toHaveLength(3);
    expect(r['VM-MP-R2'].findings).toEqual([expect.objectContaining({ severity: 'unknown', subject: { hostId: ids.hv2 } })]);
    expect(r['VM-TM-R1'].findings).toEqual([{ severity: 'low', subject: { sessionId: ids.session, portId: ids.p1 }, evidence: `session tap-p1 copies only what port ${ids.p1} receives (direction ingress)`, since: SINCE, id: ID }]);
    expect(r['VM-TM-R2'].findings).toEqual([
      expect.objectContaining({ severity: 'high', subject: { hostId: ids.hv1, portId: ids.p1 }, evidence: expect.stringContaining('promiscuity 2, observed at 2026-01-01T00:00:00.000Z') }),
      expect.objectContaining({ severity: 'unknown', subject: { hostId: ids.hv2 } }),
    ]);
    const agents = r['VM-VN-R3'].findings.map((f: any) => [f.subject.hostId, f.severity]).sort();
    expect(agents).toEqual(
      [
        [ids.hv1, 'medium'],
        [ids.hv2, 'unknown'],
      ].sort(),
    );
  });

  it('follows the world: a change through the API or a new observation shows at once, and the history closes what went away', async () => {
    const before = byId(await audit());
    const stillOpen = before['VM-TM-R2'].findings.find((f: any) => f.severity === 'unknown');
    const promiscuous = before['VM-TM-R2'].findings.find((f: any) => f.severity === 'high');
    expect((await client.patch(`/v1/hosts/${ids.hv2}`, { inventory: { uplinks, trunkedVlans: [301] } })).status).toBe(200);
    await ctl.app.get(HostObservationRepository).write(ids.hv1, hv1Observation(Date.parse('2026-01-01T00:01:00.000Z'), 1));
    const after = await audit();
    const r = byId(after);
    expect(r['VM-VN-R1'].status).toBe('pass');
    expect(r['VM-VN-R1'].findings).toEqual([]);
    expect(r['VM-TM-R2'].status).toBe('unknown');
    // The same finding, open since it was first seen.
    expect(r['VM-TM-R2'].findings).toEqual([{ ...stillOpen, evidence: expect.any(String) }]);

    const closed = await findings('?state=closed');
    const closedIds = closed.items.map((f: any) => f.id);
    expect(closedIds).toEqual(expect.arrayContaining([...before['VM-VN-R1'].findings.map((f: any) => f.id), promiscuous.id]));
    for (const f of closed.items) {
      expect(Date.parse(f.closedAt)).toBeGreaterThanOrEqual(Date.parse(f.openedAt));
    }
    expect(closed.items.find((f: any) => f.id === promiscuous.id)).toEqual({
      id: promiscuous.id,
      recommendation: 'VM-TM-R2',
      severity: 'high',
      subject: promiscuous.subject,
      evidence: promiscuous.evidence,
      openedAt: promiscuous.since,
      closedAt: expect.any(String),
    });
    const open = await findings('?state=open&recommendation=VM-TM-R2');
    expect(open.items).toEqual([expect.objectContaining({ id: stillOpen.id, openedAt: stillOpen.since, closedAt: null })]);
    expect(Date.parse(open.evaluatedAt)).toBeGreaterThanOrEqual(Date.parse(stillOpen.since));
  });

  it('lists the history newest first, filtered and paged, and refuses a bad query naming the parameter', async () => {
    const all = await findings('?limit=1000');
    const keys = all.items.map((f: any) => Date.parse(f.openedAt));
    expect(keys).toEqual([...keys].sort((a, b) => b - a));
    expect(all.nextCursor).toBeNull();
    // Paged one by one, the same records in the same order.
    const paged: any[] = [];
    for (let cursor: string | null = null, pages = 0; pages === 0 || cursor !== null; pages++) {
      const page: any = await findings(`?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(1);
      paged.push(...page.items);
      cursor = page.nextCursor;
      expect(pages).toBeLessThan(all.items.length + 1);
    }
    expect(paged).toEqual(all.items);
    // hv2's findings only; findings open after everything closed: the open ones.
    const hv2 = await findings(`?hostId=${ids.hv2}`);
    expect(hv2.items.length).toBeGreaterThan(0);
    expect(hv2.items.every((f: any) => f.subject.hostId === ids.hv2)).toBe(true);
    const latestClose = Math.max(...all.items.filter((f: any) => f.closedAt).map((f: any) => Date.parse(f.closedAt)));
    const later = await findings(`?since=${new Date(latestClose + 1).toISOString()}`);
    expect(later.items.map((f: any) => f.id).sort()).toEqual(all.items.filter((f: any) => f.closedAt === null).map((f: any) => f.id).sort());
    const high = await findings('?severity=high');
    expect(high.items.every((f: any) => f.severity === 'high')).toBe(true);

    for (const [query, status, code, field] of [
      ['?since=yesterday', 400, 'INVALID_VALUE', 'since'],
      ['?until=2026-13-01T00:00:00Z', 400, 'INVALID_VALUE', 'until'],
      ['?state=gone', 400, 'INVALID_VALUE', 'state'],
      ['?recommendation=VM-XX-R9', 400, 'INVALID_VALUE', 'recommendation'],
      ['?severity=critical', 400, 'INVALID_VALUE', 'severity'],
      ['?cursor=abc', 400, 'INVALID_CURSOR', 'cursor'],
      ['?limit=0', 400, 'INVALID_VALUE', 'limit'],
      ['?hostId=nope', 400, 'INVALID_ID', 'hostId'],
      ['?tenantId=x', 400, 'UNKNOWN_PARAMETER', 'tenantId'],
    ] as const) {
      const res = await client.get(`/v1/audit/findings${query}`);
      expect([query, res.status, res.body.code, res.body.field]).toEqual([query, status, code, field]);
    }
  });

  it('is for admin, operator and auditor tokens; a tenant token gets 403', async () => {
    for (const role of ['operator', 'auditor']) {
      const token = (await created(client.post('/v1/tokens', { name: `audit-${role}`, role }))).token;
      expect((await api(ctl.url, token).get('/v1/audit')).status).toBe(200);
      expect((await api(ctl.url, token).get('/v1/audit/findings')).status).toBe(200);
    }
    const tenantToken = (await created(client.post('/v1/tokens', { name: 'audit-tenant', role: 'tenant', tenantId: ids.tenant }))).token;
    for (const path of ['/v1/audit', '/v1/audit/findings']) {
      const refused = await api(ctl.url, tenantToken).get(path);
      expect(refused.status).toBe(403);
      expect(refused.body.code).toBe('FORBIDDEN');
    }
  });
});
