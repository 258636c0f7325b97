import { tapName } from '../../src/agent/dataplane/names';
import { waitUntil } from '../support/agents';
import type { api } from '../support/controller-harness';
import { Lldpd, vlanNameTlv } from './lldpd';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import type { Topology } from './topology';
import { uplinksAsNics } from './uplinks-as-nics';

/**
 * LLDP with real frames, into the observed inventory and the audit (NIST SP 800-125B VM-VN-R1).
 *
 * The underlay's bridge is the switch, `leaf-1`: an lldpd in its namespace sends on its ports
 * `ul-hv1` and `ul-hv2` every second, the port id being the port's name, and for the VLANs each
 * port carries an 802.1 VLAN Name TLV. This kernel has no 802.1Q devices for lldpd to find VLANs
 * on, so the switch sends them as custom TLVs (OUI 00-80-C2, subtype 3), which the receiving
 * lldpd decodes as it decodes any switch's. Each hypervisor runs a receive-only lldpd on its
 * uplink `eth0`, on a socket of its own, which its agent asks (OVERLAY_LLDPD_SOCKET) every
 * second (OVERLAY_INVENTORY_INTERVAL_MS). `eth0` is a veth, which the inventory leaves out: the
 * agents see it as a NIC through uplinksAsNics.
 *
 * Tenant t: segment blue on VLAN 100 with VM a on hv1, segment green on VLAN 200 with VM b on hv2.
 */
const describeSystem = systemSuite('lldp', ['lldpd', 'lldpcli']);

const VLANS = { blue: 100, green: 200 } as const;

describeSystem('LLDP from a switch namespace: the observed inventory and VM-VN-R1 follow the VLANs its ports carry', () => {
  const stack = new OverlayStack('system-lldp');
  let topology: Topology;
  let client: ReturnType<typeof api>;
  const { hostIds } = stack;
  const segments = new Map<string, string>();
  let lldpds: Lldpd[] = [];
  let leaf: Lldpd;
  const logs = () => `${stack.agentLogs(20)}\n${lldpds.flatMap((l) => l.log.slice(-10).map((line) => `${l.ns} ${line}`)).join('\n')}`;

  beforeAll(async () => {
    await stack.start({
      hypervisors: 2,
      agentEnvOf: (hv, topo) => ({ ...uplinksAsNics(topo, hv), OVERLAY_INVENTORY_INTERVAL_MS: '1000', OVERLAY_LLDPD_SOCKET: Lldpd.socketOf(topo, hv.name) }),
    });
    ({ topology, client } = stack);
    leaf = await Lldpd.start(topology, topology.underlay, 'leaf-1', {
      interfaces: ['ul-hv1', 'ul-hv2'],
      config: [
        'configure system hostname leaf-1',
        'configure lldp portidsubtype ifname',
        'configure lldp tx-interval 1',
        `configure ports ul-hv1 lldp custom-tlv add oui 00,80,c2 subtype 3 oui-info ${vlanNameTlv(VLANS.blue, 'blue')}`,
        `configure ports ul-hv2 lldp custom-tlv add oui 00,80,c2 subtype 3 oui-info ${vlanNameTlv(VLANS.green, 'green')}`,
      ],
    });
    lldpds = [leaf];
    for (const hv of topology.hypervisors) {
      // On the socket its agent's OVERLAY_LLDPD_SOCKET names.
      lldpds.push(await Lldpd.start(topology, hv.ns, hv.name, { interfaces: ['eth0'], receiveOnly: true }));
    }
    const tenant = await client.post('/v1/tenants', { name: 't' });
    expect(tenant.status).toBe(201);
    for (const [name, vlanId] of Object.entries(VLANS)) {
      const segment = await client.post('/v1/segments', { tenantId: tenant.body.id, name, cidr: `10.${vlanId / 100}.0.0/24`, vlanId });
      expect(segment.status).toBe(201);
      segments.set(name, segment.body.id);
    }
    await addVm('a', 'hv1', 'blue', '10.1.0.10');
    await addVm('b', 'hv2', 'green', '10.2.0.20');
  }, 120_000);

  afterAll(async () => {
    await Promise.all(lldpds.map((l) => l.stop()));
    await stack.stop();
  }, 60_000);

  async function addVm(name: string, hv: string, segment: string, ip: string): Promise<void> {
    const port = await client.post('/v1/ports', { segmentId: segments.get(segment), vmId: name, ips: [ip] });
    expect(port.status).toBe(201);
    await topology.addVm(name, topology.hypervisor(hv), { tap: tapName(port.body.id), mac: port.body.mac, ip, prefixLength: 24 });
    const bound = await client.patch(`/v1/ports/${port.body.id}?wait=realized&timeout=15000`, { hostId: hostIds.get(hv) });
    expect(bound.status).toBe(200);
  }

  /** The LLDP neighbour the controller shows on a hypervisor's `eth0` (GET /v1/hosts/{id}: observed.inventory). */
  async function eth0(hv: string) {
    const host = await client.get(`/v1/hosts/${hostIds.get(hv)}`);
    return (host.body.observed?.inventory?.links ?? []).find((l: { name: string }) => l.name === 'eth0');
  }

  async function untilVlans(hv: string, vlans: number[]): Promise<void> {
    let seen: unknown;
    await waitUntil(async () => JSON.stringify((seen = await eth0(hv))?.lldp?.vlans) === JSON.stringify(vlans), 20_000, () => `${hv}'s eth0 never showed VLANs ${vlans}: ${JSON.stringify(seen)}${logs()}`);
  }

  async function vnR1(): Promise<{ status: string; findings: { severity: string; subject: Record<string, string>; evidence: string }[] }> {
    const audit = await client.get('/v1/audit');
    expect(audit.status).toBe(200);
    return audit.body.recommendations.find((r: { id: string }) => r.id === 'VM-VN-R1');
  }

  /** Waits until VM-VN-R1 says `status`, and returns it. */
  async function untilVnR1(status: string): Promise<Awaited<ReturnType<typeof vnR1>>> {
    let last: Awaited<ReturnType<typeof vnR1>> | undefined;
    await waitUntil(async () => (last = await vnR1()).status === status, 20_000, () => `VM-VN-R1 stayed ${JSON.stringify(last)}${logs()}`);
    return last!;
  }

  /** What the switch port facing `hv` says it carries: exactly these VLANs, from its next frame on. */
  async function trunk(hv: string, vlans: number[]): Promise<void> {
    await leaf.cli(['unconfigure', 'ports', `ul-${hv}`, 'lldp', 'custom-tlv']);
    for (const vlan of vlans) {
      await leaf.cli(['configure', 'ports', `ul-${hv}`, 'lldp', 'custom-tlv', 'add', 'oui', '00,80,c2', 'subtype', '3', 'oui-info', vlanNameTlv(vlan, `v${vlan}`)]);
    }
  }

  it("the receiving lldpd decodes the switch's 802.1 VLAN Name TLVs into the VLAN entries the agent reads", async () => {
    const hv1 = lldpds[1];
    let neighbours: { lldp?: { interface?: Record<string, { chassis?: Record<string, unknown>; vlan?: unknown }> } } = {};
    await waitUntil(
      async () => {
        neighbours = JSON.parse(await hv1.cli(['-f', 'json', 'show', 'neighbors', 'details']));
        return neighbours.lldp?.interface?.eth0?.vlan !== undefined;
      },
      15_000,
      () => `hv1's lldpd heard no VLAN: ${JSON.stringify(neighbours)}${logs()}`,
    );
    const heard = neighbours.lldp!.interface!.eth0;
    expect(Object.keys(heard.chassis ?? {})).toEqual(['leaf-1']);
    // One VLAN: lldpcli prints it bare, not in an array (lldp.ts reads both).
    expect(heard.vlan).toEqual({ 'vlan-id': '100', pvid: false, value: 'blue' });
  });

  it("each hypervisor's observed inventory shows its switch, port and VLANs on eth0", async () => {
    await untilVlans('hv1', [VLANS.blue]);
    await untilVlans('hv2', [VLANS.green]);
    expect(await eth0('hv1')).toMatchObject({
      name: 'eth0',
      kind: 'physical',
      up: true,
      lldp: { chassisId: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/), systemName: 'leaf-1', portId: 'ul-hv1', portDescription: 'ul-hv1', vlans: [VLANS.blue] },
    });
    expect((await eth0('hv2')).lldp).toMatchObject({ systemName: 'leaf-1', portId: 'ul-hv2', vlans: [VLANS.green] });
  });

  it('VM-VN-R1 passes: each switch port carries the VLAN of the ports its host holds, and no other', async () => {
    expect(await untilVnR1('pass')).toMatchObject({ status: 'pass', findings: [] });
  });

  it("a switch port that drops the segment's VLAN: a high missing-trunk finding on that link", async () => {
    await trunk('hv1', [300]);
    await untilVlans('hv1', [300]);
    const r1 = await untilVnR1('fail');
    expect(r1.findings.map((f) => [f.severity, f.subject])).toEqual([
      ['high', { hostId: hostIds.get('hv1'), segmentId: segments.get('blue'), link: 'eth0' }],
      ['low', { hostId: hostIds.get('hv1') }],
    ]);
    expect(r1.findings[0].evidence).toMatch(/^host hv1 has ports on VLAN 100 but eth0's switch port carries 300 \(observed by LLDP from leaf-1 port ul-hv1 at /);
    expect(r1.findings[1].evidence).toMatch(/^VLAN 300 trunked to host hv1 belongs to no segment/);
  });

  it("a switch port that also carries another segment's VLAN: sprawl, medium, no missing trunk", async () => {
    await trunk('hv1', [VLANS.blue, VLANS.green]);
    await untilVlans('hv1', [VLANS.blue, VLANS.green]);
    const r1 = await untilVnR1('fail');
    expect(r1.findings.map((f) => [f.severity, f.subject])).toEqual([['medium', { hostId: hostIds.get('hv1'), segmentId: segments.get('green') }]]);
    expect(r1.findings[0].evidence).toMatch(/^VLAN 200 \(segment .+\) trunked to host hv1 with no port of it there \(eth0, observed by LLDP from leaf-1 port ul-hv1 at /);
  });

  it('the port back to its one VLAN: the findings close', async () => {
    await trunk('hv1', [VLANS.blue]);
    await untilVlans('hv1', [VLANS.blue]);
    expect(await untilVnR1('pass')).toMatchObject({ status: 'pass', findings: [] });
  });

  it('the switch stops speaking LLDP: the neighbour goes, and with nothing declared the VLANs are unknown, not absent', async () => {
    // lldpd says goodbye as it stops (a frame of TTL 0): the hypervisors' lldpd drop it at once.
    await leaf.stop();
    let seen: unknown[] = [];
    await waitUntil(async () => (seen = [await eth0('hv1'), await eth0('hv2')]).every((link) => link?.lldp === null), 20_000, () => `the neighbour stayed: ${JSON.stringify(seen)}${logs()}`);
    const r1 = await untilVnR1('unknown');
    expect(r1.findings.map((f) => [f.severity, f.subject])).toEqual(
      ['hv1', 'hv2']
        .map((hv) => hostIds.get(hv)!)
        .sort()
        .map((hostId) => ['unknown', { hostId }]),
    );
    expect(r1.findings.map((f) => f.evidence)).toEqual(expect.arrayContaining([`host hv1 needs VLAN(s) 100; its switch ports' VLANs are unknown (no LLDP VLANs observed, none declared)`]));
  });
});
