import * as grpc from '@grpc/grpc-js';
import { Logger } from '@nestjs/common';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { api, dropPrefix, startController, TEST_ADMIN_TOKEN, uniquePrefix, type Harness } from '../support/controller-harness';
import { makeAgent, recordingLogger, waitUntil, type TestAgent } from '../support/agents';
import { RawAgent } from '../support/raw-agent';

/** What the controllers logged (both replicas of this file share Nest's Logger). */
const controllerLog: { level: 'log' | 'warn'; context: string; message: string }[] = [];

describe('agent streams under contention', () => {
  const prefix = uniquePrefix('contention');
  let r1: Harness;
  let r2: Harness;
  let tenantId: string;
  const agents: TestAgent[] = [];
  const raws: RawAgent[] = [];

  beforeAll(async () => {
    const record = (level: 'log' | 'warn') =>
      function (this: Logger, message: unknown) {
        controllerLog.push({ level, context: (this as unknown as { context?: string }).context ?? '', message: String(message) });
      };
    jest.spyOn(Logger.prototype, 'log').mockImplementation(record('log'));
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(record('warn'));
    r1 = await startController({ prefix });
    r2 = await startController({ prefix });
    tenantId = (await api(r1.url).post('/v1/tenants', { name: 'contention' })).body.id;
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    raws.forEach((r) => r.close());
    await r1?.close();
    await r2?.close();
    await dropPrefix(r1.config.redisUrl, prefix);
    jest.restoreAllMocks();
  });

  /**
   * A registered host with a bound port on a segment of its own (so its span is not empty, and
   * its ports' realization depends on no other test's host).
   */
  async function newHost(name: string, vtepIp: string): Promise<{ id: string; name: string; segmentId: string }> {
    const host = (await api(r1.url).post('/v1/hosts', { name, vtepIp })).body;
    const segmentId = (await api(r1.url).post('/v1/segments', { tenantId, name })).body.id;
    expect((await api(r1.url).post('/v1/ports', { segmentId, hostId: host.id })).status).toBe(201);
    return { ...host, segmentId };
  }

  function agent(hostName: string, controllers: string[], logger = recordingLogger(), overrides = {}): TestAgent & { log: ReturnType<typeof recordingLogger> } {
    const a = makeAgent(hostName, controllers, overrides, undefined, { logger });
    agents.push(a);
    return Object.assign(a, { log: logger });
  }

  function raw(target: string, hostName: string, instanceId?: string): RawAgent {
    const r = new RawAgent(target, hostName, instanceId);
    raws.push(r);
    return r;
  }

  const liveSession = (ctl: Harness, hostId: string) => {
    const s = ctl.app.get(SessionRegistry).session(hostId);
    return s && !s.isClosed ? s : undefined;
  };
  const connectedLines = (hostName: string) => controllerLog.filter((l) => l.message.startsWith(`host ${hostName} connected`)).length;
  const lines = (pattern: RegExp) => controllerLog.filter((l) => pattern.test(l.message));

  /** Watches for `ms`: `check` must hold at every look (every 20 ms); returns how many looks. */
  async function holdsFor(ms: number, check: () => void): Promise<number> {
    const end = Date.now() + ms;
    let looks = 0;
    while (Date.now() < end) {
      check();
      looks++;
      await new Promise((r) => setTimeout(r, 20));
    }
    return looks;
  }

  it('lets the newer of two agents on one host win once on one replica; the other backs off, is refused and says so once, then takes over when the winner stops', async () => {
    const host = await newHost('hv-one', '192.0.2.1');
    const a = agent(host.name, [r1.grpcTarget]);
    await a.agent.start();
    await waitUntil(() => a.agent.synced && liveSession(r1, host.id) !== undefined, 10_000, () => 'first agent in sync');
    const b = agent(host.name, [r1.grpcTarget]);
    await b.agent.start();
    await waitUntil(() => b.agent.synced, 10_000, () => 'second agent in sync');
    const winner = liveSession(r1, host.id);
    const connectsBefore = connectedLines(host.name);
    const attemptsBefore = a.agent.stats.connects;
    // Before the fix the two evicted each other about every 100 ms for as long as both ran.
    await holdsFor(3_000, () => {
      expect(liveSession(r1, host.id)).toBe(winner);
      expect(connectedLines(host.name)).toBe(connectsBefore);
    });
    expect(connectsBefore).toBe(2); // a, then b: one eviction in all
    expect(lines(new RegExp(`^host ${host.name}: agent instance \\w+ replaced the stream of instance`))).toHaveLength(1);
    expect(lines(new RegExp(`^host ${host.name}: refusing agent instance`))).toHaveLength(1);
    // The loser keeps trying, with a growing, jittered delay (capped at 300 ms here): tens of
    // attempts in 3 s, not hundreds.
    const attempts = a.agent.stats.connects - attemptsBefore;
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThanOrEqual(40);
    expect(a.log.lines.filter((l) => /^host hv-one is held by another agent/.test(l.message))).toHaveLength(1);
    expect(a.log.lines.filter((l) => /lost/.test(l.message))).toHaveLength(0);

    // The winner stays in sync.
    const port = await api(r1.url).post('/v1/ports?wait=realized&timeout=5000', { segmentId: host.segmentId, hostId: host.id });
    expect(port.status).toBe(201);
    expect(port.body.realized).toBe(true);
    expect(b.agent.state.ports.has(port.body.id)).toBe(true);
    expect(a.agent.state.ports.has(port.body.id)).toBe(false);

    await b.agent.stop();
    await waitUntil(() => a.agent.state.ports.has(port.body.id) && liveSession(r1, host.id) !== undefined, 5_000, () => 'the loser takes over');
    expect(connectedLines(host.name)).toBe(3);
    expect(a.log.lines.filter((l) => /^host hv-one: holding the stream again/.test(l.message))).toHaveLength(1);
    expect(a.log.lines.filter((l) => /is held by another agent/.test(l.message))).toHaveLength(1);
    await a.agent.stop();
  });

  it('lets the newer of two agents on one host win once across two replicas: the older replica ends its stream, the loser waits, then takes over', async () => {
    const host = await newHost('hv-two', '192.0.2.2');
    const a = agent(host.name, [r1.grpcTarget, r2.grpcTarget]);
    await a.agent.start();
    await waitUntil(() => a.agent.synced && liveSession(r1, host.id) !== undefined, 10_000, () => 'first agent in sync on replica 1');
    const b = agent(host.name, [r2.grpcTarget]);
    await b.agent.start();
    await waitUntil(() => b.agent.synced && liveSession(r2, host.id) !== undefined, 10_000, () => 'second agent in sync on replica 2');
    // Before the fix both replicas kept a stream for the host, each fed and acked.
    await waitUntil(() => liveSession(r1, host.id) === undefined, 6_000, () => 'replica 1 ends the superseded stream');
    const winner = liveSession(r2, host.id);
    const connectsBefore = connectedLines(host.name);
    const attemptsBefore = a.agent.stats.connects;
    await holdsFor(3_000, () => {
      expect(liveSession(r1, host.id)).toBeUndefined();
      expect(liveSession(r2, host.id)).toBe(winner);
      expect(connectedLines(host.name)).toBe(connectsBefore);
    });
    expect(connectsBefore).toBe(2);
    expect(lines(new RegExp(`^host ${host.name}: agent instance \\w+ replaced the stream of instance`))).toHaveLength(1);
    // Refused by both replicas (it alternates), logged once between them.
    expect(lines(new RegExp(`^host ${host.name}: refusing agent instance`))).toHaveLength(1);
    expect(a.agent.stats.connects - attemptsBefore).toBeGreaterThanOrEqual(3);
    expect(a.log.lines.filter((l) => /^host hv-two is held by another agent/.test(l.message))).toHaveLength(1);
    for (const ctl of [r1, r2]) {
      expect((await api(ctl.url).get(`/v1/hosts/${host.id}`)).body).toMatchObject({ connected: true, lag: 0 });
    }
    const port = await api(r1.url).post('/v1/ports?wait=realized&timeout=5000', { segmentId: host.segmentId, hostId: host.id });
    expect(port.body.realized).toBe(true);
    expect(b.agent.state.ports.has(port.body.id)).toBe(true);

    await b.agent.stop();
    await waitUntil(() => a.agent.state.ports.has(port.body.id) && a.agent.connected, 5_000, () => 'the loser takes over');
    expect(a.log.lines.filter((l) => /^host hv-two: holding the stream again/.test(l.message))).toHaveLength(1);
    await a.agent.stop();
  });

  it('refuses an evicted instance with ALREADY_EXISTS while the winner holds the host, without disturbing the winner; lets it in once the winner’s stream ends', async () => {
    const host = await newHost('hv-raw-1', '192.0.2.3');
    const x = raw(r1.grpcTarget, host.name, 'inst-x');
    await waitUntil(() => x.delivered, 5_000);
    const y = raw(r2.grpcTarget, host.name, 'inst-y');
    await waitUntil(() => y.delivered && x.ended !== undefined, 6_000, () => `x: ${JSON.stringify(x.ended)}`);
    expect(x.ended?.code).toBe(grpc.status.ALREADY_EXISTS);
    for (const target of [r1.grpcTarget, r2.grpcTarget]) {
      const again = raw(target, host.name, 'inst-x');
      await waitUntil(() => again.ended !== undefined || again.delivered, 5_000);
      expect(again.delivered).toBe(false);
      expect(again.ended?.code).toBe(grpc.status.ALREADY_EXISTS);
    }
    // The winner was not disturbed: still open, still fed.
    const seen = y.messages;
    await api(r1.url).post('/v1/tenants', { name: 'moves-the-revision-1' });
    await waitUntil(() => y.messages > seen, 5_000, () => 'the winner gets the next revision');
    expect(y.ended).toBeUndefined();

    y.close();
    let back: RawAgent | undefined;
    await waitUntil(
      () => {
        if (back?.delivered) {
          return true;
        }
        if (!back || back.ended) {
          back = raw(r1.grpcTarget, host.name, 'inst-x');
        }
        return false;
      },
      5_000,
      () => `last: ${JSON.stringify(back?.ended)}`,
    );
  });

  it('lets the winner reconnect (same instance) in place of its own stream, and keeps the instance it evicted out', async () => {
    const host = await newHost('hv-raw-2', '192.0.2.4');
    const x = raw(r1.grpcTarget, host.name, 'inst-x');
    await waitUntil(() => x.delivered, 5_000);
    const y = raw(r1.grpcTarget, host.name, 'inst-y');
    await waitUntil(() => y.delivered && x.ended !== undefined, 5_000);
    // A network blip: the winner's new stream arrives while its old one still looks open.
    const y2 = raw(r2.grpcTarget, host.name, 'inst-y');
    await waitUntil(() => y2.delivered && y.ended !== undefined, 6_000, () => `y: ${JSON.stringify(y.ended)}`);
    expect(y.ended?.code).toBe(grpc.status.ALREADY_EXISTS);
    const x2 = raw(r1.grpcTarget, host.name, 'inst-x');
    await waitUntil(() => x2.ended !== undefined || x2.delivered, 5_000);
    expect(x2.ended?.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(y2.ended).toBeUndefined();
  });

  it('lets a Hello without instance id (an older agent) replace the live stream, and refuses the instance it replaced', async () => {
    const host = await newHost('hv-raw-3', '192.0.2.5');
    const x = raw(r1.grpcTarget, host.name, 'inst-x');
    await waitUntil(() => x.delivered, 5_000);
    const old1 = raw(r1.grpcTarget, host.name);
    await waitUntil(() => old1.delivered && x.ended !== undefined, 5_000);
    expect(x.ended?.code).toBe(grpc.status.ALREADY_EXISTS);
    // Two agents without ids cannot be told apart: the newer wins, as before.
    const old2 = raw(r1.grpcTarget, host.name);
    await waitUntil(() => old2.delivered && old1.ended !== undefined, 5_000);
    expect(old1.ended?.code).toBe(grpc.status.ALREADY_EXISTS);
    const x2 = raw(r1.grpcTarget, host.name, 'inst-x');
    await waitUntil(() => x2.ended !== undefined || x2.delivered, 5_000);
    expect(x2.ended?.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(old2.ended).toBeUndefined();
  });

  it('refuses a malformed instance id with INVALID_ARGUMENT', async () => {
    const host = await newHost('hv-raw-4', '192.0.2.6');
    for (const bad of ['has space', 'x'.repeat(65), 'tab\there', 'ünï']) {
      const r = raw(r1.grpcTarget, host.name, bad);
      await waitUntil(() => r.ended !== undefined || r.delivered, 5_000);
      expect(r.ended?.code).toBe(grpc.status.INVALID_ARGUMENT);
    }
  });
});

describe('the last NACK per host', () => {
  const prefix = uniquePrefix('last-error');
  let r1: Harness;
  let r2: Harness;
  let tenantId: string;
  const agents: TestAgent[] = [];
  const raws: RawAgent[] = [];

  beforeAll(async () => {
    r1 = await startController({ prefix });
    r2 = await startController({ prefix });
    tenantId = (await api(r1.url).post('/v1/tenants', { name: 'nacks' })).body.id;
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.cleanup()));
    raws.forEach((r) => r.close());
    await r1?.close();
    await r2?.close();
    await dropPrefix(r1.config.redisUrl, prefix);
  });

  /** A host with a port on a segment of its own (its lag depends on no other test's host). */
  async function newHost(name: string, vtepIp: string): Promise<{ id: string; name: string; segmentId: string }> {
    const host = (await api(r1.url).post('/v1/hosts', { name, vtepIp })).body;
    const segmentId = (await api(r1.url).post('/v1/segments', { tenantId, name })).body.id;
    expect((await api(r1.url).post('/v1/ports', { segmentId, hostId: host.id })).status).toBe(201);
    return { ...host, segmentId };
  }

  const revision = async () => Number(await r1.redis.get(`{${prefix}}:rev`));
  const hostOn = async (ctl: Harness, id: string) => (await api(ctl.url).get(`/v1/hosts/${id}`)).body;

  it('shows a failed apply as lastError (revision, error, time) on every replica and in the list; the next successful apply clears it', async () => {
    const host = await newHost('hv-err', '192.0.2.10');
    const a = makeAgent(host.name, [r1.grpcTarget]);
    agents.push(a);
    await a.agent.start();
    await waitUntil(async () => (await hostOn(r2, host.id)).lag === 0, 10_000, () => 'agent in sync');
    expect((await hostOn(r2, host.id)).lastError).toBeNull();

    // Failing until told otherwise: the agent's retries (with backoff) fail too, and nack the same revision.
    a.dataplane.applyBroken = 'RTNETLINK answers: File exists';
    const before = Date.now();
    await api(r1.url).post('/v1/ports', { segmentId: host.segmentId, hostId: host.id });
    const failed = await revision();
    await waitUntil(async () => (await hostOn(r2, host.id)).lastError !== null, 5_000, () => 'lastError on replica 2');
    for (const ctl of [r1, r2]) {
      const shown = await hostOn(ctl, host.id);
      expect(shown.lastError).toEqual({ revision: failed, error: 'RTNETLINK answers: File exists', at: expect.any(String) });
      expect(Date.parse(shown.lastError.at)).toBeGreaterThanOrEqual(before - 1);
      expect(Date.parse(shown.lastError.at)).toBeLessThanOrEqual(Date.now());
      expect(shown.lag).toBeGreaterThan(0);
      // The list shows the same failure. Its time may be a later retry's: the agent keeps retrying
      // (and nacking the same revision) until the apply succeeds.
      const listed = (await api(ctl.url).get('/v1/hosts')).body.items.find((h: { id: string }) => h.id === host.id);
      expect(listed.lastError).toEqual({ ...shown.lastError, at: expect.any(String) });
      expect(Date.parse(listed.lastError.at)).toBeGreaterThanOrEqual(Date.parse(shown.lastError.at));
    }

    a.dataplane.applyBroken = undefined;
    await api(r1.url).post('/v1/ports', { segmentId: host.segmentId, hostId: host.id });
    await waitUntil(async () => (await hostOn(r2, host.id)).lastError === null, 5_000, () => 'lastError cleared');
    expect((await hostOn(r1, host.id)).lastError).toBeNull();
    expect((await hostOn(r1, host.id)).lag).toBe(0);
  });

  it('clears lastError when a reconcile that failed at an already acknowledged revision succeeds at it', async () => {
    const host = await newHost('hv-drift', '192.0.2.11');
    // Every periodic reconcile loads the firewall (the dataplane checks it for drift).
    const a = makeAgent(host.name, [r2.grpcTarget], { firewall: true, reconcileIntervalMs: 300 });
    agents.push(a);
    await a.agent.start();
    await waitUntil(async () => (await hostOn(r1, host.id)).lag === 0, 10_000, () => 'agent in sync');
    const acked = (await hostOn(r1, host.id)).appliedRevision;
    a.dataplane.firewallBroken = 'nft: Error: Could not process rule: No such file or directory';
    await waitUntil(async () => (await hostOn(r1, host.id)).lastError !== null, 5_000, () => 'the failed reconcile shows');
    expect((await hostOn(r1, host.id)).lastError).toMatchObject({ revision: acked, error: 'firewall: nft: Error: Could not process rule: No such file or directory' });
    // The next attempt succeeds, and acks the same revision again.
    a.dataplane.firewallBroken = undefined;
    await waitUntil(async () => (await hostOn(r1, host.id)).lastError === null, 5_000, () => 'cleared by the repaired reconcile');
    expect(await revision()).toBe(acked);
  });

  it('stores hostile NACK text bounded and cleaned, serves it as valid UTF-8 JSON, and keeps it until an ack reaches its revision', async () => {
    const host = (await api(r1.url).post('/v1/hosts', { name: 'hv-hostile', vtepIp: '192.0.2.12' })).body;
    const agentRaw = new RawAgent(r1.grpcTarget, host.name, 'inst-hostile');
    raws.push(agentRaw);
    await waitUntil(() => agentRaw.delivered, 5_000);
    // Two revisions this stream carried: the snapshot's, then a marker's after another change.
    const lower = agentRaw.revision;
    await api(r1.url).post('/v1/hosts', { name: 'hv-hostile-bump', vtepIp: '192.0.2.13' });
    await waitUntil(() => agentRaw.revision > lower, 5_000, () => 'a marker after the change');
    const nacked = agentRaw.revision;
    const hostile = `\u0000\u001b[2J\u001b]0;pwned\u0007evil\r\nline\t2\u202e\ud800|\udfff|\ud83d\ude00${'x'.repeat(500_000)}`;
    agentRaw.send({ nack: { revision: nacked, error: hostile } });
    await waitUntil(async () => (await hostOn(r2, host.id)).lastError !== null, 5_000, () => 'lastError on replica 2');

    // fetch itself, not api(): the bytes as served are under test.
    const res = await fetch(`${r2.url}/v1/hosts/${host.id}`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    expect(text).not.toMatch(/\\u[dD][89abAB]/); // no escaped lone surrogate
    const error: string = JSON.parse(text).lastError.error;
    // Node's UTF-8 decoding of the message already turns the lone surrogates (sent as CESU-8
    // bytes) into U+FFFD; the cleaning itself is covered by agent-text.spec.ts.
    expect(error).toMatch(/^\[2J\]0;pwnedevil line 2\ufffd?\|\ufffd?\|😀x{900}/);
    expect(error.endsWith(`… (cut: ${hostile.length} characters in all)`)).toBe(true);
    expect(error.length).toBeLessThanOrEqual(1100);
    // eslint-disable-next-line no-control-regex
    expect(error).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(await r1.redis.hstrlen(`{${prefix}}:agents:last-error`, host.id)).toBeLessThanOrEqual(4096);

    // An ack below the nacked revision leaves it; one at it clears it.
    agentRaw.send({ ack: { revision: lower } });
    await waitUntil(async () => (await hostOn(r2, host.id)).appliedRevision === lower, 5_000, () => 'the lower ack is recorded');
    expect((await hostOn(r2, host.id)).lastError).toMatchObject({ revision: nacked });
    agentRaw.send({ ack: { revision: nacked } });
    await waitUntil(async () => (await hostOn(r2, host.id)).lastError === null, 5_000, () => 'cleared by the ack of its revision');
  });
});
