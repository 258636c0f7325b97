import { tapName } from '../../src/agent/dataplane/names';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { StoreRecovery } from '../../src/controller/store/store-recovery';
import { waitUntil } from '../support/agents';
import { api } from '../support/controller-harness';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import type { Hypervisor, Vm } from './topology';

/**
 * The store loses its data under real agents (issue 16): the controller's private Redis is
 * restarted empty while two hypervisors' overlay-agents (Linux dataplane, firewall on) forward
 * two VMs' traffic. While the store is in recovery, no agent removes anything from its kernel:
 * the links, fdb entries and nftables tables are exactly as before, and the VMs keep reaching
 * each other. Accepting the (empty) state then removes it, once the hosts are registered again.
 */
const describeSystem = systemSuite('store-recovery', ['nft']);

describeSystem('store recovery on real kernels: Redis restarted empty under live agents', () => {
  const stack = new OverlayStack('recovery');
  let redis: PrivateRedis;
  const vms: Vm[] = [];
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    redis = await startPrivateRedis();
    await stack.start({ hypervisors: 2, controllerEnv: { REDIS_URL: redis.url } });
    stack.ctl.redis.on('error', () => undefined);
  }, 120_000);

  afterAll(async () => {
    await stack.stop();
    await redis?.destroy();
    console.log(`store recovery system timings (ms): ${JSON.stringify(timings)}`);
  }, 60_000);

  /** What the agent owns in a hypervisor's kernel: its links (with ifindexes: nothing recreated), fdb entries and nftables tables. */
  async function kernel(hv: Hypervisor): Promise<{ links: string[]; fdb: string[]; nft: string }> {
    const t = stack.topology;
    const links = (JSON.parse(await t.mustExec(hv.ns, 'ip', ['-j', '-d', 'link', 'show'])) as { ifindex: number; ifname: string; master?: string; ifalias?: string; flags: string[] }[])
      .filter((l) => l.ifalias === 'overlay-agent' || l.ifname.startsWith('tap'))
      .map((l) => `${l.ifindex} ${l.ifname} master=${l.master ?? '-'} ${l.flags.includes('UP') ? 'up' : 'down'}`)
      .sort();
    const fdb = (JSON.parse(await t.mustExec(hv.ns, 'bridge', ['-j', 'fdb', 'show'])) as { mac: string; ifname?: string; dst?: string }[])
      .filter((e) => e.ifname?.startsWith('vx') && e.dst)
      .map((e) => `${e.ifname} ${e.mac} ${e.dst}`)
      .sort();
    const nft = await t.mustExec(hv.ns, 'nft', ['list', 'ruleset']);
    return { links, fdb, nft };
  }

  async function ping(from: Vm, ip: string, count = 3): Promise<number> {
    const result = await stack.topology.exec(from.ns, 'ping', ['-c', String(count), '-W', '1', '-q', ip]);
    return Number(/(\d+) received/.exec(result.stdout)?.[1] ?? 0);
  }

  it('keeps every link, fdb entry and nftables table while the store is in recovery, and the VMs keep talking', async () => {
    const { client, topology, hostIds } = stack;
    const tenant = await client.post('/v1/tenants', { name: 'blue' });
    const seg = await client.post('/v1/segments', { tenantId: tenant.body.id, name: 'blue-net', cidr: '10.0.0.0/24' });
    expect(seg.status).toBe(201);
    for (const [name, hv, ip] of [
      ['vm1', 'hv1', '10.0.0.1'],
      ['vm2', 'hv2', '10.0.0.2'],
    ] as const) {
      const port = await client.post('/v1/ports', { segmentId: seg.body.id, hostId: hostIds.get(hv), ips: [ip], vmId: name });
      expect(port.status).toBe(201);
      vms.push(await topology.addVm(name, topology.hypervisor(hv), { tap: tapName(port.body.id), mac: port.body.mac, ip, prefixLength: 24 }));
    }
    await waitUntil(async () => (await ping(vms[0], vms[1].ip, 1)) === 1, 30_000, () => `vm1 never reached vm2${stack.agentLogs()}`);
    const hvs = topology.hypervisors;
    const before = await Promise.all(hvs.map(kernel));
    expect(before.every((k) => k.links.length > 0 && k.fdb.length > 0 && k.nft.includes('table bridge overlay'))).toBe(true);

    const restarted = Date.now();
    await redis.restartWith(null);
    await waitUntil(() => stack.ctl.app.get(StoreRecovery).active, 20_000, () => 'the controller to notice the empty store');
    timings.detected = Date.now() - restarted;
    await waitUntil(() => [...stack.agents.values()].every((a) => a.log.some((line) => line.includes('holding the state'))), 20_000, () => `agents told to hold${stack.agentLogs()}`);
    timings.agentsHeld = Date.now() - restarted;

    // Traffic goes on, both ways, and the kernels are as they were (ifindexes included).
    expect(await ping(vms[0], vms[1].ip)).toBe(3);
    expect(await ping(vms[1], vms[0].ip)).toBe(3);
    expect(await Promise.all(hvs.map(kernel))).toEqual(before);
    const admin = api(stack.ctl.url);
    expect(await admin.post('/v1/tenants', { name: 'red' })).toMatchObject({ status: 503, body: { code: 'STORE_RECOVERY' } });
  }, 120_000);

  it('accept: once the hosts are registered again, the agents take the (empty) state and remove what the store lost', async () => {
    const admin = api(stack.ctl.url);
    const started = Date.now();
    expect(await admin.post('/v1/admin/recovery/accept')).toMatchObject({ status: 200, body: { revision: 0 } });
    await waitUntil(() => stack.ctl.app.get(SessionRegistry).holdingCount() === 0, 20_000, () => 'held streams ended');
    for (const hv of stack.topology.hypervisors) {
      expect((await admin.post('/v1/hosts', { name: hv.name, vtepIp: hv.vtepIp })).status).toBe(201);
    }
    await waitUntil(async () => (await Promise.all(stack.topology.hypervisors.map(kernel))).every((k) => k.fdb.length === 0 && !k.links.some((l) => / master=br/.test(l))), 30_000, () => `agents did not converge to the empty state${stack.agentLogs()}`);
    timings.acceptToEmpty = Date.now() - started;
  }, 120_000);
});
