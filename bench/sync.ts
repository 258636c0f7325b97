import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { memberId } from '../src/common/span/member.kind';
import { mirrorTapId } from '../src/common/span/mirror.kind';
import { spanKey } from '../src/common/span/span-kind';
import { ControllerProcess, redactedEnv } from './controller-process';
import { JsonHttpClient, type HttpResult } from './http-client';
import { runPool } from './pool';
import { dropPrefix, redisInfoField, redisSnapshot, type RedisSnapshot } from './redis-tools';
import { MIRROR_UDP_PORT } from '../src/controller/model/mirror-session';
import { ANY_MIRROR_SESSION, diffStats, Fleet, mirrorWatchKey, type AgentStats } from './sim-agent';
import { breakdownLines, PeakSampler, scrapeMemory, type MemoryBreakdown } from './memory-breakdown';
import { Layout } from './sync-layout';
import { benchAgentChannelOptions, dist, distBytes, distJson, distText, hostsInSync, mb, REDIS_URL, reportProblems, sampleRss, sleep, startBenchController, type Dist } from './sync-common';
import { summarise, printSummary, type HeapSummary } from './heap-summary';
import { bytesText, dec, exitWith, gitDescribe, int, machineCpu, pad, ROOT, round2, verdict, writeResults } from './report';
import { listenOverflows } from './proc-stats';
import { guardPhase } from './phase-guard';

/*
 * overlayd distribution benchmark: `npm run bench` (after the REST benchmark) or `npm run bench:sync`.
 *
 * The controller runs as a child process (dist/src/controller/main.js) against the shared Redis
 * under a key prefix of its own; this process hosts 1,000 simulated agents (bench/sim-agent.ts:
 * the real protocol over @grpc/grpc-js, one TCP connection each, state in Maps, every snapshot
 * and delta acked once applied) and the HTTP client that writes through the REST API, with a
 * bearer token this run makes and gives the controller as its first admin token
 * (OVERLAY_BOOTSTRAP_TOKEN).
 *
 * The deployment: 1,000 segments of 100 bound ports (100,000 ports). 999 regular hosts each hold
 * ports on ~10 segments (each segment's 99 other ports spread over 10 of them: a span of ~1,000
 * entries); one big host holds a port on every segment (a span of ~101,000 entries).
 *
 * Security groups: every port is in a CIDR-only group; 10,000 of them (every tenth, on regular
 * hosts) are also in group G, 1,000 in group G1k (neither has rules). Last, group R, whose rules
 * name G and G1k as peers (remoteGroupId), is put on one port of each of 20 regular hosts, which
 * then hold both IP sets.
 *
 * Measured: propagation of single-port writes (HTTP answer -> every affected agent applied the
 * delta; also with ?wait=realized, and by polling GET /v1/ports/{id}); live migrations (prepare,
 * then commit: commit answer -> every agent of the segment applied the new binding); the big host's snapshot
 * (Hello -> Ack, bytes); a reconnect storm of all 1,000 agents (resume, then forced snapshots);
 * the controller's memory; last, membership changes (a port added to or removed from G or G1k:
 * HTTP answer -> every host referencing the group applied it, and the bytes of that delta); then a
 * mirror session over 1,000 source ports (one per segment: on 999 hosts) to an analyzer port,
 * created and deleted alternately (request -> every host of a source and the sink's host applied
 * it, and the bytes), and the mirror taps every agent holds checked against the layout.
 * Figures are printed and written to .bench-out/sync.json. A missed target is reported, never
 * turned into a failing exit code; only a broken run exits non-zero.
 * Everything under the key prefix is deleted at the end, also after an error or Ctrl-C.
 *
 * Environment: REDIS_URL; BENCH_CONTROLLER_SCRIPT (another build, A/B); BENCH_CONTROLLER_NODE_ARGS
 * (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"); BENCH_CONTROLLER_ENV (extra variables for the
 * controller only, "NAME=value ..."); BENCH_AGENT_FLOW_CONTROL_WINDOW (bytes: sets the
 * simulated agents' HTTP/2 window, 'grpc-node.flow_control_window'; default: grpc-js's, as the
 * real agent).
 */

const OUT_FILE = path.join(ROOT, '.bench-out', 'sync.json');

const SEGMENTS = 1_000;
const REGULAR_HOSTS = 999;
/** The big host's index (agents and hosts share indexes). */
const BIG = REGULAR_HOSTS;
const AGENTS = REGULAR_HOSTS + 1;
const PORTS_PER_SEGMENT = 100;
const REGULAR_HOSTS_PER_SEGMENT = 10;
/**
 * Ports per POST /v1/ports/batch in the fill. Not the 10,000 OVERLAY_MAX_BATCH_SIZE allows: at 9
 * script arguments per port, a 10,000-port batch overflows the call stack in ioredis (spread
 * arguments with auto-pipelining) and crashes the controller; see the report. 2,000 stays clear.
 */
const FILL_BATCH = 2_000;
const FILL_IN_FLIGHT = 2;

const PLAIN_WRITES = 300;
const PLAIN_RATE = 20;
const WAIT_WRITES = 100;
const WAIT_RATE = 10;
const POLL_WRITES = 50;
const POLL_RATE = 5;
const POLL_INTERVAL_MS = 5;
const MAX_WRITES_IN_FLIGHT = 8;
/** A write whose delta has not reached every affected agent by then counts as lost. */
const WRITE_TIMEOUT_MS = 5_000;
/** Group G: fill ports j % 10 === 5 (every tenth, never on the big host); group G1k: fill ports j === 3. */
const MEMBER_GROUP_SIZE = SEGMENTS * (PORTS_PER_SEGMENT / 10);
const SMALL_GROUP_SIZE = SEGMENTS;
/** Regular hosts given a port in group R (rules naming G and G1k as peers): each holds both IP sets. */
const REF_HOSTS = 20;
/** Live migrations (prepare, then commit), one at a time, each of a fill port to another host of its segment. */
const MIGRATIONS = 30;
/** Membership changes (PATCH securityGroupIds), alternately adding a port to a group and removing it. */
const MEMBER_CHANGES = 60;
const SMALL_MEMBER_CHANGES = 20;
const MEMBER_RATE = 10;
const SNAPSHOT_RUNS = 3;
/**
 * BENCH_TIMEOUT_SCALE (default 1) stretches the waits below and the run's deadlines, for a machine
 * shared with other work where the storms cannot finish in time; the figures then say so.
 */
const TIMEOUT_SCALE = Math.max(1, Number(process.env.BENCH_TIMEOUT_SCALE ?? '') || 1);
const SNAPSHOT_TIMEOUT_MS = 20_000 * TIMEOUT_SCALE;
const STORM_TIMEOUT_MS = 40_000 * TIMEOUT_SCALE;
const API_CHECK_TIMEOUT_MS = 10_000;
/** The steady-state RSS is the median of samples over this long, all agents in sync. */
const RSS_SAMPLE_MS = 3_000;
/**
 * The mirror phase: the sources are fill port j = MIRROR_SOURCE_J of every segment (plain: in
 * neither G nor G1k; never migrated, those are j % 10 === 2; not toggled by the membership
 * phase, j = 7 and 8), so 1,000 ports on 999 hosts; the analyzer port is a new port of segment
 * MIRROR_SEGMENT bound to that segment's first regular host (which holds a source too).
 */
const MIRROR_SOURCE_J = 4;
const MIRROR_SEGMENT = 0;
/** Creates and deletes, alternately, one at a time with every agent idle in between; then one more create, left for the check. */
const MIRROR_CHANGES = 20;
/** After this long the run stops starting new work and cleans up; the hard limit kills it. */
const SOFT_DEADLINE_MS = 240_000 * TIMEOUT_SCALE;
const HARD_DEADLINE_MS = 275_000 * TIMEOUT_SCALE;
/** BENCH_SYNC_MEMORY_ONLY=1: stop after the memory figures (skips membership, mirrors, audit). */
const MEMORY_ONLY = process.env.BENCH_SYNC_MEMORY_ONLY === '1';
/**
 * BENCH_HEAP_SNAPSHOT=1: the controller runs with --heapsnapshot-signal=SIGUSR2 and writes a heap
 * snapshot once every agent is in sync (after the steady RSS is sampled: writing one takes about
 * the heap's size again, so the peak figures of such a run are not the controller's own); the
 * bench summarises it at the end (heap-summary.ts). For finding where memory goes, not for figures.
 */
const HEAP_SNAPSHOT = process.env.BENCH_HEAP_SNAPSHOT === '1';
const HEAP_SNAPSHOT_DIR = path.join(os.tmpdir(), 'overlay-bench-heap');

const TARGETS = {
  propagationP99Ms: 100,
  migrationP99Ms: 150,
  memberChangeP99Ms: 100,
  /** A mirror session over 1,000 sources, create request -> every agent of a source and the sink applied it (as propagation). */
  mirrorCreateP99Ms: 100,
  /** Bytes per referencing agent for one change, group of 10,000 / group of 1,000 (p50): constant size. */
  memberBytesRatio: 1.1,
  snapshotAckMs: 1_000,
  stormSeconds: 10,
  /** GET /v1/audit over the whole state (100,000 ports, 1,000 hosts and agents): the checks and the history's recording. */
  auditMs: 2_000,
  rssMB: 250,
  /** The issue's peak: what the storms may take above the steady state. */
  peakRssMB: 300,
};

/** GET /v1/audit calls measured (the first records every finding as opened, the next ones only what changed). */
const AUDIT_CALLS = 5;

let aborted = false;

interface WritePlan {
  kind: 'create' | 'bind';
  segment: number;
  host: number;
  mac: string;
  ip: string;
  /** For a bind: the unbound port created during setup. */
  portId?: string;
}

interface WriteResult {
  kind: WritePlan['kind'];
  status: number;
  error?: string;
  /** Request sent -> HTTP answer. */
  httpMs: number;
  /** HTTP answer -> last affected agent applied the delta (negative: all had it before the answer). */
  lastFromResponseMs: number;
  /** Request sent -> first / last affected agent applied. */
  firstFromSendMs: number;
  lastFromSendMs: number;
  agentsExpected: number;
  agentsApplied: number;
  unexpected: number;
  /** ?wait=realized: the `realized` field of the answer. */
  realized?: boolean;
  /** GET polling: HTTP answer -> first GET saying realized. */
  pollRealizedFromResponseMs?: number;
  polls?: number;
}

/** One membership change: fill port `fill` added to (or removed from) `groupId`, leaving it with `groups`. */
interface MemberChange {
  fill: number;
  groupId: string;
  add: boolean;
  groups: string[];
}

/** One write whose deltas the fleet watches (Bench.watchedWrite), one at a time. */
interface WatchedWrite {
  error?: string;
  httpMs: number;
  /** HTTP answer -> last expected agent applied (negative: all had it before the answer). */
  lastFromResponseMs: number;
  /** Request sent -> last expected agent applied. */
  lastFromSendMs: number;
  agentsExpected: number;
  agentsApplied: number;
  unexpected: number;
  /** Revision of the delta that carried the write. */
  revision: number;
  /** Bytes of that SyncResponse{delta} per expected agent, and its upserts + removals. */
  bytes: number[];
  entries: number[];
}

interface MemberChangeResult extends WatchedWrite {
  add: boolean;
}

// ---------------------------------------------------------------------------------------------

interface Refs {
  ctl?: ControllerProcess;
  client?: JsonHttpClient;
  fleet?: Fleet;
}

interface Results {
  meta: Record<string, unknown>;
  setup: Record<string, unknown>;
  snapshot: Record<string, unknown>;
  propagation: Record<string, unknown>;
  storms: Record<string, unknown>[];
  membership: Record<string, unknown>;
  mirror: Record<string, unknown>;
  audit: Record<string, unknown>;
  migration: Record<string, unknown>;
  memory: { stage: string; rssKb: number | null; hwmKb: number | null }[];
  memoryBreakdown: ({ stage: string } & MemoryBreakdown)[];
  heapSnapshot?: { file: string; summary?: HeapSummary };
  checks: Record<string, unknown>;
  targets: { name: string; value: number; target: string; pass: boolean }[];
  errors: string[];
}

interface Usage {
  wallS: number;
  controllerCpuPct: number;
  benchCpuPct: number;
  redisCpuPct: number;
  /** Busy time of the whole machine (100% = one core), and what is left for processes other than these three. */
  machineCpuPct: number;
  otherCpuPct: number;
  /** This process's event-loop delay: a stall here delays the agents' timestamps, not the controller. */
  benchLoopDelayP99Ms: number;
  benchLoopDelayMaxMs: number;
}

/** This process's event-loop delay, reset at the start of each measured phase. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });

interface UsageStart {
  t: number;
  ctl: number;
  self: NodeJS.CpuUsage;
  redis: RedisSnapshot;
  machine: { busy: number; total: number };
}

class Bench {
  private readonly layout = new Layout({ segments: SEGMENTS, regularHosts: REGULAR_HOSTS, portsPerSegment: PORTS_PER_SEGMENT, hostsPerSegment: REGULAR_HOSTS_PER_SEGMENT, bigHost: true, refHosts: REF_HOSTS, name: 'sync' });
  private readonly fleet = new Fleet();
  private client!: JsonHttpClient;
  private ctl!: ControllerProcess;
  private peakSampler?: PeakSampler;
  private readonly revisionKey: string;

  constructor(
    private readonly prefix: string,
    private readonly redis: Redis,
    private readonly refs: Refs,
    private readonly results: Results,
  ) {
    this.revisionKey = `{${prefix}}:rev`;
    refs.fleet = this.fleet;
  }

  private async revision(): Promise<number> {
    return Number((await this.redis.get(this.revisionKey)) ?? 0);
  }

  private memory(stage: string, print = true): { rssKb: number; hwmKb: number } {
    const m = this.ctl.memory() ?? { rssKb: NaN, hwmKb: NaN };
    this.results.memory.push({ stage, rssKb: Number.isFinite(m.rssKb) ? m.rssKb : null, hwmKb: Number.isFinite(m.hwmKb) ? m.hwmKb : null });
    if (print) {
      console.log(`  controller RSS ${stage}: ${mb(m.rssKb)}, peak so far ${mb(m.hwmKb)}`);
    }
    return m;
  }

  /** The controller's memory by part (its /metrics), printed and kept in the results. */
  private async breakdown(stage: string, given?: MemoryBreakdown): Promise<void> {
    const m = given ?? (await scrapeMemory(this.client));
    if (!m) {
      console.log(`  memory breakdown ${stage}: /metrics did not answer`);
      return;
    }
    this.results.memoryBreakdown.push({ stage, ...m });
    console.log(`  memory breakdown ${stage}:`);
    for (const line of breakdownLines(m)) {
      console.log(line);
    }
  }

  /** Has the controller write a heap snapshot (BENCH_HEAP_SNAPSHOT=1) and waits until it is written. */
  private async heapSnapshot(): Promise<void> {
    const before = new Set(readdirSync(HEAP_SNAPSHOT_DIR));
    this.ctl.signal('SIGUSR2');
    const deadline = performance.now() + 120_000;
    let file: string | undefined;
    while (!file && performance.now() < deadline) {
      await sleep(500);
      file = readdirSync(HEAP_SNAPSHOT_DIR).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    }
    // Written on the controller's main thread: once it answers again, the file is complete.
    await scrapeMemory(this.client);
    if (file) {
      this.results.heapSnapshot = { file: path.join(HEAP_SNAPSHOT_DIR, file) };
      console.log(`  heap snapshot written: ${this.results.heapSnapshot.file} (summarised at the end of the run)`);
    } else {
      console.log('  !! no heap snapshot appeared within 120 s');
    }
  }

  /** Summarises the heap snapshot, if one was taken (after the run: parsing one takes several times its size). */
  heapSummary(): void {
    const snap = this.results.heapSnapshot;
    if (snap) {
      console.log(`\nHeap snapshot of the controller with ${AGENTS} agents in sync (${snap.file})`);
      snap.summary = summarise(snap.file, 30);
      printSummary(snap.summary);
    }
  }

  private async usageStart(): Promise<UsageStart> {
    loopDelay.enable();
    loopDelay.reset();
    return { redis: await redisSnapshot(this.redis), t: performance.now(), ctl: this.ctl.cpuSeconds(), self: process.cpuUsage(), machine: machineCpu() };
  }

  private async usageEnd(start: UsageStart, until = performance.now()): Promise<Usage> {
    const wallS = (until - start.t) / 1000;
    const self = process.cpuUsage(start.self);
    const ctl = this.ctl.cpuSeconds();
    const machine = machineCpu();
    const redis = await redisSnapshot(this.redis);
    const controllerCpuPct = ((ctl - start.ctl) / wallS) * 100;
    const benchCpuPct = ((self.user + self.system) / 1e6 / wallS) * 100;
    const redisCpuPct = ((redis.cpuSeconds - start.redis.cpuSeconds) / wallS) * 100;
    const machineCpuPct = machine.total > start.machine.total ? ((machine.busy - start.machine.busy) / (machine.total - start.machine.total)) * 100 * os.cpus().length : NaN;
    return {
      wallS,
      controllerCpuPct,
      benchCpuPct,
      redisCpuPct,
      machineCpuPct,
      otherCpuPct: Math.max(0, machineCpuPct - controllerCpuPct - benchCpuPct - redisCpuPct),
      benchLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      benchLoopDelayMaxMs: loopDelay.max / 1e6,
    };
  }

  private usageText(u: Usage): string {
    return `CPU over ${dec(u.wallS, 2)} s (100% = one core): controller ${int(u.controllerCpuPct)}%, simulated agents + HTTP client ${int(u.benchCpuPct)}%, redis ${int(u.redisCpuPct)}%, other processes ~${int(u.otherCpuPct)}% (machine ${int(u.machineCpuPct)}% of ${os.cpus().length * 100}%); this process's event-loop delay p99 ${dec(u.benchLoopDelayP99Ms)} ms, max ${dec(u.benchLoopDelayMaxMs)} ms`;
  }

  /** Waits until every connected agent has acked the current revision (markers bring idle ones up to it within 250 ms). */
  private async quiesce(timeoutMs = 10_000): Promise<boolean> {
    const rev = await this.revision();
    const members = this.fleet.agents.filter((a) => a.connected);
    this.fleet.setSyncTarget(rev, members);
    this.fleet.countAlreadySynced(performance.now());
    const ok = await this.fleet.waitSynced(timeoutMs);
    if (!ok) {
      console.log(`  !! only ${int(this.fleet.synced - (AGENTS - members.length))} of ${members.length} connected agents acked revision ${rev} within ${timeoutMs} ms`);
    }
    return ok;
  }

  async run(): Promise<void> {
    const redisVersion = await redisInfoField(this.redis, 'server', 'redis_version');
    const commit = gitDescribe();
    this.results.meta = { startedAt: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', redisVersion, keyPrefix: this.prefix, commit };
    console.log(`overlayd sync benchmark — commit ${commit}, node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Redis ${redisVersion}, key prefix {${this.prefix}}`);
    console.log(`Controller (child process), Redis and this process (${AGENTS} simulated agents + the HTTP client) share the machine: every figure is end to end on it.`);

    await this.startController();
    await this.setup();
    await this.connectRegularAgents();
    await this.bigSnapshot();
    await this.propagation();
    await this.migrations();
    await this.quiesce();
    const steady = await sampleRss(this.ctl, RSS_SAMPLE_MS);
    this.results.memory.push({ stage: `${AGENTS} agents in sync, median of ${steady.samples} samples over ${RSS_SAMPLE_MS / 1000} s`, rssKb: steady.medianKb, hwmKb: steady.hwmKb });
    console.log(`\nController RSS with ${AGENTS} agents connected and in sync, idle but for revision markers: median ${mb(steady.medianKb)} over ${RSS_SAMPLE_MS / 1000} s (range ${dec((steady.minKb * 1024) / 1e6)}-${dec((steady.maxKb * 1024) / 1e6)} MB)`);
    await this.breakdown(`with ${AGENTS} agents in sync`);
    if (HEAP_SNAPSHOT) {
      await this.heapSnapshot();
    }
    await this.storm('resume', false);
    await this.storm('forced snapshots', true);
    await sleep(1_000);
    const after = this.memory('1 s after the storms');
    await this.breakdown('1 s after the storms');
    this.peakSampler?.stop();
    if (this.peakSampler?.peak) {
      await this.breakdown('at the largest RSS sampled (every 2 s) up to now', this.peakSampler.peak);
    }
    const steadyMB = (steady.medianKb * 1024) / 1e6;
    this.results.targets.push({ name: `controller RSS, ${AGENTS} agents in sync (MB)`, value: +steadyMB.toFixed(1), target: `<= ${TARGETS.rssMB}`, pass: steadyMB <= TARGETS.rssMB });
    this.results.targets.push({
      name: 'controller peak RSS over the run (MB)',
      value: +((after.hwmKb * 1024) / 1e6).toFixed(1),
      target: `<= ${TARGETS.peakRssMB}`,
      pass: (after.hwmKb * 1024) / 1e6 <= TARGETS.peakRssMB,
    });
    console.log(`\nController memory at ${int(SEGMENTS * PORTS_PER_SEGMENT)} ports, ${int(SEGMENTS)} segments, ${AGENTS} agents`);
    console.log(`  ${pad('RSS with every agent in sync (median)', 44)} ${mb(steady.medianKb)}   target <= ${TARGETS.rssMB} MB  ${verdict(steadyMB <= TARGETS.rssMB)}`);
    console.log(`  ${pad('peak RSS (VmHWM) over the run', 44)} ${mb(after.hwmKb)}   target <= ${TARGETS.peakRssMB} MB  ${verdict((after.hwmKb * 1024) / 1e6 <= TARGETS.peakRssMB)}`);
    console.log(`  ${pad('RSS 1 s after the storms', 44)} ${mb(after.rssKb)}`);
    console.log(`  this process (${AGENTS} agents' state): RSS ${dec(process.memoryUsage().rss / 1e6)} MB`);
    if (MEMORY_ONLY) {
      console.log('\nBENCH_SYNC_MEMORY_ONLY=1: membership, mirrors and audit skipped');
      return;
    }
    // Last: it leaves REF_HOSTS hosts holding two IP sets, which would change the snapshots and storms above.
    await this.membership();
    await this.mirrors();
    await this.audit();
  }

  /**
   * GET /v1/audit at this scale (every port, host and agent above): the 13 checks run on the
   * controller's event loop in turns and the history is recorded; and a page of the history.
   */
  private async audit(): Promise<void> {
    console.log('\nAudit (GET /v1/audit: the 13 checks over the whole state, recorded in the findings history)');
    const timed: number[] = [];
    let findings = 0;
    for (let i = 0; i < AUDIT_CALLS; i++) {
      const t0 = performance.now();
      const report = await this.client.json<{ recommendations: { findings: unknown[] }[] }>('GET', '/v1/audit');
      timed.push(performance.now() - t0);
      findings = report.recommendations.reduce((n, r) => n + r.findings.length, 0);
    }
    const t0 = performance.now();
    await this.client.json('GET', '/v1/audit/findings?limit=100');
    const pageMs = performance.now() - t0;
    const d = dist(timed);
    const pass = d.p50 <= TARGETS.auditMs;
    console.log(`  ${pad(`GET /v1/audit, ${AUDIT_CALLS} calls (${int(findings)} findings)`, 44)} ${distText(d)}   target p50 <= ${int(TARGETS.auditMs)} ms  ${verdict(pass)}`);
    console.log(`  ${pad('GET /v1/audit/findings?limit=100', 44)} ${dec(pageMs)} ms`);
    this.results.audit = { calls: AUDIT_CALLS, findings, ms: distJson(d), findingsPageMs: +pageMs.toFixed(1) };
    this.results.targets.push({ name: 'GET /v1/audit at this scale (ms, p50)', value: +d.p50.toFixed(1), target: `<= ${TARGETS.auditMs}`, pass });
  }

  private async startController(): Promise<void> {
    const started = await startBenchController({ prefix: this.prefix, extraNodeArgs: HEAP_SNAPSHOT ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${HEAP_SNAPSHOT_DIR}`] : [] });
    const { script, nodeArgs, env, httpPort, grpcPort, extraEnv } = started;
    this.ctl = started.ctl;
    this.refs.ctl = this.ctl;
    this.client = started.client;
    this.refs.client = this.client;
    this.peakSampler = new PeakSampler(this.client);
    this.peakSampler.start();
    const target = `127.0.0.1:${grpcPort}`;
    const channelOptions = benchAgentChannelOptions();
    for (let h = 0; h < AGENTS; h++) {
      this.fleet.add(this.layout.hostName(h), this.layout.vtepIp(h), target, channelOptions);
    }
    this.results.setup = { controller: { pid: this.ctl.pid, script: path.relative(ROOT, script), nodeArgs, httpPort, grpcPort, env: redactedEnv(env) }, agentChannelOptions: channelOptions };
    console.log(`\nController: ${path.relative(ROOT, script)} pid ${this.ctl.pid}, HTTP :${httpPort}, gRPC :${grpcPort} (insecure)${nodeArgs.length ? `, node ${nodeArgs.join(' ')}` : ''}${extraEnv ? `, env ${extraEnv}` : ''}`);
    this.memory('at start');
  }

  // --- setup -----------------------------------------------------------------------------------

  private async setup(): Promise<void> {
    const { layout, client } = this;
    console.log(`\nSetup: ${int(SEGMENTS)} segments x ${PORTS_PER_SEGMENT} bound ports = ${int(SEGMENTS * PORTS_PER_SEGMENT)} ports; ${REGULAR_HOSTS} regular hosts (${REGULAR_HOSTS_PER_SEGMENT} per segment, ~${REGULAR_HOSTS_PER_SEGMENT} segments each) + 1 big host (a port on every segment)`);
    const t0 = performance.now();
    const tenant = await client.json<{ id: string }>('POST', '/v1/tenants', { name: 'sync-bench' });
    layout.tenantId = tenant.id;
    const web = await client.json<{ id: string }>('POST', '/v1/security-groups', {
      tenantId: tenant.id,
      name: 'sync-web',
      rules: [
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80, portRangeMax: 80 },
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteCidr: '10.0.0.0/8' },
        { direction: 'egress', ethertype: 'IPv4', protocol: 'any' },
      ],
    });
    layout.groupIds = [web.id];
    // G and G1k: membership only (no rules); R: ingress from their members, put on ports in the membership phase.
    const groupOf = async (name: string, rules: unknown[]): Promise<string> => (await client.json<{ id: string }>('POST', '/v1/security-groups', { tenantId: tenant.id, name, rules })).id;
    layout.memberGroupId = await groupOf('sync-members-10k', []);
    layout.smallGroupId = await groupOf('sync-members-1k', []);
    layout.peerGroupId = await groupOf('sync-peers', [
      { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 5432, portRangeMax: 5432, remoteGroupId: layout.memberGroupId },
      { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 6379, portRangeMax: 6379, remoteGroupId: layout.smallGroupId },
    ]);
    const segments = await runPool({
      count: SEGMENTS,
      concurrency: 16,
      maxMs: 30_000,
      maxErrors: 3,
      shouldStop: () => aborted,
      task: async (s) => {
        layout.segmentIds[s] = (await client.json<{ id: string }>('POST', '/v1/segments', { tenantId: tenant.id, name: `sync-${s}`, cidr: layout.cidr(s) })).id;
        return 1;
      },
    });
    const hosts = await runPool({
      count: AGENTS,
      concurrency: 16,
      maxMs: 30_000,
      maxErrors: 3,
      shouldStop: () => aborted,
      task: async (h) => {
        layout.hostIds[h] = (await client.json<{ id: string }>('POST', '/v1/hosts', { name: layout.hostName(h), vtepIp: layout.vtepIp(h) })).id;
        return 1;
      },
    });
    if (segments.items !== SEGMENTS || hosts.items !== AGENTS) {
      throw new Error(`setup: ${segments.items}/${SEGMENTS} segments, ${hosts.items}/${AGENTS} hosts created (${segments.firstError ?? hosts.firstError ?? 'stopped'})`);
    }
    const tSegHosts = performance.now();

    // 100,000 bound ports, segment by segment, in batches of FILL_BATCH.
    const total = SEGMENTS * PORTS_PER_SEGMENT;
    const bodies: string[] = [];
    for (let first = 0; first < total; first += FILL_BATCH) {
      const ports = [];
      for (let n = first; n < Math.min(total, first + FILL_BATCH); n++) {
        const port = layout.fillPort(Math.floor(n / PORTS_PER_SEGMENT), n % PORTS_PER_SEGMENT);
        this.fillIps[n] = port.ips[0];
        ports.push(port);
      }
      bodies.push(JSON.stringify({ ports }));
    }
    const tFill = performance.now();
    const fill = await runPool({
      count: bodies.length,
      concurrency: FILL_IN_FLIGHT,
      maxMs: 90_000,
      maxErrors: 2,
      shouldStop: () => aborted,
      task: async (i) => {
        // The ids are kept for the membership phase (the answer lists the ports in request order).
        const answer = await client.json<{ items: { id: string }[] }>('POST', '/v1/ports/batch', bodies[i]);
        answer.items.forEach((port, k) => (this.fillIds[i * FILL_BATCH + k] = port.id));
        return FILL_BATCH;
      },
    });
    if (fill.errors || fill.items !== total) {
      throw new Error(`filling ports failed (${fill.items}/${total}): ${fill.firstError ?? fill.stoppedBy ?? ''}`);
    }
    const fillMs = performance.now() - tFill;
    for (let s = 0; s < SEGMENTS; s++) {
      layout.bound[s] = PORTS_PER_SEGMENT;
    }

    // Unbound ports for the bind writes (they are in no span until bound).
    const plans = this.planWrites(PLAIN_WRITES + WAIT_WRITES + POLL_WRITES);
    const binds = plans.filter((p) => p.kind === 'bind');
    const created = await client.json<{ items: { id: string; mac: string }[] }>('POST', '/v1/ports/batch', {
      ports: binds.map((p) => ({ segmentId: layout.segmentIds[p.segment], mac: p.mac, ips: [p.ip], vmId: `vm-bind-${p.mac}`, securityGroupIds: layout.groupIds })),
    });
    created.items.forEach((item, i) => (binds[i].portId = item.id));
    this.plans = plans;

    const stored = await this.redis.hlen(`{${this.prefix}}:ports`);
    console.log(`  ${pad('segments and hosts', 44)} ${int(SEGMENTS)} + ${int(AGENTS)} in ${dec((tSegHosts - t0) / 1000, 2)} s`);
    console.log(`  ${pad(`ports (POST /v1/ports/batch, ${int(FILL_BATCH)}/call, ${FILL_IN_FLIGHT} in flight)`, 44)} ${int(total)} in ${dec(fillMs / 1000, 2)} s (${int((total * 1000) / fillMs)} ports/s), + ${binds.length} unbound ports for the bind writes; ${int(stored)} stored`);
    const spans = layout.expectedSpans();
    const regular = dist(Array.from(spans.subarray(0, REGULAR_HOSTS)));
    console.log(`  ${pad('expected spans (segments + ports)', 44)} regular hosts p50 ${int(regular.p50)}, max ${int(regular.max)}; big host ${int(spans[BIG])}`);
    this.results.setup = { ...this.results.setup, segments: SEGMENTS, hosts: AGENTS, ports: total, unboundForBinds: binds.length, portsStored: stored, fillMs: Math.round(fillMs), regularSpan: distJson(regular), bigSpan: spans[BIG] };
    this.memory(`after the fill (${int(stored)} ports, no agent connected)`);
    await this.breakdown('after the fill');
  }

  private plans: WritePlan[] = [];
  /** Id and address of each fill port (n = segment * PORTS_PER_SEGMENT + j). */
  private readonly fillIds: string[] = [];
  /** Fill ports the migration phase moved off their fill host. */
  private readonly migrated = new Set<number>();
  private readonly fillIps: string[] = [];

  /** Writes spread over the segments (stride 337), alternating creates and binds, on a host already on the segment. */
  private planWrites(count: number): WritePlan[] {
    return Array.from({ length: count }, (_, k) => {
      const segment = (k * 337 + 11) % SEGMENTS;
      const host = this.layout.regularHostsOf(segment)[k % REGULAR_HOSTS_PER_SEGMENT];
      return { kind: k % 2 === 0 ? 'create' : 'bind', segment, host, mac: this.layout.nextMac(), ip: this.layout.nextAddress(segment) };
    });
  }

  // --- connect the regular agents ------------------------------------------------------------------

  private async connectRegularAgents(): Promise<void> {
    const regular = this.fleet.agents.slice(0, REGULAR_HOSTS);
    const rev = await this.revision();
    console.log(`\nConnecting the ${REGULAR_HOSTS} regular agents at once (fresh: a snapshot each)`);
    const usage = await this.usageStart();
    this.fleet.setSyncTarget(rev, regular);
    const t0 = performance.now();
    for (const agent of regular) {
      agent.connect(true);
    }
    const ok = await this.fleet.waitSynced(STORM_TIMEOUT_MS);
    const times = dist(this.fleet.syncTimes(regular).map((t) => t - t0));
    const u = await this.usageEnd(usage);
    const totals = this.fleet.totals(regular);
    console.log(
      `  ${pad('all acked their snapshot', 44)} ${ok ? `${dec(times.max / 1000, 2)} s` : `NO: ${this.fleet.synced - 1} of ${REGULAR_HOSTS} within ${STORM_TIMEOUT_MS / 1000} s`}; per agent ${distText(times)}`,
    );
    console.log(`      ${int(totals.resourcesReceived)} resources, ${bytesText(totals.bytes)} received; stream errors ${totals.streamErrors}, nacks ${totals.nacks}`);
    console.log(`      ${this.usageText(u)}`);
    this.results.setup = { ...this.results.setup, initialConnect: { ok, syncMs: distJson(times), resources: totals.resourcesReceived, bytes: totals.bytes, usage: u } };
    if (!ok) {
      throw new Error('the regular agents did not all sync');
    }
    this.memory(`with ${REGULAR_HOSTS} agents connected`);
  }

  // --- 2. the big host's snapshot ------------------------------------------------------------------

  private async bigSnapshot(): Promise<void> {
    const big = this.fleet.agents[BIG];
    console.log(`\nSnapshot of ${int(this.layout.expectedSpans()[BIG])} entries: the big host connects fresh (Hello -> SnapshotEnd applied -> Ack), ${SNAPSHOT_RUNS} runs`);
    console.log('  Each run follows a write (a tenant created), so the controller encodes every resource anew, as it would in a live deployment.');
    const runs: Record<string, number>[] = [];
    for (let run = 1; run <= SNAPSHOT_RUNS && !aborted; run++) {
      await this.client.json('POST', '/v1/tenants', { name: `sync-bump-${run}` });
      await this.quiesce();
      const rev = await this.revision();
      const before: AgentStats = { ...big.stats };
      const c0 = this.ctl.cpuSeconds();
      this.fleet.setSyncTarget(rev, [big]);
      loopDelay.enable();
      loopDelay.reset();
      big.connect(true);
      const ok = await this.fleet.waitSynced(SNAPSHOT_TIMEOUT_MS);
      const cpu = this.ctl.cpuSeconds() - c0;
      const d = diffStats(big.stats, before);
      const r = {
        ok: ok ? 1 : 0,
        resources: big.snapshotResources,
        chunks: d.chunks,
        bytes: d.bytes,
        firstMessageMs: big.firstMessageAt - big.helloAt,
        snapshotEndMs: big.snapshotEndAt - big.helloAt,
        ackMs: ok ? big.snapshotAckAt - big.helloAt : NaN,
        controllerCpuS: cpu,
        spanHeld: big.spanSize,
        benchLoopDelayMaxMs: loopDelay.max / 1e6,
      };
      runs.push(r);
      console.log(
        `  run ${run}: ${ok ? `acked after ${dec(r.ackMs)} ms` : `NOT acked within ${SNAPSHOT_TIMEOUT_MS} ms (${big.lastError ?? ''})`}; first chunk after ${dec(r.firstMessageMs)} ms, SnapshotEnd after ${dec(r.snapshotEndMs)} ms; ${int(r.resources)} resources in ${r.chunks} chunks, ${bytesText(r.bytes)} received (${dec(r.bytes / Math.max(1, r.resources))} B/resource); controller CPU ${dec(cpu, 2)} s; this process's event-loop delay max ${dec(r.benchLoopDelayMaxMs)} ms`,
      );
      if (!ok) {
        throw new Error('the big host did not sync');
      }
      if (run < SNAPSHOT_RUNS) {
        big.disconnect();
        await sleep(200);
      }
    }
    const acks = dist(runs.map((r) => r.ackMs));
    const pass = acks.p50 <= TARGETS.snapshotAckMs;
    console.log(`  ${pad('Hello -> Ack (median of runs)', 44)} ${dec(acks.p50)} ms (worst ${dec(acks.max)} ms)   target <= ${int(TARGETS.snapshotAckMs)} ms  ${verdict(pass)}`);
    this.results.snapshot = { runs, ackMs: distJson(acks) };
    this.results.targets.push({ name: '100k-entry snapshot Hello -> Ack (ms, median)', value: +acks.p50.toFixed(1), target: `<= ${TARGETS.snapshotAckMs}`, pass });
    this.memory(`with all ${AGENTS} agents connected`);
  }

  // --- 1. propagation ----------------------------------------------------------------------------

  private async write(plan: WritePlan, mode: 'plain' | 'wait' | 'poll'): Promise<WriteResult> {
    const { layout, client } = this;
    const expected = new Set(layout.hostsOf(plan.segment));
    const watch = this.fleet.watch(plan.mac, expected);
    const query = mode === 'wait' ? `?wait=realized&timeout=${WRITE_TIMEOUT_MS}` : '';
    const result: WriteResult = {
      kind: plan.kind,
      status: 0,
      httpMs: NaN,
      lastFromResponseMs: NaN,
      firstFromSendMs: NaN,
      lastFromSendMs: NaN,
      agentsExpected: expected.size,
      agentsApplied: 0,
      unexpected: 0,
    };
    const t0 = performance.now();
    try {
      const res =
        plan.kind === 'create'
          ? await client.request('POST', `/v1/ports${query}`, { segmentId: layout.segmentIds[plan.segment], mac: plan.mac, ips: [plan.ip], vmId: `vm-${plan.mac}`, hostId: layout.hostIds[plan.host], securityGroupIds: layout.groupIds }, { keepBody: true })
          : await client.request('PATCH', `/v1/ports/${plan.portId}${query}`, { hostId: layout.hostIds[plan.host] }, { keepBody: true });
      const tResponse = performance.now();
      result.status = res.status;
      result.httpMs = tResponse - t0;
      if (res.status < 200 || res.status >= 300) {
        result.error = `HTTP ${res.status} ${res.text.slice(0, 200)}`;
        return result;
      }
      layout.bound[plan.segment]++;
      const body = JSON.parse(res.text) as { id: string; realized?: boolean };
      result.realized = body.realized;
      if (mode === 'poll') {
        let polls = 0;
        while (performance.now() - t0 < WRITE_TIMEOUT_MS) {
          polls++;
          const port = await client.json<{ realized: boolean }>('GET', `/v1/ports/${body.id}`);
          if (port.realized) {
            result.pollRealizedFromResponseMs = performance.now() - tResponse;
            break;
          }
          await sleep(POLL_INTERVAL_MS);
        }
        result.polls = polls;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([watch.done, new Promise((r) => (timer = setTimeout(r, Math.max(0, WRITE_TIMEOUT_MS - (performance.now() - t0)))))]);
      clearTimeout(timer);
      result.agentsApplied = watch.arrivals.size;
      result.unexpected = watch.unexpected;
      if (watch.complete) {
        const times = [...watch.arrivals.values()];
        result.firstFromSendMs = Math.min(...times) - t0;
        result.lastFromSendMs = watch.lastAt - t0;
        result.lastFromResponseMs = watch.lastAt - tResponse;
      }
      return result;
    } catch (err) {
      result.error = (err as Error).message;
      return result;
    } finally {
      this.fleet.unwatch(watch);
    }
  }

  /** Writes at a fixed rate (open loop), at most MAX_WRITES_IN_FLIGHT (or `maxInFlight`) at a time. */
  private async series(plans: WritePlan[], mode: 'plain' | 'wait' | 'poll', rate: number, maxInFlight: number): Promise<{ results: WriteResult[]; usage: Usage }> {
    const results: WriteResult[] = [];
    const inFlight = new Set<Promise<void>>();
    const usage = await this.usageStart();
    const start = performance.now();
    const maxMs = (plans.length / rate) * 1000 * 2 + WRITE_TIMEOUT_MS;
    let errors = 0;
    for (let i = 0; i < plans.length && !aborted && errors < 10; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) {
        await sleep(wait);
      }
      while (inFlight.size >= maxInFlight) {
        await Promise.race(inFlight);
      }
      if (performance.now() - start > maxMs) {
        break;
      }
      const p: Promise<void> = this.write(plans[i], mode).then((r) => {
        results.push(r);
        if (r.error) {
          errors++;
        }
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    return { results, usage: await this.usageEnd(usage) };
  }

  private async propagation(): Promise<void> {
    const plans = this.plans;
    const plainPlans = plans.slice(0, PLAIN_WRITES);
    const waitPlans = plans.slice(PLAIN_WRITES, PLAIN_WRITES + WAIT_WRITES);
    const pollPlans = plans.slice(PLAIN_WRITES + WAIT_WRITES);
    const affected = REGULAR_HOSTS_PER_SEGMENT + 1;
    console.log(`\nPropagation of single-port writes (creates with hostId and PATCH binds, alternating, spread over the segments; each affects ${affected} agents: the segment's ${REGULAR_HOSTS_PER_SEGMENT} hosts + the big host)`);
    console.log('  latency = from the HTTP answer to the moment the last affected agent applied a delta carrying the port (and acked it)');
    const out: Record<string, unknown> = {};

    const problems = (results: WriteResult[]) => reportProblems(results, { what: 'write', who: 'affected agent', stray: 'a watched port to an agent outside its segment' }, WRITE_TIMEOUT_MS);

    // A: plain writes.
    await this.quiesce();
    const a = await this.series(plainPlans, 'plain', PLAIN_RATE, MAX_WRITES_IN_FLIGHT);
    const ok = a.results.filter((r) => !r.error && r.agentsApplied === r.agentsExpected);
    const fromResponse = dist(ok.map((r) => Math.max(0, r.lastFromResponseMs)));
    const before = ok.filter((r) => r.lastFromResponseMs <= 0).length;
    const pass = ok.length > 0 && fromResponse.p99 <= TARGETS.propagationP99Ms && ok.length === a.results.length;
    console.log(`  plain writes: ${a.results.length} at ${PLAIN_RATE}/s (<= ${MAX_WRITES_IN_FLIGHT} in flight), ${ok.length} reached all ${affected} agents`);
    console.log(`    ${pad('HTTP answer -> last agent applied', 42)} ${distText(fromResponse)}   target p99 <= ${TARGETS.propagationP99Ms} ms  ${verdict(pass)}`);
    console.log(`      ${before} of ${ok.length} writes were applied by every agent before the HTTP answer arrived (counted as 0 ms)`);
    console.log(`    ${pad('request sent -> HTTP answer', 42)} ${distText(dist(a.results.map((r) => r.httpMs)))}`);
    console.log(`    ${pad('request sent -> first / last agent applied', 42)} first ${distText(dist(ok.map((r) => r.firstFromSendMs)))}; last ${distText(dist(ok.map((r) => r.lastFromSendMs)))}`);
    console.log(`      ${this.usageText(a.usage)}`);
    problems(a.results);
    out.plain = {
      writes: a.results.length,
      complete: ok.length,
      rate: PLAIN_RATE,
      answerToLastAgentMs: distJson(fromResponse),
      appliedBeforeAnswer: before,
      httpMs: distJson(dist(a.results.map((r) => r.httpMs))),
      sendToFirstAgentMs: distJson(dist(ok.map((r) => r.firstFromSendMs))),
      sendToLastAgentMs: distJson(dist(ok.map((r) => r.lastFromSendMs))),
      usage: a.usage,
      errors: a.results.filter((r) => r.error).map((r) => r.error),
    };
    this.results.targets.push({ name: 'propagation p99, answer -> last agent (ms)', value: +fromResponse.p99.toFixed(1), target: `<= ${TARGETS.propagationP99Ms}`, pass });

    // B: ?wait=realized.
    if (!aborted) {
      await this.quiesce();
      const b = await this.series(waitPlans, 'wait', WAIT_RATE, MAX_WRITES_IN_FLIGHT);
      const okB = b.results.filter((r) => !r.error && r.agentsApplied === r.agentsExpected);
      const realized = b.results.filter((r) => r.status === 201 || r.status === 200).length;
      const timedOut = b.results.filter((r) => r.status === 202).length;
      const lagAfterAck = dist(okB.map((r) => r.httpMs - r.lastFromSendMs));
      console.log(`  ?wait=realized&timeout=${WRITE_TIMEOUT_MS}: ${b.results.length} writes at ${WAIT_RATE}/s; ${realized} answered realized, ${timedOut} answered 202 (timed out)`);
      console.log(`    ${pad('request sent -> HTTP answer (realized)', 42)} ${distText(dist(b.results.map((r) => r.httpMs)))}`);
      console.log(`    ${pad('request sent -> last agent applied', 42)} ${distText(dist(okB.map((r) => r.lastFromSendMs)))}`);
      console.log(`    ${pad('last agent applied -> HTTP answer', 42)} ${distText(lagAfterAck)}   (the cost of learning about the acks)`);
      console.log(`      ${this.usageText(b.usage)}`);
      problems(b.results);
      out.waitRealized = {
        writes: b.results.length,
        rate: WAIT_RATE,
        answeredRealized: realized,
        answered202: timedOut,
        httpMs: distJson(dist(b.results.map((r) => r.httpMs))),
        sendToLastAgentMs: distJson(dist(okB.map((r) => r.lastFromSendMs))),
        lastAgentToAnswerMs: distJson(lagAfterAck),
        usage: b.usage,
      };
    }

    // C: GET /v1/ports/{id} polling.
    if (!aborted) {
      await this.quiesce();
      const c = await this.series(pollPlans, 'poll', POLL_RATE, 1);
      const okC = c.results.filter((r) => !r.error && r.agentsApplied === r.agentsExpected);
      const seen = c.results.filter((r) => r.pollRealizedFromResponseMs !== undefined);
      const pollAfterAck = dist(okC.filter((r) => r.pollRealizedFromResponseMs !== undefined).map((r) => r.pollRealizedFromResponseMs! - r.lastFromResponseMs));
      console.log(`  GET /v1/ports/{id} every ${POLL_INTERVAL_MS} ms after the answer: ${c.results.length} writes at ${POLL_RATE}/s, one at a time; ${seen.length} seen realized`);
      console.log(`    ${pad('HTTP answer -> GET says realized', 42)} ${distText(dist(seen.map((r) => r.pollRealizedFromResponseMs!)))} (${dec(dist(c.results.map((r) => r.polls ?? 0)).p50, 0)} GETs typical)`);
      console.log(`    ${pad('HTTP answer -> last agent applied', 42)} ${distText(dist(okC.map((r) => Math.max(0, r.lastFromResponseMs))))}`);
      console.log(`    ${pad('last agent applied -> GET says realized', 42)} ${distText(pollAfterAck)}`);
      problems(c.results);
      out.getPolling = {
        writes: c.results.length,
        seenRealized: seen.length,
        answerToRealizedMs: distJson(dist(seen.map((r) => r.pollRealizedFromResponseMs!))),
        answerToLastAgentMs: distJson(dist(okC.map((r) => Math.max(0, r.lastFromResponseMs)))),
        lastAgentToRealizedMs: distJson(pollAfterAck),
      };
    }
    this.results.propagation = out;
    await this.quiesce();
    this.check('after the writes');
  }

  // --- 3. reconnect storms -------------------------------------------------------------------

  private async storm(label: string, fresh: boolean): Promise<void> {
    if (aborted) {
      return;
    }
    const agents = this.fleet.agents;
    console.log(`\nReconnect storm, ${label}: all ${AGENTS} agents drop their connection and reconnect at once${fresh ? ' with empty state (a snapshot each)' : ' with their last revision (resume)'}`);
    await this.quiesce();
    const rev = await this.revision();
    const before = this.fleet.totals();
    const hwmBefore = this.ctl.memory()?.hwmKb ?? NaN;
    const usage = await this.usageStart();
    this.fleet.setSyncTarget(rev);
    const overflows0 = listenOverflows();
    const t0 = performance.now();
    this.fleet.disconnectAll();
    for (const agent of agents) {
      agent.connect(fresh);
    }
    const issuedMs = performance.now() - t0;
    const ok = await this.fleet.waitSynced(STORM_TIMEOUT_MS);
    const tDone = performance.now();
    const overflows = listenOverflows() - overflows0;
    const u = await this.usageEnd(usage, tDone);
    const times = dist(this.fleet.syncTimes().map((t) => (t > 0 ? t - t0 : NaN)));
    const firstMessage = dist(agents.map((a) => (a.firstMessageAt ? a.firstMessageAt - t0 : NaN)));
    const d = diffStats(this.fleet.totals(), before);
    const seconds = ok ? times.max / 1000 : NaN;
    const pass = ok && seconds <= TARGETS.stormSeconds;
    const mem = this.ctl.memory();
    console.log(`  ${pad('all agents acked the current revision', 44)} ${ok ? `${dec(seconds, 2)} s` : `NO: ${this.fleet.synced} of ${AGENTS} within ${STORM_TIMEOUT_MS / 1000} s`}   target <= ${TARGETS.stormSeconds} s  ${verdict(pass)}`);
    console.log(`      per agent: acked ${distText(times)}; first message after ${distText(firstMessage)}; closing and reopening ${AGENTS} channels took ${dec(issuedMs)} ms here`);
    console.log(
      `      received: ${d.snapshots} snapshots, ${d.deltas} deltas (${d.emptyDeltas} empty), ${int(d.resourcesReceived)} resources, ${bytesText(d.bytes)}; stream errors ${d.streamErrors}, reconnects ${d.reconnects}, nacks ${d.nacks}; connections dropped by full accept queues (TcpExt ListenOverflows, machine-wide) ${int(overflows)}`,
    );
    console.log(`      ${this.usageText(u)}`);
    console.log(`      controller RSS after: ${mb(mem?.rssKb ?? NaN)}, peak ${mb(mem?.hwmKb ?? NaN)}${(mem?.hwmKb ?? 0) > hwmBefore ? ' (new peak)' : ''}`);
    if (d.streamErrors) {
      const sample = agents.find((a) => a.lastError)?.lastError;
      console.log(`      !! stream errors seen; e.g. ${sample ?? '?'}`);
    }
    // The controller's own view: GET /v1/hosts says connected, lag 0 for every host.
    const api = await hostsInSync(this.client, AGENTS, t0, API_CHECK_TIMEOUT_MS, () => aborted);
    console.log(`  ${pad('GET /v1/hosts: every host connected, lag 0', 44)} ${api.ok ? `at +${dec(api.ms / 1000, 2)} s` : `NO after ${API_CHECK_TIMEOUT_MS / 1000} s more: ${api.connected} connected, ${api.inSync} with lag 0 of ${AGENTS}`} (polled every 100 ms once the agents were in sync)`);
    this.results.storms.push({
      label,
      fresh,
      revision: rev,
      ok,
      allAckedMs: round2(times.max),
      perAgentAckMs: distJson(times),
      firstMessageMs: distJson(firstMessage),
      received: d,
      listenOverflows: overflows,
      usage: u,
      rssAfterKb: mem?.rssKb ?? null,
      hwmAfterKb: mem?.hwmKb ?? null,
      apiInSync: api,
    });
    this.results.targets.push({ name: `storm (${label}): all ${AGENTS} in sync (s)`, value: +seconds.toFixed(2), target: `<= ${TARGETS.stormSeconds}`, pass });
    this.check(`after the storm (${label})`);
  }

  // --- 4. membership changes in a security group --------------------------------------------------

  /**
   * Fill ports to move in and out of a group: in no group but the CIDR-only one, on segments none
   * of whose hosts references G or G1k (so a referencing host's delta carries the member alone).
   */
  private togglePorts(count: number, j: number, salt: number): number[] {
    const refs = new Set(this.layout.refHosts);
    const out: number[] = [];
    for (let k = 0; k < SEGMENTS && out.length < count; k++) {
      const s = (k * 337 + salt) % SEGMENTS;
      if (!this.layout.regularHostsOf(s).some((h) => refs.has(h))) {
        out.push(s * PORTS_PER_SEGMENT + j);
      }
    }
    return out;
  }

  /** Alternately adds each port to the group and removes it again: `count` changes over count / 2 ports. */
  private memberPlans(groupId: string, count: number, j: number, salt: number): MemberChange[] {
    const plain = this.layout.groupIds;
    return this.togglePorts(Math.ceil(count / 2), j, salt)
      .flatMap((fill) => [
        { fill, groupId, add: true, groups: [...plain, groupId] },
        { fill, groupId, add: false, groups: plain },
      ])
      .slice(0, count);
  }

  private async memberChange(change: MemberChange): Promise<MemberChangeResult> {
    const key = spanKey('member', memberId(change.groupId, 'IPv4', this.fillIps[change.fill]));
    const { result } = await this.watchedWrite(key, new Set(this.layout.refHosts), 200, () => this.client.request('PATCH', `/v1/ports/${this.fillIds[change.fill]}`, { securityGroupIds: change.groups }));
    return { add: change.add, ...result };
  }

  /**
   * Sends one write, watching `key` from before the request (an agent may apply the delta before
   * the answer arrives), then waits until every `expected` agent applied a delta carrying it, at
   * most WRITE_TIMEOUT_MS from the request. `text`: the answer's body, when kept.
   */
  private async watchedWrite(key: string, expected: ReadonlySet<number>, okStatus: number, send: () => Promise<HttpResult>): Promise<{ result: WatchedWrite; text: string }> {
    const watch = this.fleet.watch(key, expected);
    const result: WatchedWrite = { httpMs: NaN, lastFromResponseMs: NaN, lastFromSendMs: NaN, agentsExpected: expected.size, agentsApplied: 0, unexpected: 0, revision: 0, bytes: [], entries: [] };
    const t0 = performance.now();
    try {
      const res = await send();
      const tResponse = performance.now();
      result.httpMs = tResponse - t0;
      if (res.status !== okStatus) {
        result.error = `HTTP ${res.status} ${res.text.slice(0, 200)}`;
        return { result, text: res.text };
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([watch.done, new Promise((r) => (timer = setTimeout(r, Math.max(0, WRITE_TIMEOUT_MS - (performance.now() - t0)))))]);
      clearTimeout(timer);
      result.agentsApplied = watch.arrivals.size;
      result.unexpected = watch.unexpected;
      result.revision = watch.revision;
      result.bytes = [...watch.bytes.values()];
      result.entries = [...watch.entries.values()];
      if (watch.complete) {
        result.lastFromResponseMs = watch.lastAt - tResponse;
        result.lastFromSendMs = watch.lastAt - t0;
      }
      return { result, text: res.text };
    } catch (err) {
      result.error = (err as Error).message;
      return { result, text: '' };
    } finally {
      this.fleet.unwatch(watch);
    }
  }

  /** Membership changes at MEMBER_RATE, one at a time (each revision is then one change). */
  private async memberSeries(plans: MemberChange[]): Promise<MemberChangeResult[]> {
    const results: MemberChangeResult[] = [];
    const start = performance.now();
    for (let i = 0; i < plans.length && !aborted; i++) {
      const wait = start + (i * 1000) / MEMBER_RATE - performance.now();
      if (wait > 0) {
        await sleep(wait);
      }
      const r = await this.memberChange(plans[i]);
      results.push(r);
      if (results.filter((x) => x.error).length >= 3) {
        break;
      }
    }
    return results;
  }

  /** IP-set members held by the referencing agents (per group) and by all others. */
  private memberCheck(stage: string): boolean {
    const { layout } = this;
    const refs = new Set(layout.refHosts);
    const wantG = MEMBER_GROUP_SIZE;
    const wantSmall = SMALL_GROUP_SIZE;
    let right = 0;
    let others = 0;
    let first = '';
    for (const agent of this.fleet.agents) {
      if (!refs.has(agent.index)) {
        others += agent.members.size;
        continue;
      }
      let g = 0;
      let small = 0;
      for (const id of agent.members) {
        g += id.startsWith(`${layout.memberGroupId}/`) ? 1 : 0;
        small += id.startsWith(`${layout.smallGroupId}/`) ? 1 : 0;
      }
      if (g === wantG && small === wantSmall && agent.members.size === wantG + wantSmall) {
        right++;
      } else if (!first) {
        first = `${agent.hostName} holds ${g} + ${small} (+ ${agent.members.size - g - small} other) members`;
      }
    }
    const ok = right === refs.size && others === 0;
    console.log(
      `  check ${stage}: ${right}/${refs.size} referencing agents hold exactly G's ${int(wantG)} and G1k's ${int(wantSmall)} members; other agents hold ${int(others)} members${ok ? '' : `: INCONSISTENT${first ? `, e.g. ${first}` : ''}`}`,
    );
    this.results.checks[`members ${stage}`] = { referencingAgentsConsistent: right, membersHeldByOthers: others, firstInconsistent: first || null };
    return ok;
  }

  // --- live migrations --------------------------------------------------------------------------

  /**
   * Migrates fill ports, one at a time, to another regular host of their segment: prepare (the
   * call returns once the destination acked), wait until every agent is idle, then commit and
   * measure from the commit request to the moment the last of the segment's agents (its
   * hosts and the big host, the destination and the source among them) applied the new binding.
   */
  private async migrations(): Promise<void> {
    if (aborted) {
      return;
    }
    const { layout } = this;
    const affected = REGULAR_HOSTS_PER_SEGMENT + 1;
    console.log(`
Live migrations: ${MIGRATIONS} VMs (one port each), one at a time, each to another host of its segment; the commit affects ${affected} agents (the segment's hosts + the big host)`);
    console.log('  convergence = from the commit request to the moment the last affected agent applied the new binding (and acked it)');
    const results: { prepareMs: number; commitMs: number; convergenceMs: number; fromSendMs: number; agents: number; timelineMs?: number; error?: string }[] = [];
    const tPhase = performance.now();
    for (let k = 0; k < MIGRATIONS && !aborted; k++) {
      const s = (k * 37 + 11) % SEGMENTS;
      const j = 1 + ((k * 7) % 9) * 10 + 1; // a plain fill port on a regular host (j % 10 === 2)
      const n = s * PORTS_PER_SEGMENT + j;
      const source = layout.fillHost(s, j);
      const hosts = layout.regularHostsOf(s);
      const destination = hosts[(hosts.indexOf(source) + 1 + (k % (hosts.length - 1))) % hosts.length];
      const result = { prepareMs: NaN, commitMs: NaN, convergenceMs: NaN, fromSendMs: NaN, agents: 0 } as (typeof results)[number];
      try {
        const t0 = performance.now();
        const prepared = await this.client.request('POST', '/v1/migrations?timeout=5000', { portIds: [this.fillIds[n]], sourceHostId: layout.hostIds[source], destinationHostId: layout.hostIds[destination] }, { keepBody: true });
        result.prepareMs = performance.now() - t0;
        if (prepared.status !== 201) {
          throw new Error(`prepare: HTTP ${prepared.status} ${prepared.text.slice(0, 200)}`);
        }
        const id = (JSON.parse(prepared.text) as { id: string }).id;
        this.migrated.add(n);
        await this.quiesce();
        const expected = new Set(layout.hostsOf(s));
        const watch = this.fleet.watch(layout.fillMac(n), expected);
        try {
          const t1 = performance.now();
          const committed = await this.client.request('POST', `/v1/migrations/${id}/commit`, undefined, { keepBody: true });
          const tAnswer = performance.now();
          result.commitMs = tAnswer - t1;
          if (committed.status !== 200) {
            throw new Error(`commit: HTTP ${committed.status} ${committed.text.slice(0, 200)}`);
          }
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([watch.done, new Promise((r) => (timer = setTimeout(r, WRITE_TIMEOUT_MS)))]);
          clearTimeout(timer);
          result.agents = watch.arrivals.size;
          if (watch.complete) {
            result.convergenceMs = Math.max(0, watch.lastAt - tAnswer);
            result.fromSendMs = watch.lastAt - t1;
          }
        } finally {
          this.fleet.unwatch(watch);
        }
        // The controller's own timeline (committed -> every peer acked), as the API shows it.
        for (let tries = 0; tries < 50; tries++) {
          const m = await this.client.json<{ state: string; timeline: { event: string; at: string }[] }>('GET', `/v1/migrations/${id}`);
          if (m.state === 'completed') {
            const at = (e: string) => Date.parse(m.timeline.find((x) => x.event === e)!.at);
            result.timelineMs = Math.max(at('peers-acked'), at('source-cleaned')) - at('committed');
            break;
          }
          await sleep(20);
        }
      } catch (err) {
        result.error = (err as Error).message;
      }
      results.push(result);
    }
    const ok = results.filter((r) => !r.error && Number.isFinite(r.convergenceMs));
    // Measured from the commit request: the agents often apply the new binding before the HTTP answer is back.
    const convergence = dist(ok.map((r) => r.fromSendMs));
    const pass = ok.length === results.length && ok.length > 0 && convergence.p99 <= TARGETS.migrationP99Ms;
    const failed = results.filter((r) => r.error);
    if (failed.length) {
      console.log(`  !! ${failed.length} migration(s) failed; first: ${failed[0].error}`);
    }
    const lost = results.filter((r) => !r.error && !Number.isFinite(r.convergenceMs));
    if (lost.length) {
      console.log(`  !! ${lost.length} commit(s) did not reach every affected agent within ${WRITE_TIMEOUT_MS} ms (e.g. ${lost[0].agents}/${affected})`);
    }
    console.log(`    ${pad('prepare, request -> HTTP answer (dest acked)', 46)} ${distText(dist(ok.map((r) => r.prepareMs)))}`);
    console.log(`    ${pad('commit, request -> HTTP answer', 46)} ${distText(dist(ok.map((r) => r.commitMs)))}`);
    console.log(`    ${pad('commit request -> last affected agent applied', 46)} ${distText(convergence)}   target p99 <= ${TARGETS.migrationP99Ms} ms  ${verdict(pass)}`);
    console.log(`    ${pad('commit answer -> last affected agent applied', 46)} ${distText(dist(ok.map((r) => r.convergenceMs)))} (0 = all had it before the answer)`);
    const timeline = ok.filter((r) => r.timelineMs !== undefined).map((r) => r.timelineMs!);
    console.log(`    ${pad('timeline: committed -> every ack recorded', 46)} ${distText(dist(timeline))} (the controller's view, observed every 100 ms or on a local ack)`);
    const phaseS = (performance.now() - tPhase) / 1000;
    console.log(`  (migration phase: ${dec(phaseS)} s)`);
    this.results.migration = { count: results.length, ok: ok.length, prepareMs: dist(ok.map((r) => r.prepareMs)), commitMs: dist(ok.map((r) => r.commitMs)), convergenceFromRequestMs: convergence, convergenceFromAnswerMs: dist(ok.map((r) => r.convergenceMs)), timelineMs: dist(timeline), phaseSeconds: +phaseS.toFixed(1), errors: failed.map((r) => r.error) };
    this.results.targets.push({ name: 'migration p99, commit request -> peers (ms)', value: +convergence.p99.toFixed(1), target: `<= ${TARGETS.migrationP99Ms}`, pass });
  }

  private async membership(): Promise<void> {
    if (aborted) {
      return;
    }
    const { layout } = this;
    const refAgents = layout.refHosts.map((h) => this.fleet.agents[h]);
    const hostsOfG = new Set<number>();
    for (let s = 0; s < SEGMENTS; s++) {
      for (let j = 5; j < PORTS_PER_SEGMENT; j += 10) {
        hostsOfG.add(layout.fillHost(s, j));
      }
    }
    console.log(
      `\nMembership changes in a security group: G has ${int(MEMBER_GROUP_SIZE)} member ports on ${int(hostsOfG.size)} hosts, G1k ${int(SMALL_GROUP_SIZE)}; group R (ingress rules with remoteGroupId G and G1k) is put on one port of each of ${REF_HOSTS} regular hosts, which then hold both IP sets`,
    );
    const out: Record<string, unknown> = { groupSize: MEMBER_GROUP_SIZE, smallGroupSize: SMALL_GROUP_SIZE, referencingHosts: REF_HOSTS };
    const tPhase = performance.now();

    // A: R onto one plain port of each referencing host: each gets both sets whole, in one delta.
    const plain = (j: number): boolean => j !== 0 && layout.fillGroups(j) === layout.groupIds;
    const stayed = (n: number): boolean => !this.migrated.has(n);
    const refPorts: number[] = [];
    for (const h of layout.refHosts) {
      let found = -1;
      for (let n = 0; n < SEGMENTS * PORTS_PER_SEGMENT && found < 0; n++) {
        const s = Math.floor(n / PORTS_PER_SEGMENT);
        const j = n % PORTS_PER_SEGMENT;
        if (plain(j) && stayed(n) && layout.fillHost(s, j) === h) {
          found = n;
        }
      }
      if (found < 0) {
        throw new Error(`membership: no plain fill port on host ${layout.hostName(h)}`);
      }
      refPorts.push(found);
    }
    await this.quiesce();
    const before = this.fleet.totals(refAgents);
    const t0 = performance.now();
    const patched = await runPool({
      count: refPorts.length,
      concurrency: 4,
      maxMs: 30_000,
      maxErrors: 3,
      shouldStop: () => aborted,
      task: async (k) => (await this.client.send('PATCH', `/v1/ports/${this.fillIds[refPorts[k]]}`, { securityGroupIds: [...layout.groupIds, layout.peerGroupId] }), 1),
    });
    if (patched.items !== refPorts.length) {
      throw new Error(`membership: R put on ${patched.items}/${refPorts.length} ports (${patched.firstError ?? patched.stoppedBy ?? ''})`);
    }
    const rev = await this.revision();
    this.fleet.setSyncTarget(rev, refAgents);
    this.fleet.countAlreadySynced(performance.now());
    const synced = await this.fleet.waitSynced(20_000);
    const wholeMs = Math.max(0, ...this.fleet.syncTimes(refAgents)) - t0;
    const whole = diffStats(this.fleet.totals(refAgents), before);
    console.log(
      `  ${pad(`R on ${REF_HOSTS} ports (PATCH, 4 in flight)`, 44)} ${synced ? `all ${REF_HOSTS} referencing agents acked after ${int(wholeMs)} ms` : 'NOT all acked within 20 s'}; they received ${int(whole.resourcesReceived)} resources, ${bytesText(whole.bytes)} (${bytesText(whole.bytes / REF_HOSTS)} per agent)`,
    );
    out.wholeSets = { ok: synced, allAckedMs: round2(wholeMs), resources: whole.resourcesReceived, bytes: whole.bytes };
    await this.quiesce();
    const consistentBefore = this.memberCheck('with R in place');

    // B: one port at a time into and out of G (10,000 members), then G1k (1,000).
    this.fleet.recordTraffic(true);
    const usage = await this.usageStart();
    const big = await this.memberSeries(this.memberPlans(layout.memberGroupId, MEMBER_CHANGES, 7, 11));
    const u = await this.usageEnd(usage);
    const small = aborted ? [] : await this.memberSeries(this.memberPlans(layout.smallGroupId, SMALL_MEMBER_CHANGES, 8, 29));
    await this.quiesce();
    const report = (label: string, size: number, results: MemberChangeResult[]): { latency: Dist; perAgent: Dist; json: Record<string, unknown> } => {
      const ok = results.filter((r) => !r.error && r.agentsApplied === r.agentsExpected);
      const latency = dist(ok.map((r) => Math.max(0, r.lastFromResponseMs)));
      const perAgent = dist(ok.flatMap((r) => r.bytes));
      const entries = dist(ok.flatMap((r) => r.entries));
      const traffic = ok.map((r) => this.fleet.trafficAt(r.revision));
      const total = dist(traffic.map((t) => t.bytes));
      const agents = dist(traffic.map((t) => t.agents));
      // What the other agents got at the same revision: the port's segment hosts its entry again, its own host its policy.
      const others = dist(ok.map((r, i) => traffic[i].bytes - r.bytes.reduce((a, b) => a + b, 0)));
      const adds = results.filter((r) => r.add).length;
      console.log(`  group of ${int(size)}: ${results.length} changes (${adds} adds, ${results.length - adds} removals) at ${MEMBER_RATE}/s, one at a time; ${ok.length} reached all ${REF_HOSTS} referencing agents`);
      console.log(`    ${pad('HTTP answer -> last referencing agent applied', 46)} ${distText(latency)}`);
      console.log(`    ${pad('request sent -> HTTP answer', 46)} ${distText(dist(results.map((r) => r.httpMs)))}`);
      console.log(`    ${pad('delta bytes per referencing agent', 46)} ${distBytes(perAgent)}; ${dec(entries.p50, 0)} entry per delta (max ${dec(entries.max, 0)})`);
      console.log(`    ${pad('bytes of the change, all agents', 46)} ${distBytes(total)}, in non-empty deltas to ${dec(agents.p50, 0)} agents (max ${dec(agents.max, 0)})`);
      console.log(`      of which to the ${dec(agents.p50 - REF_HOSTS, 0)} agents not referencing the group ${distBytes(others)} (its own host: its policy)`);
      const { failed, lost, unexpected } = reportProblems(results, { what: 'change', who: 'referencing agent', stray: 'a watched member to an agent that does not reference the group' }, WRITE_TIMEOUT_MS);
      return {
        latency,
        perAgent,
        json: {
          changes: results.length,
          adds,
          complete: ok.length,
          rate: MEMBER_RATE,
          answerToLastAgentMs: distJson(latency),
          httpMs: distJson(dist(results.map((r) => r.httpMs))),
          bytesPerAgent: distJson(perAgent),
          entriesPerDelta: distJson(entries),
          bytesAllAgents: distJson(total),
          bytesOtherAgents: distJson(others),
          agentsWithDelta: distJson(agents),
          failed: failed.length,
          lost: lost.length,
          unexpected,
          errors: failed.map((r) => r.error),
        },
      };
    };
    const g = report(`${int(MEMBER_GROUP_SIZE)}`, MEMBER_GROUP_SIZE, big);
    const pass = g.latency.n === big.length && big.length > 0 && g.latency.p99 <= TARGETS.memberChangeP99Ms;
    console.log(`    ${pad('target: p99 answer -> last referencing agent', 46)} <= ${TARGETS.memberChangeP99Ms} ms  ${verdict(pass)}`);
    console.log(`      ${this.usageText(u)}`);
    const s = report(`${int(SMALL_GROUP_SIZE)}`, SMALL_GROUP_SIZE, small);
    this.fleet.recordTraffic(false);
    const ratio = g.perAgent.p50 / s.perAgent.p50;
    const constant = Number.isFinite(ratio) && ratio <= TARGETS.memberBytesRatio;
    console.log(
      `  ${pad('delta bytes per agent, one change, 1,000 vs 10,000 members', 60)} ${dec(s.perAgent.p50, 0)} B vs ${dec(g.perAgent.p50, 0)} B (p50; x${dec(ratio, 2)})   target <= x${TARGETS.memberBytesRatio}  ${verdict(constant)}`,
    );
    this.results.targets.push({ name: 'member change p99, answer -> ref agents (ms)', value: +g.latency.p99.toFixed(1), target: `<= ${TARGETS.memberChangeP99Ms}`, pass });
    this.results.targets.push({ name: 'member delta bytes/agent, 10k / 1k (ratio)', value: +ratio.toFixed(2), target: `<= ${TARGETS.memberBytesRatio}`, pass: constant });
    const consistentAfter = this.memberCheck('after the membership changes');
    this.check('after the membership changes');
    const phaseS = (performance.now() - tPhase) / 1000;
    console.log(`  (membership phase: ${dec(phaseS, 1)} s)`);
    this.results.membership = { ...out, group: g.json, smallGroup: s.json, bytesRatio: round2(ratio), usage: u, consistent: consistentBefore && consistentAfter, phaseSeconds: +phaseS.toFixed(1) };
  }

  // --- 5. a mirror session over 1,000 source ports ------------------------------------------------

  private async mirrors(): Promise<void> {
    if (aborted) {
      return;
    }
    const { layout } = this;
    const sources = Array.from({ length: SEGMENTS }, (_, s) => s * PORTS_PER_SEGMENT + MIRROR_SOURCE_J);
    const hostOf = (n: number): number => layout.fillHost(Math.floor(n / PORTS_PER_SEGMENT), n % PORTS_PER_SEGMENT);
    const sinkHost = layout.regularHostsOf(MIRROR_SEGMENT)[0];
    const expected = new Set([...sources.map(hostOf), sinkHost]);
    console.log(
      `\nMirror session over ${int(sources.length)} source ports (both directions; one per segment, on ${int(new Set(sources.map(hostOf)).size)} hosts) to an analyzer port on ${layout.hostName(sinkHost)}: ${MIRROR_CHANGES} creates and deletes alternately, one at a time, every agent idle in between; each reaches ${int(expected.size)} agents (the sources' hosts, the sink's among them)`,
    );
    console.log('  latency = from the request to the moment the last of those agents applied a delta carrying the session (its taps, or their removal) and acked it');
    const tPhase = performance.now();
    // The analyzer: a port of its segment like any other (the segment's hosts hold it), but a sink only.
    const analyzer = await this.client.json<{ id: string; role: string }>('POST', '/v1/ports', {
      segmentId: layout.segmentIds[MIRROR_SEGMENT],
      mac: layout.nextMac(),
      ips: [layout.nextAddress(MIRROR_SEGMENT)],
      vmId: 'sync-analyzer',
      hostId: layout.hostIds[sinkHost],
      role: 'analyzer',
    });
    layout.bound[MIRROR_SEGMENT]++;
    await this.quiesce();
    const body = (k: number) => ({
      tenantId: layout.tenantId,
      name: `sync-mirror-${k}`,
      sources: sources.map((n) => ({ portId: this.fillIds[n], direction: 'both' })),
      sink: { type: 'port', portId: analyzer.id },
    });
    const what = { sources, hostOf, sinkHost, analyzerId: analyzer.id };

    this.fleet.recordTraffic(true);
    type MirrorWrite = WatchedWrite & { cpuS: number; redisCpuS: number };
    const creates: MirrorWrite[] = [];
    const deletes: MirrorWrite[] = [];
    let session: { id: string; vni: number } | undefined;
    let emptyAfterDelete = false;
    const usage = await this.usageStart();
    for (let k = 0; k <= MIRROR_CHANGES && !aborted; k++) {
      await this.quiesce();
      // Where a write's time goes: the controller's CPU (parsing, the span diffs and encodes for every agent) and Redis's (the write's script).
      const r0 = (await redisSnapshot(this.redis)).cpuSeconds;
      const c0 = this.ctl.cpuSeconds();
      const cost = async () => ({ cpuS: this.ctl.cpuSeconds() - c0, redisCpuS: (await redisSnapshot(this.redis)).cpuSeconds - r0 });
      if (!session) {
        // Its id is not known before the answer, which the agents may beat: any session's deltas count (one at a time).
        const { result, text } = await this.watchedWrite(ANY_MIRROR_SESSION, expected, 201, () => this.client.request('POST', '/v1/mirror-sessions', body(k), { keepBody: true }));
        creates.push({ ...result, ...(await cost()) });
        if (!result.error) {
          session = JSON.parse(text) as { id: string; vni: number };
        }
      } else {
        const id = session.id;
        const { result } = await this.watchedWrite(mirrorWatchKey(id), expected, 204, () => this.client.request('DELETE', `/v1/mirror-sessions/${id}`));
        deletes.push({ ...result, ...(await cost()) });
        if (!result.error) {
          session = undefined;
        }
        if (k === MIRROR_CHANGES - 1 && !session) {
          await this.quiesce();
          emptyAfterDelete = this.mirrorCheck('after the last delete', undefined, what);
        }
      }
      if ([...creates, ...deletes].filter((r) => r.error).length >= 3) {
        break;
      }
    }
    const u = await this.usageEnd(usage);
    await this.quiesce();
    const report = (label: string, results: MirrorWrite[]): { fromSend: Dist; json: Record<string, unknown> } => {
      const ok = results.filter((r) => !r.error && r.agentsApplied === r.agentsExpected);
      const fromSend = dist(ok.map((r) => r.lastFromSendMs));
      const fromAnswer = dist(ok.map((r) => Math.max(0, r.lastFromResponseMs)));
      const http = dist(results.map((r) => r.httpMs));
      const perAgent = dist(ok.flatMap((r) => r.bytes));
      const entries = dist(ok.flatMap((r) => r.entries));
      const traffic = ok.map((r) => this.fleet.trafficAt(r.revision));
      const total = dist(traffic.map((t) => t.bytes));
      const agents = dist(traffic.map((t) => t.agents));
      const cpu = dist(results.map((r) => r.cpuS * 1000));
      const redisCpu = dist(results.map((r) => r.redisCpuS * 1000));
      console.log(`  ${label}: ${results.length}, ${ok.length} reached all ${int(expected.size)} agents`);
      console.log(`    ${pad('request sent -> last agent applied', 46)} ${distText(fromSend)}`);
      console.log(`    ${pad('request sent -> HTTP answer', 46)} ${distText(http)}`);
      console.log(`    ${pad('HTTP answer -> last agent applied', 46)} ${distText(fromAnswer)}`);
      console.log(`    ${pad('delta bytes per agent', 46)} ${distBytes(perAgent)}; ${dec(entries.p50, 0)} entries per delta (max ${dec(entries.max, 0)})`);
      console.log(`    ${pad('bytes of the write, all agents', 46)} ${distBytes(total)}, in non-empty deltas to ${dec(agents.p50, 0)} agents (max ${dec(agents.max, 0)})`);
      console.log(`    ${pad('CPU, request -> last agent applied: controller', 46)} ${distText(cpu)} (10 ms ticks); Redis ${distText(redisCpu)}`);
      const { failed, lost, unexpected } = reportProblems(results, { what: label.replace(/s$/, ''), who: 'agent of a source or the sink', stray: "the session's taps to an agent holding none of its ports" }, WRITE_TIMEOUT_MS);
      return {
        fromSend,
        json: {
          writes: results.length,
          complete: ok.length,
          sendToLastAgentMs: distJson(fromSend),
          httpMs: distJson(http),
          answerToLastAgentMs: distJson(fromAnswer),
          bytesPerAgent: distJson(perAgent),
          entriesPerDelta: distJson(entries),
          bytesAllAgents: distJson(total),
          agentsWithDelta: distJson(agents),
          controllerCpuMs: distJson(cpu),
          redisCpuMs: distJson(redisCpu),
          failed: failed.length,
          lost: lost.length,
          unexpected,
          errors: failed.map((r) => r.error),
        },
      };
    };
    const c = report('creates', creates);
    const pass = c.fromSend.n === creates.length && creates.length > 0 && c.fromSend.p99 <= TARGETS.mirrorCreateP99Ms;
    console.log(`    ${pad('target: p99 create request -> last agent', 46)} <= ${TARGETS.mirrorCreateP99Ms} ms  ${verdict(pass)}`);
    const d = report('deletes', deletes);
    this.fleet.recordTraffic(false);
    console.log(`      ${this.usageText(u)} (idle waits between the writes included)`);
    const consistent = session ? this.mirrorCheck('with the session in place', session, what) : false;
    this.check('after the mirror sessions');
    const phaseS = (performance.now() - tPhase) / 1000;
    console.log(`  (mirror phase: ${dec(phaseS, 1)} s)`);
    this.results.targets.push({ name: 'mirror create p99, request -> agents (ms)', value: +c.fromSend.p99.toFixed(1), target: `<= ${TARGETS.mirrorCreateP99Ms}`, pass });
    this.results.mirror = {
      sources: sources.length,
      sourceHosts: new Set(sources.map(hostOf)).size,
      agentsReached: expected.size,
      sinkHost: layout.hostName(sinkHost),
      create: c.json,
      delete: d.json,
      usage: u,
      consistent: consistent && emptyAfterDelete,
      phaseSeconds: +phaseS.toFixed(1),
    };
  }

  /**
   * The mirror taps and sinks every agent holds: with `session`, each host of a source exactly its
   * taps (both directions; to the analyzer on the sink's host, else a tunnel to that host's VTEP
   * under the session's VNI) and the sink's host the sink; without, nothing anywhere.
   */
  private mirrorCheck(stage: string, session: { id: string; vni: number } | undefined, what: { sources: number[]; hostOf: (n: number) => number; sinkHost: number; analyzerId: string }): boolean {
    const want = new Map<number, string[]>();
    for (const n of session ? what.sources : []) {
      const ids = want.get(what.hostOf(n)) ?? [];
      ids.push(mirrorTapId(session!.id, this.fillIds[n]));
      want.set(what.hostOf(n), ids);
    }
    const sinkVtep = this.layout.vtepIp(what.sinkHost);
    let right = 0;
    let taps = 0;
    let first = '';
    for (const agent of this.fleet.agents) {
      const ids = want.get(agent.index) ?? [];
      const isSink = session !== undefined && agent.index === what.sinkHost;
      taps += agent.mirrors.size;
      const tapsRight =
        agent.mirrors.size === ids.length &&
        ids.every((id) => {
          const m = agent.mirrors.get(id);
          return m !== undefined && m.ingress && m.egress && (isSink ? m.sinkPortId === what.analyzerId : m.sinkPortId === '' && m.vni === session!.vni && m.remoteIp === sinkVtep && m.udpPort === MIRROR_UDP_PORT);
        });
      const sink = session ? agent.mirrorSinks.get(session.id) : undefined;
      const sinkRight = agent.mirrorSinks.size === (isSink ? 1 : 0) && (!isSink || (sink?.portId === what.analyzerId && sink.vni === session.vni));
      if (tapsRight && sinkRight) {
        right++;
      } else if (!first) {
        first = `${agent.hostName} holds ${agent.mirrors.size} taps and ${agent.mirrorSinks.size} sinks, expected ${ids.length} and ${isSink ? 1 : 0}${!tapsRight && agent.mirrors.size === ids.length ? ' (a tap with other ids or values)' : ''}`;
      }
    }
    const ok = right === AGENTS;
    console.log(`  check ${stage}: ${right}/${AGENTS} agents hold exactly the expected mirror taps and sink (${int(taps)} taps in all)${ok ? '' : `: INCONSISTENT, e.g. ${first}`}`);
    this.results.checks[`mirrors ${stage}`] = { agentsConsistent: right, tapsHeld: taps, firstInconsistent: first || null };
    return ok;
  }

  /** Every agent holds a span of the size the layout predicts (and every watched write reached its agents). */
  private check(stage: string): void {
    const expected = this.layout.expectedSpans();
    const wrong = this.fleet.agents.filter((a) => a.spanSize !== expected[a.index]);
    const held = this.fleet.agents.reduce((n, a) => n + a.spanSize, 0);
    const line = `check ${stage}: ${AGENTS - wrong.length}/${AGENTS} agents hold a span of the expected size (${int(held)} resources in all)`;
    console.log(`  ${line}${wrong.length ? `: INCONSISTENT, e.g. ${wrong[0].hostName} holds ${wrong[0].spanSize}, expected ${expected[wrong[0].index]}` : ''}`);
    this.results.checks[stage] = { agentsConsistent: AGENTS - wrong.length, resourcesHeld: held, firstInconsistent: wrong[0] ? { host: wrong[0].hostName, held: wrong[0].spanSize, expected: expected[wrong[0].index] } : null };
  }

  resultsSummary(): void {
    const targets = this.results.targets;
    if (!targets.length) {
      return;
    }
    console.log('\nSummary (sync)');
    for (const t of targets) {
      console.log(`  ${pad(t.name, 48)} ${String(t.value).padStart(9)}   target ${pad(t.target, 8)} ${verdict(t.pass)}`);
    }
    const misses = targets.filter((t) => !t.pass).length;
    console.log(`  ${targets.length - misses}/${targets.length} targets met${misses ? ' (a miss is reported, not a failure)' : ''}`);
  }
}

async function main(): Promise<number> {
  const prefix = `bench-sync-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  redis.on('error', () => undefined);
  const refs: Refs = {};
  const results: Results = { meta: {}, setup: {}, snapshot: {}, propagation: {}, storms: [], membership: {}, mirror: {}, audit: {}, migration: {}, memory: [], memoryBreakdown: [], checks: {}, targets: [], errors: [] };
  const wallStart = performance.now();

  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      refs.fleet?.disconnectAll();
      refs.client?.close();
      await refs.ctl?.stop().catch(() => undefined);
      try {
        const n = await dropPrefix(redis, prefix);
        console.log(`\nCleanup: agents disconnected, controller stopped, ${int(n)} keys under {${prefix}}:* deleted`);
      } catch (err) {
        console.error(`\nCleanup: could not delete {${prefix}}:* (${(err as Error).message}); delete those keys by hand`);
      }
      redis.disconnect();
    })());

  process.on('exit', () => refs.ctl?.killNow());
  const guard = guardPhase({
    name: 'sync run',
    stop: () => (aborted = true),
    cleanup,
    softMs: SOFT_DEADLINE_MS,
    hardMs: HARD_DEADLINE_MS,
    hardAction: 'killing the controller',
  });

  const bench = new Bench(prefix, redis, refs, results);
  let failed = await guard.run(() => bench.run(), {
    errors: results.errors,
    onError: () => {
      if (refs.ctl) {
        console.error(`controller log (last lines):\n${refs.ctl.logTail()}`);
      }
    },
  });
  bench.resultsSummary();
  try {
    bench.heapSummary();
  } catch (err) {
    console.error(`heap snapshot summary failed: ${(err as Error).message}`);
  }
  if (!writeResults(OUT_FILE, results, wallStart, performance.now())) {
    failed = true;
  }
  return failed ? 1 : 0;
}

exitWith(main(), 'sync bench');
