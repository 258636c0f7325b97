import { tapName } from '../../src/agent/dataplane/names';
import { AckRecorder } from '../../src/controller/distribution/ack-recorder';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { waitUntil } from '../support/agents';
import type { api, Harness } from '../support/controller-harness';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import { type Hypervisor, type Topology, type Vm } from './topology';

/**
 * The overlay end to end on real kernels: three hypervisors in network namespaces joined by an
 * underlay bridge, VMs as namespaces behind taps, the controller in this process, and one real
 * overlay-agent process per hypervisor on the Linux dataplane. Packets are real pings.
 *
 * The tests share one topology and run in order: (a) builds tenant blue, (b) adds tenant red
 * with the same addresses, (c) and (d) work on blue.
 */
const describeSystem = systemSuite('overlay', ['nft']);

interface TestVm extends Vm {
  portId: string;
  vni: number;
}

interface IpLinkJson {
  ifindex: number;
  ifname: string;
  flags: string[];
  master?: string;
  ifalias?: string;
}

interface FdbJson {
  mac: string;
  ifname?: string;
  dst?: string;
  master?: string;
}

describeSystem('overlay on real kernels (netns, VXLAN, bridges, real agents)', () => {
  const stack = new OverlayStack('system');
  let topology: Topology;
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  const { hostIds, agents } = stack;
  const timings: Record<string, number> = {};
  const blue: TestVm[] = [];
  const red: TestVm[] = [];

  const agentLogs = () => stack.agentLogs();

  beforeAll(async () => {
    const t0 = Date.now();
    await stack.start();
    ({ topology, ctl, client } = stack);
    timings[stack.built ? 'build agent, topology + controller + 3 agents connected' : 'topology + controller + 3 agents connected'] = Date.now() - t0;
  }, 120_000);

  afterAll(async () => {
    await stack.stop();
    console.log(`overlay system timings (ms): ${JSON.stringify(timings)}`);
  }, 60_000);

  async function segment(tenantName: string): Promise<{ id: string; vni: number }> {
    const tenant = await client.post('/v1/tenants', { name: tenantName });
    expect(tenant.status).toBe(201);
    const seg = await client.post('/v1/segments', { tenantId: tenant.body.id, name: `${tenantName}-net`, cidr: '10.0.0.0/24' });
    expect(seg.status).toBe(201);
    return seg.body;
  }

  /** A port bound to the hypervisor, then the VM behind its tap (so the agent first sees a tap that is not there yet). */
  async function vm(name: string, seg: { id: string; vni: number }, hvName: string, ip: string): Promise<TestVm> {
    const port = await client.post('/v1/ports', { segmentId: seg.id, hostId: hostIds.get(hvName), ips: [ip], vmId: name });
    expect(port.status).toBe(201);
    const made = await topology.addVm(name, topology.hypervisor(hvName), { tap: tapName(port.body.id), mac: port.body.mac, ip, prefixLength: 24 });
    return { ...made, portId: port.body.id, vni: seg.vni };
  }

  async function links(hv: Hypervisor): Promise<IpLinkJson[]> {
    return JSON.parse(await topology.mustExec(hv.ns, 'ip', ['-j', '-d', 'link', 'show'])) as IpLinkJson[];
  }

  async function fdb(hv: Hypervisor): Promise<FdbJson[]> {
    return JSON.parse(await topology.mustExec(hv.ns, 'bridge', ['-j', 'fdb', 'show'])) as FdbJson[];
  }

  /** Every VM's tap is attached and up, and every host knows each remote peer's MAC and VTEP. */
  async function programmed(vms: TestVm[]): Promise<boolean> {
    const byHv = new Map<string, { links: IpLinkJson[]; fdb: FdbJson[] }>();
    for (const hv of new Set(vms.map((v) => v.hv))) {
      byHv.set(hv.name, { links: await links(hv), fdb: await fdb(hv) });
    }
    return vms.every((v) => {
      const kernel = byHv.get(v.hv.name)!;
      const tap = kernel.links.find((l) => l.ifname === v.tap);
      if (tap?.master !== `br${v.vni}` || !tap.flags.includes('UP')) {
        return false;
      }
      return vms
        .filter((peer) => peer.vni === v.vni && peer.hv !== v.hv)
        .every(
          (peer) =>
            kernel.fdb.some((e) => e.ifname === `vx${v.vni}` && e.mac === peer.mac && e.dst === peer.hv.vtepIp && !e.master) &&
            kernel.fdb.some((e) => e.ifname === `vx${v.vni}` && e.mac === '00:00:00:00:00:00' && e.dst === peer.hv.vtepIp),
        );
    });
  }

  async function ping(from: Vm, ip: string, count = 3): Promise<{ ok: boolean; received: number; output: string }> {
    const result = await topology.exec(from.ns, 'ping', ['-c', String(count), '-W', '1', '-q', ip]);
    const m = /(\d+) packets transmitted, (\d+) received/.exec(result.stdout);
    return { ok: result.code === 0, received: m ? Number(m[2]) : 0, output: result.stdout + result.stderr };
  }

  /** ICMP echo requests this VM's stack received (Icmp InEchos of its namespace). */
  async function echoesReceived(target: Vm): Promise<number> {
    const snmp = (await topology.mustExec(target.ns, 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Icmp:'));
    const [names, values] = snmp.map((l) => l.split(/\s+/));
    return Number(values[names.indexOf('InEchos')]);
  }

  async function neighbourMac(from: Vm, ip: string): Promise<string | undefined> {
    const entries = JSON.parse(await topology.mustExec(from.ns, 'ip', ['-j', 'neigh', 'show', 'to', ip, 'dev', 'eth0'])) as { lladdr?: string }[];
    return entries[0]?.lladdr;
  }

  /** What the agent owns on a host, with ifindexes (equal ifindexes: nothing was recreated), and its entries. */
  async function kernelSnapshot(hv: Hypervisor): Promise<{ links: string[]; entries: string[] }> {
    const owned = (await links(hv))
      .filter((l) => l.ifalias === 'overlay-agent' || l.ifname.startsWith('tap'))
      .map((l) => `${l.ifindex} ${l.ifname} master=${l.master ?? '-'} ${l.flags.includes('UP') ? 'up' : 'down'}`)
      .sort();
    const entries = (await fdb(hv))
      .filter((e) => e.ifname?.startsWith('vx') && e.dst)
      .map((e) => `${e.ifname} ${e.mac} ${e.dst}`)
      .sort();
    return { links: owned, entries };
  }

  it('(a) connects two VMs of one tenant on different hypervisors through the VXLAN tunnel', async () => {
    const t0 = Date.now();
    const seg = await segment('blue');
    blue.push(await vm('blue1', seg, 'hv1', '10.0.0.1'), await vm('blue2', seg, 'hv2', '10.0.0.2'));
    await waitUntil(() => programmed(blue), 15_000, () => `blue not programmed${agentLogs()}`);
    timings['(a) port created -> both hosts programmed'] = Date.now() - t0;

    const there = await ping(blue[0], blue[1].ip);
    expect(there).toMatchObject({ ok: true, received: 3 });
    const back = await ping(blue[1], blue[0].ip);
    expect(back).toMatchObject({ ok: true, received: 3 });
    expect(await neighbourMac(blue[0], blue[1].ip)).toBe(blue[1].mac);
    timings['(a) total'] = Date.now() - t0;
  });

  it('(b) keeps tenants with the same addresses apart while each pair reaches its own peer', async () => {
    const t0 = Date.now();
    const seg = await segment('red');
    // Same hypervisors as blue (the VNI alone separates them), plus a red-only address on hv3.
    red.push(await vm('red1', seg, 'hv1', '10.0.0.1'), await vm('red2', seg, 'hv2', '10.0.0.2'), await vm('red3', seg, 'hv3', '10.0.0.3'));
    await waitUntil(() => programmed(red), 15_000, () => `red not programmed${agentLogs()}`);
    timings['(b) ports created -> programmed'] = Date.now() - t0;
    const [blue1, blue2] = blue;
    const [red1, red2, red3] = red;

    const before = { blue2: await echoesReceived(blue2), red2: await echoesReceived(red2), red3: await echoesReceived(red3) };
    expect(await ping(blue1, '10.0.0.2')).toMatchObject({ ok: true, received: 3 });
    expect(await ping(red1, '10.0.0.2')).toMatchObject({ ok: true, received: 3 });
    // Each peer answered its own tenant only: three echoes each, and ARP resolved within the tenant.
    expect(await echoesReceived(blue2)).toBe(before.blue2 + 3);
    expect(await echoesReceived(red2)).toBe(before.red2 + 3);
    expect(await neighbourMac(blue1, '10.0.0.2')).toBe(blue2.mac);
    expect(await neighbourMac(red1, '10.0.0.2')).toBe(red2.mac);

    // An address that exists only in red is unreachable from blue.
    expect((await ping(blue1, '10.0.0.3', 2)).ok).toBe(false);
    expect(await echoesReceived(red3)).toBe(before.red3);

    // Even a blue VM that knows red2's MAC cannot reach it: its frames stay in blue's VNI.
    await topology.mustExec(blue1.ns, 'ip', ['neigh', 'replace', '10.0.0.2', 'lladdr', red2.mac, 'dev', 'eth0', 'nud', 'permanent']);
    try {
      expect((await ping(blue1, '10.0.0.2', 2)).ok).toBe(false);
      expect(await echoesReceived(red2)).toBe(before.red2 + 3);
      expect(await echoesReceived(blue2)).toBe(before.blue2 + 3);
    } finally {
      await topology.mustExec(blue1.ns, 'ip', ['neigh', 'del', '10.0.0.2', 'dev', 'eth0']);
    }
    expect(await ping(blue1, '10.0.0.2')).toMatchObject({ ok: true, received: 3 });
    timings['(b) total'] = Date.now() - t0;
  });

  it('(c) repairs forwarding state changed by hand through the periodic reconcile', async () => {
    const [blue1, blue2] = blue;
    const hv1 = blue1.hv;
    const vx = `vx${blue1.vni}`;
    // Remove the unicast entry and the flood entry to hv2, and unplug blue1's tap.
    await topology.mustExec(hv1.ns, 'bridge', ['fdb', 'del', blue2.mac, 'dev', vx, 'self']);
    await topology.mustExec(hv1.ns, 'bridge', ['fdb', 'del', '00:00:00:00:00:00', 'dev', vx, 'dst', blue2.hv.vtepIp, 'self']);
    await topology.mustExec(hv1.ns, 'ip', ['link', 'set', 'dev', blue1.tap, 'nomaster']);
    const t0 = Date.now();
    await waitUntil(() => programmed(blue), 5_000, () => `not repaired${agentLogs()}`);
    timings['(c) entries deleted, tap unplugged -> repaired'] = Date.now() - t0;
    expect(await ping(blue1, blue2.ip)).toMatchObject({ ok: true, received: 3 });

    // A whole VXLAN device deleted on the other side: rebuilt, with its flood list and entries.
    await topology.mustExec(blue2.hv.ns, 'ip', ['link', 'del', 'dev', vx]);
    const t1 = Date.now();
    await waitUntil(() => programmed(blue), 5_000, () => `${vx} not rebuilt${agentLogs()}`);
    timings['(c) vxlan device deleted -> rebuilt'] = Date.now() - t1;
    expect(await ping(blue2, blue1.ip)).toMatchObject({ ok: true, received: 3 });

    // A firewall rule inserted by hand (dropping every VM's frames): the periodic check (every
    // 500 ms here) sees the table differ from what was loaded and loads it again.
    await topology.mustExec(hv1.ns, 'nft', ['insert', 'rule', 'bridge', 'overlay', 'vm_egress', 'drop']);
    const t2 = Date.now();
    await waitUntil(async () => !(await topology.mustExec(hv1.ns, 'nft', ['list', 'chain', 'bridge', 'overlay', 'vm_egress'])).match(/^\s*drop$/m), 10_000, () => `hand-made rule not removed${agentLogs()}`);
    timings['(c) nft rule inserted by hand -> removed'] = Date.now() - t2;
    expect(await ping(blue1, blue2.ip)).toMatchObject({ ok: true, received: 3 });
  });

  it('(d) keeps forwarding while its agent is down, and restarts without flushing anything', async () => {
    const [blue1, blue2] = blue;
    const hv1 = blue1.hv;
    const agent = agents.get('hv1')!;
    const server = ctl.app.get(SessionRegistry);
    const hostId = hostIds.get('hv1')!;
    const before = await kernelSnapshot(hv1);

    // Traffic flowing across the whole restart: one echo every 10 ms.
    const flow = topology.spawnIn(blue1.ns, 'ping', ['-i', '0.01', '-W', '1', blue2.ip]);
    let flowOut = '';
    flow.stdout!.on('data', (d: Buffer) => (flowOut += d.toString()));
    const flowDone = new Promise<void>((resolve) => flow.once('exit', () => resolve()));
    const replies = () => (flowOut.match(/bytes from/g) ?? []).length;
    let newcomer: { mac: string };
    try {
      await waitUntil(() => replies() >= 3, 5_000, () => `no traffic: ${flowOut}`);

      const t0 = Date.now();
      expect(await agent.stop('SIGTERM')).toBe(0);
      await waitUntil(() => server.session(hostId) === undefined || server.session(hostId)!.isClosed, 5_000, () => 'controller still holds the session');
      timings['(d) SIGTERM -> agent gone'] = Date.now() - t0;

      // Headless: the kernel keeps forwarding in both directions.
      expect(await ping(blue1, blue2.ip)).toMatchObject({ ok: true, received: 3 });
      expect(await ping(blue2, blue1.ip)).toMatchObject({ ok: true, received: 3 });
      // Meanwhile blue grows a port on hv3: the restarted agent must catch up with it.
      const port = await client.post('/v1/ports', { segmentId: (await client.get(`/v1/ports/${blue1.portId}`)).body.segmentId, hostId: hostIds.get('hv3'), ips: ['10.0.0.3'] });
      expect(port.status).toBe(201);
      newcomer = port.body;

      // An ack is only reported when it moves the host's revision forward: this one can only come from the restarted agent applying the change.
      const acks: number[] = [];
      const stopListening = ctl.app.get(AckRecorder).on('acked', (ack) => ack.hostId === hostId && acks.push(ack.revision));
      const t1 = Date.now();
      try {
        agent.start();
        await waitUntil(
          () => acks.length > 0 && server.session(hostId) !== undefined && !server.session(hostId)!.isClosed,
          15_000,
          () => `restarted agent did not sync (session ${server.session(hostId) ? (server.session(hostId)!.isClosed ? 'closed' : 'open') : 'none'}, ${acks.length} acks)${agentLogs()}`,
        );
      } finally {
        stopListening();
      }
      timings['(d) restart -> resumed, applied and acked'] = Date.now() - t1;
      expect(agent.log.some((l) => l.includes('restored desired state'))).toBe(true);
      expect(await ping(blue1, blue2.ip)).toMatchObject({ ok: true, received: 3 });
    } finally {
      flow.kill('SIGINT');
      await flowDone;
    }

    // Same links with the same ifindexes and attachments, every entry still there: nothing was
    // flushed or recreated. The only difference is what changed while the agent was away.
    const after = await kernelSnapshot(hv1);
    expect(after.links).toEqual(before.links);
    const vx = `vx${blue1.vni}`;
    expect(after.entries).toEqual([...before.entries, `${vx} ${newcomer.mac} 192.0.2.3`, `${vx} 00:00:00:00:00:00 192.0.2.3`].sort());

    // No echo lost across the restart: every sequence number up to the last reply was answered
    // (only a request still in flight when ping was stopped may go unanswered).
    const answered = [...flowOut.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
    const last = Math.max(...answered);
    timings['(d) echoes answered across the restart'] = answered.length;
    expect(last).toBeGreaterThan(10);
    expect(answered).toEqual(Array.from({ length: last }, (_, i) => i + 1));
  });

  it('(e) keeps forwarding and filtering while the controller is down', async () => {
    const [blue1, blue2] = blue;
    await stack.closeController();
    // Every agent notices and keeps its last state (headless); 2 s of echoes every 10 ms, none lost.
    await waitUntil(() => [...agents.values()].every((a) => a.log.some((l) => l.includes('reconnecting'))), 15_000, () => `agents did not notice the controller went away${agentLogs()}`);
    const result = await topology.exec(blue1.ns, 'ping', ['-i', '0.01', '-c', '200', '-W', '1', '-q', blue2.ip], 30_000);
    expect(result.stdout).toMatch(/200 packets transmitted, 200 received/);
    // Tenants stay apart without the controller too (10.0.0.3 is red3's; blue's 10.0.0.3 has no VM).
    expect((await ping(blue1, '10.0.0.3', 2)).ok).toBe(false);
    expect([...agents.values()].every((a) => a.running)).toBe(true);
  });
});
