import * as grpc from '@grpc/grpc-js';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DataplanePlan } from '../../src/agent/dataplane/dataplane';
import { MaterializedView } from '../../src/controller/store/materialized-view';
import { StoreRecovery } from '../../src/controller/store/store-recovery';
import { RedisStore } from '../../src/controller/store/redis-store';
import { CONTROLLER } from '../../src/controller/auth/principal';
import { RawAgent } from '../support/raw-agent';
import { makeAgent, waitUntil, dataplaneMatchesDesired, type TestAgent } from '../support/agents';
import { SessionRegistry } from '../../src/controller/distribution/session-registry';
import { api, dropPrefix, startController, TEST_ADMIN_TOKEN, uniquePrefix, type Harness } from '../support/controller-harness';
import { created } from '../support/factories';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';

/**
 * The store loses data under live agents (issue 16, "data loss must not wipe the network"). A
 * private Redis (AOF, appendfsync always) is restarted empty, then from an older copy of its
 * data, while two in-memory agents hold their spans. Contract: no agent removes anything while
 * the store is in recovery (each is told to hold; its kernel state and its state on disk stay
 * as they were), writes answer 503 STORE_RECOVERY, reads say so, and the operator's choice ends
 * it: accepting the store's state (agents then converge to it) or restoring the lost data
 * (agents resume). A brand-new deployment, whose store is empty too, is no recovery.
 *
 * The `it`s run in order and share one deployment. What each path took is printed (not asserted).
 */

const DEADLINE_MS = 20_000;

/** An agent whose every dataplane removal is recorded, with what it holds at a moment. */
interface Watched {
  test: TestAgent;
  removals: string[];
  /** The agent's dataplane, firewall and disk state when `remember` was last called. */
  kept?: { dataplane: string; firewall: string; disk: string; revision: number; epoch: string };
}

const statePath = (w: Watched) => join(w.test.stateDir, 'desired-state.json');

/** The memory dataplane's state as text: every table's entries, in key order. */
function dataplaneText(w: Watched): string {
  const byKey = ([a]: [unknown, unknown], [b]: [unknown, unknown]) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0);
  return JSON.stringify(Object.entries(w.test.dataplane.dump()).map(([table, entries]) => [table, [...(entries as Map<unknown, unknown>).entries()].sort(byKey)]));
}

/** The state file, its lists in a fixed order (the agent writes its maps' order). */
function diskText(w: Watched): string {
  const data = JSON.parse(readFileSync(statePath(w), 'utf8')) as Record<string, unknown>;
  return JSON.stringify(Object.entries(data).map(([key, value]) => [key, Array.isArray(value) ? value.map((x) => JSON.stringify(x)).sort() : value]).sort());
}

/** Waits for the agent's state file to hold its current revision (writes are coalesced, after the apply). */
async function remember(w: Watched): Promise<void> {
  await waitUntil(() => existsSync(statePath(w)) && JSON.parse(readFileSync(statePath(w), 'utf8')).revision === w.test.agent.state.revision, DEADLINE_MS, () => 'the state file written');
  const state = w.test.agent.state;
  w.kept = {
    dataplane: dataplaneText(w),
    firewall: JSON.stringify(w.test.dataplane.firewallInForce() ?? null),
    disk: diskText(w),
    revision: state.revision,
    epoch: state.epoch,
  };
  w.removals.length = 0;
}

function unchanged(w: Watched): void {
  const state = w.test.agent.state;
  expect({ removals: w.removals, revision: state.revision, epoch: state.epoch }).toEqual({ removals: [], revision: w.kept!.revision, epoch: w.kept!.epoch });
  expect(dataplaneText(w)).toBe(w.kept!.dataplane);
  expect(JSON.stringify(w.test.dataplane.firewallInForce() ?? null)).toBe(w.kept!.firewall);
  expect(diskText(w)).toBe(w.kept!.disk);
}

describe('store recovery: Redis comes back empty or older under live agents', () => {
  const prefix = uniquePrefix('store-recovery');
  let redis: PrivateRedis;
  let h: Harness;
  let client: ReturnType<typeof api>;
  const agents: Watched[] = [];
  const copies: string[] = [];
  const timings: Record<string, number> = {};
  let tenantId: string;
  const hosts = [
    { name: 'hv-r1', vtepIp: '192.0.2.41' },
    { name: 'hv-r2', vtepIp: '192.0.2.42' },
  ];

  async function storeRevision(): Promise<number> {
    return Number((await h.redis.get(`{${prefix}}:rev`)) ?? 0);
  }

  /** Both agents hold the store's current revision of its epoch, programmed. */
  async function converged(what: string): Promise<void> {
    const revision = await storeRevision();
    const epoch = await h.redis.get(`{${prefix}}:epoch`);
    await waitUntil(
      () => agents.every((w) => w.test.agent.synced && w.test.agent.state.epoch === epoch && w.test.agent.ackedRevision >= revision && dataplaneMatchesDesired(w.test)),
      DEADLINE_MS,
      () => `${what}: agents at ${agents.map((w) => `${w.test.agent.state.epoch}/${w.test.agent.ackedRevision}`)} of ${epoch}/${revision}`,
    );
  }

  async function populate(tag: string): Promise<void> {
    const hostIds = (await client.get<{ items: { id: string; name: string }[] }>('/v1/hosts?limit=100')).body.items.map((x) => x.id);
    const segment = await created(client.post('/v1/segments', { tenantId, name: `web-${tag}`, cidr: '10.60.0.0/24' }));
    for (let i = 0; i < 6; i++) {
      await created(client.post('/v1/ports', { segmentId: segment.id, hostId: hostIds[i % hostIds.length], ips: [`10.60.0.${10 + i}`] }));
    }
  }

  async function recoveryStatus(): Promise<any> {
    const res = await client.get('/v1/admin/recovery');
    expect(res.status).toBe(200);
    return res.body;
  }

  beforeAll(async () => {
    redis = await startPrivateRedis();
    h = await startController({ prefix, redisUrl: redis.url });
    h.redis.on('error', () => undefined);
    client = api(h.url);
    tenantId = (await created(client.post('/v1/tenants', { name: 'acme' }))).id;
    for (const host of hosts) {
      await created(client.post('/v1/hosts', host));
    }
    await populate('a');
    for (const host of hosts) {
      const test = makeAgent(host.name, h.grpcTarget, { vtepIp: host.vtepIp });
      const watched: Watched = { test, removals: [] };
      const apply = test.dataplane.apply.bind(test.dataplane);
      test.dataplane.apply = async (plan: DataplanePlan) => {
        watched.removals.push(...plan.filter((step) => step.op.startsWith('remove')).map((step) => step.op));
        return apply(plan);
      };
      agents.push(watched);
      await test.agent.start();
    }
    await converged('first sync');
  });

  afterAll(async () => {
    for (const w of agents) {
      await w.test.cleanup();
    }
    await h?.close();
    await redis?.destroy();
    for (const copy of copies) {
      rmSync(copy, { recursive: true, force: true });
    }
    console.log(`store recovery timings (ms): ${JSON.stringify(timings)}`);
  });

  it('Redis restarted empty: the controller enters recovery, agents hold and remove nothing, writes answer 503 STORE_RECOVERY, reads say so', async () => {
    await Promise.all(agents.map(remember));
    const before = await storeRevision();
    const epoch = agents[0].kept!.epoch;
    expect(before).toBeGreaterThan(0);

    const restarted = Date.now();
    await redis.restartWith(null);
    await waitUntil(() => h.app.get(StoreRecovery).active, DEADLINE_MS, () => 'the replica to notice the empty store');
    timings.emptyDetected = Date.now() - restarted;
    await waitUntil(() => agents.every((w) => w.test.agent.held), DEADLINE_MS, () => 'every agent told to hold');
    timings.emptyAgentsHeld = Date.now() - restarted;
    // The tokens went with the rest: the replica makes the admin token again as the recovery
    // begins (app.ts), and until that write lands the test's token is unknown (401).
    await waitUntil(async () => (await client.get('/v1/admin/recovery')).status === 200, DEADLINE_MS, () => 'the admin token made again');

    const status = await recoveryStatus();
    expect(status).toMatchObject({ state: 'recovery', store: { epoch: null, revision: 0 }, recovery: { reason: 'store-empty', previous: { epoch, revision: before }, found: { epoch: null, revision: 0 } } });

    // Writes: refused, before and behind the API (the scripts refuse too).
    const write = await client.post('/v1/tenants', { name: 'after-loss' });
    expect(write).toMatchObject({ status: 503, body: { code: 'STORE_RECOVERY' } });
    const hostWrite = await client.post('/v1/hosts', { name: 'hv-r9', vtepIp: '192.0.2.49' });
    expect(hostWrite).toMatchObject({ status: 503, body: { code: 'STORE_RECOVERY' } });
    // Behind the API: any script that makes a revision refuses (a replica that has not noticed yet cannot write either).
    const store = h.app.get(RedisStore);
    store.defineScript('testRecoveryCommit', `return commit({ op('tenant', 't-guard', '{}') })`);
    await expect(store.mutate('testRecoveryCommit', [], CONTROLLER)).rejects.toMatchObject({ code: 'STORE_RECOVERY' });
    expect(await storeRevision()).toBe(0);
    // Reads answer, and say that the store is in recovery; so does readiness (still ready: the API must stay reachable).
    const read = await fetch(`${h.url}/v1/tenants`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    expect(read.status).toBe(200);
    expect(read.headers.get('overlay-store-state')).toBe('recovery');
    expect(await client.get('/readyz')).toEqual({ status: 200, body: { status: 'ready', redis: 'ok', store: 'recovery' } });

    // Nothing of what the agents hold was removed: kernel (memory dataplane), firewall, state on disk.
    agents.forEach(unchanged);
    // And a Hello during the recovery (an agent reconnecting) is held too, not refused as an unknown host.
    const connects = agents[0].test.agent.stats.connects;
    await agents[0].test.agent.stop();
    const again = makeAgent(hosts[0].name, h.grpcTarget, { vtepIp: hosts[0].vtepIp }, agents[0].test.stateDir, { dataplane: agents[0].test.dataplane });
    agents[0].test = again;
    await again.agent.start();
    await waitUntil(() => again.agent.held, DEADLINE_MS, () => 'the reconnected agent held');
    expect(connects).toBeGreaterThan(0);
    agents.forEach(unchanged);
  });

  it('accept: a new epoch, agents are sent the store\u2019s (empty) state and converge to it once their hosts are registered again', async () => {
    const oldEpoch = agents[1].kept!.epoch;
    const started = Date.now();
    const accepted = await client.post('/v1/admin/recovery/accept');
    expect(accepted).toMatchObject({ status: 200, body: { revision: 0, accepted: { reason: 'store-empty' } } });
    timings.acceptAnswered = Date.now() - started;
    expect(accepted.body.epoch).not.toBe(oldEpoch);
    expect((await recoveryStatus()).state).toBe('normal');
    expect(await client.get('/readyz')).toEqual({ status: 200, body: { status: 'ready', redis: 'ok' } });
    expect(await h.redis.sismember(`{${prefix}}:epochs:retired`, oldEpoch)).toBe(1);

    // The hosts went with the data: their agents are refused (NOT_FOUND) and keep their state until they are registered again.
    await waitUntil(() => h.app.get(SessionRegistry).holdingCount() === 0, DEADLINE_MS, () => 'held streams ended');
    agents.forEach(unchanged);
    const reRegistered = Date.now();
    tenantId = (await created(client.post('/v1/tenants', { name: 'acme' }))).id;
    for (const host of hosts) {
      await created(client.post('/v1/hosts', host));
    }
    await converged('the accepted (empty) state');
    timings.acceptToConverged = Date.now() - started;
    timings.reRegisterToConverged = Date.now() - reRegistered;
    for (const w of agents) {
      expect(w.test.agent.state.epoch).toBe(accepted.body.epoch);
      expect(w.test.agent.state.ports.size).toBe(0);
      expect(w.test.dataplane.dump().ports.size).toBe(0);
      // What the store lost is what the agents removed: now, after the accept, not before.
      expect(w.removals.length).toBeGreaterThan(0);
    }
  });

  it('revision went backwards (an older copy of the data restored): recovery; restoring the newer data resumes the agents without a snapshot', async () => {
    await populate('b');
    await converged('state b');
    // A copy taken now, then more writes: restoring it loses them.
    await redis.kill();
    const older = redis.copyData();
    copies.push(older);
    await redis.start();
    await waitUntil(async () => (await client.get('/readyz')).status === 200, DEADLINE_MS);
    await populate('c');
    await converged('state c');
    await redis.kill();
    const newer = redis.copyData();
    copies.push(newer);
    await redis.start();
    await waitUntil(async () => (await client.get('/v1/admin/recovery')).status === 200, DEADLINE_MS);
    await Promise.all(agents.map(remember));
    const seen = await storeRevision();
    const snapshots = agents.map((w) => w.test.agent.stats.snapshots);

    const restored = Date.now();
    await redis.restartWith(older);
    await waitUntil(() => h.app.get(StoreRecovery).active, DEADLINE_MS, () => 'the replica to notice the older store');
    timings.olderDetected = Date.now() - restored;
    await waitUntil(() => agents.every((w) => w.test.agent.held), DEADLINE_MS, () => 'every agent told to hold');
    const status = await recoveryStatus();
    expect(status).toMatchObject({ state: 'recovery', recovery: { reason: 'revision-went-back', previous: { revision: seen } } });
    expect(status.store.revision).toBeLessThan(seen);
    expect(await client.post('/v1/tenants', { name: 'while-older' })).toMatchObject({ status: 503, body: { code: 'STORE_RECOVERY' } });
    agents.forEach(unchanged);

    // The operator restores the newer data instead of accepting the older: the recovery ends by itself.
    const restoring = Date.now();
    await redis.restartWith(newer);
    await waitUntil(async () => !h.app.get(StoreRecovery).active && (await recoveryStatus()).state === 'normal', DEADLINE_MS, () => 'the recovery to end with the data restored');
    await converged('the restored state');
    timings.restoreToResumed = Date.now() - restoring;
    agents.forEach(unchanged);
    // Resumed from their revision (same epoch, the log has it): no snapshot.
    expect(agents.map((w) => w.test.agent.stats.snapshots)).toEqual(snapshots);
    expect(await client.post('/v1/tenants', { name: 'after-restore' })).toMatchObject({ status: 201 });
  });

  it('every replica restarted after the loss: the agents\u2019 epoch tells, and the store enters recovery', async () => {
    await converged('before');
    await Promise.all(agents.map(remember));
    const grpcPort = h.grpcTarget.split(':')[1];
    await h.close();
    await redis.restartWith(null);
    const started = Date.now();
    h = await startController({ prefix, redisUrl: redis.url, env: { OVERLAY_GRPC_PORT: grpcPort } });
    h.redis.on('error', () => undefined);
    client = api(h.url);
    await waitUntil(() => h.app.get(StoreRecovery).active, DEADLINE_MS, () => 'an agent\u2019s Hello to reveal the loss');
    timings.agentReported = Date.now() - started;
    await waitUntil(() => agents.every((w) => w.test.agent.held), DEADLINE_MS, () => 'every agent told to hold');
    const status = await recoveryStatus();
    expect(status).toMatchObject({ state: 'recovery', recovery: { reason: 'agent-epoch-unknown' } });
    expect(status.agentEpochs).toEqual([agents[0].kept!.epoch]);
    expect(await client.post('/v1/tenants', { name: 'x' })).toMatchObject({ status: 503, body: { code: 'STORE_RECOVERY' } });
    agents.forEach(unchanged);
  });

  it('a brand-new deployment (empty store, agents holding nothing) is no recovery', async () => {
    const fresh = uniquePrefix('store-recovery-new');
    const ctl = await startController({ prefix: fresh });
    const test = makeAgent('hv-new', ctl.grpcTarget);
    try {
      const c = api(ctl.url);
      await created(c.post('/v1/hosts', { name: 'hv-new', vtepIp: '192.0.2.60' }));
      await test.agent.start();
      await waitUntil(() => test.agent.synced, DEADLINE_MS, () => 'the new agent synced');
      expect(ctl.app.get(StoreRecovery).active).toBe(false);
      expect(ctl.app.get(MaterializedView).held).toBe(false);
      expect((await c.get('/v1/admin/recovery')).body).toMatchObject({ state: 'normal', recovery: null });
      expect(test.agent.held).toBe(false);
      expect(await c.post('/v1/tenants', { name: 'fresh' })).toMatchObject({ status: 201 });
    } finally {
      await test.cleanup();
      await ctl.close();
      await dropPrefix(ctl.config.redisUrl, fresh);
    }
  });

  it('a Hello for a host the store does not register (it registers others) starts no recovery, whatever epoch or revision it names: it is refused as any unknown host', async () => {
    const fresh = uniquePrefix('store-recovery-stranger');
    const ctl = await startController({ prefix: fresh });
    const raws: RawAgent[] = [];
    try {
      const c = api(ctl.url);
      await created(c.post('/v1/hosts', { name: 'hv-known', vtepIp: '192.0.2.62' }));
      const epoch = (await ctl.redis.get(`{${fresh}}:epoch`))!;
      // A made-up epoch, then this epoch with a revision past the store's: the two ways an agent's Hello declares a loss.
      for (const hello of [{ appliedRevision: 7, epoch: 'deadbeefdeadbeef' }, { appliedRevision: 5_000_000, epoch }]) {
        const stranger = new RawAgent(ctl.grpcTarget, 'not-a-host', `stranger-${raws.length}`, hello);
        raws.push(stranger);
        await waitUntil(() => stranger.ended !== undefined, DEADLINE_MS, () => 'the stranger refused');
        expect(stranger.ended).toMatchObject({ code: grpc.status.NOT_FOUND });
        expect(stranger.received.some((m) => m.hold)).toBe(false);
      }
      expect(ctl.app.get(StoreRecovery).active).toBe(false);
      expect((await c.get('/v1/admin/recovery')).body).toMatchObject({ state: 'normal', recovery: null });
      expect(await c.post('/v1/tenants', { name: 'still-writable' })).toMatchObject({ status: 201 });
      // The registered host's agent still can: the same made-up epoch from it starts the recovery.
      const known = new RawAgent(ctl.grpcTarget, 'hv-known', 'known-1', { appliedRevision: 7, epoch: 'deadbeefdeadbeef' });
      raws.push(known);
      await waitUntil(() => known.received.some((m) => m.hold), DEADLINE_MS, () => 'the registered host told to hold');
      expect((await c.get('/v1/admin/recovery')).body).toMatchObject({ state: 'recovery', recovery: { reason: 'agent-epoch-unknown', detectedBy: { host: 'hv-known' } } });
    } finally {
      raws.forEach((r) => r.close());
      await ctl.close();
      await dropPrefix(ctl.config.redisUrl, fresh);
    }
  });

  it('an agent ahead of the store (same epoch, a revision past it) starts a recovery; after the accept, its retired epoch only asks for a snapshot', async () => {
    const fresh = uniquePrefix('store-recovery-ahead');
    const ctl = await startController({ prefix: fresh });
    const raws: RawAgent[] = [];
    try {
      const c = api(ctl.url);
      await created(c.post('/v1/hosts', { name: 'hv-ahead', vtepIp: '192.0.2.61' }));
      const epoch = (await ctl.redis.get(`{${fresh}}:epoch`))!;
      const ahead = new RawAgent(ctl.grpcTarget, 'hv-ahead', 'ahead-1', { appliedRevision: 5_000_000, epoch });
      raws.push(ahead);
      await waitUntil(() => ahead.received.some((m) => m.hold), DEADLINE_MS, () => 'the agent told to hold');
      expect(ahead.received.every((m) => !m.snapshotChunk && !m.snapshotEnd && !m.delta)).toBe(true);
      expect((await c.get('/v1/admin/recovery')).body).toMatchObject({ state: 'recovery', recovery: { reason: 'agent-ahead', detectedBy: { host: 'hv-ahead' }, previous: { epoch, revision: 5_000_000 } } });
      expect(await c.post('/v1/tenants', { name: 'no' })).toMatchObject({ status: 503, body: { code: 'STORE_RECOVERY' } });

      const accepted = await c.post('/v1/admin/recovery/accept');
      expect(accepted.status).toBe(200);
      await waitUntil(() => ahead.ended !== undefined, DEADLINE_MS, () => 'the held stream ended');
      expect(ahead.ended!.details).toMatch(/recovery is over/);
      // The same agent again, with the epoch the accept retired: a snapshot of the accepted state, no new recovery.
      const again = new RawAgent(ctl.grpcTarget, 'hv-ahead', 'ahead-2', { appliedRevision: 5_000_000, epoch });
      raws.push(again);
      await waitUntil(() => again.delivered, DEADLINE_MS, () => 'a snapshot');
      expect(again.received.find((m) => m.snapshotEnd)?.snapshotEnd?.epoch).toBe(accepted.body.epoch);
      expect(ctl.app.get(StoreRecovery).active).toBe(false);
      expect(await c.post('/v1/admin/recovery/accept')).toMatchObject({ status: 409, body: { code: 'NOT_IN_RECOVERY' } });
    } finally {
      raws.forEach((r) => r.close());
      await ctl.close();
      await dropPrefix(ctl.config.redisUrl, fresh);
    }
  });
});
