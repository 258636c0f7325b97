import { RedisStore } from '../../src/controller/store/redis-store';
import { api, startController, uniquePrefix, type Harness } from '../support/controller-harness';
import { agentResources, dataplaneMatchesDesired, makeAgent, spansFromScratch, waitUntil, type TestAgent } from '../support/agents';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { prng } from '../support/prng';

const AGENTS = 50;
const OPERATIONS = 2000;

/**
 * 50 in-process agents on two controller replicas sharing a private Redis, under a random stream
 * of 2,000 operations, with an agent restarted, a replica shut down and Redis killed and restarted
 * along the way. After the stream settles every agent must hold exactly its span computed from
 * scratch, and at no moment may an agent hold an entry outside its span.
 */
describe('sync convergence under churn and failures', () => {
  const seed = Number(process.env.OVERLAY_TEST_SEED ?? 4242);
  const prefix = uniquePrefix('converge');
  let redis: PrivateRedis;
  let a: Harness | undefined;
  let b: Harness;
  const agents: TestAgent[] = [];
  const violations: string[] = [];

  beforeAll(async () => {
    redis = await startPrivateRedis();
    a = await startController({ prefix, redisUrl: redis.url });
    b = await startController({ prefix, redisUrl: redis.url });
  });

  afterAll(async () => {
    await Promise.all(agents.map((t) => t.cleanup().catch(() => undefined)));
    await a?.close().catch(() => undefined);
    await b?.close().catch(() => undefined);
    await redis?.destroy();
  }, 60_000);

  /** The span invariant, checked after every message an agent handles. */
  function watch(test: TestAgent): void {
    test.agent.onProgress = () => {
      const state = test.agent.state;
      for (const port of state.ports.values()) {
        if (!state.segments.has(port.segmentId)) {
          violations.push(`${test.agent.config.hostName} holds port ${port.id} of segment ${port.segmentId} it does not hold`);
        }
      }
      for (const segment of state.segments.values()) {
        if (![...state.ports.values()].some((p) => p.segmentId === segment.id && p.hostId === state.hostId)) {
          violations.push(`${test.agent.config.hostName} holds segment ${segment.id} without a port of its own on it`);
        }
      }
    };
  }

  function startAgent(i: number, stateDir?: string): TestAgent {
    const targets = i % 2 === 0 ? [a!.grpcTarget, b.grpcTarget] : [b.grpcTarget, a!.grpcTarget];
    const test = makeAgent(`hv${i}`, targets, { vtepIp: `192.0.2.${i + 1}` }, stateDir);
    watch(test);
    return test;
  }

  it(`converges every agent to its span (seed ${seed})`, async () => {
    const random = prng(seed);
    const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
    let clients = [api(a!.url), api(b.url)];
    const client = () => pick(clients);

    const tenants = [];
    for (let t = 0; t < 3; t++) {
      tenants.push((await client().post('/v1/tenants', { name: `tenant${t}` })).body.id as string);
    }
    const hosts: string[] = [];
    for (let i = 0; i < AGENTS; i++) {
      hosts.push((await client().post('/v1/hosts', { name: `hv${i}`, vtepIp: `192.0.2.${i + 1}` })).body.id);
    }
    for (let i = 0; i < AGENTS; i++) {
      agents.push(startAgent(i));
    }
    await Promise.all(agents.map((t) => t.agent.start()));

    const segments: string[] = [];
    const ports: string[] = [];
    let refused = 0;
    for (let op = 0; op < OPERATIONS; op++) {
      if (op === 500) {
        // An agent restarts mid-stream: it restores from its state file and resumes.
        const old = agents[7];
        await old.agent.stop();
        agents[7] = startAgent(7, old.stateDir);
        await agents[7].agent.start();
      }
      if (op === 1000) {
        // Replica A goes away: its agents move to B.
        await a!.close();
        a = undefined;
        clients = [api(b.url)];
      }
      if (op === 1500) {
        // Redis crashes (SIGKILL) and comes back from its AOF.
        await redis.kill();
        await redis.start();
        await waitUntil(async () => (await fetch(`${b.url}/readyz`)).status === 200, 15_000, () => 'controller never saw Redis again');
      }
      const roll = random();
      let status: number;
      if (roll < 0.06 || segments.length < 3) {
        const res = await client().post('/v1/segments', { tenantId: pick(tenants), name: `s${op}` });
        status = res.status;
        if (status === 201) {
          segments.push(res.body.id);
        }
      } else if (roll < 0.4) {
        const segmentId = pick(segments);
        const batch = Array.from({ length: 1 + Math.floor(random() * 4) }, () => ({ segmentId, hostId: random() < 0.85 ? pick(hosts) : null }));
        const res = await client().post('/v1/ports/batch', { ports: batch });
        status = res.status;
        if (status === 201) {
          ports.push(...res.body.items.map((p: { id: string }) => p.id));
        }
      } else if (roll < 0.75 && ports.length) {
        status = (await client().patch(`/v1/ports/${pick(ports)}`, { hostId: random() < 0.9 ? pick(hosts) : null })).status;
      } else if (roll < 0.93 && ports.length) {
        const id = pick(ports);
        status = (await client().delete(`/v1/ports/${id}`)).status;
        if (status === 204) {
          ports.splice(ports.indexOf(id), 1);
        }
      } else {
        const id = pick(segments);
        status = (await client().delete(`/v1/segments/${id}`)).status;
        if (status === 204) {
          segments.splice(segments.indexOf(id), 1);
        }
      }
      if (status >= 500) {
        throw new Error(`operation ${op} failed with ${status}`);
      }
      if (status >= 400) {
        refused++;
      }
    }
    expect(refused).toBeLessThan(OPERATIONS / 4);

    const store = b.app.get(RedisStore);
    let mismatched: string[] = [];
    await waitUntil(
      async () => {
        const truth = await spansFromScratch(b.redis, store);
        mismatched = agents
          .filter((t) => {
            const hostId = truth.hostsByName.get(t.agent.config.hostName)!;
            return JSON.stringify(agentResources(t.agent)) !== JSON.stringify(truth.spans.get(hostId) ?? []) || !dataplaneMatchesDesired(t);
          })
          .map((t) => t.agent.config.hostName);
        return mismatched.length === 0;
      },
      30_000,
      () => `agents not converged: ${mismatched.join(', ')}`,
    );
    expect(violations).toEqual([]);
    expect(agents.every((t) => t.agent.connected)).toBe(true);
  }, 240_000);
});
