import { fdbKey } from '../../src/agent/dataplane/dataplane';
import { tapName } from '../../src/agent/dataplane/names';
import { RealizationService } from '../../src/controller/distribution/realization.service';
import { SpanFeed } from '../../src/controller/distribution/span-feed';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import { RedisStore } from '../../src/controller/store/redis-store';
import { makeAgent, waitUntil, type TestAgent } from '../support/agents';
import { api, dropPrefix, startController, uniquePrefix, type Harness } from '../support/controller-harness';

/*
 * `?wait=realized` on a write means: every host whose span the write changed has applied it,
 * the hosts that lose the port (unbind, delete, rebind, migration commit) and those that only
 * hold its groups' members included. Agents (memory dataplane) stream from replica r1; r2 holds
 * no stream and must answer the same.
 */

const VTEP = { a: '192.0.2.31', b: '192.0.2.32', c: '192.0.2.33', d: '192.0.2.34' } as const;
type HostName = keyof typeof VTEP;

describe('write realization: every host whose span the write changed', () => {
  const prefix = uniquePrefix('realize');
  let r1: Harness;
  let r2: Harness;
  let client: ReturnType<typeof api>;
  let tenantId: string;
  const hostIds = new Map<HostName, string>();
  const agents = new Map<HostName, TestAgent>();
  let segments = 0;

  const id = (name: HostName) => hostIds.get(name)!;
  const agent = (name: HostName) => agents.get(name)!;

  /** Nothing of the port on the host: no resource, no tap, no forwarding entry. */
  const holdsNothingOf = (name: HostName, port: { id: string; mac: string }, vni: number): boolean => {
    const a = agent(name);
    const dp = a.dataplane.dump();
    return !a.agent.state.ports.has(port.id) && !dp.ports.has(tapName(port.id)) && !dp.fdb.has(fdbKey(vni, port.mac));
  };

  /** A segment of the test's own, with a port bound to each host named (realized on all of them). */
  async function segmentWith(...names: HostName[]): Promise<{ id: string; vni: number; cidr: string; ports: Map<HostName, any> }> {
    const n = ++segments;
    const cidr = `10.${n}.0.0/24`;
    const segment = (await client.post('/v1/segments', { tenantId, name: `s${n}`, cidr })).body;
    const ports = new Map<HostName, any>();
    for (const [i, name] of names.entries()) {
      const res = await client.post('/v1/ports?wait=realized&timeout=10000', { segmentId: segment.id, hostId: id(name), ips: [`10.${n}.0.${10 + i}`] });
      expect(res.status).toBe(201);
      ports.set(name, res.body);
    }
    return { id: segment.id, vni: segment.vni, cidr, ports };
  }

  /** Starts a request and says whether it has answered yet. */
  function inFlight<T>(request: Promise<T>): { answer: Promise<T>; answered: () => boolean } {
    let done = false;
    const answer = request.finally(() => (done = true));
    return { answer, answered: () => done };
  }

  const stopped = new Set<HostName>();
  async function stopAgent(name: HostName): Promise<void> {
    stopped.add(name);
    await agent(name).agent.stop();
  }
  async function startAgent(name: HostName): Promise<void> {
    stopped.delete(name);
    await agent(name).agent.start();
  }

  /** Resolves once the host's agent has failed to apply something after `since` of its NACKs, and `holds` no longer holds. */
  async function failedToApply(name: HostName, since: number, holds: () => boolean): Promise<void> {
    await waitUntil(() => agent(name).agent.stats.nacks > since && !holds(), 5_000, () => `${name} received the change and failed to apply it`);
  }

  /** The host's dataplane refuses every apply until the returned function is called. */
  function breakDataplane(name: HostName): () => void {
    agent(name).dataplane.applyBroken = 'injected: RTNETLINK answers: Operation not permitted';
    return () => (agent(name).dataplane.applyBroken = undefined);
  }

  async function inSync(...names: HostName[]): Promise<void> {
    await waitUntil(async () => (await Promise.all(names.map(async (n) => (await client.get(`/v1/hosts/${id(n)}`)).body))).every((h) => h.connected && h.lag === 0), 10_000, () => `${names.join(', ')} in sync`);
  }

  beforeAll(async () => {
    r1 = await startController({ prefix });
    r2 = await startController({ prefix });
    client = api(r1.url);
    tenantId = (await client.post('/v1/tenants', { name: 'realize' })).body.id;
    for (const name of Object.keys(VTEP) as HostName[]) {
      hostIds.set(name, (await client.post('/v1/hosts', { name: `rz-${name}`, vtepIp: VTEP[name] })).body.id);
    }
    // d never runs an agent.
    for (const name of ['a', 'b', 'c'] as const) {
      const a = makeAgent(`rz-${name}`, r1.grpcTarget, { vtepIp: VTEP[name] });
      agents.set(name, a);
      await a.agent.start();
    }
    await waitUntil(() => [...agents.values()].every((a) => a.agent.synced), 10_000, () => 'agents synced');
  });

  afterAll(async () => {
    await Promise.all([...agents.values()].map((a) => a.cleanup()));
    await r1?.close();
    await r2?.close();
    await dropPrefix(r1.config.redisUrl, prefix);
  });

  afterEach(async () => {
    for (const a of agents.values()) {
      a.dataplane.applyBroken = undefined;
    }
    for (const name of [...stopped]) {
      await startAgent(name);
    }
  });

  it('answers an unbind 202 while the host that loses the port has not applied it, and 200 only once it has', async () => {
    const s = await segmentWith('a', 'b');
    const pa = s.ports.get('a');
    const repair = breakDataplane('a');
    const refused = await client.patch(`/v1/ports/${pa.id}?wait=realized&timeout=700`, { hostId: null });
    // The 202 names the host whose ack is missing: a only (b applied it).
    expect({ status: refused.status, realized: refused.body.realized, hostId: refused.body.hostId, pending: refused.body.pendingHostIds }).toEqual({ status: 202, realized: false, hostId: null, pending: [id('a')] });
    expect(agent('a').dataplane.dump().ports.has(tapName(pa.id))).toBe(true);
    repair();
    await inSync('a');

    const pa2 = (await client.post('/v1/ports?wait=realized&timeout=10000', { segmentId: s.id, hostId: id('a'), ips: ['10.1.0.50'] })).body;
    const nacks = agent('a').agent.stats.nacks;
    const repair2 = breakDataplane('a');
    const unbind = inFlight(client.patch(`/v1/ports/${pa2.id}?wait=realized&timeout=10000`, { hostId: null }));
    await failedToApply('a', nacks, () => agent('a').agent.state.ports.has(pa2.id));
    expect(unbind.answered()).toBe(false);
    repair2();
    const res = await unbind.answer;
    // Right when the answer arrives, the host no longer holds the port, and its peer dropped it.
    const aHolds = !holdsNothingOf('a', pa2, s.vni);
    const bHolds = agent('b').agent.state.ports.has(pa2.id);
    expect({ status: res.status, realized: res.body.realized, aHolds, bHolds }).toEqual({ status: 200, realized: true, aHolds: false, bHolds: false });
  });

  it('waits for the old host of a rebound port, which leaves the segment, as for the new one', async () => {
    // a's only port on this segment moves to c: a's span loses the segment.
    const s = await segmentWith('a', 'b');
    const port = s.ports.get('a');
    const repair = breakDataplane('a');
    const refused = await client.patch(`/v1/ports/${port.id}?wait=realized&timeout=700`, { hostId: id('c') });
    expect({ status: refused.status, realized: refused.body.realized, pending: refused.body.pendingHostIds }).toEqual({ status: 202, realized: false, pending: [id('a')] });
    repair();
    await inSync('a', 'b', 'c');
    expect(agent('a').agent.state.segments.has(s.id)).toBe(false);

    // Back from c to b, c failing for a while: answered once c has let go, not before.
    const nacks = agent('c').agent.stats.nacks;
    const repairC = breakDataplane('c');
    const rebind = inFlight(client.patch(`/v1/ports/${port.id}?wait=realized&timeout=10000`, { hostId: id('b') }));
    await failedToApply('c', nacks, () => agent('c').agent.state.segments.has(s.id));
    expect(rebind.answered()).toBe(false);
    repairC();
    const res = await rebind.answer;
    const cHolds = !holdsNothingOf('c', port, s.vni) || agent('c').dataplane.dump().segments.has(s.vni);
    const bHas = agent('b').dataplane.dump().ports.has(tapName(port.id));
    expect({ status: res.status, realized: res.body.realized, cHolds, bHas }).toEqual({ status: 200, realized: true, cHolds: false, bHas: true });
  });

  it('takes ?wait=realized on a delete: 202 until the port’s host has withdrawn it, 204 once it has', async () => {
    const s = await segmentWith('a', 'b');
    const pa = s.ports.get('a');
    const repair = breakDataplane('a');
    const refused = await client.delete(`/v1/ports/${pa.id}?wait=realized&timeout=700`);
    expect({ status: refused.status, body: refused.body }).toEqual({ status: 202, body: { id: pa.id, realized: false, pendingHostIds: [id('a')] } });
    expect((await client.get(`/v1/ports/${pa.id}`)).status).toBe(404);
    repair();
    await inSync('a');

    const pa2 = (await client.post('/v1/ports?wait=realized&timeout=10000', { segmentId: s.id, hostId: id('a'), ips: ['10.3.0.50'] })).body;
    const nacks = agent('a').agent.stats.nacks;
    const repair2 = breakDataplane('a');
    const deletion = inFlight(client.delete(`/v1/ports/${pa2.id}?wait=realized&timeout=10000`));
    await failedToApply('a', nacks, () => agent('a').agent.state.ports.has(pa2.id));
    expect(deletion.answered()).toBe(false);
    repair2();
    const res = await deletion.answer;
    expect({ status: res.status, aHolds: !holdsNothingOf('a', pa2, s.vni), bHolds: !holdsNothingOf('b', pa2, s.vni) }).toEqual({ status: 204, aHolds: false, bHolds: false });
    // Without wait: 204 at once, as before; timeout alone is refused.
    const pa3 = (await client.post('/v1/ports', { segmentId: s.id, hostId: id('a') })).body;
    expect((await client.delete(`/v1/ports/${pa3.id}?timeout=100`)).body.code).toBe('INVALID_VALUE');
    expect((await client.delete(`/v1/ports/${pa3.id}`)).status).toBe(204);
  });

  it('answers the same on a replica that holds none of the agents’ streams', async () => {
    const other = api(r2.url);
    expect(r2.app.get(SessionRegistry).session(id('a'))).toBeUndefined();
    const s = await segmentWith('a', 'b');
    const pa = s.ports.get('a');
    const repair = breakDataplane('a');
    const refused = await other.patch(`/v1/ports/${pa.id}?wait=realized&timeout=700`, { hostId: null });
    expect({ status: refused.status, realized: refused.body.realized, pending: refused.body.pendingHostIds }).toEqual({ status: 202, realized: false, pending: [id('a')] });
    repair();
    await inSync('a');

    const pa2 = (await other.post('/v1/ports?wait=realized&timeout=10000', { segmentId: s.id, hostId: id('a'), ips: ['10.4.0.50'] })).body;
    expect(pa2.realized).toBe(true);
    expect(agent('a').agent.state.ports.has(pa2.id)).toBe(true);
    const nacks = agent('a').agent.stats.nacks;
    const repair2 = breakDataplane('a');
    const deletion = inFlight(other.delete(`/v1/ports/${pa2.id}?wait=realized&timeout=10000`));
    await failedToApply('a', nacks, () => agent('a').agent.state.ports.has(pa2.id));
    expect(deletion.answered()).toBe(false);
    repair2();
    const res = await deletion.answer;
    expect({ status: res.status, aHolds: !holdsNothingOf('a', pa2, s.vni) }).toEqual({ status: 204, aHolds: false });
  });

  it('waits for the hosts that hold a group’s members when a port joins the group, on other segments too', async () => {
    const members = (await client.post('/v1/security-groups', { tenantId, name: 'members', rules: [] })).body;
    const watcher = (await client.post('/v1/security-groups', { tenantId, name: 'watcher', rules: [{ direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteGroupId: members.id }] })).body;
    // c references `members` through its own port's rules, on a segment a and b are not on.
    const watched = await segmentWith();
    expect((await client.post('/v1/ports?wait=realized&timeout=10000', { segmentId: watched.id, hostId: id('c'), securityGroupIds: [watcher.id] })).status).toBe(201);
    const s = await segmentWith('a', 'b');
    const port = s.ports.get('a');
    const member = `${members.id}/IPv4/${port.ips[0]}`;

    await stopAgent('c');
    const refused = await client.patch(`/v1/ports/${port.id}?wait=realized&timeout=700`, { securityGroupIds: [members.id] });
    expect({ status: refused.status, realized: refused.body.realized, pending: refused.body.pendingHostIds }).toEqual({ status: 202, realized: false, pending: [id('c')] });
    await startAgent('c');
    await inSync('c');
    expect([...agent('c').agent.state.members.keys()]).toContain(member);

    // Leaving the group while c is away: answered once c is back and dropped the member.
    await stopAgent('c');
    const leave = inFlight(client.patch(`/v1/ports/${port.id}?wait=realized&timeout=10000`, { securityGroupIds: [] }));
    // a has applied the port's policy of the default group again (rules), c has not: no answer yet.
    await waitUntil(() => (agent('a').agent.state.policies.get(port.id)?.ingress.length ?? 0) > 0, 5_000, () => 'a applied the new policy');
    expect(leave.answered()).toBe(false);
    await startAgent('c');
    const res = await leave.answer;
    expect({ status: res.status, realized: res.body.realized, cHasMember: agent('c').agent.state.members.has(member) }).toEqual({ status: 200, realized: true, cHasMember: false });
  });

  it('settles a migration commit on the hosts its revision changed: a host joining the segment later does not hold it up', async () => {
    // vm on a migrates to b; c is a peer; d (no agent) gets a port on the segment after the commit.
    const s = await segmentWith('a', 'c');
    const vm = s.ports.get('a');
    const prepared = await client.post('/v1/migrations?timeout=10000', { portIds: [vm.id], sourceHostId: id('a'), destinationHostId: id('b') });
    expect(prepared.body.state).toBe('prepared');
    await stopAgent('c');
    const committed = await client.post(`/v1/migrations/${prepared.body.id}/commit?wait=realized&timeout=500`);
    // The 202 names the peer whose ack of the commit is missing.
    expect({ status: committed.status, state: committed.body.state, pending: committed.body.pendingHostIds }).toEqual({ status: 202, state: 'committed', pending: [id('c')] });
    const late = await client.post('/v1/ports', { segmentId: s.id, hostId: id('d'), securityGroupIds: [(await client.post('/v1/security-groups', { tenantId, name: 'late', rules: [] })).body.id] });
    expect(late.status).toBe(201);
    await startAgent('c');
    await waitUntil(async () => (await client.get(`/v1/migrations/${prepared.body.id}`)).body.state === 'completed', 10_000, () => 'migration completed');
    const events = (await client.get(`/v1/migrations/${prepared.body.id}`)).body.timeline.map((e: any) => e.event);
    expect(events).toEqual(expect.arrayContaining(['peers-acked', 'source-cleaned']));
    expect(holdsNothingOf('a', vm, s.vni)).toBe(true);
  });

  it('names the hosts a past revision changed on a replica that never saw it, from the change log, as the live path did', async () => {
    const s = await segmentWith('a', 'b');
    const port = s.ports.get('a');
    const revisions: number[] = [];
    const live = r1.app.get(SpanFeed);
    for (const body of [{ hostId: id('c') }, { hostId: null }, { hostId: id('b') }]) {
      await client.patch(`/v1/ports/${port.id}`, body);
      const view = r1.app.get(MaterializedView);
      await view.catchUp(5_000);
      revisions.push(view.revision);
    }
    const expected = revisions.map((r) => live.hostsChangedAt(r)!.sort());
    expect(expected).toEqual([[id('a'), id('b'), id('c')].sort(), [id('b'), id('c')].sort(), [id('b')]]);

    const r3 = await startController({ prefix });
    try {
      expect(revisions.map((r) => r3.app.get(SpanFeed).hostsChangedAt(r))).toEqual([undefined, undefined, undefined]);
      const realization = r3.app.get(RealizationService);
      expect(await Promise.all(revisions.map(async (r) => (await realization.changedHosts(r)).sort()))).toEqual(expected);
    } finally {
      await r3.close();
    }
    // With the log trimmed, a replica that cannot know counts every host: more than needed, never fewer.
    await r1.redis.xtrim(r1.app.get(RedisStore).keys.changeLog(), 'MAXLEN', 0);
    const r4 = await startController({ prefix });
    try {
      expect((await r4.app.get(RealizationService).changedHosts(revisions[2])).sort()).toEqual([...hostIds.values()].sort());
    } finally {
      await r4.close();
    }
  });
});
