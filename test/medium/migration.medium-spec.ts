import { tapName } from '../../src/agent/dataplane/names';
import { fdbKey } from '../../src/agent/dataplane/dataplane';
import { MigrationMonitor } from '../../src/controller/migrations/migration.monitor';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';

/*
 * Live migration between in-memory agents (firewall on, so the memory dataplane keeps the Linux
 * semantics: a port is open only once the loaded ruleset names it). Every agent message is a
 * "moment": at each one the host where the store says the VM runs must hold the VM's rules.
 */

const ssh = { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteCidr: '0.0.0.0/0' };
const egressAll = [{ direction: 'egress', ethertype: 'IPv4', protocol: 'any', remoteCidr: '0.0.0.0/0' }];
const VTEP = { src: '192.0.2.1', dst: '192.0.2.2', peer1: '192.0.2.3', peer2: '192.0.2.4' } as const;
type HostName = keyof typeof VTEP;

describe('live migration: make before break, with a timeline', () => {
  const prefix = uniquePrefix('migration');
  let ctl: Harness;
  let client: ReturnType<typeof api>;
  const agents = new Map<HostName, TestAgent>();
  const hostIds = new Map<HostName, string>();
  const hostNames = new Map<string, HostName>();
  let tenantId: string;
  let segmentId: string;
  let groupId: string;
  let churnSegmentId: string;
  let vmCount = 0;
  /** Moments at which the host the store names as the VM's lacked its rules. */
  const violations: string[] = [];
  let watched: { portId: string } | undefined;
  let moments = 0;

  /** The migration's steps in time order, without the connection handover's events (they may come before or after the destination's ack). */
  const stepsOf = (m: { timeline: { event: string }[] }): string[] => m.timeline.map((e) => e.event).filter((e) => !e.startsWith('connections-'));
  const ok = async (res: Promise<{ status: number; body: any }>, status = 201): Promise<any> => {
    const r = await res;
    expect({ status: r.status, body: r.body }).toMatchObject({ status });
    return r.body;
  };

  /** The VM's port is open on `host`: attached, with its policy, named by the loaded firewall. */
  const hasRules = (host: HostName, portId: string): boolean => {
    const a = agents.get(host)!;
    return a.agent.state.policies.has(portId) && a.dataplane.isOpen(tapName(portId));
  };

  /** Nothing of the port left on `host`: no resource, no policy, no tap, no forwarding entry. */
  const holdsNothing = (host: HostName, port: { id: string; mac: string }, vni: number): boolean => {
    const a = agents.get(host)!;
    const dp = a.dataplane.dump();
    return !a.agent.state.ports.has(port.id) && !a.agent.state.policies.has(port.id) && !dp.ports.has(tapName(port.id)) && !dp.fdb.has(fdbKey(vni, port.mac));
  };

  function checkMoment(): void {
    if (!watched) {
      return;
    }
    moments++;
    const running = ctl.app.get(MaterializedView).current.ports.get(watched.portId)?.hostId;
    const host = running ? hostNames.get(running) : undefined;
    if (host && !hasRules(host, watched.portId)) {
      violations.push(`moment ${moments}: VM marked running on ${host}, which lacks its rules`);
    }
  }

  function startAgent(name: HostName, stateDir?: string): TestAgent {
    const a = makeAgent(`mig-${name}`, ctl.grpcTarget, { vtepIp: VTEP[name], firewall: true, reconcileIntervalMs: 300, migrationAutoCommit: true }, stateDir);
    a.agent.onProgress = checkMoment;
    agents.set(name, a);
    return a;
  }

  beforeAll(async () => {
    ctl = await startController({ prefix });
    client = api(ctl.url);
    tenantId = (await ok(client.post('/v1/tenants', { name: 'acme' }))).id;
    segmentId = (await ok(client.post('/v1/segments', { tenantId, name: 'app', cidr: '10.1.0.0/16' }))).id;
    churnSegmentId = (await ok(client.post('/v1/segments', { tenantId, name: 'churn', cidr: '10.2.0.0/16' }))).id;
    groupId = (await ok(client.post('/v1/security-groups', { tenantId, name: 'app', rules: [ssh, ...egressAll] }))).id;
    for (const name of Object.keys(VTEP) as HostName[]) {
      const host = await ok(client.post('/v1/hosts', { name: `mig-${name}`, vtepIp: VTEP[name] }));
      hostIds.set(name, host.id);
      hostNames.set(host.id, name);
    }
    // Peers: a port of the segment on each peer host, so they hold its table.
    await ok(client.post('/v1/ports', { segmentId, hostId: hostIds.get('peer1'), ips: ['10.1.0.3'], securityGroupIds: [groupId] }));
    await ok(client.post('/v1/ports', { segmentId, hostId: hostIds.get('peer2'), ips: ['10.1.0.4'], securityGroupIds: [groupId] }));
    for (const name of Object.keys(VTEP) as HostName[]) {
      await startAgent(name).agent.start();
    }
    await waitUntil(() => [...agents.values()].every((a) => a.agent.synced), 10_000, () => 'agents synced');
  });

  afterAll(async () => {
    await Promise.all([...agents.values()].map((a) => a.cleanup()));
    await ctl?.close();
    await dropPrefix(ctl.config.redisUrl, prefix);
  });

  afterEach(() => {
    watched = undefined;
  });

  /** A new VM with one port on the source host, its rules in place there. */
  async function newVm(): Promise<{ vmId: string; port: any; vni: number }> {
    const vmId = `vm-${++vmCount}`;
    const port = await ok(client.post('/v1/ports', { segmentId, hostId: hostIds.get('src'), vmId, ips: [`10.1.1.${vmCount}`], securityGroupIds: [groupId] }));
    await waitUntil(() => hasRules('src', port.id), 10_000, () => 'VM port programmed on the source');
    const segment = await ok(client.get(`/v1/segments/${segmentId}`), 200);
    return { vmId, port, vni: segment.vni };
  }

  /** Unrelated changes until stopped: ports come and go on another segment and in the VM's group. */
  function churn(): { stop: () => Promise<number> } {
    let running = true;
    let n = 0;
    const loop = (async () => {
      while (running) {
        // Never on the source in the VM's segment: the source must end up holding nothing of it.
        const host = hostIds.get(n % 2 ? (['src', 'dst', 'peer1', 'peer2'] as const)[(n >> 1) % 4] : (['dst', 'peer1', 'peer2'] as const)[(n >> 1) % 3]);
        const p = await client.post('/v1/ports', { segmentId: n % 2 ? churnSegmentId : segmentId, hostId: host, ips: [`10.${n % 2 ? 2 : 1}.${100 + ((n >> 8) % 100)}.${n % 250}`], securityGroupIds: [groupId] });
        if (p.status === 201 && n % 3 !== 0) {
          await client.delete(`/v1/ports/${p.body.id}`);
        }
        n++;
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return n;
      },
    };
  }

  it('prepares the destination before the commit, moves peers after it, cleans the source, and records every step', async () => {
    const { vmId, port, vni } = await newVm();
    watched = { portId: port.id };
    const noise = churn();
    const prepared = await ok(client.post('/v1/migrations', { vmId, sourceHostId: hostIds.get('src'), destinationHostId: hostIds.get('dst') }));
    expect(prepared).toMatchObject({ state: 'prepared', vmId, portIds: [port.id], sourceHostId: hostIds.get('src'), destinationHostId: hostIds.get('dst') });
    expect(stepsOf(prepared)).toEqual(['prepared', 'destination-acked']);
    // The source's connections (none here) were handed over before the prepare answered.
    expect(prepared.timeline.filter((e: any) => e.event.startsWith('connections-'))).toMatchObject([
      { event: 'connections-exported', connections: 0 },
      { event: 'connections-installed', connections: 0, failed: 0 },
    ]);
    // The destination holds the port open but for its rules, and its MAC at the source; the
    // source points the MAC at the destination (used once the VM left its tap); peers hold no
    // entry and flood the VM's frames to both hosts (the destination joined the flood list).
    expect(hasRules('dst', port.id)).toBe(true);
    const vtepOf = (host: HostName) => agents.get(host)!.dataplane.dump().fdb.get(fdbKey(vni, port.mac))?.vtep;
    const floodOf = (host: HostName) => agents.get(host)!.dataplane.dump().segments.get(vni)?.floodVteps ?? [];
    expect(vtepOf('dst')).toBe(VTEP.src);
    expect(vtepOf('src')).toBe(VTEP.dst);
    await waitUntil(() => (['peer1', 'peer2'] as const).every((peer) => vtepOf(peer) === undefined && floodOf(peer).includes(VTEP.src) && floodOf(peer).includes(VTEP.dst)), 10_000, () => 'peers flood to both');
    expect((await ok(client.get(`/v1/ports/${port.id}`), 200)).migration).toEqual({ id: prepared.id, destinationHostId: hostIds.get('dst') });

    const committed = await ok(client.post(`/v1/migrations/${prepared.id}/commit?wait=realized&timeout=10000`), 200);
    const churned = await noise.stop();
    expect(committed.state).toBe('completed');
    expect(new Set(stepsOf(committed))).toEqual(new Set(['prepared', 'destination-acked', 'committed', 'peers-acked', 'source-cleaned']));
    const at = Object.fromEntries(committed.timeline.map((e: any) => [e.event, Date.parse(e.at)]));
    expect(at.prepared).toBeLessThanOrEqual(at['destination-acked']);
    expect(at['destination-acked']).toBeLessThanOrEqual(at.committed);
    expect(at.committed).toBeLessThanOrEqual(Math.min(at['peers-acked'], at['source-cleaned']));
    expect(committed.timeline.find((e: any) => e.event === 'committed').revision).toBeGreaterThan(committed.timeline.find((e: any) => e.event === 'prepared').revision);

    for (const peer of ['peer1', 'peer2'] as const) {
      expect(vtepOf(peer)).toBe(VTEP.dst);
    }
    expect(hasRules('dst', port.id)).toBe(true);
    expect(agents.get('dst')!.dataplane.dump().fdb.has(fdbKey(vni, port.mac))).toBe(false);
    expect(holdsNothing('src', port, vni)).toBe(true);
    // Stale tracked connections are forgotten where the VM was prepared to land and where it left.
    for (const host of ['dst', 'src'] as const) {
      expect(agents.get(host)!.dataplane.forgotten).toContainEqual({ zone: vni % 65536, ips: port.ips });
    }
    const after = await ok(client.get(`/v1/ports/${port.id}`), 200);
    expect(after).toMatchObject({ hostId: hostIds.get('dst'), migration: null });
    expect(churned).toBeGreaterThan(0);
    expect(moments).toBeGreaterThan(10);
    expect(violations).toEqual([]);
  });

  it('answers a retried prepare and a retried commit with the same migration, doing each once', async () => {
    const { vmId, port } = await newVm();
    watched = { portId: port.id };
    const body = { portIds: [port.id], sourceHostId: hostIds.get('src'), destinationHostId: hostIds.get('dst') };
    const first = await ok(client.post('/v1/migrations', body));
    const retry = await ok(client.post('/v1/migrations', body), 200);
    expect(retry.id).toBe(first.id);
    expect(retry.timeline.filter((e: any) => e.event === 'prepared')).toEqual(first.timeline.filter((e: any) => e.event === 'prepared'));
    // The same VM, another destination: refused while this one is open, naming the field.
    const other = await client.post('/v1/migrations', { vmId, sourceHostId: hostIds.get('src'), destinationHostId: hostIds.get('peer1') });
    expect(other).toMatchObject({ status: 409, body: { code: 'MIGRATION_IN_PROGRESS', field: 'vmId' } });
    const byPort = await client.post('/v1/migrations', { ...body, destinationHostId: hostIds.get('peer1') });
    expect(byPort).toMatchObject({ status: 409, body: { code: 'MIGRATION_IN_PROGRESS', field: 'portIds[0]' } });

    const commit = await ok(client.post(`/v1/migrations/${first.id}/commit`), 200);
    const revision = ctl.app.get(MaterializedView).revision;
    const again = await ok(client.post(`/v1/migrations/${first.id}/commit`), 200);
    expect(again.timeline.find((e: any) => e.event === 'committed')).toEqual(commit.timeline.find((e: any) => e.event === 'committed'));
    expect(ctl.app.get(MaterializedView).revision).toBe(revision);
    expect(await client.post(`/v1/migrations/${first.id}/abort`)).toMatchObject({ status: 409, body: { code: 'MIGRATION_COMMITTED', field: 'id' } });
    await waitUntil(async () => (await client.get(`/v1/migrations/${first.id}`)).body.state === 'completed', 10_000, () => 'completed');
    expect(violations).toEqual([]);
  });

  it('withdraws the destination on abort, and peers go back to the source alone', async () => {
    const { port, vni } = await newVm();
    watched = { portId: port.id };
    const peerPorts = agents.get('peer1')!.agent.received.upserts.port;
    const m = await ok(client.post('/v1/migrations', { portIds: [port.id], sourceHostId: hostIds.get('src'), destinationHostId: hostIds.get('dst') }));
    expect(hasRules('dst', port.id)).toBe(true);
    const aborted = await ok(client.post(`/v1/migrations/${m.id}/abort`), 200);
    expect(aborted.state).toBe('aborted');
    expect(stepsOf(aborted)).toEqual(['prepared', 'destination-acked', 'aborted']);
    expect(await ok(client.post(`/v1/migrations/${m.id}/abort`), 200)).toEqual(aborted);
    expect(await client.post(`/v1/migrations/${m.id}/commit`)).toMatchObject({ status: 409, body: { code: 'MIGRATION_CLOSED', field: 'id' } });
    await waitUntil(() => !agents.get('dst')!.agent.state.policies.has(port.id) && !agents.get('dst')!.dataplane.dump().ports.has(tapName(port.id)), 10_000, () => 'destination withdrawn');
    await waitUntil(() => agents.get('peer1')!.dataplane.dump().fdb.get(fdbKey(vni, port.mac))?.vtep === VTEP.src, 10_000, () => 'peers back to the source');
    expect(agents.get('src')!.dataplane.dump().fdb.has(fdbKey(vni, port.mac))).toBe(false);
    // Peers got the port's entry twice (prepared, withdrawn), nothing else about it.
    expect(agents.get('peer1')!.agent.received.upserts.port - peerPorts).toBe(2);
    expect(hasRules('src', port.id)).toBe(true);
    expect((await ok(client.get(`/v1/ports/${port.id}`), 200)).migration).toBeNull();
    expect(violations).toEqual([]);
  });

  it('expires a prepared migration that is never committed', async () => {
    const { port } = await newVm();
    watched = { portId: port.id };
    const m = await ok(client.post('/v1/migrations', { portIds: [port.id], sourceHostId: hostIds.get('src'), destinationHostId: hostIds.get('dst'), ttlMs: 1000 }));
    expect(Date.parse(m.expiresAt) - Date.parse(m.createdAt)).toBe(1000);
    await waitUntil(async () => (await client.get(`/v1/migrations/${m.id}`)).body.state === 'expired', 10_000, () => 'expired');
    const expired = (await client.get(`/v1/migrations/${m.id}`)).body;
    expect(stepsOf(expired)).toEqual(['prepared', 'destination-acked', 'expired']);
    expect(Date.parse(expired.timeline.find((e: any) => e.event === 'expired').at)).toBeGreaterThanOrEqual(Date.parse(m.expiresAt));
    await waitUntil(() => !agents.get('dst')!.dataplane.dump().ports.has(tapName(port.id)), 10_000, () => 'destination withdrawn');
    expect(await client.post(`/v1/migrations/${m.id}/commit`)).toMatchObject({ status: 409, body: { code: 'MIGRATION_CLOSED' } });
    // The VM can be migrated again.
    await ok(client.post('/v1/migrations', { portIds: [port.id], sourceHostId: hostIds.get('src'), destinationHostId: hostIds.get('peer1') }));
    expect(violations).toEqual([]);
  });

  it('waits for a destination that is away during prepare, refuses to commit before its ack, and goes on once it is back', async () => {
    const { port } = await newVm();
    watched = { portId: port.id };
    const dst = agents.get('dst')!;
    await dst.agent.stop();
    const m = await ok(client.post('/v1/migrations?timeout=300', { portIds: [port.id], sourceHostId: hostIds.get('src'), destinationHostId: hostIds.get('dst') }), 202);
    expect(m.state).toBe('preparing');
    expect(stepsOf(m)).toEqual(['prepared']);
    expect(await client.post(`/v1/migrations/${m.id}/commit`)).toMatchObject({ status: 409, body: { code: 'MIGRATION_NOT_READY', field: 'id' } });
    expect((await client.get(`/v1/migrations/${m.id}`)).body.state).toBe('preparing');

    // Back, with its persisted state; its first firewall load fails: the port stays closed and the revision is nacked.
    const back = startAgent('dst', dst.stateDir);
    back.dataplane.failNextFirewall('nft: Could not process rule');
    await back.agent.start();
    await waitUntil(() => back.agent.stats.nacks > 0, 10_000, () => 'nacked');
    expect(back.dataplane.isOpen(tapName(port.id))).toBe(false);
    await waitUntil(async () => (await client.get(`/v1/migrations/${m.id}`)).body.state === 'prepared', 10_000, () => 'destination acked after the retry');
    expect(hasRules('dst', port.id)).toBe(true);
    const done = await ok(client.post(`/v1/migrations/${m.id}/commit?wait=realized`), 200);
    expect(done.state).toBe('completed');
    expect(violations).toEqual([]);
  });

  it('commits when the destination agent sees the VM arrive, and only then', async () => {
    const { port, vni } = await newVm();
    watched = { portId: port.id };
    const m = await ok(client.post('/v1/migrations', { portIds: [port.id], sourceHostId: hostIds.get('src'), destinationHostId: hostIds.get('dst') }));
    // A frame on the source's tap, or another MAC on the destination's, is not the VM arriving.
    agents.get('src')!.dataplane.frameFrom(tapName(port.id), port.mac);
    agents.get('dst')!.dataplane.frameFrom(tapName(port.id), '02:00:00:00:99:99');
    await ctl.app.get(MigrationMonitor).pass();
    expect((await client.get(`/v1/migrations/${m.id}`)).body.state).toBe('prepared');
    // The VM announces itself on the destination (RARP/GARP): the agent reports it, the controller commits.
    agents.get('dst')!.dataplane.frameFrom(tapName(port.id), port.mac);
    await waitUntil(async () => (await client.get(`/v1/migrations/${m.id}`)).body.state === 'completed', 10_000, () => 'committed by the agent');
    const done = (await client.get(`/v1/migrations/${m.id}`)).body;
    const at = Object.fromEntries(done.timeline.map((e: any) => [e.event, Date.parse(e.at)]));
    expect(at['destination-acked']).toBeLessThanOrEqual(at['vm-arrived']);
    expect(at['vm-arrived']).toBeLessThanOrEqual(at.committed);
    await waitUntil(() => agents.get('peer1')!.dataplane.dump().fdb.get(fdbKey(vni, port.mac))?.vtep === VTEP.dst, 10_000, () => 'peers moved');
    // Earlier tests left VMs of this segment on the source: it stays a peer, holding the MAC -> new VTEP, and nothing else of the port.
    const src = agents.get('src')!;
    expect(src.agent.state.policies.has(port.id) || src.dataplane.dump().ports.has(tapName(port.id))).toBe(false);
    expect(src.dataplane.dump().fdb.get(fdbKey(vni, port.mac))?.vtep).toBe(VTEP.dst);
    expect(violations).toEqual([]);
  });

  it('refuses bad requests with the offending field, and changes nothing', async () => {
    const { vmId, port } = await newVm();
    const src = hostIds.get('src')!;
    const dst = hostIds.get('dst')!;
    const before = await ctl.dump();
    const cases: [unknown, number, string, string][] = [
      [{ vmId, portIds: [port.id], sourceHostId: src, destinationHostId: dst }, 400, 'INVALID_VALUE', 'portIds'],
      [{ sourceHostId: src, destinationHostId: dst }, 400, 'INVALID_VALUE', 'vmId'],
      [{ vmId, sourceHostId: src, destinationHostId: src }, 400, 'INVALID_VALUE', 'destinationHostId'],
      [{ vmId, sourceHostId: src, destinationHostId: 'nope' }, 400, 'INVALID_ID', 'destinationHostId'],
      [{ portIds: [port.id, port.id], sourceHostId: src, destinationHostId: dst }, 400, 'INVALID_VALUE', 'portIds[1]'],
      [{ portIds: [], sourceHostId: src, destinationHostId: dst }, 400, 'INVALID_VALUE', 'portIds'],
      [{ vmId, sourceHostId: src, destinationHostId: dst, ttlMs: 5 }, 400, 'INVALID_VALUE', 'ttlMs'],
      [{ vmId, sourceHostId: src, destinationHostId: dst, extra: 1 }, 400, 'UNKNOWN_FIELD', 'extra'],
      [{ vmId: 'no-such-vm', sourceHostId: src, destinationHostId: dst }, 404, 'PORT_NOT_FOUND', 'vmId'],
      [{ portIds: [port.id], sourceHostId: dst, destinationHostId: src }, 409, 'PORT_NOT_ON_SOURCE', 'portIds[0]'],
      [{ portIds: [port.id], sourceHostId: src, destinationHostId: '0190aaaa-0000-7000-8000-000000000000' }, 404, 'HOST_NOT_FOUND', 'destinationHostId'],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await client.post('/v1/migrations', body);
      expect({ body, status: res.status, code: res.body.code, field: res.body.field }).toEqual({ body, status, code, field });
    }
    for (const path of ['/v1/migrations/0190aaaa-0000-7000-8000-000000000000', '/v1/migrations/0190aaaa-0000-7000-8000-000000000000/commit']) {
      const res = path.endsWith('commit') ? await client.post(path) : await client.get(path);
      expect({ status: res.status, code: res.body.code, field: res.body.field }).toEqual({ status: 404, code: 'MIGRATION_NOT_FOUND', field: 'id' });
    }
    expect(await client.post('/v1/migrations?timeout=abc', { vmId, sourceHostId: src, destinationHostId: dst })).toMatchObject({ status: 400, body: { field: 'timeout' } });
    expect(await ctl.dump()).toEqual(before);

    // While open: the port cannot move or go, the destination host cannot be deleted (this one has no agent: no ack).
    const empty = (await ok(client.post('/v1/hosts', { name: 'mig-empty', vtepIp: '192.0.2.99' }))).id;
    const m = await ok(client.post('/v1/migrations?timeout=0', { vmId, sourceHostId: src, destinationHostId: empty }), 202);
    const frozen = await ctl.dump();
    expect(await client.patch(`/v1/ports/${port.id}`, { hostId: hostIds.get('peer1') })).toMatchObject({ status: 409, body: { code: 'MIGRATION_IN_PROGRESS', field: 'hostId' } });
    expect(await client.delete(`/v1/ports/${port.id}`)).toMatchObject({ status: 409, body: { code: 'MIGRATION_IN_PROGRESS', field: 'id' } });
    expect(await client.delete(`/v1/hosts/${empty}`)).toMatchObject({ status: 409, body: { code: 'HOST_HAS_MIGRATIONS', field: 'id' } });
    expect(await ctl.dump()).toEqual(frozen);
    // Security changes are fine meanwhile, and reach both hosts.
    expect((await client.patch(`/v1/ports/${port.id}`, { allowedAddressPairs: [{ ip: '10.1.9.9' }] })).status).toBe(200);
    await waitUntil(() => agents.get('src')!.agent.state.policies.get(port.id)?.allowedAddressPairs.length === 1, 10_000, () => 'policy on the source');
    expect(stepsOf(await ok(client.post(`/v1/migrations/${m.id}/abort`), 200))).toEqual(['prepared', 'aborted']);
    await ctl.app.get(MigrationMonitor).pass();
    expect((await client.delete(`/v1/hosts/${empty}`)).status).toBe(204);
  });
});
