import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startPrivateRedis, type PrivateRedis } from '../test/support/private-redis';
import { startSentinelDeployment, waitFor, withClient, type SentinelDeployment } from '../test/support/sentinel-redis';
import { benchToken, ControllerProcess, controllerEnv, freePort, redactedEnv } from './controller-process';
import { JsonHttpClient } from './http-client';
import { percentile, runPool, type PoolResult } from './pool';
import type { PortFactory } from './port-factory';
import { portFixtures } from './port-workload';
import { dec, exitWith, gitDescribe, int, pad, ROOT, round2, verdict, writeResults } from './report';
import { guardPhase } from './phase-guard';

/*
 * Redis high availability benchmark: `BENCH_ONLY=ha npm run bench`.
 *
 * Everything runs on Redis processes of its own (redis-server and redis-sentinel on free ports
 * of 127.0.0.1, data in temp directories, AOF with appendfsync always: the launchers of the
 * medium tests, test/support/), never on the shared Redis.
 *
 * 1. Write rate with OVERLAY_REDIS_MIN_REPLICAS 0 and 1: a master and one replica, two
 *    controllers (one per setting, key prefixes of their own), alternating rounds of single-port
 *    creates and of batches; the median round of each is printed side by side.
 * 2. Failover: a master, two replicas, three sentinels (down-after-milliseconds 1000,
 *    failover-timeout 5000), a controller on REDIS_SENTINELS with MIN_REPLICAS=1 under a steady
 *    single-port write load; FAILOVERS times the current master is SIGKILLed and the time from
 *    the kill to the first acknowledged write sent after it is measured; the killed node is
 *    started again as a replica of the new master and the next kill waits until it is synced and
 *    the sentinels agree. At the end every write answered 2xx is read back: lost must be 0. Writes
 *    refused 503 STORE_RECOVERY are counted (a failover that loses no confirmed write should be no
 *    store recovery: target 0); a recovery still on 30 s later ends the failovers early.
 *
 * Figures are printed and written to .bench-out/ha.json; a missed target is reported, only a
 * broken run exits non-zero. Every process started is killed and every temp dir removed at the
 * end, also after an error or a signal.
 */

const CONTROLLER_SCRIPT = path.join(ROOT, 'dist', 'src', 'controller', 'main.js');
const OUT_FILE = path.join(ROOT, '.bench-out', 'ha.json');

const SEGMENTS = 4;
const HOSTS = 4;
const SINGLE_CONCURRENCY = 64;
const SINGLE_ROUND_MS = 2_500;
const BATCH_SIZE = 1_000;
const BATCH_CALLS = 4;
const BATCH_IN_FLIGHT = 2;
/** Rounds per setting, the settings alternating (the machine may be shared); the median round is reported. */
const RATE_ROUNDS = 3;

const FAILOVERS = 5;
const DOWN_AFTER_MS = 1_000;
const FAILOVER_TIMEOUT_MS = 5_000;
const STORM_CONCURRENCY = 16;
/** After a refused write a worker pauses this long, so that 16 workers do not spin on 503s (it bounds the resolution of the figure). */
const REFUSAL_PAUSE_MS = 10;
/** A kill with no acknowledged write after it within this long breaks the run. */
const FAILOVER_DEADLINE_MS = 30_000;
/** The restarted node synced and the sentinels in agreement within this long, or the run breaks. */
const HEAL_DEADLINE_MS = 60_000;

const HARD_DEADLINE_MS = 240_000;

/** The error code of a write refused because the store is in recovery. */
const RECOVERY_CODE = 'STORE_RECOVERY';

/** A replica's ratio of write rates (MIN_REPLICAS=1 / 0) at or above this prints PASS: the issue sets no target; this one is ours. */
const MIN_RATIO = 0.5;

interface Target {
  name: string;
  value: number;
  target: string;
  pass: boolean;
}

interface Results {
  meta: Record<string, unknown>;
  writeRate: Record<string, unknown>;
  failover: Record<string, unknown>;
  targets: Target[];
  errors: string[];
}

/** What the run started, for the cleanup. */
const started = {
  controllers: [] as ControllerProcess[],
  clients: [] as JsonHttpClient[],
  redis: [] as PrivateRedis[],
  deployments: [] as SentinelDeployment[],
};

let aborted = false;

function hasCommand(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore', timeout: 5_000 }).status === 0;
}

async function startController(prefix: string, minReplicas: number, redisEnv: Record<string, string>): Promise<{ ctl: ControllerProcess; client: JsonHttpClient; env: Record<string, string> }> {
  const httpPort = await freePort();
  const env: Record<string, string> = { ...(await controllerEnv(redisEnv, prefix, httpPort, benchToken())), OVERLAY_REDIS_MIN_REPLICAS: String(minReplicas) };
  const ctl = await ControllerProcess.start({ script: CONTROLLER_SCRIPT, env, port: httpPort, readyTimeoutMs: 30_000 });
  started.controllers.push(ctl);
  const client = new JsonHttpClient('127.0.0.1', httpPort, SINGLE_CONCURRENCY, { token: env.OVERLAY_BOOTSTRAP_TOKEN, timeoutMs: 15_000 });
  started.clients.push(client);
  return { ctl, client, env };
}

/** A tenant, SEGMENTS segments with /16 CIDRs and HOSTS hosts: what ports need. */
function portFactory(client: JsonHttpClient): Promise<PortFactory> {
  return portFixtures(client, { name: 'ha', segments: SEGMENTS, hosts: HOSTS });
}

/** WAIT and WAITAOF calls the master has executed so far (proof that MIN_REPLICAS=1 waited, and 0 did not). */
async function waitCalls(port: number): Promise<number> {
  const stats = await withClient(port, (c) => c.info('commandstats'));
  return ['wait', 'waitaof'].reduce((sum, cmd) => sum + Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0), 0);
}

const median = (rounds: PoolResult[]): PoolResult => [...rounds].sort((a, b) => a.rate - b.rate)[Math.floor((rounds.length - 1) / 2)];

// ---------------------------------------------------------------------------------------------
// 1. Write rate, MIN_REPLICAS 0 and 1

async function writeRate(results: Results): Promise<void> {
  console.log(`\nWrite rate by OVERLAY_REDIS_MIN_REPLICAS (a master and 1 replica, redis-server with AOF appendfsync always; ${RATE_ROUNDS} alternating rounds per setting, median shown)`);
  const master = await startPrivateRedis();
  started.redis.push(master);
  const replica = await startPrivateRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
  started.redis.push(replica);
  await waitFor('the replica to be in sync', 20_000, () => withClient(master.port, async (c) => /state=online/.test(await c.info('replication'))));

  const settings = [0, 1];
  const sides = [];
  for (const minReplicas of settings) {
    const { client, env } = await startController(`bench-ha-${minReplicas}-${randomBytes(3).toString('hex')}`, minReplicas, { REDIS_URL: master.url });
    const factory = await portFactory(client);
    // Warm-up (JIT, connections), not measured.
    await runPool({ count: 500, concurrency: SINGLE_CONCURRENCY, maxMs: 10_000, task: async () => (await client.send('POST', '/v1/ports', factory.next()), 1) });
    sides.push({ minReplicas, client, factory, env, single: [] as PoolResult[], batch: [] as PoolResult[], waits: 0 });
  }
  for (let round = 0; round < RATE_ROUNDS && !aborted; round++) {
    for (const side of sides) {
      const w0 = await waitCalls(master.port);
      side.single.push(
        await runPool({ count: 1_000_000, concurrency: SINGLE_CONCURRENCY, maxMs: SINGLE_ROUND_MS, shouldStop: () => aborted, task: async () => (await side.client.send('POST', '/v1/ports', side.factory.next()), 1) }),
      );
      const batchBodies = Array.from({ length: BATCH_CALLS }, () => JSON.stringify({ ports: side.factory.take(BATCH_SIZE) }));
      side.batch.push(
        await runPool({ count: batchBodies.length, concurrency: BATCH_IN_FLIGHT, maxMs: 30_000, shouldStop: () => aborted, task: async (i) => (await side.client.send('POST', '/v1/ports/batch', batchBodies[i]), BATCH_SIZE) }),
      );
      side.waits += (await waitCalls(master.port)) - w0;
    }
  }
  for (const side of sides) {
    for (const r of [...side.single, ...side.batch]) {
      if (r.errors) {
        throw new Error(`MIN_REPLICAS=${side.minReplicas}: ${r.errors} failed calls (first: ${r.firstError})`);
      }
    }
  }

  const [zero, one] = sides.map((s) => ({ ...s, singleMedian: median(s.single), batchMedian: median(s.batch) }));
  const singleRatio = one.singleMedian.rate / zero.singleMedian.rate;
  const batchRatio = one.batchMedian.rate / zero.batchMedian.rate;
  const row = (a: string, b: string, c: string, d: string): string => `  ${pad(a, 24)} ${b.padStart(20)} ${c.padStart(20)}   ${d}`;
  console.log(row('MIN_REPLICAS', `single ports/s (${SINGLE_CONCURRENCY})`, `batch ports/s (${int(BATCH_SIZE)})`, 'WAIT calls on the master'));
  for (const s of [zero, one]) {
    console.log(row(String(s.minReplicas), int(s.singleMedian.rate), int(s.batchMedian.rate), int(s.waits)));
    console.log(`      rounds: single ${s.single.map((r) => int(r.rate)).join(' / ')} (p50 ${dec(s.singleMedian.latencyMs.p50)} ms, p99 ${dec(s.singleMedian.latencyMs.p99)} ms); batch ${s.batch.map((r) => int(r.rate)).join(' / ')} (p50 ${dec(s.batchMedian.latencyMs.p50)} ms per call)`);
  }
  console.log(row('ratio 1 vs 0', dec(singleRatio, 2), dec(batchRatio, 2), `>= ${MIN_RATIO} (ours; the issue sets none): ${verdict(singleRatio >= MIN_RATIO && batchRatio >= MIN_RATIO)}`));
  if (zero.waits !== 0 || one.waits === 0) {
    throw new Error(`WAIT calls on the master: ${zero.waits} with MIN_REPLICAS=0, ${one.waits} with 1: the setting did not take effect as expected`);
  }

  results.writeRate = {
    redis: 'master + 1 replica, redis-server, appendonly yes, appendfsync always',
    singleConcurrency: SINGLE_CONCURRENCY,
    batchSize: BATCH_SIZE,
    batchInFlight: BATCH_IN_FLIGHT,
    rounds: RATE_ROUNDS,
    settings: [zero, one].map((s) => ({
      minReplicas: s.minReplicas,
      singlePortsPerSecond: Math.round(s.singleMedian.rate),
      batchPortsPerSecond: Math.round(s.batchMedian.rate),
      singleRounds: s.single.map((r) => Math.round(r.rate)),
      batchRounds: s.batch.map((r) => Math.round(r.rate)),
      singleLatencyMs: { p50: round2(s.singleMedian.latencyMs.p50), p99: round2(s.singleMedian.latencyMs.p99) },
      waitCalls: s.waits,
      controllerEnv: redactedEnv(s.env),
    })),
    singleRatio: round2(singleRatio),
    batchRatio: round2(batchRatio),
  };
  results.targets.push(
    { name: 'single ports/s ratio MIN_REPLICAS 1 vs 0', value: round2(singleRatio) ?? NaN, target: `>= ${MIN_RATIO}`, pass: singleRatio >= MIN_RATIO },
    { name: 'batch ports/s ratio MIN_REPLICAS 1 vs 0', value: round2(batchRatio) ?? NaN, target: `>= ${MIN_RATIO}`, pass: batchRatio >= MIN_RATIO },
  );

  for (const s of sides) {
    s.client.close();
  }
  await Promise.all(started.controllers.splice(0).map((c) => c.stop()));
  await Promise.all(started.redis.splice(0).map((r) => r.destroy()));
}

// ---------------------------------------------------------------------------------------------
// 2. Failover under a write load, MIN_REPLICAS=1

/** The master when every sentinel names the same one, knows both replicas and none is down, and that master has both replicas online; else undefined. */
async function healedMaster(dep: SentinelDeployment): Promise<PrivateRedis | undefined> {
  const replicaCount = dep.nodes.length - 1;
  const named = new Set<number>();
  for (const port of dep.sentinelPorts) {
    const ok = await withClient(port, async (c) => {
      const [, masterPort] = (await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', dep.masterName)) as [string, string];
      named.add(Number(masterPort));
      const replicas = (await c.call('SENTINEL', 'REPLICAS', dep.masterName)) as string[][];
      const healthy = replicas.filter((fields) => {
        const flags = fields[fields.indexOf('flags') + 1] ?? '';
        const link = fields[fields.indexOf('master-link-status') + 1] ?? '';
        return !/s_down|o_down|disconnected/.test(flags) && link === 'ok';
      });
      return healthy.length === replicaCount;
    });
    if (!ok || named.size > 1) {
      return undefined;
    }
  }
  const master = dep.nodes.find((n) => named.has(n.port));
  if (!master) {
    return undefined;
  }
  const info = await withClient(master.port, (c) => c.info('replication'));
  return /^role:master/m.test(info) && (info.match(/state=online/g) ?? []).length === replicaCount ? master : undefined;
}

interface Storm {
  acked: { id: string; mac: string; sentAt: number; answeredAt: number }[];
  refused: Map<string, number>;
  stop: () => Promise<void>;
}

/** STORM_CONCURRENCY workers creating one port per call until stopped; each 2xx is recorded with when it was sent and answered. */
function startStorm(client: JsonHttpClient, factory: PortFactory): Storm {
  const acked: Storm['acked'] = [];
  const refused = new Map<string, number>();
  let stopping = false;
  const worker = async (): Promise<void> => {
    while (!stopping && !aborted) {
      const input = factory.next();
      const sentAt = performance.now();
      let why: string;
      try {
        const res = await client.request('POST', '/v1/ports', input, { keepBody: true });
        if (res.status >= 200 && res.status < 300) {
          acked.push({ id: (JSON.parse(res.text) as { id: string }).id, mac: input.mac, sentAt, answeredAt: performance.now() });
          continue;
        }
        let code = '';
        try {
          code = (JSON.parse(res.text) as { code?: string }).code ?? '';
        } catch {
          // not JSON
        }
        why = `${res.status}${code ? ` ${code}` : ''}`;
      } catch (err) {
        why = `no answer (${(err as Error).message.slice(0, 60)})`;
      }
      refused.set(why, (refused.get(why) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, REFUSAL_PAUSE_MS));
    }
  };
  const workers = Array.from({ length: STORM_CONCURRENCY }, worker);
  return {
    acked,
    refused,
    stop: async () => {
      stopping = true;
      await Promise.all(workers);
    },
  };
}

function refusalText(storm: Storm): string {
  return [...storm.refused].map(([why, count]) => `${int(count)} x ${why}`).join(', ') || 'none';
}

/** The store recovery the controller is in (reason and detail), or undefined when it is in none (GET /v1/admin/recovery). */
async function recoveryState(client: JsonHttpClient): Promise<string | undefined> {
  try {
    const res = await client.json<{ state: string; recovery?: { reason: string; detail: string } | null }>('GET', '/v1/admin/recovery');
    return res.state === 'recovery' ? `${res.recovery?.reason ?? '?'}: ${res.recovery?.detail ?? ''}` : undefined;
  } catch (err) {
    return `(could not ask: ${(err as Error).message.slice(0, 100)})`;
  }
}

async function failover(results: Results): Promise<void> {
  console.log(
    `\nFailover (a master, 2 replicas, 3 redis-sentinel; down-after-milliseconds ${DOWN_AFTER_MS}, failover-timeout ${FAILOVER_TIMEOUT_MS}; OVERLAY_REDIS_MIN_REPLICAS=1; ${STORM_CONCURRENCY} single-port creates in flight; ${FAILOVERS} x SIGKILL of the master)`,
  );
  const dep = await startSentinelDeployment({ replicas: 2, sentinels: 3, downAfterMs: DOWN_AFTER_MS, failoverTimeoutMs: FAILOVER_TIMEOUT_MS });
  started.deployments.push(dep);
  const { client, env } = await startController(`bench-ha-failover-${randomBytes(3).toString('hex')}`, 1, {
    // An empty REDIS_URL counts as unset: the controller refuses both at once, and the caller's environment may have one.
    REDIS_URL: '',
    REDIS_SENTINELS: dep.sentinelList,
    REDIS_SENTINEL_MASTER: dep.masterName,
  });
  const factory = await portFactory(client);
  const storm = startStorm(client, factory);
  const gapsMs: number[] = [];
  let recovery: string | undefined;
  const details: { killedPort: number; newMasterPort: number; masterAfterHealPort: number; gapMs: number; recoveryRefusals: number; healMs: number }[] = [];
  try {
    for (let n = 1; n <= FAILOVERS && !aborted; n++) {
      const before = storm.acked.length;
      try {
        await waitFor(`failover ${n}: 50 acknowledged writes before the kill`, 30_000, async () => storm.acked.length >= before + 50);
      } catch (err) {
        // A store recovery (writes refused until an operator decides) ends the failovers: what was acknowledged is read back below.
        recovery = await recoveryState(client);
        if (recovery) {
          console.log(`  failover ${n} not started: the controller is in store recovery (${recovery}); refusals: ${refusalText(storm)}`);
          break;
        }
        throw new Error(`${(err as Error).message}; refusals: ${refusalText(storm)}`);
      }
      const victim = await dep.currentMaster();
      if (!victim) {
        throw new Error(`failover ${n}: no sentinel names a master`);
      }
      const recoveryBefore = storm.refused.get(`503 ${RECOVERY_CODE}`) ?? 0;
      const killedAt = performance.now();
      await victim.kill();
      let firstAck: number | undefined;
      try {
        await waitFor(`failover ${n}: a write sent after the kill acknowledged`, FAILOVER_DEADLINE_MS, async () => {
          firstAck = storm.acked.slice(before).find((a) => a.sentAt >= killedAt)?.answeredAt;
          return firstAck !== undefined;
        });
      } catch (err) {
        throw new Error(`${(err as Error).message}; refusals: ${refusalText(storm)}; store recovery: ${(await recoveryState(client)) ?? 'none'}; sentinels' events:\n${dep.events().join('\n')}`);
      }
      const gapMs = firstAck! - killedAt;
      gapsMs.push(gapMs);
      const master = await dep.currentMaster();
      if (!master || master === victim) {
        throw new Error(`failover ${n}: the sentinels name ${master ? 'the killed node' : 'no master'} after a write was acknowledged`);
      }
      // Started again on its port and directory, and made a replica of the new master at once (as
      // an operator would; Sentinel would too, but only once it has noticed the node is back).
      const recoveryRefusals = (storm.refused.get(`503 ${RECOVERY_CODE}`) ?? 0) - recoveryBefore;
      const healStart = performance.now();
      await victim.start();
      await withClient(victim.port, (c) => c.call('REPLICAOF', '127.0.0.1', String(master.port)));
      let healed: PrivateRedis | undefined;
      try {
        // Asked afresh each time: on a loaded machine Sentinel may fail over once more meanwhile.
        await waitFor(`failover ${n}: node :${victim.port} a synced replica, all sentinels agreeing on the master`, HEAL_DEADLINE_MS, async () => (healed = await healedMaster(dep)) !== undefined);
      } catch (err) {
        throw new Error(`${(err as Error).message}; sentinels' events:\n${dep.events().join('\n')}`);
      }
      const healMs = performance.now() - healStart;
      const again = healed!.port !== master.port ? ` (then :${healed!.port}: Sentinel failed over once more)` : '';
      details.push({ killedPort: victim.port, newMasterPort: master.port, masterAfterHealPort: healed!.port, gapMs: Math.round(gapMs), recoveryRefusals, healMs: Math.round(healMs) });
      console.log(`  failover ${n}: master :${victim.port} killed -> :${master.port}${again}; no acknowledged write for ${int(gapMs)} ms${recoveryRefusals ? ` (${int(recoveryRefusals)} writes refused ${RECOVERY_CODE} meanwhile)` : ''}; killed node a synced replica ${dec(healMs / 1000)} s after its restart`);
    }
  } finally {
    await storm.stop();
  }
  if (gapsMs.length < FAILOVERS && !recovery) {
    throw new Error(`aborted after ${gapsMs.length} failovers`);
  }

  // Every write answered 2xx, read back (a 503 while the store settles is retried until the deadline).
  const acked = storm.acked;
  let lost = 0;
  let changed = 0;
  const unread: string[] = [];
  const check = await runPool({
    count: acked.length,
    concurrency: 32,
    maxMs: 60_000,
    maxErrors: 1,
    task: async (i) => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const res = await client.request('GET', `/v1/ports/${acked[i].id}`, undefined, { keepBody: true });
        if (res.status === 200) {
          if ((JSON.parse(res.text) as { mac: string }).mac !== acked[i].mac) {
            changed++;
          }
          return 1;
        }
        if (res.status === 404) {
          lost++;
          return 1;
        }
        if (Date.now() > deadline) {
          unread.push(`${acked[i].id}: ${res.status}`);
          return 0;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  });
  if (check.errors || check.stoppedBy || unread.length) {
    throw new Error(`reading back the acknowledged writes: ${check.calls}/${acked.length} read, ${check.errors} errors (${check.firstError ?? ''}), unread: ${unread.slice(0, 5).join(', ')}`);
  }
  const sorted = [...gapsMs].sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  console.log(`  time without acknowledged writes: ${gapsMs.map((g) => int(g)).join(' / ')} ms; p50 ${int(p50)} ms, p99 ${int(p99)} ms (p99 of ${gapsMs.length} = the longest)`);
  console.log(`  writes acknowledged: ${int(acked.length)}; refused meanwhile: ${refusalText(storm)}`);
  console.log(`  acknowledged writes lost: ${int(lost)}${changed ? `, ${int(changed)} read back different` : ''}   target 0  ${verdict(lost === 0 && changed === 0)}`);

  results.failover = {
    redis: 'master + 2 replicas, redis-server, appendonly yes, appendfsync always; 3 redis-sentinel, quorum 2',
    downAfterMs: DOWN_AFTER_MS,
    failoverTimeoutMs: FAILOVER_TIMEOUT_MS,
    stormConcurrency: STORM_CONCURRENCY,
    refusalPauseMs: REFUSAL_PAUSE_MS,
    failovers: details,
    gapMs: { p50: Math.round(p50), p99: Math.round(p99) },
    storeRecovery: recovery ?? null,
    acknowledged: acked.length,
    refused: Object.fromEntries(storm.refused),
    lost,
    readBackDifferent: changed,
    controllerEnv: redactedEnv(env),
  };
  results.targets.push({ name: `acknowledged writes lost in ${gapsMs.length} failovers`, value: lost + changed, target: '0', pass: lost === 0 && changed === 0 });
  // docs/operations.md: with MIN_REPLICAS > 0 a failover that loses no confirmed write is no store recovery.
  const recoveryRefusals = storm.refused.get(`503 ${RECOVERY_CODE}`) ?? 0;
  results.targets.push({ name: `writes refused 503 ${RECOVERY_CODE}`, value: recoveryRefusals, target: '0', pass: recoveryRefusals === 0 && !recovery });
}

// ---------------------------------------------------------------------------------------------

async function cleanup(): Promise<void> {
  for (const c of started.clients.splice(0)) {
    c.close();
  }
  await Promise.all(started.controllers.splice(0).map((c) => c.stop().catch(() => undefined)));
  await Promise.all(started.deployments.splice(0).map((d) => d.destroy().catch(() => undefined)));
  await Promise.all(started.redis.splice(0).map((r) => r.destroy().catch(() => undefined)));
}

async function main(): Promise<number> {
  const wallStart = performance.now();
  const results: Results = { meta: {}, writeRate: {}, failover: {}, targets: [], errors: [] };
  if (!hasCommand('redis-server')) {
    console.log('Redis HA benchmark skipped: redis-server is not installed (Debian: apt-get install redis-server)');
    return 0;
  }
  const sentinel = hasCommand('redis-sentinel');
  console.log(`Redis HA benchmark — commit ${gitDescribe()}, node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim()}`);
  results.meta = { commit: gitDescribe(), node: process.version, cpus: os.cpus().length, loadAverageAtStart: os.loadavg().map((l) => +l.toFixed(2)), startedAt: new Date().toISOString() };

  process.on('exit', () => started.controllers.forEach((c) => c.killNow()));
  const guard = guardPhase({ name: 'run', stop: () => (aborted = true), cleanup, hardMs: HARD_DEADLINE_MS, hardAction: 'stopping everything' });

  let failed = await guard.run(
    async () => {
      await writeRate(results);
      if (sentinel) {
        await failover(results);
      } else {
        console.log('\nFailover skipped: redis-sentinel is not installed (Debian: apt-get install redis-sentinel)');
      }
    },
    {
      errors: results.errors,
      onError: () => {
        for (const c of started.controllers) {
          console.error(`controller log (last lines):\n${c.logTail()}`);
        }
      },
    },
  );
  if (results.targets.length) {
    console.log('\nSummary');
    for (const t of results.targets) {
      console.log(`  ${pad(t.name, 44)} ${String(t.value).padStart(9)}   target ${pad(t.target, 9)} ${verdict(t.pass)}`);
    }
  }
  if (!writeResults(OUT_FILE, results, wallStart, performance.now())) {
    failed = true;
  }
  return failed ? 1 : 0;
}

exitWith(main());
