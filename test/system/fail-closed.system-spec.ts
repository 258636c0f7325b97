import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tapName } from '../../src/agent/dataplane/names';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { waitUntil } from '../support/agents';
import type { api } from '../support/controller-harness';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import { openTenant, wrapTool } from './wrapped-tool';
import { type Topology, type Vm } from './topology';

/**
 * The firewall fails closed, proven with real packets: on hv1 a wrapper earlier in the agent's
 * PATH makes every `nft -f` fail while a flag file exists (checks with `nft -c` and reads still
 * work, so the agent starts as it would on a host whose kernel refuses its ruleset). Whatever the
 * agent does, no frame may reach or leave a VM on hv1 before a loaded ruleset names its tap:
 *  - a new port, at the agent's first start and after an agent restart, stays closed both ways;
 *  - removing the flag (the "fix") opens the ports by themselves (the agent retries with backoff);
 *  - `nft flush ruleset` by hand closes every port until the agent has loaded its tables again;
 *  - a change whose load fails closes the port it concerns and leaves the other ports forwarding.
 *
 * Tenant t, segment 10.70.0.0/24. Group `open` admits ICMP in and everything out, so a port is
 * reachable exactly when its rules are in force. The peer b on hv2 has no port security (it
 * answers anything), so b says nothing about hv1's firewall.
 *   a  hv1 10.70.0.10 [open]   c  hv1 10.70.0.11 [open] (added after an agent restart)
 *   b  hv2 10.70.0.20 (port security off)
 */
const describeSystem = systemSuite('fail-closed', ['nft', 'tcpdump']);

function nftPath(): string {
  return execFileSync('sh', ['-c', 'command -v nft'], { encoding: 'utf8' }).trim();
}

/** `nft` that fails every load (`-f` without `-c`) while `<dir>/broken` exists, and is the real one otherwise. */
function nftWrapper(dir: string, realNft: string): string {
  return `#!/bin/sh
if [ -e "${dir}/broken" ]; then
  load=0; check=0
  for a in "$@"; do case "$a" in -f|--file) load=1 ;; -c|--check) check=1 ;; esac; done
  if [ $load = 1 ] && [ $check = 0 ]; then echo "nft: injected failure (test wrapper)" >&2; exit 1; fi
fi
exec ${realNft} "$@"
`;
}

interface TestVm extends Vm {
  portId: string;
}

describeSystem('the firewall fails closed (nft loads failing, flushed by hand, failing halfway)', () => {
  const stack = new OverlayStack('system-fail-closed');
  let topology: Topology;
  let client: ReturnType<typeof api>;
  let wrapperDir = '';
  let segment: { id: string; vni: number };
  let openGroup = '';
  let openGroup2 = '';
  const { hostIds, agents } = stack;
  const agentLogs = () => stack.agentLogs(25);

  const breakNft = () => writeFileSync(join(wrapperDir, 'broken'), '');
  const fixNft = () => rmSync(join(wrapperDir, 'broken'), { force: true });

  beforeAll(async () => {
    const realNft = nftPath();
    await stack.start({
      hypervisors: 2,
      agentEnvOf: (hv, topo): Record<string, string> => {
        if (hv.name !== 'hv1') {
          return {};
        }
        wrapperDir = join(topo.dir, 'nft-wrapper');
        // Broken (the flag file exists) from the agent's very first start.
        return wrapTool(wrapperDir, 'nft', nftWrapper(wrapperDir, realNft), 'broken');
      },
    });
    ({ topology, client } = stack);
    ({ segment, openGroup, openGroup2 } = await openTenant(client, '10.70.0.0/24'));
  }, 120_000);

  afterAll(async () => {
    await stack.stop();
  }, 60_000);

  async function addVm(name: string, hvName: string, ip: string, port: Record<string, unknown>): Promise<TestVm> {
    const created = await client.post('/v1/ports', { segmentId: segment.id, ips: [ip], vmId: name, ...port });
    expect(created.status).toBe(201);
    const made = await topology.addVm(name, topology.hypervisor(hvName), { tap: tapName(created.body.id), mac: created.body.mac, ip, prefixLength: 24 });
    const bound = await client.patch(`/v1/ports/${created.body.id}`, { hostId: hostIds.get(hvName) });
    expect(bound.status).toBe(200);
    return { ...made, portId: created.body.id };
  }

  async function ping(from: Vm, to: Vm, count = 3): Promise<boolean> {
    const result = await topology.exec(from.ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '1', '-q', to.ip]);
    return result.code === 0;
  }

  /**
   * Captures, on `vm`'s interface, the frames sent by `mac` while `during` runs: tcpdump is
   * listening before `during` starts, and stopped once it ended and the capture drained.
   */
  async function framesFrom(vm: Vm, mac: string, during: () => Promise<void>): Promise<string[]> {
    const dump = topology.spawnIn(vm.ns, 'tcpdump', ['-i', 'eth0', '-nn', '-e', '-l', 'ether', 'src', mac]);
    const lines: string[] = [];
    let listening = false;
    dump.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    dump.stderr!.on('data', (d: Buffer) => (listening ||= d.toString().includes('listening on')));
    try {
      await waitUntil(() => listening, 10_000, () => `tcpdump in ${vm.ns} did not start`);
      await during();
      await new Promise((r) => setTimeout(r, 300)); // frames still in flight reach the capture
    } finally {
      dump.kill('SIGINT');
    }
    return lines;
  }

  /**
   * Nothing crosses between `closed` and `peer`, either way: pings both ways fail, and neither VM
   * receives a single frame from the other while they try (ARP included).
   */
  async function expectSilence(closed: Vm, peer: Vm): Promise<void> {
    const pings: Record<string, boolean> = {};
    const atPeer = await framesFrom(peer, closed.mac, async () => {
      const atClosed = await framesFrom(closed, peer.mac, async () => {
        pings.out = await ping(closed, peer);
        pings.in = await ping(peer, closed);
      });
      expect(atClosed).toEqual([]);
    });
    expect(atPeer).toEqual([]);
    expect(pings).toEqual({ out: false, in: false });
  }

  /** The agent of hv1 has nacked `count` times since the start of its log (it reported the failure). */
  const nacks = () => agents.get('hv1')!.log.filter((l) => l.includes('could not program revision')).length;

  it('keeps a new port closed both ways while no ruleset could be loaded, at first start and after an agent restart', async () => {
    const b = await addVm('b', 'hv2', '10.70.0.20', { portSecurity: false });
    const a = await addVm('a', 'hv1', '10.70.0.10', { securityGroupIds: [openGroup] });
    // hv1's agent tried, failed and said so.
    await waitUntil(() => nacks() > 0, 15_000, () => `hv1 never reported a failed load${agentLogs()}`);
    expect((await client.get(`/v1/ports/${a.portId}`)).body.realized).toBe(false);
    // The controller shows why (the agent's NACK, kept per host).
    await waitUntil(async () => /injected failure/.test((await client.get(`/v1/hosts/${hostIds.get('hv1')}`)).body.lastError?.error ?? ''), 10_000, () => 'no lastError on hv1');
    await expectSilence(a, b);

    // An agent restart, still unable to load anything, and a port added after it.
    const hv1 = agents.get('hv1')!;
    expect(await hv1.stop()).toBe(0);
    hv1.start();
    await waitUntil(() => stack.ctl.app.get(SessionRegistry).session(hostIds.get('hv1')!) !== undefined, 15_000, () => `hv1 did not reconnect${agentLogs()}`);
    const c = await addVm('c', 'hv1', '10.70.0.11', { securityGroupIds: [openGroup] });
    const seen = nacks();
    await waitUntil(() => nacks() > seen, 15_000, () => `hv1 never reported a failed load after the restart${agentLogs()}`);
    await expectSilence(a, b);
    await expectSilence(c, b);

    // Loads work again: the ports open by themselves (no new change needed).
    fixNft();
    await waitUntil(async () => (await ping(a, b, 1)) && (await ping(c, b, 1)), 20_000, () => `a and c did not open after the fix${agentLogs()}`);
    expect(await ping(b, a)).toBe(true);
    expect(await ping(b, c)).toBe(true);
    await waitUntil(async () => (await client.get(`/v1/ports/${a.portId}`)).body.realized === true, 10_000, () => 'a not realized');
    expect((await client.get(`/v1/hosts/${hostIds.get('hv1')}`)).body.lastError).toBeNull();
  });

  it('closes every port at once when the tables are flushed by hand, until the agent has loaded them again', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => topology.vms.find((v) => v.name === n)!);
    expect(await ping(a, b, 1)).toBe(true);
    // Flushed while loads fail: the agent cannot put its tables back, so nothing may pass meanwhile.
    breakNft();
    await topology.mustExec(a.hv.ns, 'nft', ['flush', 'ruleset']);
    await expectSilence(a, b);
    await expectSilence(c, b);
    fixNft();
    await waitUntil(async () => (await ping(a, b, 1)) && (await ping(c, b, 1)), 20_000, () => `ports did not reopen after the flush${agentLogs()}`);
  });

  it('closes the port whose change failed to load and keeps the others forwarding', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => topology.vms.find((v) => v.name === n)! as TestVm);
    const aPort = (await client.get(`/v1/ports?segmentId=${segment.id}`)).body.items.find((p: { vmId: string }) => p.vmId === 'a');
    breakNft();
    // a's rules change (another group, other rules): the load that carries them fails.
    const seen = nacks();
    const patched = await client.patch(`/v1/ports/${aPort.id}`, { securityGroupIds: [openGroup2] });
    expect(patched.status).toBe(200);
    await waitUntil(() => nacks() > seen, 15_000, () => `hv1 did not report the failed change${agentLogs()}`);
    await waitUntil(async () => !(await ping(a, b, 1)), 10_000, () => `a still forwards with rules it no longer has${agentLogs()}`);
    await expectSilence(a, b);
    // c's rules did not change: it keeps forwarding throughout.
    expect(await ping(c, b)).toBe(true);
    expect(await ping(b, c)).toBe(true);
    fixNft();
    await waitUntil(async () => ping(a, b, 1), 20_000, () => `a did not reopen with its new rules${agentLogs()}`);
    expect(await ping(b, a)).toBe(true);
  });
});

