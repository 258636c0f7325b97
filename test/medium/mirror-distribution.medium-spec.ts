import * as grpc from '@grpc/grpc-js';
import { systemActor } from '../../src/controller/auth/principal';
import { MirrorCountersRepository } from '../../src/controller/distribution/mirror-counters.repository';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import type { MirrorSession } from '../../src/controller/model/mirror-session';
import { RedisStore } from '../../src/controller/store/redis-store';
import { agentResources, makeAgent, spansFromScratch, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { RawAgent } from '../support/raw-agent';

/**
 * Mirror sessions from the store to the agents: each host gets exactly the MirrorTaps of its own
 * source ports and the MirrorSinks of the sinks it holds; an agent resuming from an old revision
 * ends up with what a snapshot gives; the counters an agent reports land in Redis (its own taps
 * only), and a malformed report ends its stream.
 *
 * Sessions are written to the store directly (one small script: the record and its change
 * record), not through the mirror sessions API: spans are what is tested here.
 */
const PUT_RECORD = `
local kind, table_name, id, json = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key = K[table_name]()
local old = redis.call('HGET', key, id)
if json == '' then
  redis.call('HDEL', key, id)
  return commit({ op(kind, id, nil, old or nil) })
end
redis.call('HSET', key, id, json)
return commit({ op(kind, id, json, old or nil) })
`;

describe('mirror sessions: distribution', () => {
  const prefix = uniquePrefix('mirror-span');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  const agents = new Map<string, TestAgent>();
  const hostIds = new Map<string, string>();
  const portIds = new Map<string, string>();
  let tenantId = '';

  async function put(kind: 'mirrorSession' | 'port', table: 'mirrorSessions' | 'ports', id: string, record: object | null): Promise<void> {
    const store = ctl.app.get(RedisStore);
    store.defineScript('testPutRecord', PUT_RECORD);
    await store.mutate('testPutRecord', [kind, table, id, record ? JSON.stringify(record) : ''], systemActor('test'));
  }

  const session = (id: string, fields: Partial<MirrorSession>): MirrorSession => ({
    id,
    tenantId,
    name: id,
    enabled: true,
    sources: [],
    sink: { type: 'port', portId: portIds.get('an')! },
    filter: null,
    snapLength: null,
    vni: 15_000 + Number(id.slice(1)),
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...fields,
  });

  async function converged(): Promise<boolean> {
    const truth = await spansFromScratch(ctl.redis, ctl.app.get(RedisStore));
    return [...agents].every(([name, a]) => JSON.stringify(agentResources(a.agent)) === JSON.stringify(truth.spans.get(hostIds.get(name)!) ?? []));
  }

  /** What each agent holds of mirrors: tap ids with where they send, sink ids with where they deliver. */
  function mirrorsHeld(): Record<string, { taps: Record<string, string>; sinks: Record<string, string> }> {
    const out: Record<string, { taps: Record<string, string>; sinks: Record<string, string> }> = {};
    const name = (portId: string) => [...portIds].find(([, id]) => id === portId)?.[0] ?? portId;
    for (const [host, a] of agents) {
      const taps: Record<string, string> = {};
      for (const [id, t] of a.agent.state.mirrors) {
        const [sid, pid] = id.split('/');
        taps[`${sid}/${name(pid)}`] = t.sinkPortId ? `port ${name(t.sinkPortId)}` : t.sinkInterface ? `interface ${t.sinkInterface}` : `vxlan ${t.vni} ${t.remoteIp}:${t.udpPort}`;
      }
      const sinks: Record<string, string> = {};
      for (const [id, s] of a.agent.state.mirrorSinks) {
        sinks[id] = s.portId ? `${s.vni} port ${name(s.portId)}` : `${s.vni} interface ${s.interface}`;
      }
      out[host] = { taps, sinks };
    }
    return out;
  }

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    tenantId = (await client.post('/v1/tenants', { name: 'acme' })).body.id;
    const segment = (await client.post('/v1/segments', { tenantId, name: 'web' })).body;
    for (let i = 1; i <= 4; i++) {
      hostIds.set(`hv${i}`, (await client.post('/v1/hosts', { name: `mx-hv${i}`, vtepIp: `192.0.2.${80 + i}` })).body.id);
    }
    for (const [name, host] of [
      ['vm1', 'hv1'],
      ['vm2', 'hv2'],
      ['an', 'hv3'],
      ['vm4', 'hv4'],
    ]) {
      portIds.set(name, (await client.post('/v1/ports', { segmentId: segment.id, hostId: hostIds.get(host) })).body.id);
    }
    // The analyzer's role, as the ports API will set it.
    const an = JSON.parse((await ctl.redis.hget(ctl.app.get(RedisStore).keys.ports(), portIds.get('an')!))!);
    await put('port', 'ports', an.id, { ...an, role: 'analyzer' });
    for (const name of ['hv1', 'hv2', 'hv3']) {
      agents.set(name, makeAgent(`mx-${name}`, ctl.grpcTarget));
    }
    await Promise.all([...agents.values()].map((a) => a.agent.start()));
    await waitUntil(converged, 10_000, () => 'agents in sync');
  });

  afterAll(async () => {
    await Promise.all([...agents.values()].map((a) => a.cleanup()));
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  it('gives each host the taps of its own sources (sink seen from it) and the sink side where the sink is', async () => {
    const [vm1, vm2] = [portIds.get('vm1')!, portIds.get('vm2')!];
    await put('mirrorSession', 'mirrorSessions', 's1', session('s1', { sources: [{ portId: vm1, direction: 'both' }, { portId: vm2, direction: 'ingress' }] }));
    await put('mirrorSession', 'mirrorSessions', 's2', session('s2', { sources: [{ portId: vm2, direction: 'egress' }], sink: { type: 'uplink', hostId: hostIds.get('hv2')!, interface: 'eth7' } }));
    await put('mirrorSession', 'mirrorSessions', 's3', session('s3', { enabled: false, sources: [{ portId: vm1, direction: 'both' }] }));
    await waitUntil(converged, 10_000, () => JSON.stringify(mirrorsHeld()));
    expect(mirrorsHeld()).toEqual({
      hv1: { taps: { 's1/vm1': 'vxlan 15001 192.0.2.83:4789' }, sinks: {} },
      hv2: { taps: { 's1/vm2': 'vxlan 15001 192.0.2.83:4789', 's2/vm2': 'interface eth7' }, sinks: { s2: '15002 interface eth7' } },
      hv3: { taps: {}, sinks: { s1: '15001 port an' } },
    });
    expect(agents.get('hv2')!.agent.state.mirrors.get(`s1/${vm2}`)).toMatchObject({ ingress: true, egress: false });
    expect(agents.get('hv3')!.agent.state.ports.get(portIds.get('an')!)).toMatchObject({ analyzer: true });
  });

  it('resumes an agent from an old revision to what a snapshot gives', async () => {
    const hv2 = agents.get('hv2')!;
    await hv2.agent.stop();
    const snapshots = hv2.agent.stats.snapshots;
    const [vm1, vm2] = [portIds.get('vm1')!, portIds.get('vm2')!];
    // While it is away: s1 drops vm2, s2 is deleted, s3 is enabled with vm2, s4 sends vm2's copies to a collector.
    await put('mirrorSession', 'mirrorSessions', 's1', session('s1', { sources: [{ portId: vm1, direction: 'both' }] }));
    await put('mirrorSession', 'mirrorSessions', 's2', null);
    await put('mirrorSession', 'mirrorSessions', 's3', session('s3', { sources: [{ portId: vm1, direction: 'both' }, { portId: vm2, direction: 'both' }], filter: { ethertype: 'IPv4', protocol: 6, remoteCidr: null } }));
    await put('mirrorSession', 'mirrorSessions', 's4', session('s4', { sources: [{ portId: vm2, direction: 'both' }], sink: { type: 'vxlan', remoteIp: '203.0.113.5', vni: 15_004, udpPort: 4790 } }));
    await hv2.agent.start();
    await waitUntil(converged, 10_000, () => JSON.stringify(mirrorsHeld()));
    expect(hv2.agent.stats.snapshots).toBe(snapshots);
    expect(ctl.app.get(SessionRegistry).session(hostIds.get('hv2')!)!.snapshotsSent).toBe(0);
    expect(mirrorsHeld()).toEqual({
      hv1: { taps: { 's1/vm1': 'vxlan 15001 192.0.2.83:4789', 's3/vm1': 'vxlan 15003 192.0.2.83:4789' }, sinks: {} },
      hv2: { taps: { 's3/vm2': 'vxlan 15003 192.0.2.83:4789', 's4/vm2': 'vxlan 15004 203.0.113.5:4790' }, sinks: {} },
      hv3: { taps: {}, sinks: { s1: '15001 port an', s3: '15003 port an' } },
    });
    expect(hv2.agent.state.mirrors.get(`s3/${vm2}`)).toMatchObject({ filterEthertype: 'IPv4', filterProtocol: 6 });
  });

  it('stores the counters an agent reports for its own taps, and ends the stream of one that sends a malformed report', async () => {
    const vm4 = portIds.get('vm4')!;
    const hv4 = hostIds.get('hv4')!;
    await put('mirrorSession', 'mirrorSessions', 's5', session('s5', { sources: [{ portId: vm4, direction: 'both' }] }));
    const raw = new RawAgent(ctl.grpcTarget, 'mx-hv4', 'raw-hv4');
    try {
      await waitUntil(() => raw.delivered, 10_000, () => 'hv4 snapshot');
      const counters = ctl.app.get(MirrorCountersRepository);
      const before = Date.now();
      raw.send({ mirrorCounters: { entries: [{ id: `s5/${vm4}`, packets: 12, bytes: 1200, error: '' }, { id: `s1/${portIds.get('vm1')}`, packets: 1, bytes: 1 }] } });
      raw.send({ mirrorCounters: { entries: [{ id: `s5/${vm4}`, packets: 14, bytes: 1400, error: 'tc said\nno' }] } });
      await waitUntil(async () => (await counters.read(hv4, [`s5/${vm4}`])).get(`s5/${vm4}`)?.packets === 14, 10_000, () => 'counters stored');
      const stored = await counters.read(hv4, [`s5/${vm4}`, `s1/${portIds.get('vm1')}`]);
      expect([...stored.keys()]).toEqual([`s5/${vm4}`]); // another host's tap is ignored
      expect(stored.get(`s5/${vm4}`)).toMatchObject({ packets: 14, bytes: 1400, error: 'tc said no' });
      expect(stored.get(`s5/${vm4}`)!.at).toBeGreaterThanOrEqual(before);
      expect(raw.ended).toBeUndefined();

      raw.send({ mirrorCounters: { entries: [{ id: 'not-a-tap-id', packets: 1, bytes: 1 }] } });
      await waitUntil(() => raw.ended !== undefined, 10_000, () => 'stream ended');
      expect(raw.ended).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/not a mirror tap id/) });
    } finally {
      raw.close();
    }
    for (const entries of [Array.from({ length: 4097 }, (_, i) => ({ id: `s5/p${i}`, packets: 0, bytes: 0 })), [{ id: `s5/${vm4}`, packets: '18446744073709551615', bytes: 0 }]]) {
      const again = new RawAgent(ctl.grpcTarget, 'mx-hv4', 'raw-hv4');
      try {
        await waitUntil(() => again.delivered, 10_000, () => 'hv4 snapshot');
        again.send({ mirrorCounters: { entries } });
        await waitUntil(() => again.ended !== undefined, 10_000, () => 'stream ended');
        expect(again.ended!.code).toBe(grpc.status.INVALID_ARGUMENT);
      } finally {
        again.close();
      }
    }
    // What was stored stays: a refused report records nothing.
    expect((await ctl.app.get(MirrorCountersRepository).read(hv4, [`s5/${vm4}`])).get(`s5/${vm4}`)).toMatchObject({ packets: 14 });
  });
});
