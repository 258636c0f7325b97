import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { tapName } from '../../src/agent/dataplane/names';
import { PREREQUISITES_EXIT_CODE } from '../../src/agent/prerequisites';
import { waitUntil } from '../support/agents';
import { AgentProcess, type AgentUser } from './agent-process';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import type { Hypervisor, Vm } from './topology';

/**
 * The agent bundle run as deploy/systemd/overlay-agent.service runs it: an unprivileged user
 * (nobody here) with CAP_NET_ADMIN as its only capability, ambient so that ip, bridge, tc, nft
 * and conntrack get it too, no new privileges. hv1's agent runs so, hv2's as root. Proven: it
 * renders a segment, the firewall and the gate, turns br_netfilter's switch back on in its
 * namespace (a /proc/sys write), and a VM behind it pings a VM on hv2. Then what the start's
 * prerequisites check says, in one line each with exit code 69, when the capability or a
 * program is missing.
 */
const describeSystem = systemSuite('unprivileged agent', ['nft', 'conntrack', 'setpriv', 'ping']);

const NOBODY = { uid: 65534, gid: 65534 };
const BR_NETFILTER_SWITCH = '/proc/sys/net/bridge/bridge-nf-call-iptables';

describeSystem('overlay-agent as an unprivileged user with CAP_NET_ADMIN only', () => {
  const stack = new OverlayStack('unprivileged');
  const asUnit: AgentUser = { ...NOBODY, capabilities: 'net_admin' };

  beforeAll(async () => {
    await stack.start({ hypervisors: 2, agentUserOf: (hv) => (hv.name === 'hv1' ? asUnit : undefined) });
  }, 120_000);

  afterAll(() => stack.stop(), 60_000);

  async function vm(name: string, segmentId: string, hv: Hypervisor, ip: string): Promise<Vm> {
    const port = await stack.client.post('/v1/ports', { segmentId, hostId: stack.hostIds.get(hv.name), ips: [ip], vmId: name });
    expect(port.status).toBe(201);
    return stack.topology.addVm(name, hv, { tap: tapName(port.body.id), mac: port.body.mac, ip, prefixLength: 24 });
  }

  const ping = async (from: Vm, ip: string) => (await stack.topology.exec(from.ns, 'ping', ['-c', '1', '-W', '1', '-q', ip])).code === 0;

  it('runs as nobody with CAP_NET_ADMIN alone, and renders: segment, firewall, gate, br_netfilter switch, a ping across the overlay', async () => {
    const { topology, client } = stack;
    const [hv1, hv2] = topology.hypervisors;
    const agent = stack.agents.get('hv1')!;
    // ip netns exec and setpriv exec in place: the pid is the agent's own.
    const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
    expect(status).toMatch(/^CapEff:\s+0000000000001000$/m);
    expect(status).toMatch(/^CapAmb:\s+0000000000001000$/m);
    expect(status).toMatch(/^CapBnd:\s+0000000000001000$/m);

    // br_netfilter mode: the agent turns the switch of its namespace back on, a /proc/sys write.
    expect(agent.log.some((line) => line.includes('firewall conntrack: '))).toBe(true);
    const brNetfilter = agent.log.some((line) => line.includes('firewall conntrack: br_netfilter'));
    if (brNetfilter) {
      await topology.mustExec(hv1.ns, 'sh', ['-c', `echo 0 > ${BR_NETFILTER_SWITCH}`]);
    }

    const tenant = await client.post('/v1/tenants', { name: 'nobody' });
    expect(tenant.status).toBe(201);
    const segment = await client.post('/v1/segments', { tenantId: tenant.body.id, name: 'nobody-net', cidr: '10.0.0.0/24' });
    expect(segment.status).toBe(201);
    const a = await vm('a', segment.body.id, hv1, '10.0.0.1');
    const b = await vm('b', segment.body.id, hv2, '10.0.0.2');

    await waitUntil(() => ping(a, b.ip), 30_000, () => `no ping from the unprivileged agent's VM${stack.agentLogs()}`);
    expect(await ping(b, a.ip)).toBe(true);

    const links = JSON.parse(await topology.mustExec(hv1.ns, 'ip', ['-j', 'link', 'show', a.tap])) as { master?: string }[];
    expect(links[0].master).toBe(`br${segment.body.vni}`);
    expect(await topology.mustExec(hv1.ns, 'nft', ['list', 'map', 'bridge', 'overlay', 'eg_ports'])).toContain(a.tap);
    expect(await topology.mustExec(hv1.ns, 'tc', ['qdisc', 'show', 'dev', a.tap])).toMatch(/clsact.*egress_block 4701/s);
    if (brNetfilter) {
      await waitUntil(async () => (await topology.mustExec(hv1.ns, 'cat', [BR_NETFILTER_SWITCH])).trim() === '1', 10_000, () => `${BR_NETFILTER_SWITCH} not set back to 1${stack.agentLogs()}`);
      expect(agent.log.some((line) => line.includes(`${BR_NETFILTER_SWITCH} was 0: set to 1`))).toBe(true);
    }
    expect(agent.running).toBe(true);
  }, 90_000);

  /** Starts another agent process for hv1 (a state directory of its own) and waits for its exit; its exit line and output. */
  async function refusedStart(user: AgentUser, env: Record<string, string> = {}): Promise<{ exit: string; output: string[] }> {
    const hv1 = stack.topology.hypervisor('hv1');
    const refused = new AgentProcess(stack.topology, { ...hv1, name: `${hv1.name}-refused` }, '127.0.0.1:1', { OVERLAY_HOST: hv1.name, ...env }, user);
    refused.start();
    await waitUntil(() => refused.log.some((line) => line.includes(' exited ')), 30_000, () => `the agent did not exit: ${refused.log.join('\n')}`);
    return { exit: refused.log.find((line) => line.includes(' exited '))!, output: refused.log.filter((line) => !line.includes(' exited ')) };
  }

  it('refuses to start without CAP_NET_ADMIN: one line saying so, exit code 69', async () => {
    const { exit, output } = await refusedStart({ ...NOBODY, capabilities: 'none' });
    expect(exit).toContain(`exited code=${PREREQUISITES_EXIT_CODE} `);
    expect(output).toEqual([expect.stringMatching(/err overlay-agent: missing prerequisite: the process lacks CAP_NET_ADMIN \(uid 65534\): run it as root, or as its own user with AmbientCapabilities=CAP_NET_ADMIN/)]);
  }, 60_000);

  it('refuses to start without nft and conntrack on PATH: one line for each, exit code 69', async () => {
    const bin = join(stack.topology.dir, 'bin-without-nft');
    mkdirSync(bin, { mode: 0o755 });
    for (const program of ['ip', 'bridge', 'tc']) {
      const found = (await stack.topology.mustExec(stack.topology.hypervisor('hv1').ns, 'sh', ['-c', `command -v ${program}`])).trim();
      symlinkSync(found, join(bin, program));
    }
    const { exit, output } = await refusedStart(asUnit, { PATH: bin });
    expect(exit).toContain(`exited code=${PREREQUISITES_EXIT_CODE} `);
    expect(output).toEqual([
      expect.stringContaining(`err overlay-agent: missing prerequisite: \`nft\` is not in PATH (${bin}): install nftables, or run without the firewall (OVERLAY_FIREWALL=0)`),
      expect.stringContaining(`err overlay-agent: missing prerequisite: \`conntrack\` is not in PATH (${bin}): install conntrack (conntrack-tools), or run without the firewall (OVERLAY_FIREWALL=0)`),
    ]);
  }, 60_000);
});
