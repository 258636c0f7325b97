import { tapName } from '../../src/agent/dataplane/names';
import { waitUntil } from '../support/agents';
import type { api } from '../support/controller-harness';
import { EchoCapture } from './capture';
import { OverlayStack } from './overlay-stack';
import { systemSuite } from './system-suite';
import { must, type Topology, type Vm } from './topology';

/**
 * Mirror sessions on real kernels, with real packets (NIST SP 800-125B VM-TM-R1..R3).
 *
 * Tenant mon, segment 10.70.0.0/24, a group that lets ICMP in and everything out:
 *   a   hv1 10.70.0.10           the VM watched
 *   b   hv2 10.70.0.20           its peer
 *   n1  hv1 analyzer port        an analyzer VM on a's host (tcpdump on its eth0)
 *   n2  hv3 analyzer port        an analyzer VM on a third host
 *   collector 192.0.2.100        a machine on the underlay, not a hypervisor: a VXLAN device of
 *                                the session's VNI on UDP 4790, tcpdump on it
 *
 * Every count is exact: pings carry an identifier of their own (`ping -e`), and a capture is read
 * only after a later marker ping reached it (frames arrive in order on one path), so a copy that
 * should not be there would be seen.
 */
const describeSystem = systemSuite('mirror', ['tcpdump', 'arping', 'nft']);

const COLLECTOR_IP = '192.0.2.100';
const COLLECTOR_PORT = 4790;

describeSystem('mirror sessions on real kernels: analyzers and a collector count what a VM sends and receives', () => {
  const stack = new OverlayStack('system-mirror');
  let topology: Topology;
  let client: ReturnType<typeof api>;
  const { hostIds } = stack;
  const agentLogs = () => stack.agentLogs(25);
  let tenantId = '';
  let segmentId = '';
  let groupId = '';
  const vms = new Map<string, Vm & { portId: string }>();
  const captures: EchoCapture[] = [];
  let nextPingId = 1000;

  beforeAll(async () => {
    // A short reconcile interval: a filter deleted by hand comes back within a second.
    await stack.start({ agentEnv: { OVERLAY_RECONCILE_MS: '1000' } });
    ({ topology, client } = stack);
    const tenant = await client.post('/v1/tenants', { name: 'mon' });
    tenantId = tenant.body.id;
    const segment = await client.post('/v1/segments', { tenantId, name: 'mon', cidr: '10.70.0.0/24' });
    segmentId = segment.body.id;
    const group = await client.post('/v1/security-groups', {
      tenantId,
      name: 'icmp-in',
      rules: [
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp' },
        { direction: 'egress', ethertype: 'IPv4', protocol: 'any' },
      ],
    });
    groupId = group.body.id;
    expect([tenant.status, segment.status, group.status]).toEqual([201, 201, 201]);
    await addVm('a', 'hv1', '10.70.0.10');
    await addVm('b', 'hv2', '10.70.0.20');
    await addVm('n1', 'hv1', '10.70.0.201', 'analyzer');
    await addVm('n2', 'hv3', '10.70.0.202', 'analyzer');
    await waitUntil(async () => (await ping('a', 'b', 1)).code === 0, 30_000, () => `a cannot ping b${agentLogs()}`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(captures.map((c) => c.stop()));
    await stack.stop();
  }, 60_000);

  /** A VM (or an analyzer) behind a port bound to `hv`, its tap attached (or, for an analyzer, set up) by the agent. */
  async function addVm(name: string, hv: string, ip: string, role: 'vm' | 'analyzer' = 'vm'): Promise<void> {
    const body = role === 'analyzer' ? { segmentId, vmId: name, role, ips: [] } : { segmentId, vmId: name, ips: [ip], securityGroupIds: [groupId] };
    const port = await client.post('/v1/ports', body);
    expect(port.status).toBe(201);
    // a moves between hosts (see the live migration case).
    const vm = await topology.addVm(name, topology.hypervisor(hv), { tap: tapName(port.body.id), mac: port.body.mac, ip, prefixLength: 24 }, { migrates: name === 'a' });
    const bound = await client.patch(`/v1/ports/${port.body.id}?wait=realized&timeout=15000`, { hostId: hostIds.get(hv) });
    expect(bound.status).toBe(200);
    vms.set(name, { ...vm, portId: port.body.id });
  }

  const vm = (name: string) => vms.get(name)!;

  function ping(from: string, to: string, count: number, id = nextPingId++) {
    return topology.exec(vm(from).ns, 'ping', ['-c', String(count), '-i', '0.05', '-W', '1', '-e', String(id), '-q', vm(to).ip]);
  }

  async function capture(ns: string, dev = 'eth0'): Promise<EchoCapture> {
    const c = await new EchoCapture(topology, ns, dev).start();
    captures.push(c);
    return c;
  }

  /**
   * Pings `to` from `from` five times under a fresh identifier and returns the sequence numbers
   * of the requests and replies `at` saw, once a marker ping after them reached it.
   */
  async function mirroredEchoes(at: EchoCapture, from: string, to: string): Promise<{ requests: number[]; replies: number[] }> {
    const id = nextPingId++;
    expect((await ping(from, to, 5, id)).code).toBe(0);
    const marker = nextPingId++;
    await waitUntil(
      async () => {
        await ping(from, to, 1, marker);
        return at.echoes.some((e) => e.id === marker);
      },
      10_000,
      () => `the marker ping never reached the capture${agentLogs()}`,
    );
    return { requests: at.seqs('request', id), replies: at.seqs('reply', id) };
  }

  /** Waits until the capture sees copies of `from`'s pings at all (the session is programmed). */
  async function untilMirrored(at: EchoCapture, from: string, to: string): Promise<void> {
    const sent = new Set<number>();
    await waitUntil(
      async () => {
        const id = nextPingId++;
        sent.add(id);
        await ping(from, to, 1, id);
        return at.echoes.some((e) => sent.has(e.id));
      },
      20_000,
      () => `no copy of ${from}'s pings reached the capture${agentLogs()}`,
    );
  }

  /** The mirror filters (mirred actions) on a tap's ingress or in the taps' shared egress block of a hypervisor. */
  async function mirredFilters(hv: string, where: string[]): Promise<number> {
    const out = await must('ip', ['netns', 'exec', topology.hypervisor(hv).ns, 'tc', '-j', 'filter', 'show', ...where]);
    return (JSON.parse(out || '[]') as { options?: { actions?: { kind: string }[] } }[]).filter((f) => f.options?.actions?.some((a) => a.kind === 'mirred')).length;
  }

  let local = '';

  it('an analyzer port on the same host receives exactly what the VM sent and received', async () => {
    const n1 = await capture(vm('n1').ns);
    const session = await client.post('/v1/mirror-sessions', { tenantId, name: 'watch-a', sources: [{ portId: vm('a').portId }], sink: { type: 'port', portId: vm('n1').portId } });
    expect(session.status).toBe(201);
    local = session.body.id;
    await untilMirrored(n1, 'a', 'b');
    expect(await mirroredEchoes(n1, 'a', 'b')).toEqual({ requests: [1, 2, 3, 4, 5], replies: [1, 2, 3, 4, 5] });
    // b's pings to a, the other way round: a received the requests and sent the replies.
    expect(await mirroredEchoes(n1, 'b', 'a')).toEqual({ requests: [1, 2, 3, 4, 5], replies: [1, 2, 3, 4, 5] });
  });

  it('a source copied one way only: what the VM sends, not what it receives', async () => {
    const n1 = captures[0];
    const patched = await client.patch(`/v1/mirror-sessions/${local}`, { sources: [{ portId: vm('a').portId, direction: 'egress' }] });
    expect(patched.status).toBe(200);
    // What a receives is copied from the taps' shared egress block: that filter goes.
    await waitUntil(async () => (await mirredFilters('hv1', ['block', '4701', 'egress'])) === 0, 15_000, () => `the receive-side filter stayed${agentLogs()}`);
    expect(await mirroredEchoes(n1, 'a', 'b')).toEqual({ requests: [1, 2, 3, 4, 5], replies: [] });
    const back = await client.patch(`/v1/mirror-sessions/${local}`, { sources: [{ portId: vm('a').portId, direction: 'both' }] });
    expect(back.status).toBe(200);
    await waitUntil(async () => (await mirredFilters('hv1', ['block', '4701', 'egress'])) === 1, 15_000, () => `the receive-side filter did not return${agentLogs()}`);
  });

  it('an analyzer port on another hypervisor, reached over the session\u2019s VNI', async () => {
    const n2 = await capture(vm('n2').ns);
    const session = await client.post('/v1/mirror-sessions', { tenantId, name: 'watch-b', sources: [{ portId: vm('b').portId, direction: 'both' }], sink: { type: 'port', portId: vm('n2').portId } });
    expect(session.status).toBe(201);
    await untilMirrored(n2, 'b', 'a');
    expect(await mirroredEchoes(n2, 'a', 'b')).toEqual({ requests: [1, 2, 3, 4, 5], replies: [1, 2, 3, 4, 5] });
    expect((await client.delete(`/v1/mirror-sessions/${session.body.id}`)).status).toBe(204);
  });

  it('a remote collector decapsulates the copies from VXLAN and counts them', async () => {
    const ns = await topology.addUnderlayHost('collector', COLLECTOR_IP);
    const session = await client.post('/v1/mirror-sessions', { tenantId, name: 'to-collector', sources: [{ portId: vm('a').portId }], sink: { type: 'vxlan', remoteIp: COLLECTOR_IP, udpPort: COLLECTOR_PORT } });
    expect(session.status).toBe(201);
    const vni = session.body.vni as number;
    expect(session.body.sink.vni).toBe(vni);
    await must('ip', ['-n', ns, 'link', 'add', 'vxc', 'type', 'vxlan', 'id', String(vni), 'local', COLLECTOR_IP, 'dstport', String(COLLECTOR_PORT), 'nolearning']);
    await must('ip', ['-n', ns, 'link', 'set', 'vxc', 'up']);
    const collector = await capture(ns, 'vxc');
    await untilMirrored(collector, 'a', 'b');
    expect(await mirroredEchoes(collector, 'a', 'b')).toEqual({ requests: [1, 2, 3, 4, 5], replies: [1, 2, 3, 4, 5] });
    expect((await client.delete(`/v1/mirror-sessions/${session.body.id}`)).status).toBe(204);
    // Its filters leave a's tap (and the shared block): only watch-a's remain.
    await waitUntil(async () => (await mirredFilters('hv1', ['dev', vm('a').tap, 'ingress'])) === 1 && (await mirredFilters('hv1', ['block', '4701', 'egress'])) === 1, 15_000, () => `the collector's filters stayed${agentLogs()}`);
  });

  it('a mirror filter deleted by hand returns at the next reconcile', async () => {
    const n1 = captures[0];
    const hv1 = topology.hypervisor('hv1').ns;
    const tap = vm('a').tap;
    type Listed = { pref: number; options?: { actions?: { kind: string; to_dev?: string; stats?: { packets: number } }[] } }[];
    // Session watch-a's filter: the one copying to n1's tap.
    const mirrorFiltersOnTap = async () =>
      (JSON.parse(await must('ip', ['netns', 'exec', hv1, 'tc', '-s', '-j', 'filter', 'show', 'dev', tap, 'ingress'])) as Listed).filter((f) =>
        f.options?.actions?.some((a) => a.kind === 'mirred' && a.to_dev === vm('n1').tap),
      );
    const copied = (filters: Listed) => filters.reduce((n, f) => n + (f.options?.actions?.find((a) => a.kind === 'mirred')?.stats?.packets ?? 0), 0);
    const before = await mirrorFiltersOnTap();
    expect(before).toHaveLength(1);
    expect(copied(before)).toBeGreaterThan(0);
    for (const pref of new Set(before.map((f) => f.pref))) {
      await must('ip', ['netns', 'exec', hv1, 'tc', 'filter', 'del', 'dev', tap, 'ingress', 'pref', String(pref)]);
    }
    // Nothing pings meanwhile: a filter that copied fewer packets than the deleted one is a new one.
    await waitUntil(
      async () => {
        const now = await mirrorFiltersOnTap();
        return now.length === before.length && copied(now) < copied(before);
      },
      15_000,
      () => `the filter did not come back (before: ${JSON.stringify(before)})${agentLogs()}`,
    );
    expect(await mirroredEchoes(n1, 'a', 'b')).toEqual({ requests: [1, 2, 3, 4, 5], replies: [1, 2, 3, 4, 5] });
  });

  it('a tap put in promiscuous mode by hand, and a bridge in hub mode, show on their host as the agent observes them, until undone', async () => {
    const hv1 = topology.hypervisor('hv1').ns;
    const host = `/v1/hosts/${hostIds.get('hv1')}`;
    type Observed = { promiscuousPorts: { portId: string; role: string; promiscuity: number }[]; hubSegments: { segmentId: string; vni: number }[] } | null;
    let last: Observed = null;
    const observed = async () => (last = (await client.get(host)).body.observed as Observed);
    const aListed = async () => (await observed())?.promiscuousPorts.find((p) => p.portId === vm('a').portId);
    const hub = async () => (await observed())?.hubSegments.some((s) => s.segmentId === segmentId) ?? false;
    await waitUntil(async () => (await observed()) !== null, 15_000, () => `hv1's agent reported no observation${agentLogs()}`);
    expect(await aListed()).toBeUndefined();
    expect(await hub()).toBe(false);
    const vni = (await client.get(`/v1/segments/${segmentId}`)).body.vni as number;
    await must('ip', ['netns', 'exec', hv1, 'ip', 'link', 'set', vm('a').tap, 'promisc', 'on']);
    await must('ip', ['netns', 'exec', hv1, 'ip', 'link', 'set', `br${vni}`, 'type', 'bridge', 'ageing_time', '0']);
    try {
      await waitUntil(async () => (await aListed()) !== undefined && (await hub()), 15_000, () => `not seen: ${JSON.stringify(last)}${agentLogs()}`);
      // Its bridge accounts for one; the promiscuous user for the other.
      expect(await aListed()).toEqual({ portId: vm('a').portId, role: 'vm', promiscuity: 2 });
      expect((await observed())!.hubSegments).toEqual([{ segmentId, vni }]);
    } finally {
      await must('ip', ['netns', 'exec', hv1, 'ip', 'link', 'set', vm('a').tap, 'promisc', 'off']);
      await must('ip', ['netns', 'exec', hv1, 'ip', 'link', 'set', `br${vni}`, 'type', 'bridge', 'ageing_time', '30000']);
    }
    await waitUntil(async () => (await aListed()) === undefined && !(await hub()), 15_000, () => `still shown: ${JSON.stringify(last)}${agentLogs()}`);
  });

  it('mirroring goes on while the agent is down and after it restarts; the session reports its counters', async () => {
    const n1 = captures[0];
    const agent = stack.agents.get('hv1')!;
    await agent.stop();
    expect(await mirroredEchoes(n1, 'a', 'b')).toEqual({ requests: [1, 2, 3, 4, 5], replies: [1, 2, 3, 4, 5] });
    agent.start();
    await waitUntil(async () => (await client.get(`/v1/hosts/${hostIds.get('hv1')}`)).body.connected === true, 20_000, () => `hv1's agent did not reconnect${agentLogs()}`);
    expect(await mirroredEchoes(n1, 'a', 'b')).toEqual({ requests: [1, 2, 3, 4, 5], replies: [1, 2, 3, 4, 5] });
    let seen: unknown;
    await waitUntil(
      async () => {
        seen = (await client.get(`/v1/mirror-sessions/${local}`)).body;
        const source = (seen as { status?: { state: string; packets: number }[] }).status?.[0];
        return source?.state === 'active' && source.packets >= 20;
      },
      20_000,
      () => `status: ${JSON.stringify(seen)}`,
    );
    const source = (await client.get(`/v1/mirror-sessions/${local}`)).body.status[0];
    expect(source).toMatchObject({ portId: vm('a').portId, hostId: hostIds.get('hv1'), state: 'active', lastError: null });
    expect(source.bytes).toBeGreaterThan(source.packets * 42);
  });

  it('mirroring follows the VM through five live migrations: every echo it exchanged reaches the analyzer and the collector', async () => {
    const n1 = captures[0];
    const collectorNs = await topology.addUnderlayHost('coll2', '192.0.2.101');
    const session = await client.post('/v1/mirror-sessions', { tenantId, name: 'follow-a', sources: [{ portId: vm('a').portId }], sink: { type: 'vxlan', remoteIp: '192.0.2.101', udpPort: COLLECTOR_PORT } });
    expect(session.status).toBe(201);
    await must('ip', ['-n', collectorNs, 'link', 'add', 'vxc', 'type', 'vxlan', 'id', String(session.body.vni), 'local', '192.0.2.101', 'dstport', String(COLLECTOR_PORT), 'nolearning']);
    await must('ip', ['-n', collectorNs, 'link', 'set', 'vxc', 'up']);
    const collector = await capture(collectorNs, 'vxc');
    await untilMirrored(collector, 'a', 'b');

    // b pings a every 10 ms throughout, under one identifier.
    const id = nextPingId++;
    const pinger = topology.spawnIn(vm('b').ns, 'ping', ['-D', '-n', '-i', '0.01', '-W', '1', '-e', String(id), vm('a').ip]);
    const answered: { seq: number; at: number }[] = [];
    pinger.stdout!.on('data', (chunk: Buffer) => {
      for (const m of chunk.toString('utf8').matchAll(/^\[(\d+\.\d+)\] .*icmp_seq=(\d+)/gm)) {
        answered.push({ seq: Number(m[2]), at: Number(m[1]) * 1000 });
      }
    });
    try {
      await waitUntil(() => answered.length >= 20, 10_000, () => 'pings answered before the first migration');
      let here = topology.hypervisor('hv1');
      for (let i = 0; i < 5; i++) {
        const there = here.name === 'hv1' ? topology.hypervisor('hv3') : topology.hypervisor('hv1');
        await topology.plugIncoming(vm('a'), there);
        const prepared = await client.post('/v1/migrations?timeout=30000', { vmId: 'a', sourceHostId: hostIds.get(here.name), destinationHostId: hostIds.get(there.name) });
        expect({ status: prepared.status, state: prepared.body.state }).toEqual({ status: 201, state: 'prepared' });
        // The copies' filters are on the destination's tap before the VM lands.
        expect(await mirredFilters(there.name, ['dev', vm('a').tap, 'ingress'])).toBeGreaterThan(0);
        const during = (await client.get(`/v1/mirror-sessions/${session.body.id}`)).body.status[0];
        expect(during.state).toBe('re-homing');
        await topology.resume(vm('a'));
        await waitUntil(async () => (await client.get(`/v1/migrations/${prepared.body.id}`)).body.state === 'completed', 20_000, () => `migration ${i + 1} not completed${agentLogs()}`);
        here = there;
      }
      const last = answered.length;
      await waitUntil(() => answered.length >= last + 20, 10_000, () => 'pings answered after the last migration');
    } finally {
      pinger.kill('SIGINT');
    }
    // Every echo a exchanged (b saw the answer): the request a received and the reply it sent
    // both reached the collector and the analyzer, wherever a ran at that moment.
    const marker = nextPingId++;
    await waitUntil(
      async () => {
        await ping('b', 'a', 1, marker);
        return collector.echoes.some((e) => e.id === marker) && n1.echoes.some((e) => e.id === marker);
      },
      10_000,
      () => 'the marker ping never reached the captures',
    );
    const seqs = answered.map((a) => a.seq);
    for (const [name, at] of [['collector', collector], ['analyzer', n1]] as const) {
      const missing = (kind: 'request' | 'reply') => seqs.filter((seq) => !at.seqs(kind, id).includes(seq));
      expect({ name, requestsMissing: missing('request'), repliesMissing: missing('reply') }).toEqual({ name, requestsMissing: [], repliesMissing: [] });
    }
    // Figures: the VM's blackout (longest gap between answered pings) and the collector's
    // longest gap between copies of them.
    const longestGap = (times: number[]) => times.slice(1).reduce((gap, t, k) => Math.max(gap, t - times[k]), 0);
    const vmGap = longestGap(answered.map((a) => a.at));
    const collectorGap = longestGap(collector.echoes.filter((e) => e.id === id && e.kind === 'reply').map((e) => e.at));
    console.log(`mirroring through 5 live migrations, a ping every 10 ms: ${answered.length} echoes answered, every one copied to the collector and the analyzer; longest gap: VM ${Math.round(vmGap)} ms, collector ${Math.round(collectorGap)} ms`);
  }, 240_000);
});
