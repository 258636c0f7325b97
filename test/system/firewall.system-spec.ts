import type { ChildProcess } from 'node:child_process';
import { tapName } from '../../src/agent/dataplane/names';
import { waitUntil } from '../support/agents';
import type { api } from '../support/controller-harness';
import { parseSamples, promtoolCheck, valueOf, withPromtool } from '../support/prometheus';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import { run, type Hypervisor, type Topology, type Vm } from './topology';

/**
 * The security-group firewall on real kernels, with real packets: three hypervisors, real
 * agents with the firewall on (the default), real TCP connections between VM namespaces.
 *
 * On a kernel without bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE) the agents pick the
 * br_netfilter mode on their own; `OVERLAY_TEST_CONNTRACK` forces a mode for the agents.
 *
 * Tenant acme, segment 10.0.0.0/24:
 *   admins  (group G): no rules given, so it allows all egress and no ingress
 *   ssh     (group S): ingress tcp/22 and icmp from G; no egress rule at all
 *   srv  hv1 10.0.0.10  [ssh]            TCP server on :22
 *   c1   hv2 10.0.0.11  [admins]         TCP server on :8080 (to prove unsolicited inbound is refused)
 *   c2   hv3 10.0.0.12  [] (tenant default group), later [default, admins]
 * Tenant umbra, segment 10.0.0.0/24 too (same addresses, default groups):
 *   u1   hv1 10.0.0.10   TCP server on :22
 *   u2   hv2 10.0.0.11
 *
 * The tests share one topology and run in order.
 */
const describeSystem = systemSuite('firewall', ['nft', 'conntrack']);
const checkIt = withPromtool();
/** Each agent's /metrics, inside its hypervisor's namespace (where the agent's 127.0.0.1 is). */
const METRICS_PORT = 9464;

interface TestVm extends Vm {
  portId: string;
  vni: number;
}

/** A TCP server: answers every connection with `<banner>\n`, then echoes. */
const SERVER_SCRIPT = `
const net = require('net');
const [host, port, banner] = process.argv.slice(1);
net.createServer((c) => { c.on('error', () => {}); c.write(banner + '\\n'); c.pipe(c); })
  .listen(Number(port), host, () => console.log('listening'));
`;

/**
 * A TCP client: connects (optionally from a fixed local port), sends a line, expects the banner
 * and the echo; prints JSON {ok, banner, error} and exits. A dropped SYN ends in a timeout.
 */
const CLIENT_SCRIPT = `
const net = require('net');
const [host, port, timeoutMs, localPort, holdMs] = process.argv.slice(1);
let data = '';
const done = (result) => { console.log(JSON.stringify(result)); process.exit(0); };
const timer = setTimeout(() => done({ ok: false, error: 'timeout', data }), Number(timeoutMs));
const s = net.connect({ host, port: Number(port), ...(Number(localPort) ? { localPort: Number(localPort) } : {}) });
s.on('error', (e) => { clearTimeout(timer); done({ ok: false, error: e.code || e.message, data }); });
s.on('connect', () => s.write('ping\\n'));
s.on('data', (d) => {
  data += d.toString();
  const lines = data.split('\\n');
  if (lines.length >= 3) {
    clearTimeout(timer);
    // Hold the connection open a while (concurrent connections), then close it.
    setTimeout(() => { s.end(); done({ ok: lines[1] === 'ping', banner: lines[0] }); }, Number(holdMs));
  }
});
`;

interface Connect {
  ok: boolean;
  banner?: string;
  error?: string;
}

describeSystem('security-group firewall on real kernels (nftables, conntrack, real packets)', () => {
  const stack = new OverlayStack('system-fw');
  let topology: Topology;
  let client: ReturnType<typeof api>;
  const { hostIds, agents } = stack;
  const servers: ChildProcess[] = [];
  const vms = new Map<string, TestVm>();
  const groups: Record<string, string> = {};
  let tenantId = '';
  let segment: { id: string; vni: number };

  const agentLogs = () => stack.agentLogs();
  const vm = (name: string): TestVm => vms.get(name)!;

  beforeAll(async () => {
    // A long reconcile interval keeps the firewall loads in these tests to those that changes
    // cause (the periodic drift check reads the tables back, and reloads only after drift).
    const agentEnv: Record<string, string> = { OVERLAY_RECONCILE_MS: '600000', OVERLAY_METRICS_PORT: String(METRICS_PORT) };
    if (process.env.OVERLAY_TEST_CONNTRACK) {
      agentEnv.OVERLAY_CONNTRACK = process.env.OVERLAY_TEST_CONNTRACK;
    }
    await stack.start({ agentEnv });
    ({ topology, client } = stack);

    const tenant = await client.post('/v1/tenants', { name: 'acme' });
    expect(tenant.status).toBe(201);
    tenantId = tenant.body.id;
    groups.default = tenant.body.defaultSecurityGroupId;
    const seg = await client.post('/v1/segments', { tenantId, name: 'acme-net', cidr: '10.0.0.0/24' });
    expect(seg.status).toBe(201);
    segment = seg.body;
    const admins = await client.post('/v1/security-groups', { tenantId, name: 'admins' });
    expect(admins.status).toBe(201);
    groups.admins = admins.body.id;
    const ssh = await client.post('/v1/security-groups', {
      tenantId,
      name: 'ssh',
      rules: [
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, remoteGroupId: groups.admins },
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp', remoteGroupId: groups.admins },
      ],
    });
    expect(ssh.status).toBe(201);
    groups.ssh = ssh.body.id;
  }, 120_000);

  afterAll(async () => {
    for (const s of servers) {
      s.kill('SIGKILL');
    }
    await stack.stop();
  }, 60_000);

  /**
   * A VM: its port (unbound, with its groups), the VM behind its tap, then the port bound to the
   * hypervisor and realized there. The tap exists before the agent hears of the port, so it is
   * attached at once rather than by a later reconcile (these agents reconcile rarely, see beforeAll).
   */
  async function addVm(name: string, seg: { id: string; vni: number }, hvName: string, ip: string, securityGroupIds: string[]): Promise<TestVm> {
    const port = await client.post('/v1/ports', { segmentId: seg.id, ips: [ip], vmId: name, securityGroupIds });
    expect(port.status).toBe(201);
    const made = await topology.addVm(name, topology.hypervisor(hvName), { tap: tapName(port.body.id), mac: port.body.mac, ip, prefixLength: 24 });
    const bound = await client.patch(`/v1/ports/${port.body.id}?wait=realized&timeout=15000`, { hostId: hostIds.get(hvName) });
    expect(bound.status).toBe(200);
    const v = { ...made, portId: port.body.id, vni: seg.vni };
    vms.set(name, v);
    return v;
  }

  /** The loaded bridge table of a host, as `nft -a list` prints it (with rule handles). */
  async function bridgeTable(hv: Hypervisor): Promise<string> {
    const result = await topology.exec(hv.ns, 'nft', ['-a', 'list', 'table', 'bridge', 'overlay']);
    return result.code === 0 ? result.stdout : '';
  }

  /** Every VM's tap is attached to its bridge and its port chain is loaded on its host. */
  async function ready(list: TestVm[]): Promise<boolean> {
    for (const v of list) {
      const links = JSON.parse((await topology.exec(v.hv.ns, 'ip', ['-j', 'link', 'show', 'dev', v.tap])).stdout || '[]') as { master?: string; flags: string[] }[];
      if (links[0]?.master !== `br${v.vni}` || !links[0].flags.includes('UP')) {
        return false;
      }
      if (!(await bridgeTable(v.hv)).includes(`"${v.tap}" : jump p_`)) {
        return false;
      }
    }
    return true;
  }

  function serve(v: Vm, port: number, banner: string): Promise<void> {
    const child = topology.spawnIn(v.ns, process.execPath, ['-e', SERVER_SCRIPT, v.ip, String(port), banner]);
    servers.push(child);
    return new Promise((resolve, reject) => {
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`server in ${v.ns} exited (${code}): ${err}`)));
    });
  }

  async function connect(from: Vm, ip: string, port: number, opts: { timeoutMs?: number; localPort?: number; holdMs?: number } = {}): Promise<Connect> {
    const result = await topology.exec(from.ns, process.execPath, ['-e', CLIENT_SCRIPT, ip, String(port), String(opts.timeoutMs ?? 2000), String(opts.localPort ?? 0), String(opts.holdMs ?? 0)], 30_000);
    try {
      return JSON.parse(result.stdout.trim()) as Connect;
    } catch {
      return { ok: false, error: `client failed: ${result.stdout} ${result.stderr}` };
    }
  }

  async function ping(from: Vm, ip: string, count = 2, source?: string): Promise<boolean> {
    const result = await topology.exec(from.ns, 'ping', ['-c', String(count), '-W', '1', '-q', ...(source ? ['-I', source] : []), ip]);
    return result.code === 0;
  }

  async function echoesReceived(target: Vm): Promise<number> {
    const snmp = (await topology.mustExec(target.ns, 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Icmp:'));
    const [names, values] = snmp.map((l) => l.split(/\s+/));
    return Number(values[names.indexOf('InEchos')]);
  }

  it('admits tcp/22 from members of the remote group only, and a port joining the group only updates the set', async () => {
    const srv = await addVm('srv', segment, 'hv1', '10.0.0.10', [groups.ssh]);
    const c1 = await addVm('c1', segment, 'hv2', '10.0.0.11', [groups.admins]);
    const c2 = await addVm('c2', segment, 'hv3', '10.0.0.12', []);
    await waitUntil(() => ready([srv, c1, c2]), 15_000, () => `ports not programmed${agentLogs()}`);
    const mode = agents.get('hv1')!.log.find((l) => l.includes('firewall conntrack:'));
    console.log(`firewall system tests: ${mode ?? 'conntrack mode not logged'}`);
    await serve(srv, 22, 'srv');

    // c1 is in admins: admitted (the first connection may race the ARP; wait for it with a deadline).
    await waitUntil(async () => (await connect(c1, srv.ip, 22)).ok, 10_000, () => `c1 cannot reach srv:22${agentLogs()}`);
    expect(await connect(c1, srv.ip, 22)).toEqual({ ok: true, banner: 'srv' });
    // c2 is not: its SYN is dropped (no RST either: a timeout), though c2 itself may send anything.
    expect(await connect(c2, srv.ip, 22)).toMatchObject({ ok: false, error: 'timeout' });

    const before = await bridgeTable(srv.hv);
    const setOf = (text: string) => /set (g_[0-9a-f]+_4) \{[^}]*?elements = \{ ([^}]*) \}/.exec(text.slice(text.indexOf(`set g_${groups.admins.replace(/-/g, '').slice(-12)}_4`)));
    expect(setOf(before)?.[2]).toBe('10.0.0.11');

    const patched = await client.patch(`/v1/ports/${c2.portId}?wait=realized&timeout=15000`, { securityGroupIds: [groups.default, groups.admins] });
    expect(patched.status).toBe(200);
    await waitUntil(async () => (await connect(c2, srv.ip, 22)).ok, 10_000, () => `c2 still cannot reach srv:22 after joining admins${agentLogs()}`);

    // On srv's host only the admins set changed: every chain and rule is the same, with the
    // same handles (the agent updated the set's elements, not the table).
    const after = await bridgeTable(srv.hv);
    expect(setOf(after)?.[2]).toBe('10.0.0.11-10.0.0.12'); // auto-merge joins adjacent addresses
    const withoutElements = (text: string) => text.replace(/elements = \{[^}]*\}/g, 'elements = {...}');
    expect(withoutElements(after)).toBe(withoutElements(before));
    expect(before).toMatch(/# handle \d+/);
  });

  it('lets replies of allowed connections through (stateful) and refuses unsolicited inbound connections', async () => {
    const [srv, c1] = [vm('srv'), vm('c1')];
    // srv's groups have no egress rule at all, c1's none for ingress: the SYN-ACK and the data
    // back to c1 pass only as replies of the connection c1 opened.
    expect(await connect(c1, srv.ip, 22, { holdMs: 500 })).toEqual({ ok: true, banner: 'srv' });
    expect(await ping(c1, srv.ip)).toBe(true);

    // The other way round nothing is allowed: srv cannot open a connection to c1 (c1's group
    // admits no ingress), nor can it ping it.
    await serve(c1, 8080, 'c1');
    expect(await connect(c1, c1.ip, 8080)).toEqual({ ok: true, banner: 'c1' }); // the server is there
    expect(await connect(srv, c1.ip, 8080)).toMatchObject({ ok: false, error: 'timeout' });
    expect(await ping(srv, c1.ip)).toBe(false);
  });

  it('drops everything a VM sends from a spoofed IP or MAC address', async () => {
    const [srv, c1, c2] = [vm('srv'), vm('c1'), vm('c2')];
    // c1 (in admins) may ping srv; srv counts the echoes it receives.
    let echoes = await echoesReceived(srv);
    expect(await ping(c1, srv.ip, 2)).toBe(true);
    expect(await echoesReceived(srv)).toBe(echoes + 2);

    // c2 forges c1's address, which srv's rules admit: anti-spoofing drops it at c2's tap. A
    // static neighbour entry keeps ARP (also checked) out of the picture: only IP is tested.
    await topology.mustExec(c2.ns, 'ip', ['addr', 'add', `${c1.ip}/32`, 'dev', 'eth0']);
    await topology.mustExec(c2.ns, 'ip', ['neigh', 'replace', srv.ip, 'lladdr', srv.mac, 'dev', 'eth0', 'nud', 'permanent']);
    try {
      echoes = await echoesReceived(srv);
      expect(await ping(c2, srv.ip, 3, c1.ip)).toBe(false);
      expect(await echoesReceived(srv)).toBe(echoes);
      expect(await ping(c2, srv.ip, 2, c2.ip)).toBe(true); // its own address works (c2 is in admins now)
      expect(await echoesReceived(srv)).toBe(echoes + 2);
    } finally {
      await topology.mustExec(c2.ns, 'ip', ['addr', 'del', `${c1.ip}/32`, 'dev', 'eth0']);
      await topology.mustExec(c2.ns, 'ip', ['neigh', 'del', srv.ip, 'dev', 'eth0']);
    }

    // c1 with another MAC: nothing gets through, not even ARP; with its own MAC again it works.
    await topology.mustExec(c1.ns, 'ip', ['link', 'set', 'dev', 'eth0', 'address', '02:00:00:00:be:ef']);
    try {
      await topology.mustExec(c1.ns, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
      echoes = await echoesReceived(srv);
      expect(await ping(c1, srv.ip, 3)).toBe(false);
      expect(await echoesReceived(srv)).toBe(echoes);
    } finally {
      await topology.mustExec(c1.ns, 'ip', ['link', 'set', 'dev', 'eth0', 'address', c1.mac]);
      await topology.mustExec(c1.ns, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
    }
    await waitUntil(() => ping(c1, srv.ip, 1), 10_000, () => 'c1 cannot ping srv with its own MAC again');
  });

  it('keeps the connections of two tenants with the same addresses apart (a conntrack zone per segment)', async () => {
    const tenant = await client.post('/v1/tenants', { name: 'umbra' });
    expect(tenant.status).toBe(201);
    const seg = await client.post('/v1/segments', { tenantId: tenant.body.id, name: 'umbra-net', cidr: '10.0.0.0/24' });
    expect(seg.status).toBe(201);
    const u1 = await addVm('u1', seg.body, 'hv1', '10.0.0.10', []);
    const u2 = await addVm('u2', seg.body, 'hv2', '10.0.0.11', []);
    await waitUntil(() => ready([u1, u2]), 15_000, () => `umbra not programmed${agentLogs()}`);
    await serve(u1, 22, 'u1');
    await waitUntil(async () => (await connect(u2, u1.ip, 22)).ok, 10_000, () => `u2 cannot reach u1:22${agentLogs()}`);

    // The very same 5-tuple in both tenants at once (10.0.0.11:40022 -> 10.0.0.10:22), both
    // connections held open together: each must reach its own server.
    const [acme, umbra] = await Promise.all([
      connect(vm('c1'), vm('srv').ip, 22, { localPort: 40022, holdMs: 1000, timeoutMs: 5000 }),
      connect(u2, u1.ip, 22, { localPort: 40022, holdMs: 1000, timeoutMs: 5000 }),
    ]);
    expect(acme).toEqual({ ok: true, banner: 'srv' });
    expect(umbra).toEqual({ ok: true, banner: 'u1' });
    expect(await ping(u2, u1.ip)).toBe(true);

    // The kernel's view on hv1 (with the conntrack tool, when installed): one entry of that
    // tuple per segment, in different zones.
    const ct = await run('ip', ['netns', 'exec', u1.hv.ns, 'conntrack', '-L', '-p', 'tcp', '--dport', '22', '--sport', '40022']);
    if (ct.code === 0 && (await bridgeTable(u1.hv)) && agents.get('hv1')!.log.some((l) => l.includes('conntrack: br_netfilter'))) {
      const zones = [...ct.stdout.matchAll(/zone=(\d+)/g)].map((m) => Number(m[1]));
      expect(new Set(zones)).toEqual(new Set([segment.vni % 65536, seg.body.vni % 65536]));
    }
  });

  checkIt('reports its firewall loads on /metrics, whole and of sets, in a form promtool accepts', async () => {
    const loads = { whole: 0, sets: 0 };
    for (const hv of topology.hypervisors) {
      const fetched = await topology.exec(hv.ns, process.execPath, ['-e', `fetch('http://127.0.0.1:${METRICS_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(e.message); process.exit(1); })`]);
      expect({ hv: hv.name, code: fetched.code, stderr: fetched.stderr }).toEqual({ hv: hv.name, code: 0, stderr: '' });
      expect(promtoolCheck(fetched.stdout)).toEqual({ status: 0, output: '' });
      const samples = parseSamples(fetched.stdout);
      expect(valueOf(samples, 'overlay_agent_info', { host: hv.name })).toBe(1);
      expect(valueOf(samples, 'overlay_agent_nft_load_seconds_count', { load: 'whole', result: 'failed' }) ?? 0).toBe(0);
      loads.whole += valueOf(samples, 'overlay_agent_nft_load_seconds_count', { load: 'whole', result: 'ok' }) ?? 0;
      loads.sets += valueOf(samples, 'overlay_agent_nft_load_seconds_count', { load: 'sets', result: 'ok' }) ?? 0;
    }
    // Every agent loaded its firewall whole at least once; c2 joining a group was a set update.
    expect(loads.whole).toBeGreaterThanOrEqual(topology.hypervisors.length);
    expect(loads.sets).toBeGreaterThan(0);
  });
});
