import type { ChildProcess } from 'node:child_process';
import { tapName } from '../../src/agent/dataplane/names';
import { waitUntil } from '../support/agents';
import type { api } from '../support/controller-harness';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import { must, type Hypervisor, type Topology, type Vm } from './topology';
import { uplinksAsNics } from './uplinks-as-nics';

/**
 * Routed redundancy with real packets (NIST SP 800-125B VM-MP-R3): hv1's VTEP 198.51.100.1 is on
 * `lo`, reached over two uplinks, `up1` to leaf 1 and `up2` to leaf 2, by a multipath route, no
 * bond (Topology's `routed`). hv2 sits on the underlay, as usual, and reaches hv1 through either
 * leaf. One uplink fails as a cable does (the leaf's port shuts, hv1 sees its carrier go): VXLAN
 * traffic between the VMs keeps flowing over the other, and hv1's observed inventory and the
 * audit's routed team `routed:lo` follow the link down and back up.
 *
 * What makes the failover real is hv1's `net.ipv4.conf.all.ignore_routes_with_linkdown=1` (set
 * by the topology): without it the kernel flags the nexthop linkdown yet keeps hashing flows to
 * it, and they are lost (the other leaf answers for the return path the same way, see
 * Topology). The kernel hashes flows to nexthops by addresses (fib_multipath_hash_policy 0): the
 * VXLAN packets from hv1 to hv2 all take one uplink, the one the test cuts, found by counting.
 *
 * hv1's agent collects its inventory every second, and sees its veth uplinks as NICs
 * (uplinksAsNics); hv2's collects none, so that VM-MP-R3 speaks of hv1 alone. hv1's declared
 * inventory names each uplink's switch (the leaves send no LLDP here: the LLDP spec does that).
 *
 * Tenant t, segment 10.80.0.0/24, group `icmp-in`: VM a on hv1 (10.80.0.10), b on hv2 (10.80.0.20).
 */
const describeSystem = systemSuite('routed-multipath');

describeSystem('routed multipath: a VTEP on lo over two uplinks, one fails, VXLAN keeps flowing and VM-MP-R3 follows', () => {
  const stack = new OverlayStack('system-routed-multipath');
  let topology: Topology;
  let client: ReturnType<typeof api>;
  let hv1: Hypervisor;
  const { hostIds } = stack;
  const vms = new Map<string, Vm>();
  /** The uplink the VMs' VXLAN traffic takes (the kernel's hash picks it), and the other. */
  let carrying = '';
  let other = '';
  let stream: ChildProcess | undefined;
  const logs = () => stack.agentLogs(20);

  beforeAll(async () => {
    await stack.start({
      hypervisors: 2,
      topology: { routed: ['hv1'] },
      agentEnvOf: (hv, topo) => (hv.name === 'hv1' ? { ...uplinksAsNics(topo, hv), OVERLAY_INVENTORY_INTERVAL_MS: '1000' } : { OVERLAY_INVENTORY_INTERVAL_MS: '0' }),
    });
    ({ topology, client } = stack);
    hv1 = topology.hypervisor('hv1');
    const declared = await client.patch(`/v1/hosts/${hostIds.get('hv1')}`, {
      inventory: {
        uplinks: [
          { name: 'up1', switch: 'leaf-1' },
          { name: 'up2', switch: 'leaf-2' },
        ],
      },
    });
    expect(declared.status).toBe(200);
    const tenant = await client.post('/v1/tenants', { name: 't' });
    const segment = await client.post('/v1/segments', { tenantId: tenant.body.id, name: 'net', cidr: '10.80.0.0/24' });
    const group = await client.post('/v1/security-groups', {
      tenantId: tenant.body.id,
      name: 'icmp-in',
      rules: [
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp' },
        { direction: 'egress', ethertype: 'IPv4', protocol: 'any' },
      ],
    });
    expect([tenant.status, segment.status, group.status]).toEqual([201, 201, 201]);
    for (const [name, hv, ip] of [
      ['a', 'hv1', '10.80.0.10'],
      ['b', 'hv2', '10.80.0.20'],
    ]) {
      const port = await client.post('/v1/ports', { segmentId: segment.body.id, vmId: name, ips: [ip], securityGroupIds: [group.body.id] });
      expect(port.status).toBe(201);
      vms.set(name, await topology.addVm(name, topology.hypervisor(hv), { tap: tapName(port.body.id), mac: port.body.mac, ip, prefixLength: 24 }));
      const bound = await client.patch(`/v1/ports/${port.body.id}?wait=realized&timeout=15000`, { hostId: hostIds.get(hv) });
      expect(bound.status).toBe(200);
    }
    await waitUntil(async () => (await pings(1)).received === 1, 30_000, () => `a cannot ping b${logs()}`);
  }, 120_000);

  afterAll(async () => {
    stream?.kill('SIGINT');
    await stack.stop();
  }, 60_000);

  /** `count` pings from a to b, 20 ms apart; how many were answered. */
  async function pings(count: number): Promise<{ received: number }> {
    const out = await topology.exec(vms.get('a')!.ns, 'ping', ['-c', String(count), '-i', '0.02', '-W', '1', '-q', vms.get('b')!.ip]);
    return { received: Number(/(\d+) received/.exec(out.stdout)?.[1] ?? 0) };
  }

  /** Packets sent on each of hv1's uplinks so far. */
  async function sent(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const uplink of hv1.uplinks) {
      const [link] = JSON.parse(await must('ip', ['-n', hv1.ns, '-s', '-j', 'link', 'show', uplink])) as { stats64: { tx: { packets: number } } }[];
      out[uplink] = link.stats64.tx.packets;
    }
    return out;
  }

  /** What each uplink sent while `traffic` ran. */
  async function sentDuring(traffic: () => Promise<unknown>): Promise<Record<string, number>> {
    const before = await sent();
    await traffic();
    const after = await sent();
    return Object.fromEntries(hv1.uplinks.map((u) => [u, after[u] - before[u]]));
  }

  /** The flags of the nexthop through `uplink` of hv1's route to hv2's VTEP (`linkdown`, `dead`). */
  async function nexthopFlags(uplink: string): Promise<string[]> {
    const [route] = JSON.parse(await must('ip', ['-n', hv1.ns, '-j', 'route', 'get', topology.hypervisor('hv2').vtepIp, 'fibmatch'])) as { nexthops: { dev: string; flags: string[] }[] }[];
    return route.nexthops.find((n) => n.dev === uplink)?.flags ?? [];
  }

  async function carrier(uplink: string): Promise<boolean> {
    const [link] = JSON.parse(await must('ip', ['-n', hv1.ns, '-j', 'link', 'show', uplink])) as { flags: string[] }[];
    return link.flags.includes('LOWER_UP');
  }

  async function observedInventory() {
    return (await client.get(`/v1/hosts/${hostIds.get('hv1')}`)).body.observed?.inventory;
  }

  async function untilUplinkObserved(uplink: string, up: boolean): Promise<void> {
    let seen: unknown;
    await waitUntil(async () => (seen = await observedInventory())?.links?.find((l: { name: string }) => l.name === uplink)?.up === up, 20_000, () => `hv1's ${uplink} never observed up=${up}: ${JSON.stringify(seen)}${logs()}`);
  }

  async function mpR3(): Promise<{ status: string; findings: { severity: string; subject: Record<string, string>; evidence: string; id: string; since: string | null }[] }> {
    const audit = await client.get('/v1/audit');
    expect(audit.status).toBe(200);
    return audit.body.recommendations.find((r: { id: string }) => r.id === 'VM-MP-R3');
  }

  async function untilMpR3(status: string): Promise<Awaited<ReturnType<typeof mpR3>>> {
    let last: Awaited<ReturnType<typeof mpR3>> | undefined;
    await waitUntil(async () => (last = await mpR3()).status === status, 20_000, () => `VM-MP-R3 stayed ${JSON.stringify(last)}${logs()}`);
    return last!;
  }

  it("hv1's observed inventory: the VTEP on lo, routed to hv2's over up1 and up2; VM-MP-R3 sees a routed team of two and passes", async () => {
    let inventory = await observedInventory();
    await waitUntil(async () => (inventory = await observedInventory())?.vtepRoutes?.length === 1, 20_000, () => `no VTEP route observed: ${JSON.stringify(inventory)}${logs()}`);
    expect(inventory.vtepDevice).toBe('lo');
    expect(inventory.vtepRoutes).toEqual([{ destination: topology.hypervisor('hv2').vtepIp, devices: ['up1', 'up2'] }]);
    expect(inventory.links.filter((l: { name: string }) => ['lo', 'up1', 'up2'].includes(l.name)).map((l: { name: string; kind: string; up: boolean }) => [l.name, l.kind, l.up])).toEqual([
      ['lo', 'loopback', true],
      ['up1', 'physical', true],
      ['up2', 'physical', true],
    ]);
    expect(await untilMpR3('pass')).toMatchObject({ status: 'pass', findings: [] });
  });

  it('the uplink carrying the VXLAN traffic loses its carrier: the traffic moves to the other, a stream of pings keeps being answered', async () => {
    const before = await sentDuring(() => pings(50));
    [carrying, other] = before.up1 > before.up2 ? ['up1', 'up2'] : ['up2', 'up1'];
    // One uplink carries it all (the hash of hv1's and hv2's addresses): a's 50 requests, the other next to nothing.
    expect(before[carrying]).toBeGreaterThanOrEqual(50);
    expect(before[other]).toBeLessThan(50);

    const replies = new Set<number>();
    stream = topology.spawnIn(vms.get('a')!.ns, 'ping', ['-i', '0.02', '-W', '1', vms.get('b')!.ip]);
    stream.stdout!.on('data', (d: Buffer) => {
      for (const m of d.toString().matchAll(/icmp_seq=(\d+) ttl/g)) {
        replies.add(Number(m[1]));
      }
    });
    await waitUntil(() => replies.size >= 20, 10_000, () => `the stream of pings is not answered${logs()}`);
    await topology.setUplink(hv1, carrying, 'down');
    let flags: string[] = [];
    await waitUntil(async () => (flags = await nexthopFlags(carrying)).includes('dead'), 10_000, () => `the route kept using ${carrying} (nexthop flags ${JSON.stringify(flags)})`);
    const atCut = Math.max(...replies);
    // The same stream (one flow, one VXLAN source port) answered again, 50 times, after the cut.
    await waitUntil(() => [...replies].filter((s) => s > atCut).length >= 50, 15_000, () => `the stream stopped at the cut (last reply ${Math.max(...replies)}, cut after ${atCut})${logs()}`);
    stream.kill('SIGINT');
    stream = undefined;
    const after = await sentDuring(async () => expect(await pings(50)).toEqual({ received: 50 }));
    expect(after[other]).toBeGreaterThanOrEqual(50);
    expect(after[carrying]).toBe(0);
  });

  it("hv1's observed inventory shows the uplink down, and VM-MP-R3 a medium finding on the routed team", async () => {
    await untilUplinkObserved(carrying, false);
    const inventory = await observedInventory();
    // The multipath route keeps the nexthop (flagged dead linkdown): the route lists both uplinks, the link says which is down.
    expect(inventory.vtepRoutes).toEqual([{ destination: topology.hypervisor('hv2').vtepIp, devices: ['up1', 'up2'] }]);
    expect(inventory.links.find((l: { name: string }) => l.name === other).up).toBe(true);
    const r3 = await untilMpR3('fail');
    expect(r3.findings).toEqual([{ severity: 'medium', subject: { hostId: hostIds.get('hv1'), link: 'routed:lo' }, evidence: `team routed:lo: member(s) ${carrying} down (observed)`, id: expect.stringMatching(/^[0-9a-f]{16}$/), since: expect.any(String) }]);
  });

  it('the uplink comes back: the finding closes, and the traffic takes it again', async () => {
    await topology.setUplink(hv1, carrying, 'up');
    await waitUntil(() => carrier(carrying), 10_000, () => `${carrying} did not get its carrier back`);
    await untilUplinkObserved(carrying, true);
    expect(await untilMpR3('pass')).toMatchObject({ status: 'pass', findings: [] });
    // The same hash, the same nexthop again.
    const again = await sentDuring(async () => expect(await pings(50)).toEqual({ received: 50 }));
    expect(again[carrying]).toBeGreaterThanOrEqual(50);
  });

  it('without ignore_routes_with_linkdown the same cut loses the flow: the kernel keeps hashing it to the linkdown nexthop', async () => {
    const sysctl = (v: 0 | 1) => must('ip', ['netns', 'exec', hv1.ns, 'sysctl', '-qw', `net.ipv4.conf.all.ignore_routes_with_linkdown=${v}`]);
    // Read when the nexthop's link changes state (the kernel weighs nexthops then): set before the cut.
    await sysctl(0);
    try {
      await topology.setUplink(hv1, carrying, 'down');
      await waitUntil(async () => (await nexthopFlags(carrying)).includes('linkdown'), 10_000, () => `${carrying}'s nexthop never flagged linkdown`);
      expect(await nexthopFlags(carrying)).not.toContain('dead');
      expect(await pings(20)).toEqual({ received: 0 });
    } finally {
      await topology.setUplink(hv1, carrying, 'up');
      await sysctl(1);
    }
    await waitUntil(async () => (await pings(1)).received === 1, 10_000, () => `a cannot ping b once the uplink is back${logs()}`);
  });
});
