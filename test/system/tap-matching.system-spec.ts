import { hostSideMac } from '../../src/agent/dataplane/taps';
import { waitUntil } from '../support/agents';
import type { api } from '../support/controller-harness';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import type { Hypervisor, Topology, Vm } from './topology';

/**
 * Taps the hypervisor names, on real kernels with real agents and real packets: the agent finds
 * a VM's tap without the `tap<port id>` convention.
 *   a  hv1 10.0.0.10  its tap `vnet0`, the port's MAC with the first octet fe (as libvirt does)
 *   b  hv2 10.0.0.20  its tap `vm-b.nic0`, named by the port (`tapName`)
 * Both ports are bound before their taps exist (the reconcile loop picks the taps up), both in
 * group `pingable` (ICMP in from the segment, anything out); group `quiet` admits nothing in. The tests share one topology and run in order.
 */
const describeSystem = systemSuite('tap matching', ['nft']);

interface TestVm extends Vm {
  portId: string;
  vni: number;
}

describeSystem('taps the hypervisor names: by MAC (libvirt) and by tapName (real agents, real packets)', () => {
  const stack = new OverlayStack('tapmatch');
  let topology: Topology;
  let client: ReturnType<typeof api>;
  let segment: { id: string; vni: number };
  const groups: Record<string, string> = {};
  const vms = new Map<string, TestVm>();
  const agentLogs = () => stack.agentLogs();

  beforeAll(async () => {
    await stack.start({ hypervisors: 2 });
    ({ topology, client } = stack);
    const tenant = await client.post('/v1/tenants', { name: 'libvirt' });
    expect(tenant.status).toBe(201);
    const seg = await client.post('/v1/segments', { tenantId: tenant.body.id, name: 'vms', cidr: '10.0.0.0/24' });
    expect(seg.status).toBe(201);
    segment = seg.body;
    const pingable = await client.post('/v1/security-groups', { tenantId: tenant.body.id, name: 'pingable', rules: [
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp', remoteCidr: '10.0.0.0/24' },
        { direction: 'egress', ethertype: 'IPv4', protocol: 'any' },
      ],
    });
    expect(pingable.status).toBe(201);
    groups.pingable = pingable.body.id;
    const quiet = await client.post('/v1/security-groups', { tenantId: tenant.body.id, name: 'quiet', rules: [{ direction: 'egress', ethertype: 'IPv4', protocol: 'any' }] });
    expect(quiet.status).toBe(201);
    groups.quiet = quiet.body.id;
  }, 120_000);

  afterAll(async () => {
    await stack.stop();
  }, 60_000);

  /** A port bound to `hvName` (with `tapName` when given), then the VM behind a tap named `tap` (the port's MAC fe-prefixed on its host side when `feMac`). */
  async function addVm(name: string, hvName: string, ip: string, tap: string, opts: { tapName?: string; feMac?: boolean }): Promise<TestVm> {
    const port = await client.post('/v1/ports', { segmentId: segment.id, hostId: stack.hostIds.get(hvName), ips: [ip], vmId: name, securityGroupIds: [groups.pingable], ...(opts.tapName ? { tapName: opts.tapName } : {}) });
    expect(port.status).toBe(201);
    expect(port.body.tapName).toBe(opts.tapName ?? null);
    const hv = topology.hypervisor(hvName);
    const made = await topology.addVm(name, hv, { tap, mac: port.body.mac, ip, prefixLength: 24 });
    if (opts.feMac) {
      await topology.mustExec(hv.ns, 'ip', ['link', 'set', 'dev', tap, 'address', hostSideMac(port.body.mac)]);
    }
    const v = { ...made, portId: port.body.id, vni: segment.vni };
    vms.set(name, v);
    return v;
  }

  async function bridgeTable(hv: Hypervisor): Promise<string> {
    const result = await topology.exec(hv.ns, 'nft', ['list', 'table', 'bridge', 'overlay']);
    return result.code === 0 ? result.stdout : '';
  }

  /** The VM's tap is in its segment's bridge, up, and its port's rules are keyed by the tap's name. */
  async function ready(v: TestVm): Promise<boolean> {
    const links = JSON.parse((await topology.exec(v.hv.ns, 'ip', ['-j', 'link', 'show', 'dev', v.tap])).stdout || '[]') as { master?: string; flags: string[] }[];
    return links[0]?.master === `br${v.vni}` && links[0].flags.includes('UP') && (await bridgeTable(v.hv)).includes(`"${v.tap}" : jump p_`);
  }

  async function ping(from: Vm, ip: string): Promise<boolean> {
    return (await topology.exec(from.ns, 'ping', ['-c', '2', '-W', '1', '-q', ip])).code === 0;
  }

  async function echoesReceived(target: Vm): Promise<number> {
    const snmp = (await topology.mustExec(target.ns, 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Icmp:'));
    const [names, values] = snmp.map((l) => l.split(/\s+/));
    return Number(values[names.indexOf('InEchos')]);
  }

  it('attaches a tap found by its fe: MAC (vnet0) and one named by the port, and the VMs reach each other', async () => {
    const a = await addVm('a', 'hv1', '10.0.0.10', 'vnet0', { feMac: true });
    const b = await addVm('b', 'hv2', '10.0.0.20', 'vm-b.nic0', { tapName: 'vm-b.nic0' });
    await waitUntil(async () => (await ready(a)) && (await ready(b)), 20_000, () => `taps not attached with their rules${agentLogs()}`);
    // Nothing else of the hypervisor was taken for a tap: its uplink is where it was.
    const uplink = JSON.parse(await topology.mustExec(a.hv.ns, 'ip', ['-j', 'link', 'show', 'dev', 'eth0'])) as { master?: string }[];
    expect(uplink[0].master).toBeUndefined();
    // Either way round: the first pings may go while the other host is still learning.
    await waitUntil(() => ping(a, b.ip), 15_000, () => `a cannot ping b${agentLogs()}`);
    expect(await ping(b, a.ip)).toBe(true);
  }, 60_000);

  it("applies each port's security groups on its tap: ICMP its group no longer admits is dropped before the VM", async () => {
    const [a, b] = [vms.get('a')!, vms.get('b')!];
    const quietB = await client.patch(`/v1/ports/${b.portId}?wait=realized&timeout=15000`, { securityGroupIds: [groups.quiet] });
    expect(quietB.body.realized).toBe(true);
    let before = await echoesReceived(b);
    expect(await ping(a, b.ip)).toBe(false);
    expect(await echoesReceived(b)).toBe(before);

    const quietA = await client.patch(`/v1/ports/${a.portId}?wait=realized&timeout=15000`, { securityGroupIds: [groups.quiet] });
    expect(quietA.body.realized).toBe(true);
    before = await echoesReceived(a);
    expect(await ping(b, a.ip)).toBe(false);
    expect(await echoesReceived(a)).toBe(before);

    // Back in the group, both ways pass again: the drops were the rules, not a broken path.
    for (const v of [a, b]) {
      expect((await client.patch(`/v1/ports/${v.portId}?wait=realized&timeout=15000`, { securityGroupIds: [groups.pingable] })).body.realized).toBe(true);
    }
    expect(await ping(a, b.ip)).toBe(true);
    expect(await ping(b, a.ip)).toBe(true);
  }, 60_000);

  it('detaches a named tap whose port is deleted, and closes it by name in the firewall meanwhile', async () => {
    const [a, b] = [vms.get('a')!, vms.get('b')!];
    expect((await client.delete(`/v1/ports/${b.portId}?wait=realized&timeout=15000`)).status).toBe(204);
    await waitUntil(
      async () => {
        const links = JSON.parse(await topology.mustExec(b.hv.ns, 'ip', ['-j', 'link', 'show', 'dev', b.tap])) as { master?: string }[];
        return links[0]?.master === undefined;
      },
      15_000,
      () => `vm-b.nic0 still attached${agentLogs()}`,
    );
    expect(await ping(a, b.ip)).toBe(false);
    // hv1 still names vnet0 among the taps closed without a policy.
    expect(await bridgeTable(a.hv)).toMatch(/set named_taps \{[^}]*"vnet0"/);
  }, 60_000);
});
