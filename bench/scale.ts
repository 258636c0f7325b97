import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchToken, redactedEnv, viewReached } from './controller-process';
import type { JsonHttpClient } from './http-client';
import { clockMs, LoadGenerators, type AgentSpec, type SyncReply } from './loadgen';
import { gcBetween, gcText, scrapeGc, type GcTotals } from './gc-stats';
import { breakdownLines, scrapeMemory } from './memory-breakdown';
import { runPool } from './pool';
import { listenOverflows } from './proc-stats';
import { dropPrefix, redisInfoField, redisSnapshot, type RedisSnapshot } from './redis-tools';
import { bytesText, dec, exitWith, gitDescribe, int, machineCpu, pad, ROOT, round2, verdict, writeResults } from './report';
import { guardPhase } from './phase-guard';
import type { AgentStats } from './sim-agent';
import {
  benchAgentChannelOptions,
  dist,
  distBytes,
  distJson,
  distText,
  hostsInSync,
  mb,
  REDIS_URL,
  reportProblems,
  sampleRss,
  sleep,
  startBenchController,
  type BenchController,
  type RssSample,
} from './sync-common';
import { Layout } from './sync-layout';

/*
 * overlayd at the size of a larger data centre: `BENCH_ONLY=scale npm run bench` (not in the
 * default run; 5-9 minutes on the 2-core development machine, most of it).
 *
 * Two controller replicas (child processes on the shared Redis, one key prefix and bootstrap
 * token: a deployment's two replicas), 5,000 simulated agents (bench/sim-agent.ts, the real
 * protocol) split between them as a round-robin load balancer would (agent h on replica h % 2),
 * in load-generator processes of their own (bench/loadgen.ts: one Node process cannot hold the
 * 5,000 streams and ~5 million span entries and decode their snapshots in time), over 500,000
 * ports: 5,000 segments of 100 bound ports, each segment on 10 hosts (each host on ~10 segments:
 * a span of ~1,010 entries). The fill goes through POST /v1/ports/batch, spread over both replicas.
 *
 * Measured, with a target each where the issue set one (PASS/MISS):
 *   - the fill rate (ports/s), to each replica's view caught up;
 *   - propagation of single-port writes, sent to the replicas alternately (HTTP answer -> every
 *     affected agent, on either replica, applied the delta), p99 <= 100 ms;
 *   - bytes sent per change: the delta to each affected agent, and everything every agent received
 *     for it (revision markers to the others included), one write at a time;
 *   - a resume storm (all agents reconnect at once with their revision), <= 10 s;
 *   - a forced-snapshot storm (all reconnect at once with no state), <= 60 s;
 *   - each replica's RSS at stages (start, half the ports, all ports with no agent, half the
 *     agents, all agents in sync, after the storms), and from them RSS per 100,000 ports (the
 *     slope between half and all the ports) and per 1,000 agents (the slope between half and all
 *     the agents, per replica's own agents).
 * BENCH_SCALE_AGENTS and BENCH_SCALE_PORTS (multiples of 100) set a smaller (or larger) size,
 * BENCH_SCALE_LOADGENS the load-generator processes (default one per 1,250 agents). What stops a
 * run short of its size (file descriptors, a process out of memory, a stage past its deadline) is
 * printed. Figures go to .bench-out/scale.json; everything under the key prefix is deleted at the
 * end, also after an error or Ctrl-C, and the replicas and load generators are stopped.
 */

const OUT_FILE = path.join(ROOT, '.bench-out', 'scale.json');
const envInt = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? '');
  return Number.isInteger(v) && v > 0 ? v : fallback;
};

const AGENTS = envInt('BENCH_SCALE_AGENTS', 5_000);
const PORTS_PER_SEGMENT = 100;
const SEGMENTS = Math.max(1, Math.round(envInt('BENCH_SCALE_PORTS', 500_000) / PORTS_PER_SEGMENT));
const PORTS = SEGMENTS * PORTS_PER_SEGMENT;
const HOSTS_PER_SEGMENT = Math.min(10, AGENTS);
const REPLICAS = 2;
const LOADGENS = envInt('BENCH_SCALE_LOADGENS', Math.max(1, Math.ceil(AGENTS / 1_250)));
/** Each load generator's V8 heap limit (its agents' spans, and snapshots staged while they arrive), and BENCH_LOADGEN_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=D`). */
const LOADGEN_NODE_ARGS = ['--max-old-space-size=6144', ...(process.env.BENCH_LOADGEN_NODE_ARGS ?? '').split(' ').filter(Boolean)];

const FILL_BATCH = 2_000;
const FILL_IN_FLIGHT = 2;
const PLAIN_WRITES = 300;
const PLAIN_RATE = 20;
const MAX_WRITES_IN_FLIGHT = 8;
/** Writes one at a time, every agent idle before each: the bytes one change costs. */
const BYTES_WRITES = 40;
const WRITE_TIMEOUT_MS = 5_000;
const RSS_SAMPLE_MS = 3_000;
const CONNECT_TIMEOUT_MS = 300_000;
const RESUME_TIMEOUT_MS = 60_000;
const SNAPSHOT_STORM_TIMEOUT_MS = 300_000;
const QUIESCE_TIMEOUT_MS = 30_000;
const VIEW_CATCH_UP_MS = 120_000;
const API_CHECK_TIMEOUT_MS = 20_000;
/** After this long the run stops starting new work and cleans up; the hard limit kills everything. */
const SOFT_DEADLINE_MS = 30 * 60_000;
const HARD_DEADLINE_MS = 34 * 60_000;

const TARGETS = { propagationP99Ms: 100, resumeStormS: 10, snapshotStormS: 60 };

let aborted = false;

interface Target {
  name: string;
  value: number;
  unit: string;
  /** '' for a figure without a target. */
  target: string;
  pass?: boolean;
}

interface Results {
  meta: Record<string, unknown>;
  setup: Record<string, unknown>;
  fill: Record<string, unknown>;
  connect: Record<string, unknown>[];
  propagation: Record<string, unknown>;
  bytes: Record<string, unknown>;
  storms: Record<string, unknown>[];
  memory: { stage: string; replica: string; rssKb: number | null; hwmKb: number | null; minKb?: number | null; maxKb?: number | null }[];
  loadGenerators: { stage: string; rssKb: (number | null)[] }[];
  derived: Record<string, unknown>;
  checks: Record<string, unknown>;
  targets: Target[];
  /** What stopped the run short of its size, if anything. */
  stoppedBy?: string;
  errors: string[];
}

interface Refs {
  replicas: BenchController[];
  gens?: LoadGenerators;
}

interface UsageStart {
  t: number;
  ctl: number[];
  gens: number;
  self: NodeJS.CpuUsage;
  redis: RedisSnapshot;
  machine: { busy: number; total: number };
  gc: (GcTotals | undefined)[];
}

interface Usage {
  wallS: number;
  replicaCpuPct: number[];
  loadGenCpuPct: number;
  benchCpuPct: number;
  redisCpuPct: number;
  machineCpuPct: number;
  /** Each replica's garbage collection over the phase (from its /metrics). */
  replicaGc: (GcTotals | undefined)[];
}

interface WriteResult {
  error?: string;
  replica: number;
  httpMs: number;
  /** HTTP answer -> last affected agent applied (negative: all had it before the answer). */
  lastFromResponseMs: number;
  lastFromSendMs: number;
  agentsExpected: number;
  agentsApplied: number;
  unexpected: number;
  revision: number;
  /** Bytes of the SyncResponse{delta} that carried it, per affected agent. */
  bytes: number[];
  /** clockMs when the request was sent; per affected agent that applied it, [global index, clockMs]. */
  sentAt: number;
  arrivals: [number, number][];
}

/** Open files allowed to this process (soft limit): children inherit it. */
function openFilesLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    return Number(line?.split(/\s+/)[3] ?? NaN);
  } catch {
    return NaN;
  }
}

class ScaleBench {
  private readonly layout = new Layout({ segments: SEGMENTS, regularHosts: AGENTS, portsPerSegment: PORTS_PER_SEGMENT, hostsPerSegment: HOSTS_PER_SEGMENT, bigHost: false, refHosts: 0, name: 'scale' });
  private gens!: LoadGenerators;
  private readonly revisionKey: string;
  private stage = 'start';
  private readonly fillIds: string[] = [];

  constructor(
    private readonly prefix: string,
    private readonly redis: Redis,
    private readonly refs: Refs,
    private readonly results: Results,
  ) {
    this.revisionKey = `{${prefix}}:rev`;
  }

  private get replicas(): BenchController[] {
    return this.refs.replicas;
  }

  /** The replica a load balancer alternating over them gives agent (or request) k. */
  private replicaOf(k: number): number {
    return k % REPLICAS;
  }

  private client(k: number): JsonHttpClient {
    return this.replicas[this.replicaOf(k)].client;
  }

  get stageReached(): string {
    return this.stage;
  }

  private async revision(): Promise<number> {
    return Number((await this.redis.get(this.revisionKey)) ?? 0);
  }

  private async usageStart(): Promise<UsageStart> {
    return {
      t: performance.now(),
      ctl: this.replicas.map((r) => r.ctl.cpuSeconds()),
      gens: this.refs.gens?.cpuSeconds() ?? 0,
      self: process.cpuUsage(),
      redis: await redisSnapshot(this.redis),
      machine: machineCpu(),
      gc: await Promise.all(this.replicas.map((r) => scrapeGc(r.client))),
    };
  }

  private async usageEnd(start: UsageStart): Promise<Usage> {
    const wallS = (performance.now() - start.t) / 1000;
    const self = process.cpuUsage(start.self);
    const redis = await redisSnapshot(this.redis);
    const machine = machineCpu();
    const gc = await Promise.all(this.replicas.map((r) => scrapeGc(r.client)));
    const pct = (s: number): number => (s / wallS) * 100;
    return {
      wallS,
      replicaCpuPct: this.replicas.map((r, i) => pct(r.ctl.cpuSeconds() - start.ctl[i])),
      loadGenCpuPct: pct((this.refs.gens?.cpuSeconds() ?? 0) - start.gens),
      benchCpuPct: pct((self.user + self.system) / 1e6),
      redisCpuPct: pct(redis.cpuSeconds - start.redis.cpuSeconds),
      machineCpuPct: machine.total > start.machine.total ? ((machine.busy - start.machine.busy) / (machine.total - start.machine.total)) * 100 * os.cpus().length : NaN,
      replicaGc: gc.map((after, i) => (after && start.gc[i] ? gcBetween(start.gc[i], after) : undefined)),
    };
  }

  private usageText(u: Usage): string {
    return `CPU over ${dec(u.wallS, 2)} s (100% = one core): replicas ${u.replicaCpuPct.map((p) => `${int(p)}%`).join(' + ')}, load generators ${int(u.loadGenCpuPct)}%, redis ${int(u.redisCpuPct)}%, this process ${int(u.benchCpuPct)}% (machine ${int(u.machineCpuPct)}% of ${os.cpus().length * 100}%); GC ${u.replicaGc.map((g, i) => `${String.fromCharCode(65 + i)}: ${gcText(g)}`).join('; ')}`;
  }

  /** Each replica's RSS: sampled for RSS_SAMPLE_MS (median) when `sample`, else read once; printed and kept. */
  private async memory(stage: string, sample = true): Promise<RssSample[]> {
    const samples = sample
      ? await Promise.all(this.replicas.map((r) => sampleRss(r.ctl, RSS_SAMPLE_MS)))
      : this.replicas.map((r) => {
          const m = r.ctl.memory() ?? { rssKb: NaN, hwmKb: NaN };
          return { medianKb: m.rssKb, minKb: m.rssKb, maxKb: m.rssKb, hwmKb: m.hwmKb, samples: 1 };
        });
    samples.forEach((s, i) => {
      const fin = (n: number): number | null => (Number.isFinite(n) ? n : null);
      this.results.memory.push({ stage, replica: String.fromCharCode(65 + i), rssKb: fin(s.medianKb), hwmKb: fin(s.hwmKb), minKb: fin(s.minKb), maxKb: fin(s.maxKb) });
    });
    const text = samples.map((s, i) => `${String.fromCharCode(65 + i)} ${mb(s.medianKb)}${sample ? ` (range ${dec((s.minKb * 1024) / 1e6)}-${dec((s.maxKb * 1024) / 1e6)} MB)` : ''}, peak ${dec((s.hwmKb * 1024) / 1e6)} MB`).join('; ');
    console.log(`  RSS ${stage}${sample ? `, median over ${RSS_SAMPLE_MS / 1000} s` : ''}: ${text}`);
    if (this.refs.gens) {
      const gens = this.refs.gens.memory();
      this.results.loadGenerators.push({ stage, rssKb: gens.map((g) => (Number.isFinite(g.rssKb) ? g.rssKb : null)) });
      console.log(`  load generators' RSS: ${gens.map((g) => `${dec((g.rssKb * 1024) / 1e6, 0)} MB`).join(', ')} (peak ${gens.map((g) => `${dec((g.hwmKb * 1024) / 1e6, 0)}`).join(', ')} MB)`);
    }
    return samples;
  }

  /** Each replica's memory by part (its /metrics). */
  private async breakdown(stage: string): Promise<void> {
    for (const [i, r] of this.replicas.entries()) {
      const m = await scrapeMemory(r.client);
      if (m) {
        console.log(`  replica ${String.fromCharCode(65 + i)} ${stage}:`);
        for (const line of breakdownLines(m)) {
          console.log(line);
        }
      }
    }
  }

  /** Waits until every replica's view applied the store's current revision (its /metrics `overlay_view_revision`). */
  private async viewsCaughtUp(timeoutMs: number): Promise<number> {
    const target = await this.revision();
    const t0 = performance.now();
    for (const r of this.replicas) {
      await viewReached(r.client, target, timeoutMs - (performance.now() - t0), () => aborted);
    }
    return performance.now() - t0;
  }

  /** Waits until every connected agent acked the current revision. */
  private async quiesce(timeoutMs = QUIESCE_TIMEOUT_MS): Promise<boolean> {
    const rev = await this.revision();
    const replies = await this.gens.sync({ revision: rev, timeoutMs });
    const ok = replies.every((r) => r.ok);
    if (!ok) {
      const synced = replies.reduce((n, r) => n + r.synced, 0);
      const members = replies.reduce((n, r) => n + r.members, 0);
      console.log(`  !! only ${int(synced)} of ${int(members)} connected agents acked revision ${rev} within ${timeoutMs} ms`);
    }
    return ok;
  }

  async run(): Promise<void> {
    const redisVersion = await redisInfoField(this.redis, 'server', 'redis_version');
    const commit = gitDescribe();
    const load = os.loadavg().map((l) => dec(l, 2));
    this.results.meta = { startedAt: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), loadAvg: load, redisVersion, keyPrefix: this.prefix, commit, agents: AGENTS, ports: PORTS, segments: SEGMENTS, replicas: REPLICAS, loadGenerators: LOADGENS };
    console.log(`overlayd scale benchmark — commit ${commit}, node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${dec(os.totalmem() / 2 ** 30)} GiB, Redis ${redisVersion}, key prefix {${this.prefix}}, load average ${load.join(' ')}`);
    console.log(`${int(AGENTS)} simulated agents in ${LOADGENS} load-generator processes, split between ${REPLICAS} controller replicas (agent h on replica h % ${REPLICAS}), over ${int(PORTS)} ports (${int(SEGMENTS)} segments of ${PORTS_PER_SEGMENT}, each on ${HOSTS_PER_SEGMENT} hosts). Replicas, Redis, the load generators and this process share the machine.`);
    this.preflight();

    this.stage = 'starting the replicas';
    await this.startReplicas();
    await this.memory('at start (empty)');
    this.stage = 'setup';
    await this.setup();
    this.stage = 'fill';
    await this.fill();
    this.stage = 'starting the load generators';
    await this.startLoadGenerators();
    this.stage = 'connecting half the agents';
    const half = Array.from({ length: AGENTS }, (_, h) => h).filter((h) => h < Math.ceil(AGENTS / 2));
    await this.connect(half, 'half the agents');
    const withHalf = await this.memory(`${int(half.length)} agents in sync (${int(half.length / REPLICAS)} per replica)`);
    this.stage = 'connecting the other half';
    const rest = Array.from({ length: AGENTS }, (_, h) => h).filter((h) => h >= Math.ceil(AGENTS / 2));
    await this.connect(rest, 'the other half');
    await this.quiesce();
    const withAll = await this.memory(`all ${int(AGENTS)} agents in sync (${int(AGENTS / REPLICAS)} per replica)`);
    await this.breakdown(`with ${int(AGENTS)} agents in sync`);
    await this.check('with every agent connected');
    this.stage = 'propagation';
    await this.propagation();
    this.stage = 'bytes per change';
    await this.bytesPerChange();
    this.stage = 'resume storm';
    await this.storm('resume');
    this.stage = 'forced-snapshot storm';
    await this.storm('fresh');
    await sleep(1_000);
    this.stage = 'memory';
    const after = await this.memory('1 s after the storms', false);
    await this.breakdown('after the storms');
    this.derive(withHalf, withAll, after, half.length);
    this.stage = 'done';
  }

  /** Checks what is known to stop a run before it starts: open files (each replica holds its agents' connections, each load generator its agents'). */
  private preflight(): void {
    const limit = openFilesLimit();
    const perReplica = Math.ceil(AGENTS / REPLICAS) + 200;
    const perGen = Math.ceil(AGENTS / LOADGENS) + 200;
    console.log(`  open files allowed (ulimit -n, inherited): ${int(limit)}; needed about ${int(perReplica)} per replica, ${int(perGen)} per load generator`);
    if (Number.isFinite(limit) && limit < Math.max(perReplica, perGen)) {
      throw new Error(`file descriptors: ulimit -n is ${limit}, a replica needs about ${perReplica} and a load generator ${perGen}; raise it (ulimit -n) or set BENCH_SCALE_AGENTS lower`);
    }
    const freeGiB = os.freemem() / 2 ** 30;
    console.log(`  free memory: ${dec(freeGiB)} GiB`);
  }

  private async startReplicas(): Promise<void> {
    const token = benchToken();
    for (let i = 0; i < REPLICAS; i++) {
      const r = await startBenchController({ prefix: this.prefix, token, readyTimeoutMs: 30_000 });
      this.replicas.push(r);
      console.log(`\nReplica ${String.fromCharCode(65 + i)}: ${path.relative(ROOT, r.script)} pid ${r.ctl.pid}, HTTP :${r.httpPort}, gRPC :${r.grpcPort}${r.nodeArgs.length ? `, node ${r.nodeArgs.join(' ')}` : ''}${r.extraEnv ? `, env ${r.extraEnv}` : ''}`);
    }
    this.results.setup = { replicas: this.replicas.map((r) => ({ pid: r.ctl.pid, script: path.relative(ROOT, r.script), nodeArgs: r.nodeArgs, httpPort: r.httpPort, grpcPort: r.grpcPort, env: redactedEnv(r.env) })) };
  }

  private async setup(): Promise<void> {
    const { layout } = this;
    console.log(`\nSetup: a tenant, a security group (CIDR rules only), ${int(SEGMENTS)} segments and ${int(AGENTS)} hosts, through both replicas alternately`);
    const t0 = performance.now();
    const admin = this.replicas[0].client;
    layout.tenantId = (await admin.json<{ id: string }>('POST', '/v1/tenants', { name: 'scale-bench' })).id;
    const web = await admin.json<{ id: string }>('POST', '/v1/security-groups', {
      tenantId: layout.tenantId,
      name: 'scale-web',
      rules: [
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80, portRangeMax: 80 },
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteCidr: '10.0.0.0/8' },
        { direction: 'egress', ethertype: 'IPv4', protocol: 'any' },
      ],
    });
    layout.groupIds = [web.id];
    const segments = await runPool({
      count: SEGMENTS,
      concurrency: 16,
      maxMs: 120_000,
      maxErrors: 3,
      shouldStop: () => aborted,
      task: async (s) => {
        layout.segmentIds[s] = (await this.client(s).json<{ id: string }>('POST', '/v1/segments', { tenantId: layout.tenantId, name: `scale-${s}`, cidr: layout.cidr(s) })).id;
        return 1;
      },
    });
    const hosts = await runPool({
      count: AGENTS,
      concurrency: 16,
      maxMs: 120_000,
      maxErrors: 3,
      shouldStop: () => aborted,
      task: async (h) => {
        layout.hostIds[h] = (await this.client(h).json<{ id: string }>('POST', '/v1/hosts', { name: layout.hostName(h), vtepIp: layout.vtepIp(h) })).id;
        return 1;
      },
    });
    if (segments.items !== SEGMENTS || hosts.items !== AGENTS) {
      throw new Error(`setup: ${segments.items}/${SEGMENTS} segments, ${hosts.items}/${AGENTS} hosts created (${segments.firstError ?? hosts.firstError ?? segments.stoppedBy ?? hosts.stoppedBy ?? 'stopped'})`);
    }
    const ms = performance.now() - t0;
    console.log(`  ${pad('segments and hosts', 44)} ${int(SEGMENTS)} (${int(segments.rate)}/s) + ${int(AGENTS)} (${int(hosts.rate)}/s) in ${dec(ms / 1000, 2)} s`);
    this.results.setup = { ...this.results.setup, segments: SEGMENTS, hosts: AGENTS, segmentsPerS: Math.round(segments.rate), hostsPerS: Math.round(hosts.rate), setupMs: Math.round(ms) };
  }

  /** The ports in two halves (RSS after each, views caught up), batches sent to the replicas alternately; then unbound ports for the bind writes. */
  private async fill(): Promise<void> {
    const { layout } = this;
    console.log(`\nFill: ${int(PORTS)} bound ports through POST /v1/ports/batch (${int(FILL_BATCH)} per call, ${FILL_IN_FLIGHT} in flight, the replicas alternately), in two halves`);
    const halves: Record<string, unknown>[] = [];
    const batches = Math.ceil(PORTS / FILL_BATCH);
    const firstHalf = Math.ceil(batches / 2);
    for (const [from, to] of [
      [0, firstHalf],
      [firstHalf, batches],
    ]) {
      const t0 = performance.now();
      const fill = await runPool({
        count: to - from,
        concurrency: FILL_IN_FLIGHT,
        maxMs: 300_000,
        maxErrors: 2,
        shouldStop: () => aborted,
        task: async (i) => {
          const b = from + i;
          const ports = [];
          for (let n = b * FILL_BATCH; n < Math.min(PORTS, (b + 1) * FILL_BATCH); n++) {
            ports.push(layout.fillPort(Math.floor(n / PORTS_PER_SEGMENT), n % PORTS_PER_SEGMENT));
          }
          const answer = await this.client(b).json<{ items: { id: string }[] }>('POST', '/v1/ports/batch', { ports });
          answer.items.forEach((port, k) => (this.fillIds[b * FILL_BATCH + k] = port.id));
          return ports.length;
        },
      });
      const want = Math.min(PORTS, to * FILL_BATCH) - from * FILL_BATCH;
      if (fill.errors || fill.items !== want) {
        throw new Error(`filling ports failed (${int(fill.items)}/${int(want)} of this half): ${fill.firstError ?? fill.stoppedBy ?? ''}`);
      }
      const answeredMs = performance.now() - t0;
      const catchUpMs = await this.viewsCaughtUp(VIEW_CATCH_UP_MS);
      const totalMs = performance.now() - t0;
      const stored = Math.min(PORTS, to * FILL_BATCH);
      console.log(
        `  ${pad(`ports ${int(from * FILL_BATCH)}-${int(stored)}`, 44)} ${int(want)} answered in ${dec(answeredMs / 1000, 2)} s (${int((want * 1000) / answeredMs)} ports/s, call p50 ${dec(fill.latencyMs.p50, 0)} ms, p99 ${dec(fill.latencyMs.p99, 0)} ms); both views caught up ${dec(catchUpMs / 1000, 2)} s later (${int((want * 1000) / totalMs)} ports/s to both views)`,
      );
      halves.push({ from: from * FILL_BATCH, to: stored, answeredMs: Math.round(answeredMs), viewsCaughtUpMs: Math.round(catchUpMs), portsPerS: Math.round((want * 1000) / answeredMs), portsPerSToViews: Math.round((want * 1000) / totalMs), callMs: fill.latencyMs });
      await this.memory(`after ${int(stored)} ports, no agent connected`);
    }
    for (let s = 0; s < SEGMENTS; s++) {
      layout.bound[s] = PORTS_PER_SEGMENT;
    }
    const stored = await this.redis.hlen(`{${this.prefix}}:ports`);
    const answered = halves.reduce((n, h) => n + (h.answeredMs as number), 0);
    console.log(`  ${pad('fill rate, all the ports', 44)} ${int((PORTS * 1000) / answered)} ports/s answered; ${int(stored)} stored`);
    this.results.fill = { ports: PORTS, stored, halves, portsPerS: Math.round((PORTS * 1000) / answered) };
    this.results.targets.push({ name: `fill rate, ${int(PORTS)} ports in batches of ${int(FILL_BATCH)}`, value: Math.round((PORTS * 1000) / answered), unit: 'ports/s', target: '' });
    await this.breakdown(`after the fill`);
  }

  private async startLoadGenerators(): Promise<void> {
    const channelOptions = benchAgentChannelOptions();
    const agents: AgentSpec[] = Array.from({ length: AGENTS }, (_, h) => ({
      index: h,
      hostName: this.layout.hostName(h),
      vtepIp: this.layout.vtepIp(h),
      target: `127.0.0.1:${this.replicas[this.replicaOf(h)].grpcPort}`,
    }));
    this.gens = await LoadGenerators.start(agents, LOADGENS, channelOptions, LOADGEN_NODE_ARGS);
    this.refs.gens = this.gens;
    console.log(`\nLoad generators: ${LOADGENS} processes (pids ${this.gens.pids.join(', ')}), ${int(Math.ceil(AGENTS / LOADGENS))} agents each, node ${LOADGEN_NODE_ARGS.join(' ')}`);
  }

  /** Connects `members` at once, fresh (a snapshot each), and waits until all acked it. */
  private async connect(members: number[], label: string): Promise<void> {
    const rev = await this.revision();
    console.log(`\nConnecting ${label}: ${int(members.length)} agents at once, fresh (a snapshot each of ~${int(this.layout.expectedSpans()[members[0]])} entries)`);
    const usage = await this.usageStart();
    const overflows0 = listenOverflows();
    const t0 = clockMs();
    const replies = await this.gens.sync({ revision: rev, timeoutMs: CONNECT_TIMEOUT_MS, connect: 'fresh', indexes: members });
    const overflows = listenOverflows() - overflows0;
    const u = await this.usageEnd(usage);
    const r = this.stormFigures(replies, t0);
    console.log(`  ${pad('all acked their snapshot', 44)} ${r.ok ? `${dec(r.seconds, 2)} s` : `NO: ${int(r.synced)} of ${int(members.length)} within ${CONNECT_TIMEOUT_MS / 1000} s`}; per agent ${distText(r.times)}`);
    console.log(`      ${int(r.stats.resourcesReceived)} resources, ${bytesText(r.stats.bytes)} received; stream errors ${r.stats.streamErrors}, nacks ${r.stats.nacks}, connections dropped by full accept queues ${int(overflows)}; load generators' event-loop delay max ${dec(r.loopMaxMs)} ms`);
    console.log(`      ${this.usageText(u)}`);
    this.results.connect.push({ label, agents: members.length, ok: r.ok, seconds: round2(r.seconds), perAgentMs: distJson(r.times), received: r.stats, listenOverflows: overflows, usage: u });
    if (!r.ok) {
      throw new Error(`only ${r.synced} of ${members.length} agents synced within ${CONNECT_TIMEOUT_MS / 1000} s${r.lastError ? ` (e.g. ${r.lastError})` : ''}`);
    }
  }

  private stormFigures(replies: SyncReply[], t0: number): { ok: boolean; synced: number; seconds: number; times: ReturnType<typeof dist>; firstMessage: ReturnType<typeof dist>; stats: AgentStats; loopMaxMs: number; issuedMs: number; lastError?: string } {
    const times = dist(replies.flatMap((r) => r.times.map((t) => t - t0)));
    const stats = replies.map((r) => r.stats).reduce((a, b) => {
      const out = { ...a };
      for (const key of Object.keys(out) as (keyof AgentStats)[]) {
        out[key] += b[key];
      }
      return out;
    });
    return {
      ok: replies.every((r) => r.ok),
      synced: replies.reduce((n, r) => n + r.synced, 0),
      seconds: times.max / 1000,
      times,
      firstMessage: dist(replies.flatMap((r) => r.firstMessage.map((t) => t - t0))),
      stats,
      loopMaxMs: Math.max(...replies.map((r) => r.loopDelayMaxMs)),
      issuedMs: Math.max(...replies.map((r) => r.issuedMs)),
      lastError: replies.find((r) => r.lastError)?.lastError,
    };
  }

  /** Every agent holds a span of the size the layout predicts. */
  private async check(stage: string): Promise<boolean> {
    const expected = this.layout.expectedSpans();
    const states = await this.gens.state();
    let right = 0;
    let held = 0;
    let first = '';
    for (const [g, size, connected] of states.flatMap((s) => s.spans)) {
      held += size;
      if (size === expected[g] && connected) {
        right++;
      } else if (!first) {
        first = `${this.layout.hostName(g)} holds ${size}, expected ${expected[g]}${connected ? '' : ' (not connected)'}`;
      }
    }
    console.log(`  check ${stage}: ${int(right)}/${int(AGENTS)} agents connected with a span of the expected size (${int(held)} resources in all)${first ? `: INCONSISTENT, e.g. ${first}` : ''}`);
    this.results.checks[stage] = { agentsConsistent: right, resourcesHeld: held, firstInconsistent: first || null };
    return right === AGENTS;
  }

  /** A write whose port the fleet watches: `send` is the HTTP call; the port's MAC is the key; `segment`'s hosts must apply it. */
  private async watchedWrite(mac: string, segment: number, replica: number, send: (client: JsonHttpClient) => Promise<{ status: number; text: string }>): Promise<WriteResult> {
    const expected = this.layout.hostsOf(segment);
    const watch = await this.gens.watch(mac, expected);
    const result: WriteResult = { replica, httpMs: NaN, lastFromResponseMs: NaN, lastFromSendMs: NaN, agentsExpected: expected.length, agentsApplied: 0, unexpected: 0, revision: 0, bytes: [], sentAt: NaN, arrivals: [] };
    const t0 = clockMs();
    result.sentAt = t0;
    try {
      const res = await send(this.replicas[replica].client);
      const tResponse = clockMs();
      result.httpMs = tResponse - t0;
      if (res.status < 200 || res.status >= 300) {
        result.error = `HTTP ${res.status} ${res.text.slice(0, 200)}`;
        return result;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([watch.done, new Promise((r) => (timer = setTimeout(r, Math.max(0, WRITE_TIMEOUT_MS - (clockMs() - t0)))))]);
      clearTimeout(timer);
    } catch (err) {
      result.error = (err as Error).message;
    } finally {
      const report = await watch.finish();
      result.agentsApplied = report.arrivals.length;
      result.unexpected = report.unexpected;
      result.revision = report.revision;
      result.bytes = report.arrivals.map((a) => a[2]);
      result.arrivals = report.arrivals.map((a) => [a[0], a[1]]);
      if (report.complete && !result.error) {
        const last = Math.max(...report.arrivals.map((a) => a[1]));
        result.lastFromSendMs = last - t0;
        result.lastFromResponseMs = last - (t0 + result.httpMs);
      }
    }
    return result;
  }

  /** A new port bound to a host of its segment (spread by k), through replica k % 2. */
  private createPort(k: number): Promise<WriteResult> {
    const { layout } = this;
    const segment = (k * 337 + 11) % SEGMENTS;
    const host = layout.regularHostsOf(segment)[k % HOSTS_PER_SEGMENT];
    const mac = layout.nextMac();
    const ip = layout.nextAddress(segment);
    return this.watchedWrite(mac, segment, this.replicaOf(k), async (client) => {
      const res = await client.request('POST', '/v1/ports', { segmentId: layout.segmentIds[segment], mac, ips: [ip], vmId: `vm-${mac}`, hostId: layout.hostIds[host], securityGroupIds: layout.groupIds });
      if (res.status === 201) {
        layout.bound[segment]++;
      }
      return res;
    });
  }

  private async propagation(): Promise<void> {
    if (aborted) {
      return;
    }
    console.log(`\nPropagation of single-port writes: ${PLAIN_WRITES} creates with hostId and PATCH binds, alternating, at ${PLAIN_RATE}/s (<= ${MAX_WRITES_IN_FLIGHT} in flight), sent to the replicas alternately; each affects the ${HOSTS_PER_SEGMENT} agents of its segment, on both replicas`);
    console.log('  latency = from the HTTP answer to the moment the last affected agent applied a delta carrying the port (and acked it)');
    // The unbound ports for the binds first (in no span until bound).
    const plans = Array.from({ length: PLAIN_WRITES }, (_, k) => {
      const segment = (k * 337 + 11) % SEGMENTS;
      return { k, segment, host: this.layout.regularHostsOf(segment)[k % HOSTS_PER_SEGMENT], mac: this.layout.nextMac(), ip: this.layout.nextAddress(segment), portId: '' };
    });
    const binds = plans.filter((p) => p.k % 2 === 1);
    const created = await this.replicas[0].client.json<{ items: { id: string }[] }>('POST', '/v1/ports/batch', {
      ports: binds.map((p) => ({ segmentId: this.layout.segmentIds[p.segment], mac: p.mac, ips: [p.ip], vmId: `vm-bind-${p.mac}`, securityGroupIds: this.layout.groupIds })),
    });
    created.items.forEach((item, i) => (binds[i].portId = item.id));
    await this.viewsCaughtUp(VIEW_CATCH_UP_MS);
    await this.quiesce();

    const results: WriteResult[] = [];
    const inFlight = new Set<Promise<void>>();
    const usageAt = clockMs();
    const usage = await this.usageStart(); // its /metrics scrapes of both replicas: where the phase's first writes used to be slow
    const usageDone = clockMs();
    const start = performance.now();
    const before = await this.gens.state();
    await this.gens.stalls(); // from here on
    const phaseAt = clockMs();
    for (let i = 0; i < plans.length && !aborted && results.filter((r) => r.error).length < 10; i++) {
      const wait = start + (i * 1000) / PLAIN_RATE - performance.now();
      if (wait > 0) {
        await sleep(wait);
      }
      while (inFlight.size >= MAX_WRITES_IN_FLIGHT) {
        await Promise.race(inFlight);
      }
      const p = plans[i];
      const replica = this.replicaOf(i);
      const { layout } = this;
      const promise: Promise<void> = this.watchedWrite(p.mac, p.segment, replica, async (client) => {
        const res =
          p.k % 2 === 0
            ? await client.request('POST', '/v1/ports', { segmentId: layout.segmentIds[p.segment], mac: p.mac, ips: [p.ip], vmId: `vm-${p.mac}`, hostId: layout.hostIds[p.host], securityGroupIds: layout.groupIds })
            : await client.request('PATCH', `/v1/ports/${p.portId}`, { hostId: layout.hostIds[p.host] });
        if (res.status >= 200 && res.status < 300) {
          layout.bound[p.segment]++;
        }
        return res;
      }).then((r) => {
        results.push(r);
        inFlight.delete(promise);
      });
      inFlight.add(promise);
    }
    await Promise.all(inFlight);
    const u = await this.usageEnd(usage);
    const slowest = await this.slowWrites(results, phaseAt);
    const ok = results.filter((r) => !r.error && r.agentsApplied === r.agentsExpected);
    const fromResponse = dist(ok.map((r) => Math.max(0, r.lastFromResponseMs)));
    const byReplica = [0, 1].map((i) => dist(ok.filter((r) => r.replica === i).map((r) => Math.max(0, r.lastFromResponseMs))));
    const appliedBefore = ok.filter((r) => r.lastFromResponseMs <= 0).length;
    const pass = ok.length > 0 && ok.length === results.length && fromResponse.p99 <= TARGETS.propagationP99Ms;
    const after = await this.gens.state();
    const received = after.reduce((n, s) => n + s.stats.bytes, 0) - before.reduce((n, s) => n + s.stats.bytes, 0);
    console.log(`  ${int(results.length)} writes, ${int(ok.length)} reached all ${HOSTS_PER_SEGMENT} agents`);
    console.log(`    ${pad('HTTP answer -> last agent applied', 42)} ${distText(fromResponse)}   target p99 <= ${TARGETS.propagationP99Ms} ms  ${verdict(pass)}`);
    console.log(`      written to replica A: ${distText(byReplica[0])}; to replica B: ${distText(byReplica[1])}`);
    console.log(`      ${appliedBefore} of ${ok.length} writes were applied by every agent before the HTTP answer arrived (counted as 0 ms)`);
    console.log(`    ${pad('request sent -> HTTP answer', 42)} ${distText(dist(results.map((r) => r.httpMs)))}`);
    console.log(`    ${pad('request sent -> last agent applied', 42)} ${distText(dist(ok.map((r) => r.lastFromSendMs)))}`);
    console.log(`    ${pad('usage and /metrics scrapes before the phase', 42)} from ${dec(usageAt - phaseAt)} to ${dec(usageDone - phaseAt)} ms of the phase's clock`);
    console.log(`    ${pad('bytes all agents received meanwhile', 42)} ${bytesText(received)} (${bytesText(received / Math.max(1, results.length))} per write: deltas and revision markers)`);
    console.log(`      ${this.usageText(u)}`);
    reportProblems(results, { what: 'write', who: 'affected agent', stray: 'a watched port to an agent outside its segment' }, WRITE_TIMEOUT_MS);
    this.results.propagation = {
      writes: results.length,
      complete: ok.length,
      rate: PLAIN_RATE,
      answerToLastAgentMs: distJson(fromResponse),
      answerToLastAgentMsByReplica: byReplica.map(distJson),
      appliedBeforeAnswer: appliedBefore,
      httpMs: distJson(dist(results.map((r) => r.httpMs))),
      sendToLastAgentMs: distJson(dist(ok.map((r) => r.lastFromSendMs))),
      bytesReceivedAllAgents: received,
      usage: u,
      phaseAtClockMs: phaseAt,
      usageScrapeMs: { from: round2(usageAt - phaseAt), to: round2(usageDone - phaseAt) },
      slowest,
      writeTimes: results.map((r) => ({ replica: r.replica, sentAt: round2(r.sentAt - phaseAt), httpMs: round2(r.httpMs), lastFromResponseMs: round2(r.lastFromResponseMs), arrivals: r.arrivals.map(([g, at]) => [g, round2(at - phaseAt)]) })),
      errors: results.filter((r) => r.error).map((r) => r.error),
    };
    this.results.targets.push({ name: 'propagation p99, answer -> last agent', value: +fromResponse.p99.toFixed(1), unit: 'ms', target: `<= ${TARGETS.propagationP99Ms}`, pass });
    await this.quiesce();
    await this.check('after the writes');
  }

  /**
   * The slowest writes of the phase, each with where its time went: the HTTP answer, the last
   * agent of each replica to apply it (agent h is on replica h % 2 and in load generator h %
   * LOADGENS), and the load generators' own stalls (a late timer tick, a GC pause) that overlap
   * the wait: an arrival is timed on a load generator's event loop.
   */
  private async slowWrites(results: WriteResult[], phaseAt: number): Promise<Record<string, unknown>[]> {
    const stalls = await this.gens.stalls();
    const slowest = results
      .filter((r) => Number.isFinite(r.lastFromResponseMs))
      .sort((a, b) => b.lastFromResponseMs - a.lastFromResponseMs)
      .slice(0, 8);
    const out: Record<string, unknown>[] = [];
    console.log(`  the ${slowest.length} slowest writes (times from the phase's start; agent h on replica h % ${REPLICAS}, load generator h % ${LOADGENS}):`);
    for (const r of slowest) {
      const answered = r.sentAt + r.httpMs;
      const last = Math.max(...r.arrivals.map((a) => a[1]));
      const lastOf = (rep: number): number => Math.max(-Infinity, ...r.arrivals.filter(([g]) => this.replicaOf(g) === rep).map(([, at]) => at - answered));
      const byGen = Array.from({ length: LOADGENS }, (_, k) => Math.max(-Infinity, ...r.arrivals.filter(([g]) => g % LOADGENS === k).map(([, at]) => at - answered)));
      // A stall overlaps the wait when its span [end - ms, end] meets [sent, last arrival].
      const genStalls = stalls.map((s, k) => ({
        k,
        late: s.stalls.filter(([end, ms]) => end >= r.sentAt && end - ms <= last).map(([end, ms]) => `${dec(ms, 0)} ms late at +${dec(end - answered, 0)}`),
        gc: s.gcPauses.filter(([start, ms]) => start + ms >= r.sentAt && start <= last).map(([start, ms, kind]) => `gc(${kind}) ${dec(ms, 0)} ms at +${dec(start - answered, 0)}`),
      }));
      const stallText = genStalls.filter((g) => g.late.length || g.gc.length).map((g) => `lg${g.k}: ${[...g.late, ...g.gc].join(', ')}`).join('; ');
      console.log(
        `    at ${dec((r.sentAt - phaseAt) / 1000, 2)} s to ${String.fromCharCode(65 + r.replica)}: answer ${dec(r.httpMs, 1)} ms, then last agent +${dec(r.lastFromResponseMs, 1)} ms (on A +${dec(lastOf(0), 1)}, on B +${dec(lastOf(1), 1)}; per load generator ${byGen.map((x) => dec(x, 0)).join(' / ')}); load generators' stalls: ${stallText || 'none'}`,
      );
      out.push({ at: round2(r.sentAt - phaseAt), replica: r.replica, httpMs: round2(r.httpMs), lastMs: round2(r.lastFromResponseMs), lastOnA: round2(lastOf(0)), lastOnB: round2(lastOf(1)), byLoadGen: byGen.map(round2), loadGenStalls: genStalls });
    }
    const all = stalls.map((s) => s.stalls.filter(([end]) => end >= phaseAt));
    console.log(`  load generators' stalls over the phase (ticks >= 30 ms late / GC pauses >= 10 ms): ${stalls.map((s, k) => `lg${k} ${all[k].length} (max ${dec(Math.max(0, ...all[k].map((x) => x[1])), 0)} ms) / ${s.gcPauses.length} (max ${dec(Math.max(0, ...s.gcPauses.map((x) => x[1])), 0)} ms)`).join(', ')}`);
    return out;
  }

  /**
   * Single-port creates one at a time, every agent idle before each (quiesced: all acked the
   * revision): the delta each affected agent received for it, and everything all agents received
   * from the write's request to every agent acking its revision (the others' revision markers).
   */
  private async bytesPerChange(): Promise<void> {
    if (aborted) {
      return;
    }
    console.log(`\nBytes sent per change: ${BYTES_WRITES} single-port creates (with hostId), one at a time, the replicas alternately, every agent idle before each`);
    const perAgent: number[] = [];
    const affected: number[] = [];
    const all: number[] = [];
    const errors: string[] = [];
    for (let k = 0; k < BYTES_WRITES && !aborted; k++) {
      await this.quiesce();
      const before = (await this.gens.state()).reduce((n, s) => n + s.stats.bytes, 0);
      const r = await this.createPort(PLAIN_WRITES + k);
      await this.quiesce();
      const after = (await this.gens.state()).reduce((n, s) => n + s.stats.bytes, 0);
      if (r.error || r.agentsApplied !== r.agentsExpected) {
        errors.push(r.error ?? `${r.agentsApplied}/${r.agentsExpected} agents`);
        continue;
      }
      perAgent.push(...r.bytes);
      affected.push(r.bytes.reduce((a, b) => a + b, 0));
      all.push(after - before);
    }
    const a = dist(perAgent);
    const b = dist(affected);
    const c = dist(all);
    console.log(`  ${pad('delta per affected agent', 44)} ${distBytes(a)}`);
    console.log(`  ${pad(`deltas to the ${HOSTS_PER_SEGMENT} affected agents`, 44)} ${distBytes(b)}`);
    console.log(`  ${pad(`all ${int(AGENTS)} agents (revision markers included)`, 44)} ${distBytes(c)} (${dec(c.p50 / AGENTS, 1)} B per agent)`);
    if (errors.length) {
      console.log(`      !! ${errors.length} write(s) failed or did not reach every agent; first: ${errors[0]}`);
    }
    this.results.bytes = { writes: BYTES_WRITES, perAffectedAgent: distJson(a), affectedAgents: distJson(b), allAgents: distJson(c), errors };
    this.results.targets.push({ name: 'bytes per change: delta per affected agent, p50', value: a.p50, unit: 'B', target: '' });
    this.results.targets.push({ name: `bytes per change: all ${int(AGENTS)} agents, p50`, value: c.p50, unit: 'B', target: '' });
  }

  private async storm(kind: 'resume' | 'fresh'): Promise<void> {
    if (aborted) {
      return;
    }
    const fresh = kind === 'fresh';
    const label = fresh ? 'forced snapshots' : 'resume';
    const timeoutMs = fresh ? SNAPSHOT_STORM_TIMEOUT_MS : RESUME_TIMEOUT_MS;
    const target = fresh ? TARGETS.snapshotStormS : TARGETS.resumeStormS;
    console.log(`\nReconnect storm, ${label}: all ${int(AGENTS)} agents drop their connection and reconnect at once${fresh ? ' with empty state (a snapshot each)' : ' with their last revision (resume)'}, each to its replica`);
    await this.quiesce();
    const rev = await this.revision();
    const hwmBefore = this.replicas.map((r) => r.ctl.memory()?.hwmKb ?? NaN);
    const usage = await this.usageStart();
    const overflows0 = listenOverflows();
    const t0 = clockMs();
    const replies = await this.gens.sync({ revision: rev, timeoutMs, connect: fresh ? 'fresh' : 'resume' });
    const overflows = listenOverflows() - overflows0;
    const u = await this.usageEnd(usage);
    const r = this.stormFigures(replies, t0);
    const pass = r.ok && r.seconds <= target;
    console.log(`  ${pad('all agents acked the current revision', 44)} ${r.ok ? `${dec(r.seconds, 2)} s` : `NO: ${int(r.synced)} of ${int(AGENTS)} within ${timeoutMs / 1000} s`}   target <= ${target} s  ${verdict(pass)}`);
    console.log(`      per agent: acked ${distText(r.times)}; first message after ${distText(r.firstMessage)}; closing and reopening the channels took up to ${dec(r.issuedMs)} ms in a load generator`);
    console.log(`      received: ${int(r.stats.snapshots)} snapshots, ${int(r.stats.deltas)} deltas (${int(r.stats.emptyDeltas)} empty), ${int(r.stats.resourcesReceived)} resources, ${bytesText(r.stats.bytes)}; stream errors ${r.stats.streamErrors}, reconnects ${r.stats.reconnects}, nacks ${r.stats.nacks}; connections dropped by full accept queues (TcpExt ListenOverflows, machine-wide) ${int(overflows)}`);
    console.log(`      ${this.usageText(u)}; load generators' event-loop delay max ${dec(r.loopMaxMs)} ms`);
    const mem = this.replicas.map((x) => x.ctl.memory());
    console.log(`      replicas' RSS after: ${mem.map((m, i) => `${String.fromCharCode(65 + i)} ${mb(m?.rssKb ?? NaN)}, peak ${dec(((m?.hwmKb ?? NaN) * 1024) / 1e6)} MB${(m?.hwmKb ?? 0) > hwmBefore[i] ? ' (new peak)' : ''}`).join('; ')}`);
    if (r.stats.streamErrors && r.lastError) {
      console.log(`      !! stream errors seen; e.g. ${r.lastError}`);
    }
    const api = await hostsInSync(this.replicas[0].client, AGENTS, performance.now(), API_CHECK_TIMEOUT_MS, () => aborted);
    console.log(`  ${pad('GET /v1/hosts: every host connected, lag 0', 44)} ${api.ok ? `yes (${dec(api.ms / 1000, 2)} s after the agents)` : `NO after ${API_CHECK_TIMEOUT_MS / 1000} s: ${int(api.connected)} connected, ${int(api.inSync)} with lag 0 of ${int(AGENTS)}`}`);
    this.results.storms.push({ label, fresh, revision: rev, ok: r.ok, allAckedS: round2(r.seconds), perAgentAckMs: distJson(r.times), firstMessageMs: distJson(r.firstMessage), received: r.stats, listenOverflows: overflows, usage: u, loadGenLoopDelayMaxMs: round2(r.loopMaxMs), rssAfterKb: mem.map((m) => m?.rssKb ?? null), hwmAfterKb: mem.map((m) => m?.hwmKb ?? null), apiInSync: api });
    this.results.targets.push({ name: `storm (${label}): all ${int(AGENTS)} in sync`, value: +r.seconds.toFixed(2), unit: 's', target: `<= ${target}`, pass });
    await this.check(`after the storm (${label})`);
    if (!r.ok) {
      throw new Error(`only ${r.synced} of ${AGENTS} agents synced within ${timeoutMs / 1000} s${r.lastError ? ` (e.g. ${r.lastError})` : ''}`);
    }
  }

  /**
   * RSS per 100,000 ports: each replica's slope between half the ports and all of them (no agent
   * connected); per 1,000 agents: its slope between half the agents in sync and all of them, per
   * agent of its own (each replica serves half). Slopes leave out what does not grow with the size
   * (code, the empty process, the first allocations).
   */
  private derive(withHalf: RssSample[], withAll: RssSample[], after: RssSample[], halfAgents: number): void {
    const stage = (name: string, i: number): number => this.results.memory.find((m) => m.stage === name && m.replica === String.fromCharCode(65 + i))?.rssKb ?? NaN;
    const halfPorts = Math.min(PORTS, Math.ceil(Math.ceil(PORTS / FILL_BATCH) / 2) * FILL_BATCH);
    console.log(`\nMemory per unit, per replica (each replica's view holds every port; each serves half the agents)`);
    const out: Record<string, unknown>[] = [];
    for (let i = 0; i < REPLICAS; i++) {
      const name = String.fromCharCode(65 + i);
      const empty = stage('at start (empty)', i);
      const half = stage(`after ${int(halfPorts)} ports, no agent connected`, i);
      const full = stage(`after ${int(PORTS)} ports, no agent connected`, i);
      const perPortsMb = ((full - half) * 1024) / 1e6 / ((PORTS - halfPorts) / 100_000);
      const ownHalf = halfAgents / REPLICAS;
      const ownAll = AGENTS / REPLICAS;
      const perAgentsMb = ((withAll[i].medianKb - withHalf[i].medianKb) * 1024) / 1e6 / ((ownAll - ownHalf) / 1_000);
      const naivePorts = ((full - empty) * 1024) / 1e6 / (PORTS / 100_000);
      const naiveAgents = ((withAll[i].medianKb - full) * 1024) / 1e6 / (ownAll / 1_000);
      console.log(`  replica ${name}: ${pad('per 100,000 ports', 20)} ${dec(perPortsMb)} MB (${int(halfPorts)} -> ${int(PORTS)} ports, no agent; from empty: ${dec(naivePorts)} MB)`);
      console.log(`  replica ${name}: ${pad('per 1,000 agents', 20)} ${dec(perAgentsMb)} MB (${int(ownHalf)} -> ${int(ownAll)} agents of its own in sync; from none: ${dec(naiveAgents)} MB)`);
      console.log(`  replica ${name}: ${pad('in sync / peak', 20)} ${dec((withAll[i].medianKb * 1024) / 1e6)} MB / ${dec((after[i].hwmKb * 1024) / 1e6)} MB (peak over the run, storms included)`);
      out.push({ replica: name, perHundredThousandPortsMb: round2(perPortsMb), perThousandAgentsMb: round2(perAgentsMb), fromEmptyPerHundredThousandPortsMb: round2(naivePorts), fromNoAgentPerThousandAgentsMb: round2(naiveAgents), inSyncMb: round2((withAll[i].medianKb * 1024) / 1e6), peakMb: round2((after[i].hwmKb * 1024) / 1e6) });
      this.results.targets.push({ name: `replica ${name} RSS, ${int(AGENTS)} agents in sync`, value: +((withAll[i].medianKb * 1024) / 1e6).toFixed(1), unit: 'MB', target: '' });
      this.results.targets.push({ name: `replica ${name} peak RSS over the run`, value: +((after[i].hwmKb * 1024) / 1e6).toFixed(1), unit: 'MB', target: '' });
      this.results.targets.push({ name: `replica ${name} RSS per 100,000 ports`, value: +perPortsMb.toFixed(1), unit: 'MB', target: '' });
      this.results.targets.push({ name: `replica ${name} RSS per 1,000 agents`, value: +perAgentsMb.toFixed(1), unit: 'MB', target: '' });
    }
    const gens = this.results.loadGenerators.find((g) => g.stage.startsWith('all '));
    if (gens) {
      const total = gens.rssKb.reduce<number>((n, kb) => n + (kb ?? 0), 0);
      console.log(`  load generators with all agents in sync: ${dec((total * 1024) / 1e6, 0)} MB in all (${dec((total * 1024) / 1e6 / (AGENTS / 1000), 0)} MB per 1,000 simulated agents)`);
    }
    this.results.derived = { replicas: out };
  }

  summary(): void {
    const targets = this.results.targets;
    if (!targets.length) {
      return;
    }
    console.log(`\nSummary (scale: ${int(AGENTS)} agents, ${int(PORTS)} ports, ${REPLICAS} replicas)`);
    for (const t of targets) {
      const value = t.unit === 'B' || t.unit === 'ports/s' ? int(t.value) : String(t.value);
      console.log(`  ${pad(t.name, 52)} ${value.padStart(9)} ${pad(t.unit, 7)} ${t.target ? `target ${pad(t.target, 6)} ${verdict(t.pass ?? false)}` : '(no target)'}`);
    }
    const withTarget = targets.filter((t) => t.target);
    const misses = withTarget.filter((t) => !t.pass).length;
    console.log(`  ${withTarget.length - misses}/${withTarget.length} targets met${misses ? ' (a miss is reported, not a failure)' : ''}`);
    if (this.results.stoppedBy) {
      console.log(`  STOPPED SHORT: ${this.results.stoppedBy}`);
    }
  }
}

async function main(): Promise<number> {
  const prefix = `bench-scale-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  redis.on('error', () => undefined);
  const refs: Refs = { replicas: [] };
  const results: Results = { meta: {}, setup: {}, fill: {}, connect: [], propagation: {}, bytes: {}, storms: [], memory: [], loadGenerators: [], derived: {}, checks: {}, targets: [], errors: [] };
  const wallStart = performance.now();

  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      await refs.gens?.disconnect();
      refs.gens?.kill();
      for (const r of refs.replicas) {
        r.client.close();
      }
      // A replica run with --cpu-prof writes its profile as it exits: time for that before a SIGKILL.
      await Promise.all(refs.replicas.map((r) => r.ctl.stop(30_000).catch(() => undefined)));
      try {
        const n = await dropPrefix(redis, prefix, 120_000);
        console.log(`\nCleanup: load generators and replicas stopped, ${int(n)} keys under {${prefix}}:* deleted`);
      } catch (err) {
        console.error(`\nCleanup: could not delete {${prefix}}:* (${(err as Error).message}); delete those keys by hand`);
      }
      redis.disconnect();
    })());

  process.on('exit', () => {
    refs.gens?.killNow();
    for (const r of refs.replicas) {
      r.ctl.killNow();
    }
  });
  const guard = guardPhase({
    name: 'scale run',
    stop: () => (aborted = true),
    cleanup,
    softMs: SOFT_DEADLINE_MS,
    hardMs: HARD_DEADLINE_MS,
    hardAction: 'killing the replicas and load generators',
  });

  const bench = new ScaleBench(prefix, redis, refs, results);
  let failed = await guard.run(() => bench.run(), {
    errors: results.errors,
    // What stopped it: the stage, and what the machine and the processes looked like then.
    onError: async (message) => {
      const gone = refs.gens?.exited ?? refs.replicas.map((r, i) => (r.ctl.running ? undefined : `replica ${String.fromCharCode(65 + i)} exited`)).find(Boolean);
      const redisMem = await redisInfoField(redis, 'memory', 'used_memory_human').catch(() => '?');
      results.stoppedBy = `${bench.stageReached}: ${message}${gone ? `; ${gone}` : ''} (free memory ${dec(os.freemem() / 2 ** 30)} GiB, load ${os.loadavg().map((l) => dec(l, 2)).join(' ')}, Redis used_memory ${redisMem})`;
      console.error(`at stage "${bench.stageReached}"`);
      for (const [i, r] of refs.replicas.entries()) {
        console.error(`replica ${String.fromCharCode(65 + i)} log (last lines):\n${r.ctl.logTail()}`);
      }
    },
  });
  bench.summary();
  if (!writeResults(OUT_FILE, results, wallStart, performance.now())) {
    failed = true;
  }
  return failed ? 1 : 0;
}

exitWith(main(), 'scale bench');
