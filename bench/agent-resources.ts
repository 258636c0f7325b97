import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startLocalRedis, type LocalRedis } from '../src/controller/dev/local-redis';
import { benchToken, ControllerProcess, controllerEnv, freePort } from './controller-process';
import { JsonHttpClient } from './http-client';
import { breakdownLines, scrapeMemory, type MemoryBreakdown } from './memory-breakdown';
import { cpuPercentOfOneCore, processCpu, processMemory } from './proc-stats';
import { dec, int, pad, ROOT, round2, verdict } from './report';
import { readAgentRuntimeSettings, readRuntimeSettings } from './runtime-settings';

/*
 * Section 5 of the dataplane benchmark (dataplane.ts): the real overlay-agent process (the bundle
 * `npm run build:agent` makes, dist/agent/overlay-agent.js, started as deploy/systemd's unit
 * starts it: deploy/overlay-agent-runtime.conf's node flags) on the benchmark's host, connected
 * over gRPC to a real controller (dist/src/controller/main.js, deploy/overlayd-runtime.conf's
 * settings) backed by a redis-server of its own, all three inside the benchmark's namespace (on
 * its loopback). The host is populated through the REST API, then the agent's memory and CPU are
 * read from /proc: idle, and during a stream of changes.
 */

/** Where the figures are judged: the agent shares the hypervisor with the VMs (issue 17). */
export const AGENT_TARGETS = { rssMb: 80, idleCpuPercent: 2 };

/** The host as the API is to hold it: indexes into `remoteVteps` and `segments`. */
export interface AgentHostLayout {
  hostName: string;
  localVtep: string;
  segments: number;
  /** Remote hypervisors' VTEPs (host index -> address). */
  remoteVteps: string[];
  /** Each segment's remote hosts (their ports' hosts). */
  segmentHosts: number[][];
  localPorts: { segment: number; mac: string; ip: string; tap: string }[];
  remotePorts: { segment: number; mac: string; ip: string; host: number }[];
  /** Member groups: remote port i is in group i % groups; each local port's policy names two of them. */
  groups: number;
}

/** What the section reads of the kernel, through the dataplane benchmark's own reader. */
export interface KernelProbe {
  /** Remote forwarding entries and attached taps, as LinuxDataplane.observe reads them. */
  counts(): Promise<{ fdb: number; ports: number }>;
  /** The VTEP the forwarding entry of `mac` on segment `vni` points at; undefined without one. */
  fdbDst(vni: number, mac: string): Promise<string | undefined>;
}

export interface AgentSectionTarget {
  name: string;
  value: string;
  target: string;
  pass: boolean;
}

export interface AgentSectionOutcome {
  targets: AgentSectionTarget[];
  rows: [string, string][];
  json: Record<string, unknown>;
}

const SYNC_TIMEOUT_MS = 300_000;
/** After the agent is in sync and before the idle window: a periodic pass or two, the GC settling. */
const SETTLE_MS = 20_000;
/** Two periodic passes at the default interval (60 s): the idle figure is their share and the quiet between. */
const IDLE_MS = 120_000;
const STREAM_MS = 60_000;
const STREAM_RATE = 100;
/** Requests in flight at most during the stream (the API answers in a few ms; more would only queue). */
const STREAM_IN_FLIGHT = 32;
/** The stream's changes must have reached the kernel within this long of its end. */
const CATCH_UP_TIMEOUT_MS = 120_000;
const FILL_BATCH = 2_000;

const mbOf = (kb: number): number => (kb * 1024) / 1e6;
const mbText = (kb: number): string => `${dec(mbOf(kb))} MB`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** The value of the first sample of `name` (with labels matching `labels`, if given) in a Prometheus text; NaN without one. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) {
      continue;
    }
    const have = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) {
      return Number(m[3]);
    }
  }
  return NaN;
}

/** The real agent process, its output in a file. */
class AgentChild {
  private exited?: string;
  private readonly gone: Promise<void>;

  constructor(
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.gone = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exited = `code ${code}, signal ${signal}`;
        resolve();
      }),
    );
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exit(): string | undefined {
    return this.exited;
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.trim() && !l.includes('"tap-found"'))
        .slice(-lines)
        .map((l) => `  | ${l.length > 400 ? `${l.slice(0, 400)}...` : l}`)
        .join('\n');
    } catch {
      return '  | (no log)';
    }
  }

  /** SIGTERM (the agent flushes its state and exits), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.exited) {
      return;
    }
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.gone;
    clearTimeout(timer);
  }
}

interface Sampled {
  rssKb: number[];
  /** The kernel's peak RSS over the window (VmHWM, reset at its start): every moment counted, not only the samples; undefined when the reset failed. */
  peakKb?: number;
  /** VmHWM before that reset: the peak of the process's life until the window. */
  priorPeakKb?: number;
  cpuSelf: number;
  cpuChildren: number;
  wallMs: number;
}

/**
 * RSS every `everyMs` and CPU (own, children's) over `ms`; with `peak`, also the true peak RSS of
 * the window: the kernel's high-water mark, reset at its start (`5` to /proc/<pid>/clear_refs,
 * Linux 4.0 and later, root), which no sampling interval can miss.
 */
async function sample(pid: number, ms: number, everyMs: number, peak = false): Promise<Sampled> {
  const priorPeakKb = peak ? processMemory(pid)?.hwmKb : undefined;
  const reset = peak && resetPeakRss(pid);
  const before = processCpu(pid);
  const t0 = performance.now();
  const rssKb: number[] = [];
  while (performance.now() - t0 < ms) {
    const m = processMemory(pid);
    if (m) {
      rssKb.push(m.rssKb);
    }
    await sleep(everyMs);
  }
  const wallMs = performance.now() - t0;
  const after = processCpu(pid);
  const peakKb = reset ? processMemory(pid)?.hwmKb : undefined;
  if (!before || !after) {
    throw new Error(`the agent (pid ${pid}) exited while measured`);
  }
  return { rssKb, peakKb, priorPeakKb, cpuSelf: cpuPercentOfOneCore(before.self, after.self, wallMs), cpuChildren: cpuPercentOfOneCore(before.children, after.children, wallMs), wallMs };
}

/** Resets the process's VmHWM to its current RSS; whether it could. */
function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

const loadText = (): string => os.loadavg().map((l) => dec(l, 2)).join(' ');

export class AgentResources {
  private readonly targets: AgentSectionTarget[] = [];
  private readonly rows: [string, string][] = [];
  private readonly json: Record<string, unknown> = {};
  private redis?: LocalRedis;
  private ctl?: ControllerProcess;
  private agent?: AgentChild;
  private api?: JsonHttpClient;
  private metrics?: JsonHttpClient;
  private dir = '';
  private segmentIds: string[] = [];
  private vnis: number[] = [];
  private remoteIds: string[] = [];
  private remoteHostOf: number[] = [];
  private localIds: string[] = [];
  private hostIds: string[] = [];
  private localHostId = '';
  private memberGroups: string[] = [];
  private policyGroups: string[] = [];

  constructor(
    private readonly layout: AgentHostLayout,
    private readonly kernel: KernelProbe,
  ) {}

  /** Runs the section; a failure is reported in the outcome (json.error), never thrown, so the rest of the phase stands. */
  async run(): Promise<AgentSectionOutcome> {
    const { layout } = this;
    console.log(
      `\nThe agent process on this host: the real overlay-agent (dist/agent/overlay-agent.js) connected over gRPC to a controller child process (own redis-server), in this namespace; ${int(layout.localPorts.length)} local ports, ${int(layout.remotePorts.length)} remote ports on ${layout.remoteVteps.length} remote hosts, ${layout.segments} segments, ${layout.groups} member groups, populated through the REST API`,
    );
    try {
      await this.measure();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.json.error = message;
      console.log(`  !! the agent process was not measured: ${message}`);
      if (this.agent) {
        console.log(`  the agent's log (last lines; it ${this.agent.exit ? `exited: ${this.agent.exit}` : 'was running'}):\n${this.agent.logTail()}`);
      }
    } finally {
      await this.stopAll();
    }
    return { targets: this.targets, rows: this.rows, json: this.json };
  }

  private async stopAll(): Promise<void> {
    await this.agent?.stop().catch(() => undefined);
    await this.ctl?.stop().catch(() => undefined);
    this.api?.close();
    this.metrics?.close();
    await this.redis?.stop().catch(() => undefined);
    if (this.dir) {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private async measure(): Promise<void> {
    const bundle = path.join(ROOT, 'dist', 'agent', 'overlay-agent.js');
    const controllerScript = path.join(ROOT, 'dist', 'src', 'controller', 'main.js');
    if (!existsSync(bundle)) {
      throw new Error(`${path.relative(ROOT, bundle)} is missing: run \`npm run build:agent\` first`);
    }
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'ovl-bench-agent-'));
    this.redis = await startLocalRedis({ dir: path.join(this.dir, 'redis'), appendonly: false });
    const token = benchToken();
    const httpPort = await freePort();
    const env = await controllerEnv({ REDIS_URL: this.redis.url }, `bench-agent-${process.pid}`, httpPort, token);
    const runtime = readRuntimeSettings(ROOT);
    Object.assign(env, runtime.env);
    this.ctl = await ControllerProcess.start({ script: controllerScript, env, port: httpPort, readyTimeoutMs: 60_000, nodeArgs: runtime.nodeFlags });
    this.api = new JsonHttpClient('127.0.0.1', httpPort, STREAM_IN_FLIGHT, { token });
    const grpcPort = Number(env.OVERLAY_GRPC_PORT);
    console.log(`  controller pid ${this.ctl.pid} (HTTP :${httpPort}, gRPC :${grpcPort}), redis-server pid ${this.redis.pid} (:${this.redis.port})`);

    const t0 = performance.now();
    await this.populate();
    const populateMs = performance.now() - t0;
    console.log(`  ${pad('populated through the API', 44)} ${dec(populateMs / 1000, 1)} s`);

    const metricsPort = await freePort();
    const agentRuntime = readAgentRuntimeSettings(ROOT);
    const nodeArgs = [...agentRuntime.nodeFlags, ...(process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean)];
    for (const arg of nodeArgs) {
      const dir = /^--(?:cpu-prof-dir|heap-prof-dir|diagnostic-dir)=(.+)$/.exec(arg)?.[1];
      if (dir) {
        mkdirSync(dir, { recursive: true });
      }
    }
    const agentEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      OVERLAY_CONTROLLER: `127.0.0.1:${grpcPort}`,
      OVERLAY_HOST: this.layout.hostName,
      OVERLAY_VTEP_IP: this.layout.localVtep,
      OVERLAY_DATAPLANE: 'linux',
      OVERLAY_STATE_DIR: path.join(this.dir, 'agent-state'),
      OVERLAY_GRPC_INSECURE: 'true',
      OVERLAY_METRICS_PORT: String(metricsPort),
      ...agentRuntime.env,
      ...Object.fromEntries(
        (process.env.BENCH_AGENT_ENV ?? '')
          .split(' ')
          .filter((p) => p.indexOf('=') > 0)
          .map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
      ),
    };
    const logFile = path.join(this.dir, 'agent.log');
    const fd = openSync(logFile, 'a');
    const started = performance.now();
    const child = spawn(process.execPath, [...nodeArgs, bundle], { env: agentEnv, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.agent = new AgentChild(child, logFile);
    this.metrics = new JsonHttpClient('127.0.0.1', metricsPort, 2);
    const shownEnv = Object.entries(agentRuntime.env).concat(Object.entries(agentEnv).filter(([k]) => (process.env.BENCH_AGENT_ENV ?? '').includes(`${k}=`)));
    console.log(`  agent pid ${this.agent.pid}: node ${[...nodeArgs, path.relative(ROOT, bundle)].join(' ')}${shownEnv.length ? `; env ${shownEnv.map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}; default reconcile interval and inventory`);
    this.json.setup = { populateMs: round2(populateMs), nodeArgs, runtimeEnv: agentRuntime.env, extraEnv: process.env.BENCH_AGENT_ENV ?? '', controllerPid: this.ctl.pid };

    const syncMs = await this.waitInSync(started);
    const afterSync = processMemory(this.agent.pid);
    console.log(`  ${pad('in sync (ack of the snapshot, kernel holds it)', 44)} ${dec(syncMs / 1000, 1)} s after start; RSS then ${mbText(afterSync?.rssKb ?? NaN)}, peak so far ${mbText(afterSync?.hwmKb ?? NaN)}`);

    await sleep(SETTLE_MS);
    const idleStart = await this.passCounts();
    const idleLoad = loadText();
    const idle = await sample(this.agent.pid, IDLE_MS, 1_000);
    const idleEnd = await this.passCounts();
    const idleBreakdown = await scrapeMemory(this.metrics);
    const idleRss = mean(idle.rssKb);
    const idleCpu = idle.cpuSelf + idle.cpuChildren;
    const periodic = idleEnd.periodic - idleStart.periodic;
    const periodicSeconds = idleEnd.periodicSeconds - idleStart.periodicSeconds;
    console.log(`  idle, ${IDLE_MS / 1000} s (load ${idleLoad}):`);
    console.log(`    ${pad('RSS mean / max', 42)} ${mbText(idleRss)} / ${mbText(Math.max(...idle.rssKb))}`);
    console.log(
      `    ${pad('CPU, % of one core', 42)} ${dec(idleCpu, 2)} % (the agent ${dec(idle.cpuSelf, 2)} %, the commands it ran ${dec(idle.cpuChildren, 2)} %); ${periodic} periodic passes, ${dec((periodicSeconds * 1000) / Math.max(periodic, 1))} ms each on average`,
    );
    if (idleBreakdown) {
      console.log(breakdownLines(idleBreakdown, '    ').join('\n'));
    }

    const stream = await this.stream();
    // The run's peak: the stream's window reset VmHWM, so the larger of before it and now.
    const hwm = Math.max(stream.sampled.priorPeakKb ?? 0, processMemory(this.agent.pid)?.hwmKb ?? NaN);
    const streamRss = mean(stream.sampled.rssKb);
    const streamMax = Math.max(...stream.sampled.rssKb);
    const streamCpu = stream.sampled.cpuSelf + stream.sampled.cpuChildren;
    const streamPeak = stream.sampled.peakKb;
    console.log(`    ${pad('RSS mean / max', 42)} ${mbText(streamRss)} / ${mbText(streamMax)} (sampled every 500 ms)`);
    console.log(`    ${pad('RSS peak (VmHWM reset at its start)', 42)} ${streamPeak === undefined ? 'n/a (could not reset VmHWM)' : mbText(streamPeak)}`);
    console.log(`    ${pad('CPU, % of one core', 42)} ${dec(streamCpu, 1)} % (the agent ${dec(stream.sampled.cpuSelf, 1)} %, the commands it ran ${dec(stream.sampled.cpuChildren, 1)} %)`);
    console.log(`    ${pad('peak RSS of the run (VmHWM)', 42)} ${mbText(hwm)}`);
    if (stream.breakdown) {
      console.log(breakdownLines(stream.breakdown, '    ').join('\n'));
    }

    const rssTarget = AGENT_TARGETS.rssMb;
    const idlePass = mbOf(idleRss) <= rssTarget;
    // Judged on the true peak when the kernel gave it: a sample every 500 ms misses a pass's peak.
    const streamJudged = streamPeak ?? streamMax;
    const streamJudgedBy = streamPeak === undefined ? 'max of samples' : 'peak';
    const streamPass = mbOf(streamJudged) <= rssTarget;
    const cpuPass = idleCpu <= AGENT_TARGETS.idleCpuPercent;
    this.targets.push(
      { name: 'agent RSS idle (mean)', value: mbText(idleRss), target: `<= ${rssTarget} MB`, pass: idlePass },
      { name: `agent RSS during ${STREAM_RATE} changes/s (${streamJudgedBy})`, value: mbText(streamJudged), target: `<= ${rssTarget} MB`, pass: streamPass },
      { name: 'agent CPU idle (+ its commands), % of a core', value: `${dec(idleCpu, 2)} %`, target: `<= ${AGENT_TARGETS.idleCpuPercent} %`, pass: cpuPass },
    );
    this.rows.push(
      [`agent RSS during the stream (mean)`, mbText(streamRss)],
      ['agent RSS during the stream (max of samples every 500 ms)', mbText(streamMax)],
      ['agent peak RSS (VmHWM)', mbText(hwm)],
      [`agent CPU during ${STREAM_RATE} changes/s`, `${dec(streamCpu, 1)} %`],
      ['agent caught up after the stream', stream.caughtUp ? `${dec(stream.catchUpMs / 1000, 1)} s` : `NO (${CATCH_UP_TIMEOUT_MS / 1000} s)`],
    );
    console.log(`  ${pad('agent RSS idle (mean)', 44)} ${mbText(idleRss)}   target <= ${rssTarget} MB  ${verdict(idlePass)}`);
    console.log(`  ${pad(`agent RSS during the stream (${streamJudgedBy})`, 44)} ${mbText(streamJudged)}   target <= ${rssTarget} MB  ${verdict(streamPass)}`);
    console.log(`  ${pad('agent CPU idle (+ its commands)', 44)} ${dec(idleCpu, 2)} %   target <= ${AGENT_TARGETS.idleCpuPercent} %  ${verdict(cpuPass)}`);
    const breakdownJson = (b: MemoryBreakdown | undefined) => b && { rss: b.rss, heapTotal: b.heapTotal, heapUsed: b.heapUsed, external: b.external, arrayBuffers: b.arrayBuffers };
    this.json.sync = { ms: round2(syncMs), rssKb: afterSync?.rssKb, hwmKb: afterSync?.hwmKb };
    this.json.idle = {
      load: idleLoad,
      seconds: round2(idle.wallMs / 1000),
      rssMeanKb: Math.round(idleRss),
      rssMaxKb: Math.max(...idle.rssKb),
      cpuPercent: round2(idleCpu),
      cpuSelfPercent: round2(idle.cpuSelf),
      cpuChildrenPercent: round2(idle.cpuChildren),
      periodicPasses: periodic,
      periodicPassMeanMs: round2((periodicSeconds * 1000) / Math.max(periodic, 1)),
      memory: breakdownJson(idleBreakdown),
    };
    this.json.stream = {
      load: stream.load,
      rate: STREAM_RATE,
      seconds: round2(stream.sampled.wallMs / 1000),
      sent: stream.sent,
      failed: stream.failed,
      byKind: stream.byKind,
      passes: stream.passes,
      fastPasses: stream.fastPasses,
      catchUpMs: round2(stream.catchUpMs),
      caughtUp: stream.caughtUp,
      lagAtEnd: stream.lagAtEnd,
      lagAfterCatchUp: stream.lagAfter,
      rssMeanKb: Math.round(streamRss),
      rssMaxKb: streamMax,
      rssPeakKb: streamPeak,
      cpuPercent: round2(streamCpu),
      cpuSelfPercent: round2(stream.sampled.cpuSelf),
      cpuChildrenPercent: round2(stream.sampled.cpuChildren),
      memory: breakdownJson(stream.breakdown),
    };
    this.json.hwmKb = hwm;
    this.json.targets = AGENT_TARGETS;
  }

  /** Tenant, groups, segments, hosts and ports, through the REST API. */
  private async populate(): Promise<void> {
    const api = this.api!;
    const { layout } = this;
    const tenant = await api.json<{ id: string }>('POST', '/v1/tenants', { name: 'agent-bench' });
    for (let g = 0; g < layout.groups; g++) {
      this.memberGroups.push((await api.json<{ id: string }>('POST', '/v1/security-groups', { tenantId: tenant.id, name: `members-${g}`, rules: [] })).id);
    }
    // The policies of section 2: two rules on member groups, two on prefixes, egress open.
    for (let g = 0; g < layout.groups; g++) {
      const rules = [
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteGroupId: this.memberGroups[g] },
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 5432, portRangeMax: 5432, remoteGroupId: this.memberGroups[(g + 3) % layout.groups] },
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 443, portRangeMax: 443, remoteCidr: '0.0.0.0/0' },
        { direction: 'ingress', ethertype: 'IPv4', protocol: 'icmp', icmpType: 8, remoteCidr: '10.0.0.0/8' },
        { direction: 'egress', ethertype: 'IPv4', protocol: 'any' },
        { direction: 'egress', ethertype: 'IPv6', protocol: 'any' },
      ];
      this.policyGroups.push((await api.json<{ id: string }>('POST', '/v1/security-groups', { tenantId: tenant.id, name: `policy-${g}`, rules })).id);
    }
    for (let s = 0; s < layout.segments; s++) {
      const segment = await api.json<{ id: string; vni: number }>('POST', '/v1/segments', { tenantId: tenant.id, name: `agent-bench-${s}`, cidr: `10.${s}.0.0/16` });
      this.segmentIds.push(segment.id);
      this.vnis.push(segment.vni);
    }
    const local = await api.json<{ id: string }>('POST', '/v1/hosts', { name: layout.hostName, vtepIp: layout.localVtep });
    this.localHostId = local.id;
    for (const [h, vtep] of layout.remoteVteps.entries()) {
      this.hostIds[h] = (await api.json<{ id: string }>('POST', '/v1/hosts', { name: `remote-${h}`, vtepIp: vtep })).id;
    }
    const bodies = [
      ...layout.localPorts.map((p) => ({ segmentId: this.segmentIds[p.segment], mac: p.mac, ips: [p.ip], vmId: `vm-${p.tap}`, hostId: local.id, tapName: p.tap, securityGroupIds: [this.policyGroups[p.segment % layout.groups]] })),
      ...layout.remotePorts.map((p, i) => ({ segmentId: this.segmentIds[p.segment], mac: p.mac, ips: [p.ip], hostId: this.hostIds[p.host], securityGroupIds: [this.memberGroups[i % layout.groups]] })),
    ];
    const ids: string[] = [];
    for (let first = 0; first < bodies.length; first += FILL_BATCH) {
      const answer = await api.json<{ items: { id: string }[] }>('POST', '/v1/ports/batch', { ports: bodies.slice(first, first + FILL_BATCH) });
      ids.push(...answer.items.map((item) => item.id));
    }
    this.localIds = ids.slice(0, layout.localPorts.length);
    this.remoteIds = ids.slice(layout.localPorts.length);
    this.remoteHostOf = layout.remotePorts.map((p) => p.host);
    if (this.remoteIds.length !== layout.remotePorts.length) {
      throw new Error(`populate: ${ids.length} ports created of ${bodies.length}`);
    }
  }

  /** Revisions the agent is behind, as the controller says (GET /v1/hosts/{id}); NaN without an answer. */
  private async lag(): Promise<number> {
    try {
      return (await this.api!.json<{ lag: number }>('GET', `/v1/hosts/${this.localHostId}`)).lag;
    } catch {
      return NaN;
    }
  }

  private async scrape(): Promise<string> {
    const res = await this.metrics!.request('GET', '/metrics', undefined, { keepBody: true });
    if (res.status !== 200) {
      throw new Error(`agent GET /metrics: HTTP ${res.status}`);
    }
    return res.text;
  }

  /** Reconcile passes so far: periodic ones (count, seconds) and all. */
  private async passCounts(): Promise<{ periodic: number; periodicSeconds: number; all: number; fast: number }> {
    const text = await this.scrape();
    let all = 0;
    for (const pass of ['change', 'restore', 'periodic', 'retry']) {
      for (const result of ['ok', 'failed']) {
        all += metricValue(text, 'overlay_agent_apply_seconds_count', { pass, result }) || 0;
      }
    }
    return {
      periodic: metricValue(text, 'overlay_agent_apply_seconds_count', { pass: 'periodic', result: 'ok' }) || 0,
      periodicSeconds: metricValue(text, 'overlay_agent_apply_seconds_sum', { pass: 'periodic', result: 'ok' }) || 0,
      all,
      fast: metricValue(text, 'overlay_agent_fast_passes_total', {}) || 0,
    };
  }

  /** The agent says it is in sync and acked what it holds, and the kernel holds every entry and attached tap. */
  private async waitInSync(started: number): Promise<number> {
    const agent = this.agent!;
    const deadline = performance.now() + SYNC_TIMEOUT_MS;
    let last = 'no answer on /metrics yet';
    for (;;) {
      if (agent.exit) {
        throw new Error(`the agent exited (${agent.exit}) before it was in sync`);
      }
      try {
        const text = await this.scrape();
        const inSync = metricValue(text, 'overlay_agent_in_sync');
        const desired = metricValue(text, 'overlay_agent_desired_revision');
        const applied = metricValue(text, 'overlay_agent_applied_revision');
        last = `in_sync ${inSync}, desired revision ${desired}, applied ${applied}`;
        if (inSync === 1 && applied > 0 && applied === desired) {
          const k = await this.kernel.counts();
          last += `; kernel: ${k.fdb} remote entries, ${k.ports} attached taps`;
          if (k.fdb >= this.layout.remotePorts.length && k.ports === this.layout.localPorts.length) {
            return performance.now() - started;
          }
        }
      } catch (err) {
        last = (err as Error).message;
      }
      if (performance.now() > deadline) {
        throw new Error(`the agent was not in sync within ${SYNC_TIMEOUT_MS / 1000} s (${last})`);
      }
      await sleep(1_000);
    }
  }

  /**
   * STREAM_RATE changes a second for STREAM_MS, each one API call, paced: of every 50, one local
   * port's security group swapped (a policy change: the firewall is rendered and loaded), five
   * remote ports created or deleted in turn (a forwarding entry and a member set element each),
   * and the rest remote ports rebound to another host of their segment (a forwarding entry
   * moves: a migration seen from here). Then the last rebind is waited for in the kernel.
   */
  private async stream(): Promise<{ sampled: Sampled; sent: number; failed: number; byKind: Record<string, number>; catchUpMs: number; caughtUp: boolean; lagAtEnd: number; lagAfter: number; load: string; passes: number; fastPasses: number; breakdown?: MemoryBreakdown }> {
    const api = this.api!;
    const { layout } = this;
    const total = Math.round((STREAM_RATE * STREAM_MS) / 1000);
    const created: string[] = [];
    const byKind: Record<string, number> = { rebind: 0, create: 0, delete: 0, policy: 0 };
    let failed = 0;
    let firstError = '';
    let inFlight = 0;
    let lastRebind: { vni: number; mac: string; vtep: string } | undefined;
    const { all: passesBefore, fast: fastBefore } = await this.passCounts();
    const load = loadText();
    console.log(`  ${STREAM_RATE} changes/s for ${STREAM_MS / 1000} s through the API (load ${load}): per 50, 1 local port's security group swapped, 5 remote ports created or deleted in turn, 44 remote ports rebound within their segment`);
    const change = (k: number): Promise<unknown> => {
      const slot = k % 50;
      if (slot === 0) {
        const n = (k / 50) % this.localIds.length;
        const segment = layout.localPorts[n].segment;
        const flip = Math.floor(k / 50 / this.localIds.length) % 2 === 0;
        byKind.policy++;
        return api.send('PATCH', `/v1/ports/${this.localIds[n]}`, { securityGroupIds: [this.policyGroups[(segment + (flip ? 1 : 0)) % layout.groups]] });
      }
      if (slot % 10 === 5) {
        const m = Math.floor(k / 10);
        if (m % 2 === 0 || created.length === 0) {
          const segment = m % layout.segments;
          const hosts = layout.segmentHosts[segment];
          byKind.create++;
          return api
            .json<{ id: string }>('POST', '/v1/ports', {
              segmentId: this.segmentIds[segment],
              mac: `02:04:00:00:${((m >> 8) & 0xff).toString(16).padStart(2, '0')}:${(m & 0xff).toString(16).padStart(2, '0')}`,
              ips: [`10.${segment}.${2 + Math.floor(m / 250)}.${(m % 250) + 1}`],
              hostId: this.hostIds[hosts[m % hosts.length]],
              securityGroupIds: [this.memberGroups[m % layout.groups]],
            })
            .then((p) => created.push(p.id));
        }
        byKind.delete++;
        return api.send('DELETE', `/v1/ports/${created.shift()!}`);
      }
      const r = (k * 7919) % this.remoteIds.length;
      const port = layout.remotePorts[r];
      const hosts = layout.segmentHosts[port.segment];
      const next = hosts[(hosts.indexOf(this.remoteHostOf[r]) + 1) % hosts.length];
      this.remoteHostOf[r] = next;
      byKind.rebind++;
      lastRebind = { vni: this.vnis[port.segment], mac: port.mac, vtep: layout.remoteVteps[next] };
      return api.send('PATCH', `/v1/ports/${this.remoteIds[r]}`, { hostId: this.hostIds[next] });
    };
    const sampling = sample(this.agent!.pid, STREAM_MS, 500, true);
    const t0 = performance.now();
    let sent = 0;
    const pending = new Set<Promise<unknown>>();
    for (let k = 0; k < total; k++) {
      const due = t0 + (k * 1000) / STREAM_RATE;
      const wait = due - performance.now();
      if (wait > 0) {
        await sleep(wait);
      }
      while (inFlight >= STREAM_IN_FLIGHT) {
        await Promise.race(pending);
      }
      inFlight++;
      sent++;
      const p: Promise<unknown> = change(k)
        .catch((err: unknown) => {
          failed++;
          firstError ||= (err as Error).message;
        })
        .finally(() => {
          inFlight--;
          pending.delete(p);
        });
      pending.add(p);
    }
    await Promise.all(pending);
    const sendMs = performance.now() - t0;
    const sampled = await sampling;
    const breakdown = await scrapeMemory(this.metrics!);
    console.log(`    ${pad('sent', 42)} ${int(sent)} in ${dec(sendMs / 1000, 1)} s (${dec((sent * 1000) / sendMs)}/s): ${Object.entries(byKind).map(([k, v]) => `${int(v)} ${k}`).join(', ')}; ${failed} failed${firstError ? ` (first: ${firstError})` : ''}`);
    if (failed > total / 100) {
      throw new Error(`${failed} of ${total} changes failed: ${firstError}`);
    }
    // The stream is real only if it reached the kernel: the last rebind's entry there. An agent
    // that has not caught up by the deadline is reported with how far behind it is.
    const end = performance.now();
    const lagAtEnd = await this.lag();
    const deadline = end + CATCH_UP_TIMEOUT_MS;
    let dst: string | undefined;
    let caughtUp = true;
    while (lastRebind && (dst = await this.kernel.fdbDst(lastRebind.vni, lastRebind.mac)) !== lastRebind.vtep) {
      if (performance.now() > deadline) {
        caughtUp = false;
        break;
      }
      await sleep(200);
    }
    const catchUpMs = caughtUp ? performance.now() - end : NaN;
    const lagAfter = await this.lag();
    const counted = await this.passCounts();
    const passes = counted.all - passesBefore;
    const fast = counted.fast - fastBefore;
    if (caughtUp) {
      console.log(`    ${pad('the last change in the kernel (bridge fdb)', 42)} ${dec(catchUpMs / 1000, 1)} s after the stream ended (then ${lagAtEnd} revisions behind); ${int(passes)} reconcile passes for ${int(sent)} changes (${int(fast)} of them without reading the kernel)`);
    } else {
      console.log(
        `    !! the last change (${lastRebind!.mac} on VNI ${lastRebind!.vni} -> ${lastRebind!.vtep}) was NOT in the kernel ${CATCH_UP_TIMEOUT_MS / 1000} s after the stream (it points at ${dst ?? 'nothing'}): the agent was ${lagAtEnd} revisions behind at the end of the stream, ${lagAfter} after; ${int(passes)} reconcile passes meanwhile`,
      );
    }
    return { sampled, sent, failed, byKind, catchUpMs, caughtUp, lagAtEnd, lagAfter, load, passes, fastPasses: fast, breakdown };
  }
}
