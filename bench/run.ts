import { systemActor } from '../src/controller/auth/principal';
import 'reflect-metadata';
import Redis from 'ioredis';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import { Authenticator } from '../src/controller/auth/authenticator';
import type { EventRepository } from '../src/controller/events/event.repository';
import type { StoredToken } from '../src/controller/model/token';
import { newId } from '../src/controller/model/value-parsers';
import type { TokenRepository } from '../src/controller/tokens/token.repository';
import { sha256 } from '../src/controller/tokens/token.service';
import { loadConfig, type ControllerConfig } from '../src/controller/config';
import { PortRepository } from '../src/controller/ports/port.repository';
import { SegmentRepository } from '../src/controller/segments/segment.repository';
import { RedisStore } from '../src/controller/store/redis-store';
import { benchToken, ControllerProcess, controllerEnv, freePort, redactedEnv, viewReached } from './controller-process';
import { JsonHttpClient } from './http-client';
import { PortFactory } from './port-factory';
import { runPool, type PoolResult } from './pool';
import { batchBodies, createBatches, createdPortIds, createSingles, portFixtures, PORT_WORKLOAD, singleBodies } from './port-workload';
import { dropPrefix, redisInfoField, redisSnapshot, runRedisBenchmark, type RedisBenchmarkRun } from './redis-tools';

/** The scripts the bench runs without HTTP are recorded in the trail under this actor. */
const BENCH_ACTOR = systemActor('bench');
import { dec, exitWith, gitDescribe, int, machineCpu, pad, ROOT, round2, verdict, writeResults } from './report';
import { guardPhase } from './phase-guard';
import { benchControllerRuntime } from './runtime-settings';

/*
 * overlayd throughput benchmark: `npm run bench`.
 *
 * The controller runs as a child process (dist/src/controller/main.js) against the shared Redis
 * under a key prefix of its own; this process is the load generator (node:http, keep-alive,
 * bounded concurrency, every call with a bearer token this run makes and gives the controller as
 * its first admin token, OVERLAY_BOOTSTRAP_TOKEN). Figures are printed and written to .bench-out/controller.json. A missed
 * target is reported, never turned into a failing exit code; only a broken run exits non-zero.
 * Everything under the prefix is deleted at the end, also after an error or Ctrl-C.
 *
 * Environment: REDIS_URL (default redis://127.0.0.1:6379); BENCH_CONTROLLER_SCRIPT to measure
 * another build of the controller (A/B); the controller runs with the deployment's runtime
 * settings (deploy/overlayd-runtime.conf), BENCH_CONTROLLER_RUNTIME=none with node's defaults;
 * BENCH_CONTROLLER_NODE_ARGS adds to the controller's node flags,
 * e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to see where its time goes; BENCH_BASELINE_DIR, a
 * build of the code from before authentication (a directory holding dist/src/controller/main.js),
 * to compare single-port creates with it (see authVersusBaseline); BENCH_REST_ONLY=auth-compare runs
 * that comparison alone (with BENCH_CONTROLLER_NODE_ARGS given to both of its controllers);
 * BENCH_BASELINE_TOKEN=1 when the baseline is a build with authentication too (an A/B of two builds).
 */

const CONTROLLER_SCRIPT = path.join(ROOT, 'dist', 'src', 'controller', 'main.js');
const OUT_FILE = path.join(ROOT, '.bench-out', 'controller.json');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const VNI_CONCURRENCY = 64;
const SINGLE_CONCURRENCY = PORT_WORKLOAD.singleConcurrency;
const BATCH_SIZE = PORT_WORKLOAD.batchSize;
const BATCH_IN_FLIGHT = PORT_WORKLOAD.batchInFlight;
const SEGMENTS = PORT_WORKLOAD.segments;
const HOSTS = PORT_WORKLOAD.hosts;
const LOW_LEVEL = 10_000;
const HIGH_LEVEL = 100_000;
/** Rounds per port measurement (batch and one-per-call interleaved); the median round is reported. */
const PORT_ROUNDS = 3;
const VNI_ROUNDS = 3;
/**
 * Calls per batch round: 24,000 ports, about a second. A round must be long beside a major GC and
 * the view's work behind the answers: rounds of 6 calls (0.2 s) gave 21,749-51,443 ports/s within
 * one run, wider than any change they were meant to judge.
 */
const MEASURE_BATCH_CALLS = 24;
const MEASURE_SINGLE_MAX = PORT_WORKLOAD.singleRoundMax;
const MEASURE_SINGLE_MS = PORT_WORKLOAD.singleRoundMs;
/** After this long the run stops starting new work and cleans up; the hard limit kills it. */
const SOFT_DEADLINE_MS = 170_000;
const HARD_DEADLINE_MS = 200_000;

/** A build from before authentication, to compare with (authVersusBaseline); unset: not compared. */
const BASELINE_DIR = process.env.BENCH_BASELINE_DIR;
/**
 * BENCH_BASELINE_TOKEN=1: the baseline authenticates too (a build with authentication, given the
 * same token): the comparison is then an A/B of two such builds, alternated the same way, to
 * measure a change of a few µs per create that two runs against 8a92f6f cannot tell apart.
 */
const BASELINE_TOKEN = process.env.BENCH_BASELINE_TOKEN === '1';
/** `auth-compare`: only the comparison with BASELINE_DIR (no ceiling, VNI or port phases). */
const REST_ONLY = process.env.BENCH_REST_ONLY;
if (REST_ONLY !== undefined && REST_ONLY !== 'auth-compare') {
  throw new Error(`BENCH_REST_ONLY=${REST_ONLY}: the only value is auth-compare`);
}
/** Node flags for the controllers this run starts (e.g. --cpu-prof), after the runtime settings' own. */
const CONTROLLER_NODE_ARGS = (process.env.BENCH_CONTROLLER_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** The deployment's runtime settings (memory flags, jemalloc), as the sync and OVN phases run it; BENCH_CONTROLLER_RUNTIME=none: node's defaults. */
const RUNTIME = benchControllerRuntime(ROOT);

/** A controller's environment and node flags in this run: the runtime settings', then the bench's own. */
async function launchSettings(prefix: string, httpPort: number, token: string | undefined): Promise<{ env: Record<string, string>; nodeArgs: string[] }> {
  return { env: { ...RUNTIME.env, ...(await controllerEnv({ REDIS_URL }, prefix, httpPort, token)) }, nodeArgs: [...RUNTIME.nodeFlags, ...CONTROLLER_NODE_ARGS] };
}
/** Rounds per side of the comparison, alternating; each up to AUTH_ROUND_CALLS creates or AUTH_ROUND_MS. */
const AUTH_ROUNDS = 9;
const AUTH_ROUND_CALLS = 4_000;
const AUTH_ROUND_MS = 4_000;
/** What the comparison adds to the deadlines: two controllers started and set up, 2 x AUTH_ROUNDS rounds. */
const AUTH_COMPARISON_MS = 100_000;

const TARGETS = {
  vniPerSecond: 5_000,
  singlePortsPerSecond: 2_000,
  batchPortsPerSecond: 20_000,
  /**
   * Batch creates at 100k stored, in a run whose Redis does at least `batchAt100kMinSetPerSecond`
   * plain SETs/s (redis-benchmark): the batch script is Redis-bound, so on a slower machine the
   * figure is compared through its ratio to SET/s (the target's ratio: 25,000 / 80,000).
   */
  batchPortsPerSecondAt100k: 25_000,
  batchAt100kMinSetPerSecond: 80_000,
  maxSlowdownPct: 20,
  /** Single-port creates with authentication: at most this much slower than before it. */
  maxAuthSlowdownPct: 5,
};

let aborted = false;
const shouldStop = (): boolean => aborted;

// ---------------------------------------------------------------------------------------------
// Formatting

const lpad = (s: string, n: number): string => (s.length >= n ? s : ' '.repeat(n - s.length) + s);


// ---------------------------------------------------------------------------------------------
// Phases: a pool run plus the CPU each process used meanwhile and what Redis executed. A
// measurement is several rounds of one phase (interleaved with others); its figure is the median
// round, which keeps one noisy second (the machine may be shared) from deciding a verdict.

interface Usage {
  /** Busy time of the whole machine, in % of one core (200% = both cores of a 2-core machine busy). */
  machineCpuPct: number;
  controllerCpuPct: number;
  redisCpuPct: number;
  clientCpuPct: number;
  /** Commands Redis executed per second, those inside scripts included (compare with redis-benchmark). */
  redisCommandsPerSecond: number;
  redisScriptCalls: number;
  /** Script calls beyond ours: another client of the shared Redis was busy, Redis figures are approximate. */
  foreignScriptCalls: number;
  /** Wall time Redis spent in the mutation scripts, per created item (µs). */
  redisScriptUsecPerItem: number;
}

interface Phase extends PoolResult {
  label: string;
  usage: Usage;
  /** Ports stored before / after the phase (port phases only). */
  portsBefore?: number;
  portsAfter?: number;
}

interface Measurement {
  label: string;
  rounds: Phase[];
  /** The median round (by rate): the figure reported. */
  median: Phase;
  rate: number;
  portsBefore?: number;
  portsAfter?: number;
}

interface Ctx {
  redis: Redis;
  ctl: ControllerProcess;
  prefix: string;
}

/** Runs one phase; `scriptsPerCall` is how many script calls each of our calls makes (to spot foreign ones). */
async function measured(ctx: Ctx, label: string, run: () => Promise<PoolResult>, opts: { countPorts?: boolean; scriptsPerCall?: number } = {}): Promise<Phase> {
  const portsBefore = opts.countPorts ? await portCount(ctx) : undefined;
  const r0 = await redisSnapshot(ctx.redis);
  const m0 = machineCpu();
  const c0 = ctx.ctl.cpuSeconds();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await run();
  const wallS = (performance.now() - t0) / 1000;
  const u1 = process.cpuUsage(u0);
  const c1 = ctx.ctl.cpuSeconds();
  const m1 = machineCpu();
  const r1 = await redisSnapshot(ctx.redis);
  const scriptCalls = r1.scriptCalls - r0.scriptCalls;
  return {
    label,
    ...result,
    portsBefore,
    portsAfter: opts.countPorts ? await portCount(ctx) : undefined,
    usage: {
      machineCpuPct: m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 * os.cpus().length : NaN,
      controllerCpuPct: ((c1 - c0) / wallS) * 100,
      redisCpuPct: ((r1.cpuSeconds - r0.cpuSeconds) / wallS) * 100,
      clientCpuPct: ((u1.user + u1.system) / 1e6 / wallS) * 100,
      // Minus the INFO calls of the snapshot itself.
      redisCommandsPerSecond: (r1.commandCalls - r0.commandCalls - 2) / wallS,
      redisScriptCalls: scriptCalls,
      foreignScriptCalls: Math.max(0, scriptCalls - result.calls * (opts.scriptsPerCall ?? 1)),
      redisScriptUsecPerItem: result.items ? (r1.scriptUsec - r0.scriptUsec) / result.items : NaN,
    },
  };
}

function summarize(label: string, rounds: Phase[]): Measurement {
  const sorted = [...rounds].sort((a, b) => a.rate - b.rate);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  return { label, rounds, median, rate: median.rate, portsBefore: rounds[0].portsBefore, portsAfter: rounds[rounds.length - 1].portsAfter };
}

async function measureRounds(label: string, rounds: number, run: (round: number) => Promise<Phase>): Promise<Measurement> {
  const phases: Phase[] = [];
  for (let r = 0; r < rounds && !aborted; r++) {
    phases.push(await run(r));
  }
  if (!phases.length) {
    throw new Error(`${label}: aborted before the first round`);
  }
  return summarize(label, phases);
}

function printMeasurement(m: Measurement, unit: string, target?: { min: number; text: string }): void {
  const p = m.median;
  const targetText = target ? `   target ${target.text}  ${verdict(m.rate >= target.min)}` : '';
  console.log(`  ${pad(m.label, 44)} ${lpad(int(m.rate), 9)} ${unit}${targetText}`);
  const levels = m.portsBefore === undefined ? '' : `; ports stored ${int(m.portsBefore)} -> ${int(m.portsAfter ?? NaN)}`;
  const rounds = m.rounds.length > 1 ? `rounds ${m.rounds.map((r) => int(r.rate)).join(' / ')} (median shown)${levels}` : `${levels.slice(2)}`;
  if (rounds) {
    console.log(`      ${rounds}`);
  }
  console.log(`      ${m.rounds.length > 1 ? 'median round: ' : ''}${int(p.calls)} calls, ${int(p.items)} created in ${dec(p.elapsedMs / 1000, 2)} s; latency p50 ${dec(p.latencyMs.p50)} ms, p99 ${dec(p.latencyMs.p99)} ms`);
  const u = p.usage;
  const others = u.machineCpuPct - u.controllerCpuPct - u.redisCpuPct - u.clientCpuPct;
  console.log(
    `      CPU (100% = one core): controller ${int(u.controllerCpuPct)}%, redis ${int(u.redisCpuPct)}%, load generator ${int(u.clientCpuPct)}%; machine ${int(u.machineCpuPct)}% of ${os.cpus().length * 100}% (other processes ~${int(Math.max(0, others))}%)`,
  );
  console.log(`      Redis: ${int(u.redisCommandsPerSecond)} commands/s (inside scripts included), script wall time ${dec(u.redisScriptUsecPerItem)} µs per item`);
  for (const r of m.rounds) {
    if (r.errors || r.stoppedBy === 'errors' || r.stoppedBy === 'abort') {
      console.log(`      !! ${r.errors} failed call(s)${r.stoppedBy ? `, stopped early (${r.stoppedBy})` : ''}${r.firstError ? `; first: ${r.firstError}` : ''}`);
    }
    if (r.usage.foreignScriptCalls > Math.max(10, r.calls * 0.01)) {
      console.log(`      note: Redis ran ${int(r.usage.foreignScriptCalls)} script calls of other clients meanwhile; Redis CPU and script figures include them`);
    }
  }
}

function single(p: Phase): Measurement {
  return summarize(p.label, [p]);
}

// ---------------------------------------------------------------------------------------------

interface Results {
  meta: Record<string, unknown>;
  redisCeiling: { command: string; rps: number | null; p50Ms: number | null; error?: string }[];
  vni: Record<string, unknown>;
  ports: Record<string, unknown>;
  controller: Record<string, unknown>;
  redisMemory: Record<string, unknown>;
  checks: Record<string, unknown>;
  auth: Record<string, unknown>;
  /** `note`: what a reader must know to judge the verdict (a condition of the target not met on this run). */
  targets: { name: string; value: number; target: string; pass: boolean; note?: string }[];
  errors: string[];
}


function phaseJson(p: Phase): Record<string, unknown> {
  return {
    rate: Math.round(p.rate),
    calls: p.calls,
    items: p.items,
    errors: p.errors,
    firstError: p.firstError ?? null,
    stoppedBy: p.stoppedBy ?? null,
    elapsedMs: Math.round(p.elapsedMs),
    latencyMs: { p50: round2(p.latencyMs.p50), p99: round2(p.latencyMs.p99), max: round2(p.latencyMs.max) },
    portsBefore: p.portsBefore ?? null,
    portsAfter: p.portsAfter ?? null,
    cpuPct: { machine: Math.round(p.usage.machineCpuPct), controller: Math.round(p.usage.controllerCpuPct), redis: Math.round(p.usage.redisCpuPct), loadGenerator: Math.round(p.usage.clientCpuPct) },
    redisCommandsPerSecond: Math.round(p.usage.redisCommandsPerSecond),
    redisScriptUsecPerItem: round2(p.usage.redisScriptUsecPerItem),
    foreignScriptCalls: p.usage.foreignScriptCalls,
  };
}

function measurementJson(m: Measurement, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...extra, rate: Math.round(m.rate), roundRates: m.rounds.map((r) => Math.round(r.rate)), portsBefore: m.portsBefore ?? null, portsAfter: m.portsAfter ?? null, medianRound: phaseJson(m.median) };
}

async function redisCeiling(prefix: string, results: Results): Promise<void> {
  const url = new URL(REDIS_URL);
  const host = url.hostname || '127.0.0.1';
  const port = url.port || '6379';
  console.log('\nRedis ceiling (redis-benchmark -q -n 200000, 50 clients; SET/INCR as -t set,incr but on keys under our prefix)');
  // `-t set,incr` would write key:__rand_int__ and counter:__rand_int__ outside our prefix into a
  // shared Redis (keys we may not delete); the same commands on keys of our own measure the same.
  const runs: { label: string; args: string[] }[] = [];
  for (const pipeline of [1, 16]) {
    const p = pipeline > 1 ? ['-P', String(pipeline)] : [];
    runs.push({ label: `SET${pipeline > 1 ? ` -P ${pipeline}` : ''}`, args: ['-h', host, '-p', port, '-q', '-n', '200000', ...p, 'SET', `{${prefix}}:redis-benchmark:key`, 'xxx'] });
    runs.push({ label: `INCR${pipeline > 1 ? ` -P ${pipeline}` : ''}`, args: ['-h', host, '-p', port, '-q', '-n', '200000', ...p, 'INCR', `{${prefix}}:redis-benchmark:counter`] });
  }
  for (const run of runs) {
    if (aborted) {
      return;
    }
    const out: RedisBenchmarkRun = await runRedisBenchmark(run.args, 30_000);
    const line = out.lines[out.lines.length - 1];
    results.redisCeiling.push({ command: `redis-benchmark ${out.args.join(' ')}`, rps: line?.rps ?? null, p50Ms: line?.p50Ms ?? null, error: out.error });
    if (line) {
      console.log(`  ${pad(run.label, 44)} ${lpad(int(line.rps), 9)} requests/s   p50 ${line.p50Ms ?? 'n/a'} ms`);
    } else {
      console.log(`  ${pad(run.label, 44)} unavailable: ${out.error}`);
    }
  }
}

async function portCount(ctx: { redis: Redis; prefix: string }): Promise<number> {
  return ctx.redis.hlen(`{${ctx.prefix}}:ports`);
}

/** Creates ports through POST /v1/ports/batch until `target` are stored (an unmeasured fill; its rate is printed for information). */
async function fillTo(ctx: Ctx, client: JsonHttpClient, factory: PortFactory, target: number, maxMs: number): Promise<Phase> {
  const missing = Math.max(0, target - (await portCount(ctx)));
  const calls = Math.ceil(missing / BATCH_SIZE);
  const phase = await measured(
    ctx,
    `fill to ${int(target)} (batch ${BATCH_SIZE}, ${BATCH_IN_FLIGHT} in flight)`,
    () =>
      runPool({
        count: calls,
        concurrency: BATCH_IN_FLIGHT,
        maxMs,
        shouldStop,
        maxErrors: 5,
        task: async (i) => {
          const n = i === calls - 1 ? missing - BATCH_SIZE * (calls - 1) : BATCH_SIZE;
          await client.send('POST', '/v1/ports/batch', { ports: factory.take(n) });
          return n;
        },
      }),
    { countPorts: true },
  );
  if (phase.errors || phase.stoppedBy) {
    throw new Error(`filling to ${target} ports failed (${phase.errors} errors, stopped by ${phase.stoppedBy ?? '-'}): ${phase.firstError ?? ''}`);
  }
  return phase;
}

/** What a port round needs to put the store back as it found it. */
interface Reset {
  repo: PortRepository;
  store: RedisStore;
  /** Ports deleted so far (the consistency check subtracts them). */
  deleted: number;
}

/**
 * Deletes the ports a round created (their ids from its answers), through the controller's own
 * delete script from this process, untimed; then waits until the controller's view has applied
 * everything. The next round starts at the same level, with none of this round's work queued.
 */
async function resetAfterRound(client: JsonHttpClient, reset: Reset, answers: string[]): Promise<void> {
  const ids = createdPortIds(answers);
  const del = await runPool({ count: ids.length, concurrency: SINGLE_CONCURRENCY, maxMs: 60_000, shouldStop, maxErrors: 3, task: async (i) => (await reset.repo.delete(ids[i], BENCH_ACTOR), 1) });
  reset.deleted += del.items;
  if (del.errors || del.items !== ids.length) {
    throw new Error(`deleting a round's ${ids.length} ports: ${del.items} deleted, ${del.errors} errors: ${del.firstError ?? del.stoppedBy ?? ''}`);
  }
  await viewReached(client, await reset.store.revision(), 30_000, shouldStop);
}

/**
 * Batch and one-per-call rounds, interleaved, at the current fill level; each round's ports are
 * deleted after it (resetAfterRound), so every round runs at the level.
 */
async function measurePorts(ctx: Ctx, client: JsonHttpClient, factory: PortFactory, level: string, reset: Reset): Promise<{ batch: Measurement; single: Measurement }> {
  const batchRounds: Phase[] = [];
  const singleRounds: Phase[] = [];
  for (let r = 0; r < PORT_ROUNDS && !aborted; r++) {
    const batches = batchBodies(factory, MEASURE_BATCH_CALLS);
    const batchAnswers: string[] = [];
    batchRounds.push(await measured(ctx, `batch @${level}: ${BATCH_SIZE}/call, ${BATCH_IN_FLIGHT} in flight`, () => createBatches(client, batches, { maxMs: 20_000, shouldStop, answers: batchAnswers }), { countPorts: true }));
    await resetAfterRound(client, reset, batchAnswers);
    const singles = singleBodies(factory, MEASURE_SINGLE_MAX);
    const singleAnswers: string[] = [];
    singleRounds.push(await measured(ctx, `one per call @${level}: ${SINGLE_CONCURRENCY} in flight`, () => createSingles(client, singles, { maxMs: MEASURE_SINGLE_MS, shouldStop, answers: singleAnswers }), { countPorts: true }));
    await resetAfterRound(client, reset, singleAnswers);
  }
  if (!batchRounds.length) {
    throw new Error(`port measurement @${level}: aborted`);
  }
  return { batch: summarize(batchRounds[0].label, batchRounds), single: summarize(singleRounds[0].label, singleRounds) };
}

/** What the run started besides its main controller (the comparison's), for the cleanup. */
interface Refs {
  ctl?: ControllerProcess;
  store?: RedisStore;
  client?: JsonHttpClient;
  others: { ctl: ControllerProcess; client: JsonHttpClient; prefix: string }[];
}

async function bench(prefix: string, ctxRef: Refs, redis: Redis, results: Results): Promise<void> {
  const redisVersion = await redisInfoField(redis, 'server', 'redis_version');
  results.meta = {
    startedAt: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    redisVersion,
    keyPrefix: prefix,
    commit: gitDescribe(),
  };
  console.log(`overlayd benchmark — commit ${gitDescribe()}, node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Redis ${redisVersion}, key prefix {${prefix}}`);
  console.log('Controller (child process), Redis and this load generator share the machine: every figure is end to end on it.');
  if (REST_ONLY === 'auth-compare') {
    await authVersusBaseline(prefix, process.env.BENCH_CONTROLLER_SCRIPT ?? CONTROLLER_SCRIPT, ctxRef, redis, results);
    return;
  }

  await redisCeiling(prefix, results);

  // --- the controller ------------------------------------------------------------------------
  const httpPort = await freePort();
  const { env, nodeArgs } = await launchSettings(prefix, httpPort, benchToken());
  const script = process.env.BENCH_CONTROLLER_SCRIPT ?? CONTROLLER_SCRIPT;
  const ctl = await ControllerProcess.start({ script, env, port: httpPort, readyTimeoutMs: 20_000, nodeArgs });
  ctxRef.ctl = ctl;
  const ctx: Ctx = { redis, ctl, prefix };
  const client = new JsonHttpClient('127.0.0.1', httpPort, Math.max(VNI_CONCURRENCY, SINGLE_CONCURRENCY), { token: env.OVERLAY_BOOTSTRAP_TOKEN });
  ctxRef.client = client;
  const rssStart = ctl.memory()?.rssKb ?? NaN;
  results.controller = { pid: ctl.pid, script: path.relative(ROOT, script), nodeArgs, httpPort, env: redactedEnv(env), rssAtStartKb: rssStart };
  console.log(`\nController: ${path.relative(ROOT, script)} pid ${ctl.pid} on http://127.0.0.1:${httpPort}, RSS at start ${dec(rssStart / 1024)} MiB`);
  console.log(`  node ${nodeArgs.join(' ') || '(no flags)'}${Object.keys(RUNTIME.env).length ? `; ${Object.entries(RUNTIME.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''} (${process.env.BENCH_CONTROLLER_RUNTIME === 'none' ? "node's defaults: BENCH_CONTROLLER_RUNTIME=none" : 'the deployment\'s, deploy/overlayd-runtime.conf'})`);

  // --- 1. VNI allocation ----------------------------------------------------------------------
  console.log('\nVNI allocation (POST /v1/segments, tenant without quota, OVERLAY_VNI_RANGES=1-16777215)');
  const vniTenant = await client.json<{ id: string }>('POST', '/v1/tenants', { name: 'bench-vni' });
  let segmentSeq = 0;
  const createSegment = async (): Promise<number> => (await client.send('POST', '/v1/segments', JSON.stringify({ tenantId: vniTenant.id, name: `vni-${segmentSeq++}` })), 1);
  const warm = await runPool({ count: 1_000, concurrency: 16, maxMs: 5_000, shouldStop, task: createSegment });
  if (warm.errors) {
    throw new Error(`segment warm-up failed: ${warm.firstError}`);
  }
  const vniSeq = await measureRounds('sequential: 1 in flight', VNI_ROUNDS, () =>
    measured(ctx, 'sequential: 1 in flight', () => runPool({ count: 10_000, concurrency: 1, maxMs: 1_000, shouldStop, task: createSegment })),
  );
  printMeasurement(vniSeq, 'VNIs/s    (info: one round trip at a time; the target applies to concurrent)');
  const vniConc = await measureRounds(`concurrent: ${VNI_CONCURRENCY} in flight`, VNI_ROUNDS, () =>
    measured(ctx, `concurrent: ${VNI_CONCURRENCY} in flight`, () => runPool({ count: 20_000, concurrency: VNI_CONCURRENCY, maxMs: 1_500, shouldStop, task: createSegment })),
  );
  printMeasurement(vniConc, 'VNIs/s   ', { min: TARGETS.vniPerSecond, text: `>= ${int(TARGETS.vniPerSecond)}/s` });

  // The allocation script alone, called from this process through the repository (no HTTP, no validation).
  const config: ControllerConfig = loadConfig({ ...env, OVERLAY_HTTP_PORT: '0' });
  const store = new RedisStore(config);
  ctxRef.store = store;
  const segmentRepo = new SegmentRepository(store, config);
  const portRepo = new PortRepository(store);
  const now = new Date().toISOString();
  const vniLua = single(
    await measured(ctx, `Lua script only: ${VNI_CONCURRENCY} in flight (no HTTP)`, () =>
      runPool({
        count: 30_000,
        concurrency: VNI_CONCURRENCY,
        maxMs: 2_000,
        shouldStop,
        task: async (i) => {
          await segmentRepo.create({ id: newId(), tenantId: vniTenant.id, name: `lua-${i}`, vlanId: null, cidr: null, createdAt: now }, undefined, BENCH_ACTOR);
          return 1;
        },
      }),
    ),
  );
  printMeasurement(vniLua, 'VNIs/s    (info)');

  const k = store.keys;
  const [segmentsStored, vniOwners, vniBits] = await Promise.all([redis.hlen(k.segments()), redis.hlen(k.vniOwners()), redis.bitcount(k.vniBits())]);
  const expectedSegments = warm.items + [...vniSeq.rounds, ...vniConc.rounds, ...vniLua.rounds].reduce((n, p) => n + p.items, 0);
  const vniCheck = segmentsStored === expectedSegments && vniOwners === expectedSegments && vniBits === expectedSegments;
  console.log(`  check: ${int(segmentsStored)} segments stored (${int(expectedSegments)} acknowledged), ${int(vniOwners)} VNI owners, ${int(vniBits)} VNI bits set: ${vniCheck ? 'consistent' : 'INCONSISTENT'}`);
  results.vni = {
    sequential: measurementJson(vniSeq, { concurrency: 1 }),
    concurrent: measurementJson(vniConc, { concurrency: VNI_CONCURRENCY }),
    luaOnly: measurementJson(vniLua, { concurrency: VNI_CONCURRENCY }),
  };
  results.checks.vni = { segmentsStored, expectedSegments, vniOwners, vniBits, consistent: vniCheck };

  // --- 2 and 3. Ports -------------------------------------------------------------------------
  console.log(`\nPorts (${SEGMENTS} segments with /16 CIDRs, ${HOSTS} hosts; each port: explicit MAC, one IPv4, bound to a host)`);
  const factory = await portFixtures(client, { name: 'ports', segments: SEGMENTS, hosts: HOSTS });

  // Warm-up of the one-per-call path (part of the first 10,000), then fill to 10,000 with batches.
  const warmSingles = await createSingles(client, singleBodies(factory, 1_000), { maxMs: 10_000, shouldStop });
  if (warmSingles.errors) {
    throw new Error(`port warm-up failed: ${warmSingles.firstError}`);
  }
  const fillLow = single(await fillTo(ctx, client, factory, LOW_LEVEL, 30_000));
  printMeasurement(fillLow, 'ports/s   (info)');
  const reset: Reset = { repo: portRepo, store, deleted: 0 };
  const low = await measurePorts(ctx, client, factory, '10k', reset);
  printMeasurement(low.batch, 'ports/s  ', { min: TARGETS.batchPortsPerSecond, text: `>= ${int(TARGETS.batchPortsPerSecond)}/s` });
  printMeasurement(low.single, 'ports/s  ', { min: TARGETS.singlePortsPerSecond, text: `>= ${int(TARGETS.singlePortsPerSecond)}/s` });

  const fillHigh = single(await fillTo(ctx, client, factory, HIGH_LEVEL, 90_000));
  printMeasurement(fillHigh, 'ports/s   (info)');
  const memAfterFill = ctl.memory();
  console.log(`  controller RSS after the fill to ${int(fillHigh.portsAfter ?? NaN)} ports: ${dec((memAfterFill?.rssKb ?? NaN) / 1024)} MiB (peak ${dec((memAfterFill?.hwmKb ?? NaN) / 1024)} MiB)`);
  const high = await measurePorts(ctx, client, factory, '100k', reset);
  printMeasurement(high.batch, 'ports/s  ', { min: TARGETS.batchPortsPerSecondAt100k, text: `>= ${int(TARGETS.batchPortsPerSecondAt100k)}/s` });
  printMeasurement(high.single, 'ports/s  ', { min: TARGETS.singlePortsPerSecond, text: `>= ${int(TARGETS.singlePortsPerSecond)}/s` });

  // Diagnostic: the batch script alone (PortRepository.createMany from this process, no HTTP).
  const luaBatches = Array.from({ length: MEASURE_BATCH_CALLS }, () => {
    const at = new Date().toISOString();
    return Array.from({ length: BATCH_SIZE }, () => factory.record(at));
  });
  const portsLua = single(
    await measured(
      ctx,
      `Lua script only @100k: ${BATCH_SIZE}/call, ${BATCH_IN_FLIGHT} in flight`,
      () => runPool({ count: luaBatches.length, concurrency: BATCH_IN_FLIGHT, maxMs: 20_000, shouldStop, maxErrors: 3, task: async (i) => (await portRepo.createMany(luaBatches[i], BENCH_ACTOR), BATCH_SIZE) }),
      { countPorts: true },
    ),
  );
  printMeasurement(portsLua, 'ports/s   (info)');
  const batchAt100k = batchVerdict(results, low.batch, high.batch, portsLua);

  const slowdown = (a: Measurement, b: Measurement): number => (1 - b.rate / a.rate) * 100;
  const batchSlowdown = slowdown(low.batch, high.batch);
  const singleSlowdown = slowdown(low.single, high.single);
  const span = (m: { batch: Measurement; single: Measurement }): string =>
    `${int(Math.min(...[m.batch, m.single].flatMap((x) => x.rounds.map((r) => r.portsBefore ?? NaN))))}-${int(Math.max(...[m.batch, m.single].flatMap((x) => x.rounds.map((r) => r.portsAfter ?? NaN))))}`;
  console.log(`\nScaling from 10,000 to 100,000 stored ports (median rounds; each round ran from its level and its ports were deleted after it: ${span(low)} and ${span(high)} ports stored)`);
  for (const [name, a, b, s] of [
    ['batch', low.batch, high.batch, batchSlowdown],
    ['one per call', low.single, high.single, singleSlowdown],
  ] as const) {
    console.log(
      `  ${pad(name, 44)} ${lpad(int(a.rate), 9)} -> ${int(b.rate)} ports/s, ratio ${dec(b.rate / a.rate, 2)}, ${s >= 0 ? `${dec(s)}% slower` : `${dec(-s)}% faster`}   target < ${TARGETS.maxSlowdownPct}% slower  ${verdict(s < TARGETS.maxSlowdownPct)}`,
    );
  }

  // --- memory and consistency -------------------------------------------------------------------
  const memEnd = ctl.memory();
  const [portsStored, portIndex, logLength, portsHashBytes, logBytes, usedMemory] = await Promise.all([
    redis.hlen(k.ports()),
    redis.zcard(k.portIndex()),
    redis.xlen(k.changeLog()),
    redis.memory('USAGE', k.ports()),
    redis.memory('USAGE', k.changeLog()),
    redisInfoField(redis, 'memory', 'used_memory'),
  ]);
  const portPhases = [fillLow, low.batch, low.single, fillHigh, high.batch, high.single, portsLua].flatMap((m) => m.rounds);
  /** Acknowledged creates less the rounds' deletions: what the store must hold. */
  const portsExpected = warmSingles.items + portPhases.reduce((n, p) => n + p.items, 0) - reset.deleted;
  const portCheck = portsStored === portsExpected && portIndex === portsExpected;
  console.log(`\nMemory and consistency`);
  console.log(`  controller RSS now ${dec((memEnd?.rssKb ?? NaN) / 1024)} MiB (peak ${dec((memEnd?.hwmKb ?? NaN) / 1024)} MiB); its materialized view holds ${int(portsStored)} ports and ${int(segmentsStored + SEGMENTS)} segments`);
  console.log(
    `  Redis: ports hash ~${dec((portsHashBytes ?? NaN) / 1048576)} MiB, change log ~${dec((logBytes ?? NaN) / 1048576)} MiB (${int(logLength)} entries; MEMORY USAGE samples), used_memory ${dec(Number(usedMemory) / 1048576)} MiB (whole shared instance)`,
  );
  console.log(`  check: ${int(portsStored)} ports stored, ${int(portIndex)} indexed, ${int(portsExpected)} expected (acknowledged creates less ${int(reset.deleted)} deleted between rounds): ${portCheck ? 'consistent' : 'INCONSISTENT'}`);

  results.ports = {
    segments: SEGMENTS,
    hosts: HOSTS,
    batchSize: BATCH_SIZE,
    batchInFlight: BATCH_IN_FLIGHT,
    singleConcurrency: SINGLE_CONCURRENCY,
    fillTo10k: measurementJson(fillLow),
    at10k: { batch: measurementJson(low.batch), single: measurementJson(low.single) },
    fillTo100k: measurementJson(fillHigh),
    at100k: { batch: measurementJson(high.batch), single: measurementJson(high.single) },
    luaOnlyBatchAt100k: measurementJson(portsLua),
    batchAt100k: batchAt100k.json,
    scaling: {
      batchRatio: round2(high.batch.rate / low.batch.rate),
      batchSlowdownPct: +batchSlowdown.toFixed(1),
      singleRatio: round2(high.single.rate / low.single.rate),
      singleSlowdownPct: +singleSlowdown.toFixed(1),
    },
  };
  results.controller = {
    ...results.controller,
    rssAfter100kFillKb: memAfterFill?.rssKb ?? null,
    peakRssAfter100kFillKb: memAfterFill?.hwmKb ?? null,
    rssAtEndKb: memEnd?.rssKb ?? null,
    peakRssAtEndKb: memEnd?.hwmKb ?? null,
  };
  results.redisMemory = { portsHashBytes, changeLogBytes: logBytes, changeLogEntries: logLength, usedMemoryBytes: Number(usedMemory) };
  results.checks.ports = { portsStored, portIndex, portsExpected, portsDeletedBetweenRounds: reset.deleted, consistent: portCheck };

  results.targets = [
    { name: 'VNI allocations/s (64 in flight)', value: Math.round(vniConc.rate), target: `>= ${TARGETS.vniPerSecond}`, pass: vniConc.rate >= TARGETS.vniPerSecond },
    { name: 'ports/s batch @10k', value: Math.round(low.batch.rate), target: `>= ${TARGETS.batchPortsPerSecond}`, pass: low.batch.rate >= TARGETS.batchPortsPerSecond },
    ...batchAt100k.rows,
    { name: 'ports/s one per call @10k', value: Math.round(low.single.rate), target: `>= ${TARGETS.singlePortsPerSecond}`, pass: low.single.rate >= TARGETS.singlePortsPerSecond },
    { name: 'ports/s one per call @100k', value: Math.round(high.single.rate), target: `>= ${TARGETS.singlePortsPerSecond}`, pass: high.single.rate >= TARGETS.singlePortsPerSecond },
    { name: 'batch slowdown 10k -> 100k (%)', value: +batchSlowdown.toFixed(1), target: `< ${TARGETS.maxSlowdownPct}`, pass: batchSlowdown < TARGETS.maxSlowdownPct },
    { name: 'one-per-call slowdown 10k -> 100k (%)', value: +singleSlowdown.toFixed(1), target: `< ${TARGETS.maxSlowdownPct}`, pass: singleSlowdown < TARGETS.maxSlowdownPct },
  ];

  // The main controller (and its 100k ports) is done with: the comparison runs without it.
  await ctl.stop();
  await authVersusBaseline(prefix, script, ctxRef, redis, results, low.single);
}

// ---------------------------------------------------------------------------------------------
// What authentication costs. Every call of this run carries a bearer token; to compare with the
// code from before authentication (BENCH_BASELINE_DIR), single-port creates run on two fresh
// controllers, this build (with its token) and that one (none), each under a key prefix of its
// own on the same Redis, set up alike (a tenant, SEGMENTS segments, HOSTS hosts, 1,000 ports).
// The same workload then runs on each in turn, A B, B A, A B...: drift and the load of other
// processes fall on both alike; each side's figure is its median round. The difference of CPU
// per create (controller, Redis scripts) says where the cost is.

/** The CPU one call of Authenticator.authenticate takes with the token in its cache (every request but one per 500 ms and token), in this process. */
async function authenticateCost(calls: number): Promise<number> {
  const secret = benchToken();
  const now = Date.now();
  const token: StoredToken = {
    id: newId(),
    name: 'bench',
    role: 'operator',
    tenantId: null,
    hostIds: null,
    allowVniPinning: false,
    createdAt: new Date(now).toISOString(),
    expiresAt: null,
    createdBy: { tokenId: null, name: 'bench' },
    sha256: sha256(secret),
  };
  // Only what authenticate() uses of the repository: the lookup (once), the use record, the revocation listener.
  const tokens = { byHash: async () => token, touch: async () => undefined, onRevoked: () => undefined } as unknown as TokenRepository;
  const authenticator = new Authenticator(tokens, {} as EventRepository);
  const header = `Bearer ${secret}`;
  // `now` fixed: the cache entry stays fresh, as it is for all but one request per 500 ms.
  for (let i = 0; i < 20_000; i++) {
    await authenticator.authenticate(header, now);
  }
  const u0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) {
    await authenticator.authenticate(header, now);
  }
  const u = process.cpuUsage(u0);
  return (u.user + u.system) / calls;
}

interface Side {
  label: string;
  ctx: Ctx;
  client: JsonHttpClient;
  factory: PortFactory;
}

/** A fresh controller of `script` set up for single-port creates; with `token` it is that build's admin token. */
async function startSide(label: string, script: string, prefix: string, token: string | undefined, redis: Redis, refs: Refs): Promise<Side> {
  const httpPort = await freePort();
  const ctl = await ControllerProcess.start({ script, ...(await launchSettings(prefix, httpPort, token)), port: httpPort, readyTimeoutMs: 20_000 });
  const client = new JsonHttpClient('127.0.0.1', httpPort, SINGLE_CONCURRENCY, { token });
  refs.others.push({ ctl, client, prefix });
  console.log(`  ${label}: pid ${ctl.pid}`);
  // Which side is which is checked, not assumed: only the build with authentication refuses a call without a token.
  const anonymous = new JsonHttpClient('127.0.0.1', httpPort, 1);
  const status = (await anonymous.request('GET', '/v1/tenants')).status;
  anonymous.close();
  if ((status === 401) !== (token !== undefined)) {
    throw new Error(`${label} (${path.relative(ROOT, script)}) answers GET /v1/tenants without a token with ${status}: ${token ? 'it does not authenticate' : 'it is not a build from before authentication'}`);
  }
  const factory = await portFixtures(client, { name: 'auth', segments: SEGMENTS, hosts: HOSTS });
  const warm = await createSingles(client, singleBodies(factory, 1_000), { maxMs: 10_000, shouldStop });
  if (warm.errors) {
    throw new Error(`${label}: warm-up failed: ${warm.firstError}`);
  }
  return { label, ctx: { redis, ctl, prefix }, client, factory };
}

/** Controller CPU and Redis script time per created port over all rounds (µs). */
function costPerCreate(rounds: Phase[]): { controllerUs: number; scriptUs: number } {
  const items = rounds.reduce((n, r) => n + r.items, 0);
  const controllerUs = rounds.reduce((t, r) => t + (r.usage.controllerCpuPct / 100) * r.elapsedMs * 1000, 0) / items;
  const scriptUs = rounds.reduce((t, r) => t + r.usage.redisScriptUsecPerItem * r.items, 0) / items;
  return { controllerUs, scriptUs };
}

/** `withAuthAbove`: the one-per-call figure of the main run, printed when there is no baseline to compare with. */
async function authVersusBaseline(prefix: string, script: string, refs: Refs, redis: Redis, results: Results, withAuthAbove?: Measurement): Promise<void> {
  console.log('\nAuthentication (every call above carried a bearer token)');
  const authUs = await authenticateCost(200_000);
  console.log(`  ${pad('Authenticator.authenticate, token cached', 44)} ${lpad(dec(authUs, 2), 9)} µs CPU per request (this process, 200,000 calls; a miss, once per 500 ms and token, adds a Redis read)`);
  results.auth = { authenticateCachedUs: round2(authUs) };
  const baselineScript = BASELINE_DIR === undefined ? undefined : path.resolve(BASELINE_DIR, 'dist', 'src', 'controller', 'main.js');
  if (baselineScript === undefined) {
    if (withAuthAbove !== undefined) {
      console.log(`  ${pad('single-port creates, with authentication', 44)} ${lpad(int(withAuthAbove.rate), 9)} ports/s (one per call @10k, above)`);
    }
    console.log('  before authentication: not measured; set BENCH_BASELINE_DIR to a build of the code before it (a directory holding dist/src/controller/main.js)');
    return;
  }
  if (!existsSync(baselineScript)) {
    throw new Error(`BENCH_BASELINE_DIR: no ${baselineScript}; build it there first (npx tsc -p tsconfig.build.json)`);
  }
  const baselineCommit = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: BASELINE_DIR, encoding: 'utf8', timeout: 5_000 }).trim();
    } catch {
      return 'unknown';
    }
  })();
  console.log(
    `  single-port creates (${SINGLE_CONCURRENCY} in flight), ${path.relative(ROOT, script)} (commit ${gitDescribe()}) with its token vs ${path.relative(ROOT, baselineScript) || baselineScript} (commit ${baselineCommit}, ${BASELINE_TOKEN ? 'with its token too: BENCH_BASELINE_TOKEN' : 'no token'}): fresh controllers, prefixes of their own, same Redis, ${AUTH_ROUNDS} alternating rounds of up to ${int(AUTH_ROUND_CALLS)} creates or ${dec(AUTH_ROUND_MS / 1000)} s`,
  );
  const a = await startSide('with authentication (this build)', script, `${prefix}-auth`, benchToken(), redis, refs);
  const b = await startSide('before authentication (baseline)', baselineScript, `${prefix}-before`, BASELINE_TOKEN ? benchToken() : undefined, redis, refs);
  const rounds = new Map<Side, Phase[]>([
    [a, []],
    [b, []],
  ]);
  for (let r = 0; r < AUTH_ROUNDS && !aborted; r++) {
    for (const side of r % 2 === 0 ? [a, b] : [b, a]) {
      const bodies = singleBodies(side.factory, AUTH_ROUND_CALLS);
      const phase = await measured(side.ctx, side.label, () => createSingles(side.client, bodies, { maxMs: AUTH_ROUND_MS, shouldStop }), { countPorts: true });
      if (phase.errors) {
        throw new Error(`${side.label}: ${phase.errors} failed creates; first: ${phase.firstError}`);
      }
      rounds.get(side)!.push(phase);
    }
  }
  if (aborted) {
    return;
  }
  const withAuth = summarize(a.label, rounds.get(a)!);
  const before = summarize(b.label, rounds.get(b)!);
  printMeasurement(withAuth, 'ports/s');
  printMeasurement(before, 'ports/s');
  const slowdown = (1 - withAuth.rate / before.rate) * 100;
  const pairs = rounds.get(a)!.map((p, i) => p.rate / rounds.get(b)![i].rate);
  const pairMedian = [...pairs].sort((x, y) => x - y)[Math.floor((pairs.length - 1) / 2)];
  const pass = slowdown <= TARGETS.maxAuthSlowdownPct;
  console.log(
    `  ${pad('with authentication vs before', 44)} ${lpad(int(withAuth.rate), 9)} vs ${int(before.rate)} ports/s: ${slowdown >= 0 ? `${dec(slowdown)}% slower` : `${dec(-slowdown)}% faster`}   target at most ${TARGETS.maxAuthSlowdownPct}% slower  ${verdict(pass)}`,
  );
  console.log(`      rate ratio per round pair (with / before): ${pairs.map((x) => dec(x, 2)).join(' / ')}; median ${dec(pairMedian, 2)}`);
  const costA = costPerCreate(rounds.get(a)!);
  const costB = costPerCreate(rounds.get(b)!);
  const delta = (x: number, y: number): string => `${x - y >= 0 ? '+' : ''}${dec(x - y)} µs, ${x - y >= 0 ? '+' : ''}${dec(((x - y) / y) * 100)}%`;
  console.log(`      controller CPU per create: ${dec(costA.controllerUs)} µs with, ${dec(costB.controllerUs)} µs before (${delta(costA.controllerUs, costB.controllerUs)}); authenticate() is ${dec((authUs / costA.controllerUs) * 100, 2)}% of it`);
  console.log(`      Redis script time per create: ${dec(costA.scriptUs)} µs with, ${dec(costB.scriptUs)} µs before (${delta(costA.scriptUs, costB.scriptUs)}: the actor and the audit trail's entry, written by the same script)`);
  results.auth = {
    ...results.auth,
    baseline: { dir: BASELINE_DIR, script: baselineScript, commit: baselineCommit },
    rounds: AUTH_ROUNDS,
    withAuth: measurementJson(withAuth),
    before: measurementJson(before),
    slowdownPct: +slowdown.toFixed(1),
    pairRatios: pairs.map((x) => round2(x)),
    controllerCpuUsPerCreate: { withAuth: round2(costA.controllerUs), before: round2(costB.controllerUs) },
    redisScriptUsPerCreate: { withAuth: round2(costA.scriptUs), before: round2(costB.scriptUs) },
  };
  results.targets.push({ name: 'single-port creates with auth vs before (% slower)', value: +slowdown.toFixed(1), target: `<= ${TARGETS.maxAuthSlowdownPct}`, pass });
}

/**
 * The batch figures at 100k stored against their target, printed and as summary rows: ports/s
 * (the condition on Redis' speed said when this run does not meet it), the same per SET/s of
 * redis-benchmark (comparable across runs of unequal speed), and the time the batch script
 * itself takes per port (INFO commandstats, EVALSHA): at most the 25,000/s budget, 40 µs.
 */
function batchVerdict(results: Results, low: Measurement, high: Measurement, luaOnly: Measurement): { rows: Results['targets']; json: Record<string, unknown> } {
  const setPerSecond = results.redisCeiling.find((r) => r.command.includes(' -n 200000 SET'))?.rps ?? NaN;
  const target = TARGETS.batchPortsPerSecondAt100k;
  const minSet = TARGETS.batchAt100kMinSetPerSecond;
  const conditionMet = setPerSecond >= minSet;
  const ratio = high.rate / setPerSecond;
  const targetRatio = target / minSet;
  const scriptUs = high.median.usage.redisScriptUsecPerItem;
  const scriptBudgetUs = 1e6 / target;
  const note = conditionMet ? undefined : `SET ${int(setPerSecond)}/s < ${int(minSet)}/s on this run: the target's condition is not met, compare the ratio`;
  console.log(`\nBatch creation at 100k stored (batches of ${BATCH_SIZE}, ${BATCH_IN_FLIGHT} in flight; median rounds)`);
  console.log(`  ${pad('ports/s', 44)} ${lpad(int(high.rate), 9)}   target >= ${int(target)} when SET >= ${int(minSet)}/s  ${verdict(high.rate >= target)}${note ? `  (${note})` : ''}`);
  // The ratio stands in for the target on a machine whose Redis is slower than the condition asks;
  // when the condition is met the target itself is judged (the controller, not Redis, is then the
  // bound, so ports/s does not grow with SET/s and the ratio falls as Redis gets faster).
  const ratioVerdict = conditionMet ? `(judged only when SET < ${int(minSet)}/s)` : verdict(ratio >= targetRatio);
  console.log(`  ${pad('ports/s per SET/s of redis-benchmark', 44)} ${lpad(dec(ratio, 3), 9)}   target >= ${dec(targetRatio, 3)} (${int(target)} / ${int(minSet)})  ${ratioVerdict}   (SET ${int(setPerSecond)}/s)`);
  console.log(`  ${pad('batch script time per port (EVALSHA)', 44)} ${lpad(dec(scriptUs), 9)} µs  target <= ${dec(scriptBudgetUs)} µs (${int(target)}/s)  ${verdict(scriptUs <= scriptBudgetUs)}`);
  console.log(`      at 10k stored: ${dec(low.median.usage.redisScriptUsecPerItem)} µs per port at ${int(low.rate)} ports/s; the script alone (no HTTP) at 100k: ${dec(luaOnly.median.usage.redisScriptUsecPerItem)} µs per port, ${int(luaOnly.rate)} ports/s`);
  return {
    rows: [
      { name: 'ports/s batch @100k', value: Math.round(high.rate), target: `>= ${target} (SET >= ${minSet}/s)`, pass: high.rate >= target, note },
      ...(conditionMet ? [] : [{ name: 'ports/s batch @100k per SET/s', value: +ratio.toFixed(3), target: `>= ${dec(targetRatio, 3)}`, pass: ratio >= targetRatio }]),
      { name: 'batch script µs per port @100k', value: +scriptUs.toFixed(1), target: `<= ${dec(scriptBudgetUs)}`, pass: scriptUs <= scriptBudgetUs },
    ],
    json: {
      portsPerSecond: Math.round(high.rate),
      setPerSecond: Number.isFinite(setPerSecond) ? setPerSecond : null,
      conditionMet,
      portsPerSetRatio: Number.isFinite(ratio) ? +ratio.toFixed(4) : null,
      scriptUsecPerPort: round2(scriptUs),
      scriptUsecPerPortAt10k: round2(low.median.usage.redisScriptUsecPerItem),
      luaOnlyScriptUsecPerPort: round2(luaOnly.median.usage.redisScriptUsecPerItem),
    },
  };
}

function printSummary(results: Results): void {
  if (!results.targets.length) {
    return;
  }
  console.log('\nSummary');
  const ceiling = (label: string): string => int(results.redisCeiling.find((r) => r.command.includes(label))?.rps ?? NaN);
  console.log(`  Redis ceiling: SET ${ceiling(' -n 200000 SET')} req/s, INCR ${ceiling(' -n 200000 INCR')} req/s; pipelined (-P 16): SET ${ceiling('-P 16 SET')}, INCR ${ceiling('-P 16 INCR')} req/s`);
  const rss = Number(results.controller.rssAfter100kFillKb);
  console.log(`  controller RSS after the 100k fill: ${dec(rss / 1024)} MiB`);
  for (const t of results.targets) {
    console.log(`  ${pad(t.name, 44)} ${lpad(t.value.toLocaleString('en-US'), 9)}   target ${pad(t.target, 9)} ${verdict(t.pass)}${t.note ? `  (${t.note})` : ''}`);
  }
  const misses = results.targets.filter((t) => !t.pass).length;
  console.log(`  ${results.targets.length - misses}/${results.targets.length} targets met${misses ? ' (a miss is reported, not a failure)' : ''}`);
}

async function main(): Promise<number> {
  const prefix = `bench-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  redis.on('error', () => undefined);
  const refs: Refs = { others: [] };
  const results: Results = { meta: {}, redisCeiling: [], vni: {}, ports: {}, controller: {}, redisMemory: {}, checks: {}, auth: {}, targets: [], errors: [] };
  const wallStart = performance.now();

  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      refs.client?.close();
      await refs.ctl?.stop().catch(() => undefined);
      await refs.store?.onModuleDestroy().catch(() => undefined);
      for (const other of refs.others) {
        other.client.close();
        await other.ctl.stop().catch(() => undefined);
      }
      for (const p of [prefix, ...refs.others.map((o) => o.prefix)]) {
        try {
          const n = await dropPrefix(redis, p);
          console.log(`${p === prefix ? '\nCleanup: ' : '         '}controller stopped, ${int(n)} keys under {${p}}:* deleted`);
        } catch (err) {
          console.error(`\nCleanup: could not delete {${p}}:* (${(err as Error).message}); delete those keys by hand`);
        }
      }
      redis.disconnect();
    })());

  process.on('exit', () => [refs.ctl, ...refs.others.map((o) => o.ctl)].forEach((c) => c?.killNow()));
  const extraMs = BASELINE_DIR ? AUTH_COMPARISON_MS : 0;
  const guard = guardPhase({
    name: 'run',
    stop: () => (aborted = true),
    cleanup,
    softMs: SOFT_DEADLINE_MS + extraMs,
    hardMs: HARD_DEADLINE_MS + extraMs,
    hardAction: 'killing the controller',
  });

  let failed = await guard.run(() => bench(prefix, refs, redis, results), {
    errors: results.errors,
    onError: () => {
      if (refs.ctl) {
        console.error(`controller log (last lines):\n${refs.ctl.logTail()}`);
      }
    },
  });
  printSummary(results);
  if (!writeResults(OUT_FILE, results, wallStart, performance.now())) {
    failed = true;
  }
  return failed ? 1 : 0;
}

exitWith(main());
