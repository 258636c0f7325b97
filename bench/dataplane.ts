import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { DataplaneState, TrackedConnection } from '../src/agent/dataplane/dataplane';
import { ProcessCommandRunner, type CommandRunner } from '../src/agent/dataplane/linux/command-runner';
import type { Logger } from '../src/common/logger';
import { LinuxDataplane } from '../src/agent/dataplane/linux/linux.dataplane';
import { renderRuleset, type ConntrackMode } from '../src/agent/dataplane/linux/nftables';
import { mirrorVxlanName, tapName, vxlanName } from '../src/agent/dataplane/names';
import { mirrorTap, mirrorTapId } from '../src/common/span/mirror.kind';
import { desiredDataplane, planChanges, type SpanView } from '../src/agent/reconcile/plan';
import type { FirewallRule__Output } from '../src/generated/overlay/v1/FirewallRule';
import type { IpSetMember__Output } from '../src/generated/overlay/v1/IpSetMember';
import type { MirrorSink__Output } from '../src/generated/overlay/v1/MirrorSink';
import type { MirrorTap__Output } from '../src/generated/overlay/v1/MirrorTap';
import type { Port__Output } from '../src/generated/overlay/v1/Port';
import type { PortPolicy__Output } from '../src/generated/overlay/v1/PortPolicy';
import type { Segment__Output } from '../src/generated/overlay/v1/Segment';
import { percentile } from './pool';
import { ROOT, int, dec, pad, bytesText, verdict, round2, gitDescribe, writeResults } from './report';
import { AgentResources, type AgentHostLayout, type KernelProbe } from './agent-resources';

/*
 * overlay-agent dataplane benchmark: `npm run bench` (after the sync benchmark), or alone with
 * `BENCH_ONLY=dataplane npm run bench`. Needs root, iproute2 (`ip`, `bridge`) and `nft`; without
 * them, or where network namespaces cannot be created, it prints why and skips (exit 0).
 *
 * Everything happens in a throwaway network namespace `ovl-bench-dp-<random>`: this process
 * creates it, runs itself again inside it (`ip netns exec <ns> node dataplane.js --inner <file>`,
 * as the agent runs inside its hypervisor's namespace, so the real ProcessCommandRunner is used
 * unchanged), and deletes it at the end, also after an error, a timeout or Ctrl-C (the inner
 * process is stopped first). A detached watchdog deletes it should this process be SIGKILLed.
 * Deleting the namespace deletes everything made in it: taps, VXLAN devices, bridges, the table.
 *
 * The host: 100 segments; on each, 10 local ports (taps created beforehand with `ip -batch`
 * `tuntap add`, down and unattached as a hypervisor leaves them) and 100 remote ports spread
 * over 4 remote VTEPs (flood list of 4). 1,000 local ports, 10,000 remote entries.
 *
 * Measured, inside the namespace:
 *  1. Cold programming: the agent's realize path (desiredDataplane -> LinuxDataplane.observe ->
 *     planChanges -> LinuxDataplane.apply, through ProcessCommandRunner) from empty, 3 runs with a
 *     teardown (links deleted, taps down) between them; every command's wall time is recorded,
 *     so the total splits into processes and JavaScript. Then the periodic no-op reconcile
 *     (observe + plan, nothing to apply) on the programmed host, 5 runs.
 *  2. nftables: the firewall of those 1,000 ports (4 ingress and 2 egress rules each, 2 of them
 *     on remote groups; 10 groups of 1,000 IPv4 members = 10,000 set elements), for each of the
 *     renderer's conntrack modes (`bridge`, `br_netfilter`): rendered by renderRuleset, loaded
 *     by a LinuxDataplane readied with prepareFirewall(mode) through applyFirewall (`nft -f -`,
 *     the agent's 30 s runner timeout), 5 runs (a series stops after 60 s), each through a fresh
 *     dataplane, and the read back that follows each load (the drift fingerprint); the periodic
 *     drift check on an unchanged kernel (the same text again: one read, no load); then render +
 *     apply after one set element changed (applyFirewall chooses what to send); then the load
 *     with a rule of its own on every port (no two share a policy chain). A mode the kernel
 *     refuses (e.g. no bridge conntrack) is reported; one the timeout kills is measured again
 *     with a 180 s timeout, labelled; when none loads, the text without its `ct` lines is
 *     measured instead, labelled as such. When a load takes over 1 s, a diagnostic variant
 *     without the port chains' rules that hold anonymous sets shows where the time goes.
 *  3. Kernel floors beside them: 10,000 `fdb replace` lines in one `bridge -batch` on one VXLAN
 *     device, and one 10,000-element set in one `nft -f -`.
 *  4. The cost of mirroring: the cold programming and the no-op reconcile of 1. again, with every
 *     local port a source of one mirror session (both directions: 2,000 cls_bpf filters, half of
 *     them in the taps' shared egress block), to a remote sink through a mirror VXLAN device
 *     (`mx<vni>`), then to a local analyzer port; each beside the figures of 1.
 *  5. The agent process's memory and CPU (bench/agent-resources.ts): the real overlay-agent (the
 *     bundle of `npm run build:agent`, with deploy/overlay-agent-runtime.conf's node flags as the
 *     systemd unit runs it), connected over gRPC to a controller child process with a
 *     redis-server of its own, all in this namespace; the same host (1,000 local ports on these
 *     taps, 10,000 remote ports on 50 hosts, the policies and 10 member groups of 2.) created
 *     through the REST API. Once the agent acked the snapshot and the kernel holds it: its RSS
 *     (/proc/<pid>/status) and CPU (/proc/<pid>/stat, its own and its commands') over 120 s idle
 *     (periodic reconciles count), then during 100 changes/s for 60 s (security group swaps,
 *     remote ports created, deleted and rebound), the last change checked in the kernel; the
 *     peak (VmHWM). Targets: RSS <= 80 MB idle and during the stream, CPU <= 2 % of a core idle.
 *     A controller or agent that cannot start is reported; the rest of the phase stands. The
 *     processes are stopped at the end, and die with the namespace after an error or Ctrl-C.
 *     BENCH_DATAPLANE_ONLY=agent runs this section alone (after the setup);
 *     BENCH_AGENT_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") and BENCH_AGENT_ENV
 *     ("NAME=value ...") are added to the agent's command line and environment.
 * Figures are printed and written to .bench-out/dataplane.json. A missed target is reported,
 * never turned into a failing exit code; only a broken run exits non-zero.
 */

const OUT_FILE = path.join(ROOT, '.bench-out', 'dataplane.json');

const SEGMENTS = 100;
const LOCAL_PER_SEGMENT = 10;
const REMOTE_PER_SEGMENT = 100;
const REMOTE_VTEPS_PER_SEGMENT = 4;
/** Remote hypervisors the segments' VTEPs are drawn from (192.0.2.10 - .59). */
const REMOTE_HOSTS = 50;
const GROUPS = 10;
const MEMBERS_PER_GROUP = 1_000;
const LOCAL_VTEP = '192.0.2.1';
const VNI_BASE = 10_000;

const COLD_RUNS = 3;
const NOOP_RUNS = 5;
const NFT_RUNS = 5;
const FLOOR_FDB = 10_000;
const FLOOR_SET = 10_000;
/** A VM's tracked connections in the handover phase (the most a migration carries by default). */
const HANDOVER_CONNECTIONS = 100_000;
const HANDOVER_ZONE = 4242;
/** The inner process is killed after this long; the namespace is deleted anyway. */
const HARD_DEADLINE_MS = 900_000;

const TARGETS = { coldMs: 2_000 };

/** The mirror session of phase 4: its VNI (clear of the segments'), the remote sink's VTEP, the local analyzer port. */
const MIRROR_SESSION_ID = '0190d004-0000-7000-8000-000000000001';
const MIRROR_VNI = 20_000;
const MIRROR_REMOTE_SINK = '192.0.2.200';
const MIRROR_UDP_PORT = 4789;
type MirrorSinkKind = 'vxlan' | 'analyzer';
/** Measured on this development machine when the targets were set (quoted, not re-measured). */
const QUOTED_FLOOR = { fdb10kMs: 130, nftSet10kMs: 20 };

// ---------------------------------------------------------------------------------------------
// Formatting (as bench/sync.ts)

const msText = (ms: number): string => (ms >= 1000 ? `${dec(ms / 1000, 2)} s` : `${dec(ms)} ms`);
const median = (values: number[]): number => percentile([...values].sort((a, b) => a - b), 50);

interface Target {
  name: string;
  value: string;
  target: string;
  pass: boolean;
}

interface Results {
  meta: Record<string, unknown>;
  setup: Record<string, unknown>;
  cold: Record<string, unknown>;
  noop: Record<string, unknown>;
  nft: Record<string, unknown>;
  floors: Record<string, unknown>;
  handover?: Record<string, unknown>;
  mirror?: Record<string, unknown>;
  agent?: Record<string, unknown>;
  targets: Target[];
  errors: string[];
}

// ---------------------------------------------------------------------------------------------
// The host's span and firewall.

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');
const macOf = (kind: number, n: number): string => `02:${hex(kind, 2)}:00:${hex((n >>> 16) & 0xff, 2)}:${hex((n >>> 8) & 0xff, 2)}:${hex(n & 0xff, 2)}`;
/** UUIDv7-shaped ids; a local port's last 11 hex digits (its tap name) start with `be`, for a leak check. */
const segmentId = (s: number): string => `0190d000-0000-7000-8000-${hex(s, 12)}`;
const localPortId = (n: number): string => `0190d001-0000-7000-8000-dbe${hex(n, 9)}`;
const remotePortId = (n: number): string => `0190d002-0000-7000-8000-${hex(n, 12)}`;
const groupId = (g: number): string => `0190d003-0000-7000-8000-${hex(g, 12)}`;
const TAP_LEAK_PREFIX = 'tapbe';
const remoteVtep = (h: number): string => `192.0.2.${10 + h}`;

interface Workload {
  span: SpanView;
  taps: string[];
  policies: PortPolicy__Output[];
  members: IpSetMember__Output[];
}

function rule(r: Partial<FirewallRule__Output>): FirewallRule__Output {
  return { ethertype: 'IPv4', protocol: 'any', portMin: 0, portMax: 0, icmpType: -1, icmpCode: -1, remoteCidr: '', remoteGroupId: '', ...r };
}

function memberCidr(g: number, i: number): string {
  const k = i + 1;
  return `10.${200 + g}.${k >> 8}.${k & 255}`;
}

/**
 * A bound port with no migration under way. Built as a Partial: fields the proto gains later
 * (the migration fields are recent) stay unset rather than break this benchmark's build.
 */
function boundPort(p: Pick<Port__Output, 'id' | 'segmentId' | 'mac' | 'ips' | 'hostId' | 'vtepIp' | 'vmId'>): Port__Output {
  const port: Partial<Port__Output> = { preparedHostId: '', migrationId: '', preparedVtepIp: '', ...p };
  return port as Port__Output;
}

function buildWorkload(): Workload {
  const segments = new Map<string, Segment__Output>();
  const ports = new Map<string, Port__Output>();
  const taps: string[] = [];
  const policies: PortPolicy__Output[] = [];
  for (let s = 0; s < SEGMENTS; s++) {
    const hosts = Array.from({ length: REMOTE_VTEPS_PER_SEGMENT }, (_, k) => remoteVtep((s + k * 13) % REMOTE_HOSTS));
    const id = segmentId(s);
    segments.set(id, { id, tenantId: 'bench', vni: VNI_BASE + s, vteps: [LOCAL_VTEP, ...hosts].sort() });
    for (let j = 0; j < LOCAL_PER_SEGMENT; j++) {
      const n = s * LOCAL_PER_SEGMENT + j;
      const port = boundPort({ id: localPortId(n), segmentId: id, mac: macOf(1, n), ips: [`10.${s}.0.${j + 1}`], hostId: 'bench-host', vtepIp: LOCAL_VTEP, vmId: `vm-${n}` });
      ports.set(port.id, port);
      taps.push(tapName(port.id));
      policies.push({
        portId: port.id,
        portSecurity: true,
        mac: port.mac,
        ips: port.ips,
        allowedAddressPairs: [],
        ingress: [
          rule({ protocol: '6', portMin: 22, portMax: 22, remoteGroupId: groupId(s % GROUPS) }),
          rule({ protocol: '6', portMin: 5432, portMax: 5432, remoteGroupId: groupId((s + 3) % GROUPS) }),
          rule({ protocol: '6', portMin: 443, portMax: 443, remoteCidr: '0.0.0.0/0' }),
          rule({ protocol: '1', icmpType: 8, remoteCidr: '10.0.0.0/8' }),
        ],
        egress: [rule({ ethertype: 'IPv4', remoteCidr: '0.0.0.0/0' }), rule({ ethertype: 'IPv6', remoteCidr: '::/0' })],
      });
    }
    for (let j = 0; j < REMOTE_PER_SEGMENT; j++) {
      const n = s * REMOTE_PER_SEGMENT + j;
      const vtep = hosts[j % hosts.length];
      const port = boundPort({ id: remotePortId(n), segmentId: id, mac: macOf(2, n), ips: [`10.${s}.1.${j + 1}`], hostId: `remote-${vtep}`, vtepIp: vtep, vmId: '' });
      ports.set(port.id, port);
    }
  }
  const members: IpSetMember__Output[] = [];
  for (let g = 0; g < GROUPS; g++) {
    for (let i = 0; i < MEMBERS_PER_GROUP; i++) {
      members.push({ groupId: groupId(g), family: 'IPv4', cidr: memberCidr(g, i) });
    }
  }
  return { span: { hostId: 'bench-host', vtepIp: LOCAL_VTEP, segments, ports, mirrors: new Map(), mirrorSinks: new Map() }, taps, policies, members };
}

/** The same host as the API is to hold it, for section 5 (the agent process). */
function agentLayout(work: Workload): AgentHostLayout {
  const remoteVteps = Array.from({ length: REMOTE_HOSTS }, (_, h) => remoteVtep(h));
  const segmentOf = new Map([...work.span.segments.keys()].map((id, s) => [id, s]));
  const layout: AgentHostLayout = { hostName: work.span.hostId, localVtep: LOCAL_VTEP, segments: SEGMENTS, remoteVteps, segmentHosts: Array.from({ length: SEGMENTS }, () => []), localPorts: [], remotePorts: [], groups: GROUPS };
  for (const port of work.span.ports.values()) {
    const segment = segmentOf.get(port.segmentId)!;
    if (port.hostId === work.span.hostId) {
      layout.localPorts.push({ segment, mac: port.mac, ip: port.ips[0], tap: tapName(port.id) });
    } else {
      const host = remoteVteps.indexOf(port.vtepIp);
      layout.remotePorts.push({ segment, mac: port.mac, ip: port.ips[0], host });
      if (!layout.segmentHosts[segment].includes(host)) {
        layout.segmentHosts[segment].push(host);
      }
    }
  }
  return layout;
}

/** The analyzer port of phase 4 (a tap named like the local ports', for the leak check). */
const analyzerPortId = localPortId(SEGMENTS * LOCAL_PER_SEGMENT);

/**
 * The same host with every local port a source of one mirror session, both directions, to a
 * remote sink (a MirrorTap with the session VNI and the sink host's VTEP: copies leave through
 * `mx<vni>`) or to a local analyzer port (a MirrorTap naming it, and the MirrorSink the sink's
 * host gets: `mx<vni>` redirecting what arrives to the analyzer's tap).
 */
function mirroredSpan(work: Workload, sink: MirrorSinkKind): SpanView {
  const ports = new Map(work.span.ports);
  const mirrors = new Map<string, MirrorTap__Output>();
  const mirrorSinks = new Map<string, MirrorSink__Output>();
  const local = sink === 'analyzer';
  for (const port of work.span.ports.values()) {
    if (port.hostId === work.span.hostId) {
      mirrors.set(
        mirrorTapId(MIRROR_SESSION_ID, port.id),
        mirrorTap({ sessionId: MIRROR_SESSION_ID, portId: port.id, ingress: true, egress: true, ...(local ? { sinkPortId: analyzerPortId } : { vni: MIRROR_VNI, remoteIp: MIRROR_REMOTE_SINK, udpPort: MIRROR_UDP_PORT }) }),
      );
    }
  }
  if (local) {
    const analyzer = boundPort({ id: analyzerPortId, segmentId: segmentId(0), mac: macOf(3, 0), ips: [], hostId: work.span.hostId, vtepIp: LOCAL_VTEP, vmId: 'analyzer' });
    ports.set(analyzer.id, { ...analyzer, analyzer: true });
    mirrorSinks.set(MIRROR_SESSION_ID, { sessionId: MIRROR_SESSION_ID, vni: MIRROR_VNI, portId: analyzerPortId, interface: '' });
  }
  return { ...work.span, ports, mirrors, mirrorSinks };
}

// ---------------------------------------------------------------------------------------------
// Measuring the agent's own code path.

interface CommandTiming {
  command: string;
  /** Lines written to stdin (batch size). */
  lines: number;
  inBytes: number;
  ms: number;
  outBytes: number;
  failed?: string;
}

/** Delegates to the real runner and records each command's wall time (spawn to exit). */
class TimedRunner implements CommandRunner {
  readonly log: CommandTiming[] = [];

  constructor(private readonly inner: ProcessCommandRunner) {}

  async run(cmd: string, args: string[], stdin?: string): Promise<string> {
    const command = [cmd, ...args].join(' ');
    const lines = stdin ? stdin.split('\n').filter((l) => l !== '').length : 0;
    const inBytes = stdin ? Buffer.byteLength(stdin) : 0;
    const t0 = performance.now();
    try {
      const out = await this.inner.run(cmd, args, stdin);
      this.log.push({ command, lines, inBytes, ms: performance.now() - t0, outBytes: Buffer.byteLength(out) });
      return out;
    } catch (err) {
      this.log.push({ command, lines, inBytes, ms: performance.now() - t0, outBytes: 0, failed: (err as Error).message });
      throw err;
    }
  }

  /** The listings the agent reads in pieces (KernelReader), read so here too: its path, not `run`'s (the time includes the parse of the pieces, which runs as they are read). */
  async runInPieces(cmd: string, args: string[], each: (piece: string) => void): Promise<void> {
    const command = [cmd, ...args].join(' ');
    let outBytes = 0;
    const t0 = performance.now();
    try {
      await this.inner.runInPieces(cmd, args, (piece) => {
        outBytes += Buffer.byteLength(piece);
        each(piece);
      });
      this.log.push({ command, lines: 0, inBytes: 0, ms: performance.now() - t0, outBytes });
    } catch (err) {
      this.log.push({ command, lines: 0, inBytes: 0, ms: performance.now() - t0, outBytes: 0, failed: (err as Error).message });
      throw err;
    }
  }

  take(): CommandTiming[] {
    return this.log.splice(0);
  }
}

interface Realize {
  totalMs: number;
  desiredMs: number;
  observeMs: number;
  planMs: number;
  applyMs: number;
  steps: number;
  stepsByOp: Record<string, number>;
  commands: CommandTiming[];
}

const warnings: string[] = [];
const quietLogger: Logger = { info: () => undefined, warn: (m) => warnings.push(m) };

/**
 * What Agent.realize does when it must read the kernel (first realize, or the periodic full
 * reconcile), minus ack and firewall: desired state, observe, plan (sweep on: in sync), apply.
 */
async function realize(dataplane: LinuxDataplane, runner: TimedRunner, span: SpanView): Promise<Realize> {
  runner.take();
  const t0 = performance.now();
  const desired = desiredDataplane(span);
  const t1 = performance.now();
  const observed = await dataplane.observe();
  const t2 = performance.now();
  const plan = planChanges(desired, observed, true);
  const t3 = performance.now();
  if (plan.length) {
    await dataplane.apply(plan);
  }
  const t4 = performance.now();
  const stepsByOp: Record<string, number> = {};
  for (const step of plan) {
    stepsByOp[step.op] = (stepsByOp[step.op] ?? 0) + 1;
  }
  return { totalMs: t4 - t0, desiredMs: t1 - t0, observeMs: t2 - t1, planMs: t3 - t2, applyMs: t4 - t3, steps: plan.length, stepsByOp, commands: runner.take() };
}

function commandsText(commands: CommandTiming[]): string {
  return commands.map((c) => `${c.command}${c.lines ? ` (${int(c.lines)} lines)` : ''} ${dec(c.ms)} ms${c.outBytes ? ` -> ${bytesText(c.outBytes)}` : ''}`).join('; ');
}

const realizeJson = (r: Realize) => ({ totalMs: round2(r.totalMs), desiredMs: round2(r.desiredMs), observeMs: round2(r.observeMs), planMs: round2(r.planMs), applyMs: round2(r.applyMs), steps: r.steps, stepsByOp: r.stepsByOp, commands: commandsJson(r.commands) });

const commandsJson = (commands: CommandTiming[]) => commands.map((c) => ({ command: c.command, lines: c.lines, ms: round2(c.ms), outBytes: c.outBytes, ...(c.failed ? { failed: c.failed } : {}) }));

function counts(state: DataplaneState): { segments: number; fdb: number; ports: number; flood: number; mirrorFilters: number; mirrorDevices: number; analyzers: number } {
  let flood = 0;
  for (const s of state.segments.values()) {
    flood += s.floodVteps.length;
  }
  return { segments: state.segments.size, fdb: state.fdb.size, ports: state.ports.size, flood, mirrorFilters: state.mirrorFilters.size, mirrorDevices: state.mirrorDevices.size, analyzers: state.analyzers.size };
}

// ---------------------------------------------------------------------------------------------
// The inner process: runs inside the namespace, measures, prints, writes its results to a file.

const plain = new ProcessCommandRunner(60_000);
const lines = (xs: string[]): string => xs.join('\n') + '\n';

async function sh(cmd: string, args: string[], stdin?: string): Promise<string> {
  return plain.run(cmd, args, stdin);
}

/** Back to empty: our links deleted (their fdb entries go with them), taps released and down. */
async function teardown(taps: string[]): Promise<void> {
  const links = JSON.parse((await sh('ip', ['-j', 'link', 'show'])) || '[]') as { ifname: string }[];
  const owned = links.map((l) => l.ifname).filter((n) => /^(vx|br|mx)[0-9]+$/.test(n));
  if (owned.length) {
    await sh('ip', ['-batch', '-'], lines(owned.map((n) => `link del dev ${n}`)));
  }
  await sh('ip', ['-batch', '-'], lines(taps.map((t) => `link set dev ${t} down`)));
  // The gate's clsact on each tap too (the mirror filters go with it), so every run starts from a bare host.
  await sh('tc', ['-force', '-batch', '-'], lines(taps.map((t) => `qdisc del dev ${t} clsact`))).catch(() => undefined);
}

/** A LinuxDataplane as the agent runs it with the firewall on (the default): taps and VXLAN devices gated. */
async function agentDataplane(runner: CommandRunner): Promise<LinuxDataplane> {
  const dataplane = new LinuxDataplane(runner, quietLogger);
  await dataplane.prepareFirewall('auto');
  return dataplane;
}

type RenderInput = Parameters<typeof renderRuleset>[0];
/** The renderer's conntrack modes, the native one first (see nftables.ts). */
const CONNTRACK_MODES: readonly ConntrackMode[] = ['bridge', 'br_netfilter'];
/** A series of nft loads stops after this long (at least one run). */
const NFT_BUDGET_MS = 60_000;
/** ProcessCommandRunner's default, which the agent uses (src/agent/main.ts). */
const AGENT_TIMEOUT_MS = 30_000;
/** For re-measuring a load the agent's timeout killed. */
const LONG_TIMEOUT_MS = 180_000;

interface NftVariant {
  label: string;
  timeoutMs: number;
  timedOut?: boolean;
  renderMedianMs: number;
  textBytes: number;
  textLines: number;
  chains: number;
  anonymousSets: number;
  loadMs?: number[];
  readBackMs?: number[];
  driftCheckMs?: number[];
  change?: { renderMs: number[]; loadMs: number[]; sentBytes: number[]; medianTotalMs: number };
  error?: string;
}

/** Rule lines (not set definitions) that hold an anonymous set `{ ... }`. */
function countAnonymousSets(text: string): number {
  return text.split('\n').filter((l) => /^\t\t(?!elements = )/.test(l) && l.includes('{ ')).length;
}

/** Diagnostic: the text without the port chains' rules that hold an anonymous set. */
function dropPortAnonymousSets(text: string): string {
  let inPort = false;
  return text
    .split('\n')
    .filter((l) => {
      if (/^\tchain p_/.test(l)) {
        inPort = true;
        return true;
      }
      if (l === '\t}') {
        inPort = false;
      }
      return !(inPort && l.includes('{ '));
    })
    .join('\n');
}

/** The first lines of a command's error, on one line. */
const oneLine = (message: string): string =>
  message
    .split('\n')
    .slice(0, 3)
    .map((l) => (l.length > 240 ? `${l.slice(0, 240)}...` : l))
    .join(' | ');

class Inner {
  private readonly targets: Target[] = [];
  private nftVariants: NftVariant[] = [];
  private handoverRows: [string, string][] = [];
  private noopMedianMs?: number;
  private coldMedianMs?: number;
  private mirrorRows: [string, string][] = [];
  private agentRows: [string, string][] = [];

  constructor(
    private readonly results: Results,
    private readonly ns: string,
  ) {}

  async run(): Promise<void> {
    const work = buildWorkload();
    const desired = desiredDataplane(work.span);
    const want = counts(desired);
    const ver = (cmd: string, args: string[]): string => {
      try {
        return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
      } catch {
        return '?';
      }
    };
    const commit = gitDescribe();
    const iproute = /iproute2-[^\s,]+/.exec(ver('ip', ['-V']))?.[0] ?? 'iproute2 ?';
    const nftVersion = ver('nft', ['--version']);
    this.results.meta = { startedAt: new Date().toISOString(), loadAverage: os.loadavg(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', kernel: os.release(), iproute2: iproute, nft: nftVersion, namespace: this.ns, commit };
    console.log(`overlay-agent dataplane benchmark — commit ${commit}, node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), kernel ${os.release()}, ${iproute}, ${nftVersion}; load average ${os.loadavg().map((l) => dec(l, 2)).join(' ')}`);
    console.log(`Everything runs in the throwaway network namespace ${this.ns}; commands go through the agent's ProcessCommandRunner (one child process each).`);

    // The host: an underlay address for the VTEP (a veth: this kernel may lack the dummy driver), and the hypervisor's taps.
    await sh('ip', ['-batch', '-'], lines(['link set dev lo up', 'link add name eth0 type veth peer name eth0peer', 'link set dev eth0peer up', `addr add ${LOCAL_VTEP}/24 dev eth0`, 'link set dev eth0 up']));
    const tTap = performance.now();
    await sh('ip', ['-batch', '-'], lines(work.taps.map((t) => `tuntap add dev ${t} mode tap`)));
    const tapMs = performance.now() - tTap;
    console.log(
      `\nSetup: ${int(SEGMENTS)} segments (VNI ${VNI_BASE}-${VNI_BASE + SEGMENTS - 1}); ${int(want.ports)} local ports (${LOCAL_PER_SEGMENT}/segment), ${int(want.fdb)} remote MAC entries (${REMOTE_PER_SEGMENT}/segment over ${REMOTE_VTEPS_PER_SEGMENT} remote VTEPs), ${int(want.flood)} flood entries; local VTEP ${LOCAL_VTEP} on eth0 (a veth)`,
    );
    console.log(`  ${pad('taps created (ip -batch tuntap add, not timed)', 44)} ${int(work.taps.length)} in ${msText(tapMs)}`);
    this.results.setup = { segments: want.segments, localPorts: want.ports, remoteEntries: want.fdb, floodEntries: want.flood, tapsCreatedMs: round2(tapMs) };

    if (process.env.BENCH_DATAPLANE_ONLY !== 'agent') {
      await this.cold(work, desired);
      await this.noop(work);
      await this.nft(work);
      await this.handover();
      await this.floors();
      await this.mirrorCost(work);
    }
    await this.agentProcess(work);
  }

  /** Section 5: the real agent process on a bare host (what sections 1-4 left is removed first). */
  private async agentProcess(work: Workload): Promise<void> {
    await teardown(work.taps);
    await sh('nft', ['delete', 'table', 'bridge', 'overlay']).catch(() => undefined);
    await sh('nft', ['delete', 'table', 'inet', 'overlay']).catch(() => undefined);
    const reader = new LinuxDataplane(new ProcessCommandRunner(), quietLogger);
    const kernel: KernelProbe = {
      counts: async () => counts(await reader.observe()),
      fdbDst: async (vni, mac) => {
        const entries = JSON.parse((await sh('bridge', ['-j', 'fdb', 'show', 'dev', vxlanName(vni)])) || '[]') as { mac: string; dst?: string }[];
        return entries.find((e) => e.mac === mac && e.dst)?.dst;
      },
    };
    const outcome = await new AgentResources(agentLayout(work), kernel).run();
    this.targets.push(...outcome.targets);
    this.agentRows = outcome.rows;
    this.results.agent = outcome.json;
    if (typeof outcome.json.error === 'string') {
      this.results.errors.push(`agent process: ${outcome.json.error}`);
    }
  }

  /**
   * A migrating VM's connection handover on the kernel: HANDOVER_CONNECTIONS tracked connections
   * of one address inserted into a zone as a destination does (LinuxDataplane.insertConnections:
   * a listing for those already there, then one `conntrack -R`), listed as a source does
   * (listConnections: `conntrack -L -w <zone>` with -s and -d), and inserted again (all already
   * there: the listing only).
   */
  private async handover(): Promise<void> {
    console.log(`\nConnection handover of a migrating VM with ${int(HANDOVER_CONNECTIONS)} tracked TCP connections (zone ${HANDOVER_ZONE}), through the agent's LinuxDataplane`);
    const dataplane = new LinuxDataplane(new ProcessCommandRunner(), quietLogger);
    const vm = '10.200.0.10';
    const connections: TrackedConnection[] = Array.from({ length: HANDOVER_CONNECTIONS }, (_, i) => ({
      protocol: 6,
      src: vm,
      dst: `10.201.${(i >> 8) & 255}.${i & 255}`,
      srcPort: 1024 + (i >> 16),
      dstPort: 443,
      tcpState: 'ESTABLISHED',
      timeoutSeconds: 432_000,
      seenReply: true,
      assured: true,
    }));
    let t0 = performance.now();
    const inserted = await dataplane.insertConnections(HANDOVER_ZONE, [vm], connections);
    const insertMs = performance.now() - t0;
    t0 = performance.now();
    const listed = await dataplane.listConnections(HANDOVER_ZONE, [vm], HANDOVER_CONNECTIONS);
    const listMs = performance.now() - t0;
    t0 = performance.now();
    const again = await dataplane.insertConnections(HANDOVER_ZONE, [vm], connections);
    const againMs = performance.now() - t0;
    await sh('conntrack', ['-D', '-w', String(HANDOVER_ZONE)]).catch(() => undefined);
    if (inserted.installed !== HANDOVER_CONNECTIONS || listed.length !== HANDOVER_CONNECTIONS || again.installed !== HANDOVER_CONNECTIONS) {
      throw new Error(`handover: inserted ${inserted.installed} (failed ${inserted.failed}: ${inserted.error}), listed ${listed.length}, inserted again ${again.installed}`);
    }
    console.log(`  ${pad('insert on the destination (list + conntrack -R)', 44)} ${msText(insertMs)}`);
    console.log(`  ${pad('dump on the source (conntrack -L -s, -d; parse)', 44)} ${msText(listMs)}`);
    console.log(`  ${pad('insert again, all already tracked (list only)', 44)} ${msText(againMs)}`);
    this.handoverRows = [
      [`handover, ${int(HANDOVER_CONNECTIONS)} connections: dump (source)`, msText(listMs)],
      [`handover, ${int(HANDOVER_CONNECTIONS)} connections: insert (destination)`, msText(insertMs)],
    ];
    this.results.handover = { connections: HANDOVER_CONNECTIONS, insertMs: round2(insertMs), listMs: round2(listMs), insertAgainMs: round2(againMs) };
  }

  /**
   * COLD_RUNS cold programmings of `span` from empty (`taps` torn down before each run, the first
   * too when `programmed`), each checked: the kernel then reads back as `desired`, and no mirror
   * filter failed.
   */
  private async coldRuns(span: SpanView, taps: string[], desired: DataplaneState, programmed: boolean): Promise<Realize[]> {
    const runs: Realize[] = [];
    for (let r = 0; r < COLD_RUNS; r++) {
      if (r > 0 || programmed) {
        await teardown(taps);
      }
      const runner = new TimedRunner(new ProcessCommandRunner());
      const dataplane = await agentDataplane(runner); // realize() times only its own commands
      const before = counts(await dataplane.observe());
      if (before.segments || before.fdb || before.ports || before.mirrorFilters || before.mirrorDevices || before.analyzers) {
        throw new Error(`run ${r + 1} did not start from empty: ${JSON.stringify(before)}`);
      }
      const res = await realize(dataplane, runner, span);
      runs.push(res);
      // Check the outcome: the kernel now reads back as desired.
      const got = await dataplane.observe();
      const left = planChanges(desired, got, true);
      const c = counts(got);
      const want = counts(desired);
      if (left.length || JSON.stringify(c) !== JSON.stringify(want)) {
        throw new Error(`run ${r + 1}: the kernel does not read back as desired: ${JSON.stringify(c)} vs ${JSON.stringify(want)}; ${left.length} steps left, first ${JSON.stringify(left[0])}`);
      }
      const [failed] = dataplane.mirrorFailures();
      if (failed) {
        throw new Error(`run ${r + 1}: ${dataplane.mirrorFailures().size} mirror filter(s) not in place, e.g. ${failed[0]}: ${failed[1]}`);
      }
      const processMs = res.commands.reduce((a, c) => a + c.ms, 0);
      console.log(
        `  run ${r + 1}: ${msText(res.totalMs)} (desired ${dec(res.desiredMs)} ms, observe ${dec(res.observeMs)} ms, plan ${dec(res.planMs)} ms, apply ${dec(res.applyMs)} ms); plan ${int(res.steps)} steps ${JSON.stringify(res.stepsByOp)}; ${res.commands.length} processes, ${dec(processMs)} ms of it in them`,
      );
      console.log(`      ${commandsText(res.commands)}`);
    }
    return runs;
  }

  private async cold(work: Workload, desired: DataplaneState): Promise<void> {
    console.log(`\nCold programming from empty: the agent's realize (desiredDataplane -> observe -> planChanges -> apply) through ProcessCommandRunner, ${COLD_RUNS} runs, torn down between runs`);
    const runs = await this.coldRuns(work.span, work.taps, desired, false);
    const med = median(runs.map((r) => r.totalMs));
    this.coldMedianMs = med;
    const pass = med <= TARGETS.coldMs;
    console.log(`  ${pad(`cold programming (median of ${COLD_RUNS})`, 44)} ${msText(med)}   target <= ${msText(TARGETS.coldMs)}  ${verdict(pass)}`);
    if (warnings.length) {
      console.log(`      dataplane warnings: ${warnings.length}, e.g. ${warnings[0]}`);
    }
    this.targets.push({ name: `cold programming, ${int(counts(desired).ports)} ports + ${int(counts(desired).fdb)} entries`, value: msText(med), target: `<= ${msText(TARGETS.coldMs)}`, pass });
    this.results.cold = {
      runs: runs.map(realizeJson),
      medianMs: round2(med),
      targetMs: TARGETS.coldMs,
      warnings: warnings.length,
    };
  }

  /** NOOP_RUNS reconciles of the host as programmed for `span`, each checked to plan nothing. */
  private async noopRuns(span: SpanView): Promise<Realize[]> {
    const runner = new TimedRunner(new ProcessCommandRunner());
    const dataplane = await agentDataplane(runner);
    const runs: Realize[] = [];
    for (let r = 0; r < NOOP_RUNS; r++) {
      const res = await realize(dataplane, runner, span);
      if (res.steps) {
        throw new Error(`no-op reconcile ${r + 1} planned ${res.steps} steps ${JSON.stringify(res.stepsByOp)}`);
      }
      runs.push(res);
    }
    return runs;
  }

  private async noop(work: Workload): Promise<void> {
    console.log(`\nNo-op reconcile on the programmed host (the periodic full realize: desired -> observe -> plan, nothing to apply), ${NOOP_RUNS} runs`);
    const runs = await this.noopRuns(work.span);
    const med = median(runs.map((r) => r.totalMs));
    this.noopMedianMs = med;
    const sample = runs[runs.length - 1];
    const processMs = sample.commands.reduce((a, c) => a + c.ms, 0);
    console.log(`  ${pad(`no-op reconcile (median of ${NOOP_RUNS})`, 44)} ${msText(med)}   (runs: ${runs.map((r) => dec(r.totalMs)).join(', ')} ms)`);
    console.log(`      last run: desired ${dec(sample.desiredMs)} ms, observe ${dec(sample.observeMs)} ms (${dec(processMs)} ms in processes, the rest parsing JSON and mapping), plan ${dec(sample.planMs)} ms`);
    console.log(`      ${commandsText(sample.commands)}`);
    this.results.noop = {
      runs: runs.map((r) => ({ totalMs: round2(r.totalMs), desiredMs: round2(r.desiredMs), observeMs: round2(r.observeMs), planMs: round2(r.planMs), commands: commandsJson(r.commands) })),
      medianMs: round2(med),
    };
  }

  /**
   * Phase 4: cold programming and no-op reconcile with 1,000 mirrored taps, for each sink kind,
   * beside the figures of the same host without mirrors (phase 1, earlier in this run).
   */
  private async mirrorCost(work: Workload): Promise<void> {
    const sources = work.taps.length;
    console.log(
      `\nThe cost of mirroring: cold programming (${COLD_RUNS} runs) and no-op reconcile (${NOOP_RUNS} runs) as above, with each of the ${int(sources)} local ports a source of one mirror session, both directions (${int(2 * sources)} cls_bpf filters: ${int(sources)} on the taps' own ingress, ${int(sources)} in their shared egress block behind an ifindex check)`,
    );
    const analyzerTap = tapName(analyzerPortId);
    await sh('ip', ['tuntap', 'add', 'dev', analyzerTap, 'mode', 'tap']);
    const taps = [...work.taps, analyzerTap];
    const out: Record<string, unknown> = { sources, withoutMirrors: { coldMedianMs: round2(this.coldMedianMs ?? NaN), noopMedianMs: round2(this.noopMedianMs ?? NaN) } };
    const diff = (ms: number, base: number | undefined): string => (base === undefined ? '' : `; without mirrors ${msText(base)}: ${ms >= base ? '+' : ''}${msText(ms - base)} (x${dec(ms / base, 2)})`);
    for (const sink of ['vxlan', 'analyzer'] as const) {
      const span = mirroredSpan(work, sink);
      const errors = new Map<string, string>();
      const desired = desiredDataplane(span, errors);
      if (errors.size) {
        throw new Error(`mirrors (${sink}): the span asks for what cannot be programmed: ${[...errors].slice(0, 2).join('; ')}`);
      }
      const want = counts(desired);
      const label = sink === 'vxlan' ? `to a remote sink through ${mirrorVxlanName(MIRROR_VNI)} (remote ${MIRROR_REMOTE_SINK})` : `to a local analyzer port (its tap, and ${mirrorVxlanName(MIRROR_VNI)} of the sink side redirecting to it)`;
      console.log(`  mirrored ${label}: ${int(want.mirrorFilters)} mirror filters, ${want.mirrorDevices} mirror device(s), ${want.analyzers} analyzer tap(s)`);
      const cold = await this.coldRuns(span, taps, desired, true);
      const noop = await this.noopRuns(span);
      const coldMed = median(cold.map((r) => r.totalMs));
      const noopMed = median(noop.map((r) => r.totalMs));
      const pass = coldMed <= TARGETS.coldMs;
      const sample = noop[noop.length - 1];
      console.log(`  ${pad(`cold programming (median of ${COLD_RUNS})`, 44)} ${msText(coldMed)}${diff(coldMed, this.coldMedianMs)}   target <= ${msText(TARGETS.coldMs)}  ${verdict(pass)}`);
      console.log(`  ${pad(`no-op reconcile (median of ${NOOP_RUNS})`, 44)} ${msText(noopMed)}${diff(noopMed, this.noopMedianMs)}   (runs: ${noop.map((r) => dec(r.totalMs)).join(', ')} ms)`);
      console.log(`      last no-op run: desired ${dec(sample.desiredMs)} ms, observe ${dec(sample.observeMs)} ms (${dec(sample.commands.reduce((a, c) => a + c.ms, 0))} ms in processes), plan ${dec(sample.planMs)} ms; ${commandsText(sample.commands)}`);
      this.targets.push({ name: `cold, the same + ${int(sources)} mirrored taps (${sink})`, value: msText(coldMed), target: `<= ${msText(TARGETS.coldMs)}`, pass });
      this.mirrorRows.push([`no-op reconcile, ${int(sources)} mirrored taps (${sink})`, msText(noopMed)]);
      out[sink] = {
        mirrorFilters: want.mirrorFilters,
        mirrorDevices: want.mirrorDevices,
        analyzers: want.analyzers,
        cold: { runs: cold.map(realizeJson), medianMs: round2(coldMed), diffMs: round2(coldMed - (this.coldMedianMs ?? NaN)) },
        noop: { runs: noop.map(realizeJson), medianMs: round2(noopMed), diffMs: round2(noopMed - (this.noopMedianMs ?? NaN)) },
      };
    }
    this.results.mirror = out;
  }

  /**
   * Applies `texts()` through the dataplane up to NFT_RUNS times, stopping early once a series
   * has used NFT_BUDGET_MS (at least one run). The wall times and bytes sent, or the error.
   */
  private async applyRuns(
    dataplaneOf: () => Promise<LinuxDataplane>,
    runner: TimedRunner,
    text: (run: number) => string,
  ): Promise<{ ms: number[]; readMs: number[]; renderMs: number[]; sent: number[]; capped: boolean } | { error: string; ms: number[] }> {
    const ms: number[] = [];
    const readMs: number[] = [];
    const renderMs: number[] = [];
    const sent: number[] = [];
    const start = performance.now();
    for (let r = 0; r < NFT_RUNS; r++) {
      if (r > 0 && performance.now() - start > NFT_BUDGET_MS) {
        return { ms, readMs, renderMs, sent, capped: true };
      }
      const t0 = performance.now();
      const next = text(r);
      renderMs.push(performance.now() - t0);
      const dataplane = await dataplaneOf();
      runner.take();
      try {
        await dataplane.applyFirewall({ text: next, ports: new Map() }); // the text is what it loads
      } catch (err) {
        return { error: (err as Error).message, ms: runner.take().map((c) => c.ms) };
      }
      // The load, then the read back (`nft -j list table`) that fingerprints what the kernel holds.
      const [cmd, ...reads] = runner.take();
      ms.push(cmd.ms);
      readMs.push(reads.reduce((a, c) => a + c.ms, 0));
      sent.push(cmd.inBytes);
    }
    return { ms, readMs, renderMs, sent, capped: false };
  }

  /**
   * One variant of the firewall: rendered NFT_RUNS times, applied through a fresh LinuxDataplane
   * readied with prepareFirewall(mode) as the agent readies it (runner timeout `timeoutMs`), then
   * one set element changed and the whole state rendered and applied again, as the agent does
   * (applyFirewall decides what to send). `loadOnly`: no element-change series.
   */
  private async nftVariant(label: string, work: Workload, mode: ConntrackMode, render: (members: IpSetMember__Output[]) => string, opts: { timeoutMs: number; loadOnly?: boolean }): Promise<NftVariant> {
    const renderMs: number[] = [];
    let text = '';
    for (let r = 0; r < NFT_RUNS; r++) {
      const t0 = performance.now();
      text = render(work.members);
      renderMs.push(performance.now() - t0);
    }
    const v: NftVariant = { label, timeoutMs: opts.timeoutMs, renderMedianMs: median(renderMs), textBytes: Buffer.byteLength(text), textLines: text.split('\n').length, chains: (text.match(/^\tchain /gm) ?? []).length, anonymousSets: countAnonymousSets(text) };
    console.log(`  ${label}`);
    console.log(`    ${pad(`render (median of ${NFT_RUNS})`, 42)} ${dec(v.renderMedianMs)} ms; text ${bytesText(v.textBytes)} (${int(v.textBytes)} bytes), ${int(v.textLines)} lines, ${int(v.chains)} chains, ${int(v.anonymousSets)} rules with an anonymous set`);
    const runner = new TimedRunner(new ProcessCommandRunner(opts.timeoutMs));
    const dataplane = new LinuxDataplane(runner, quietLogger);
    try {
      await dataplane.prepareFirewall(mode);
    } catch (err) {
      v.error = `prepareFirewall(${mode}): ${(err as Error).message}`;
      console.log(`    !! ${oneLine(v.error)}`);
      return v;
    }
    // The same text every run, each through a fresh dataplane (which knows of no earlier load, so
    // loads it whole): given the text it loaded last, a dataplane only checks the kernel for drift.
    const fresh = async (): Promise<LinuxDataplane> => {
      const d = new LinuxDataplane(runner, quietLogger);
      await d.prepareFirewall(mode);
      return d;
    };
    const loads = await this.applyRuns(fresh, runner, () => text);
    if ('error' in loads) {
      v.error = loads.error;
      const killed = /killed by SIGTERM/.test(loads.error);
      v.timedOut = killed;
      console.log(`    !! does NOT load${killed ? `: killed by the runner's ${opts.timeoutMs / 1000} s timeout after ${msText(loads.ms[0] ?? NaN)}` : ' on this kernel'}: ${oneLine(loads.error)}`);
      return v;
    }
    v.loadMs = loads.ms;
    const runsText = loads.capped ? `${loads.ms.length} runs: series stopped after ${NFT_BUDGET_MS / 1000} s` : `${loads.ms.length} runs`;
    console.log(`    ${pad(`nft -f - whole text (median of ${loads.ms.length})`, 42)} ${msText(median(loads.ms))}   (${runsText}: ${loads.ms.map((m) => dec(m)).join(', ')} ms; the first creates the tables, the others replace them)`);
    console.log(`    ${pad('  then read back (drift fingerprint)', 42)} ${msText(median(loads.readMs))}   median (nft -j list table, after every load)`);
    v.readBackMs = loads.readMs;
    // The periodic reconcile on an unchanged kernel: the same text again, on the dataplane that loaded it.
    const drift = await this.applyRuns(async () => dataplane, runner, () => text);
    if (!('error' in drift)) {
      const checks = [...drift.ms.map((m, i) => m + drift.readMs[i])];
      v.driftCheckMs = checks;
      console.log(`    ${pad(`periodic drift check, unchanged (median of ${checks.length})`, 42)} ${msText(median(checks))}   (only nft -j list table, no load: ${checks.map((m) => dec(m)).join(', ')} ms)`);
    }
    if (opts.loadOnly) {
      return v;
    }
    const changed = [...work.members];
    const change = await this.applyRuns(async () => dataplane, runner, (r) => {
      changed[0] = { ...changed[0], cidr: r % 2 === 0 ? '10.250.0.1' : memberCidr(0, 0) };
      return render(changed);
    });
    if ('error' in change) {
      v.error = `apply after one element changed: ${change.error}`;
      console.log(`    !! ${oneLine(v.error)}`);
      return v;
    }
    const total = change.ms.map((m, i) => m + change.renderMs[i]);
    v.change = { renderMs: change.renderMs, loadMs: change.ms, sentBytes: change.sent, medianTotalMs: median(total) };
    console.log(
      `    ${pad('one set element changed: render + apply', 42)} ${msText(median(total))} median of ${total.length} (render ${dec(median(change.renderMs))} ms + nft -f - ${dec(median(change.ms))} ms; applyFirewall sent ${bytesText(median(change.sent))}; then read back ${dec(median(change.readMs))} ms)`,
    );
    return v;
  }

  private async nft(work: Workload): Promise<void> {
    const elements = work.members.length;
    console.log(
      `\nnftables: the firewall of ${int(work.policies.length)} ports (${work.policies[0].ingress.length} ingress + ${work.policies[0].egress.length} egress rules each, 2 on remote groups), ${GROUPS} remote groups of ${int(MEMBERS_PER_GROUP)} IPv4 members = ${int(elements)} set elements`,
    );
    console.log(
      `  rendered by renderRuleset (src/agent/dataplane/linux/nftables.ts), applied by LinuxDataplane.prepareFirewall(mode) + applyFirewall (\`nft -f -\`, one transaction) through ProcessCommandRunner with the agent's ${AGENT_TIMEOUT_MS / 1000} s timeout`,
    );
    const vnis = [...work.span.segments.values()].map((s) => s.vni);
    const input = (members: IpSetMember__Output[], mode: ConntrackMode): RenderInput => ({ policies: work.policies, members, tapOf: tapName, vnis, conntrack: mode });
    const stripCt = (t: string): string =>
      t
        .split('\n')
        .filter((l) => !/^\s*ct /.test(l))
        .join('\n');
    const variants: NftVariant[] = [];
    for (const mode of CONNTRACK_MODES) {
      const v = await this.nftVariant(`conntrack mode ${mode}`, work, mode, (members) => renderRuleset(input(members, mode)), { timeoutMs: AGENT_TIMEOUT_MS });
      variants.push(v);
      if (v.timedOut) {
        console.log(`    the same, with a ${LONG_TIMEOUT_MS / 1000} s timeout, to see how long it takes (NOT what the agent allows)`);
        variants.push(await this.nftVariant(`conntrack mode ${mode}, runner timeout ${LONG_TIMEOUT_MS / 1000} s`, work, mode, (members) => renderRuleset(input(members, mode)), { timeoutMs: LONG_TIMEOUT_MS }));
      }
    }
    // Ports that share rules share a policy chain; the worst case gives each port rules of its own.
    const own = work.policies.map((p, n) => ({ ...p, ingress: [...p.ingress, { ...p.ingress[2], portMin: 10_000 + n, portMax: 10_000 + n }] }));
    for (const mode of CONNTRACK_MODES.filter((m) => variants.some((v) => v.loadMs && v.label === `conntrack mode ${m}`))) {
      variants.push(
        await this.nftVariant(`conntrack mode ${mode}, every port with a rule of its own (one policy chain per port)`, work, mode, (members) => renderRuleset({ ...input(members, mode), policies: own }), { timeoutMs: AGENT_TIMEOUT_MS, loadOnly: true }),
      );
    }
    let slowest = variants.filter((v) => v.loadMs).sort((a, b) => median(b.loadMs!) - median(a.loadMs!))[0];
    let slowestText = (members: IpSetMember__Output[]): string => renderRuleset(input(members, slowest.label.includes('br_netfilter') ? 'br_netfilter' : 'bridge'));
    if (!slowest) {
      console.log("  no ruleset the agent renders loads here; measuring the first one without its `ct` lines instead: NOT the agent's ruleset, a lower bound for it");
      const stateless = await this.nftVariant(`conntrack mode ${CONNTRACK_MODES[0]} minus its ct lines (stateless, not the agent's)`, work, CONNTRACK_MODES[0], (members) => stripCt(renderRuleset(input(members, CONNTRACK_MODES[0]))), {
        timeoutMs: LONG_TIMEOUT_MS,
      });
      variants.push(stateless);
      slowest = stateless;
      slowestText = (members) => stripCt(renderRuleset(input(members, CONNTRACK_MODES[0])));
    }
    if (slowest?.loadMs && median(slowest.loadMs) > 1_000) {
      console.log(`  diagnosis: "${slowest.label}" without the port chains' rules that hold an anonymous set (\`{ a, b }\`); NOT a working firewall`);
      const mode: ConntrackMode = slowest.label.includes('br_netfilter') ? 'br_netfilter' : 'bridge';
      variants.push(
        await this.nftVariant(`${slowest.label}, minus port-chain rules with anonymous sets (diagnostic)`, work, mode, (members) => dropPortAnonymousSets(slowestText(members)), { timeoutMs: LONG_TIMEOUT_MS, loadOnly: true }),
      );
    }
    await sh('nft', ['delete', 'table', 'bridge', 'overlay']).catch(() => undefined);
    await sh('nft', ['delete', 'table', 'inet', 'overlay']).catch(() => undefined);
    this.results.nft = {
      ports: work.policies.length,
      setElements: elements,
      agentTimeoutMs: AGENT_TIMEOUT_MS,
      variants: variants.map((v) => ({
        label: v.label,
        timeoutMs: v.timeoutMs,
        renderMedianMs: round2(v.renderMedianMs),
        textBytes: v.textBytes,
        textLines: v.textLines,
        chains: v.chains,
        rulesWithAnonymousSets: v.anonymousSets,
        ...(v.loadMs ? { loadMs: v.loadMs.map(round2), loadMedianMs: round2(median(v.loadMs)) } : {}),
        ...(v.readBackMs ? { readBackMedianMs: round2(median(v.readBackMs)) } : {}),
        ...(v.driftCheckMs ? { driftCheckMs: v.driftCheckMs.map(round2), driftCheckMedianMs: round2(median(v.driftCheckMs)) } : {}),
        ...(v.change ? { oneElementChange: { renderMs: v.change.renderMs.map(round2), loadMs: v.change.loadMs.map(round2), sentBytes: v.change.sentBytes, medianTotalMs: round2(v.change.medianTotalMs) } } : {}),
        ...(v.error ? { error: v.error, timedOut: v.timedOut ?? false } : {}),
      })),
    };
    this.nftVariants = variants;
  }

  /** The kernel's own cost for the same volume, without the agent: reference figures. */
  private async floors(): Promise<void> {
    console.log('\nKernel floors measured here (one process each, no agent code)');
    await sh('ip', ['-batch', '-'], lines([`link add name vxfloor type vxlan id 99999 local ${LOCAL_VTEP} dstport 4789 nolearning`, 'link set dev vxfloor up']));
    const fdb = Array.from({ length: FLOOR_FDB }, (_, i) => `fdb replace ${macOf(9, i)} dev vxfloor dst ${remoteVtep(i % 4)} self permanent`);
    let t0 = performance.now();
    await sh('bridge', ['-batch', '-'], lines(fdb));
    const fdbMs = performance.now() - t0;
    await sh('ip', ['link', 'del', 'dev', 'vxfloor']);
    const elements = Array.from({ length: FLOOR_SET }, (_, i) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
    const setText = ['table bridge ovlfloor {', '\tset s {', '\t\ttype ipv4_addr', '\t\tflags interval', '\t\tauto-merge', `\t\telements = { ${elements.join(', ')} }`, '\t}', '}', ''].join('\n');
    t0 = performance.now();
    await sh('nft', ['-f', '-'], setText);
    const setMs = performance.now() - t0;
    await sh('nft', ['delete', 'table', 'bridge', 'ovlfloor']);
    console.log(`  ${pad(`${int(FLOOR_FDB)} fdb entries, one bridge -batch`, 44)} ${dec(fdbMs)} ms   (quoted floor ${msText(QUOTED_FLOOR.fdb10kMs)})`);
    console.log(`  ${pad(`${int(FLOOR_SET)}-element interval set, one nft -f -`, 44)} ${dec(setMs)} ms   (quoted floor ${msText(QUOTED_FLOOR.nftSet10kMs)})`);
    this.results.floors = { fdb10kMs: round2(fdbMs), nftSet10kMs: round2(setMs), quoted: QUOTED_FLOOR };
  }

  summary(): void {
    this.results.targets = this.targets;
    const rows: [string, string][] = [];
    if (this.noopMedianMs !== undefined) {
      rows.push(['no-op reconcile (observe + plan)', msText(this.noopMedianMs)]);
    }
    for (const v of this.nftVariants) {
      rows.push([`nft, ${v.label}`, '']);
      rows.push(['  text', bytesText(v.textBytes)]);
      rows.push(['  load (nft -f -, whole text)', v.loadMs ? msText(median(v.loadMs)) : v.timedOut ? 'TIMEOUT' : 'FAILS']);
      if (v.change) {
        rows.push(['  one element changed: render + apply', msText(v.change.medianTotalMs)]);
      }
    }
    rows.push(...this.handoverRows);
    rows.push(...this.mirrorRows);
    rows.push(...this.agentRows);
    if (!this.targets.length && !rows.length) {
      return;
    }
    console.log(`\nSummary (dataplane); load average now ${os.loadavg().map((l) => dec(l, 2)).join(' ')} on ${os.cpus().length} CPUs`);
    for (const t of this.targets) {
      console.log(`  ${pad(t.name, 48)} ${t.value.padStart(9)}   target ${pad(t.target, 8)} ${verdict(t.pass)}`);
    }
    for (const [name, value] of rows) {
      console.log(`  ${pad(name, 48)} ${value.padStart(9)}`);
    }
    const misses = this.targets.filter((t) => !t.pass).length;
    console.log(`  ${this.targets.length - misses}/${this.targets.length} targets met${misses ? ' (a miss is reported, not a failure)' : ''}`);
  }
}

async function innerMain(resultFile: string, ns: string): Promise<number> {
  const results: Results = { meta: {}, setup: {}, cold: {}, noop: {}, nft: {}, floors: {}, targets: [], errors: [] };
  const inner = new Inner(results, ns);
  let failed = false;
  try {
    await inner.run();
  } catch (err) {
    failed = true;
    const message = err instanceof Error ? err.message : String(err);
    results.errors.push(message);
    console.error(`\nBENCH ERROR: ${message}`);
  }
  inner.summary();
  writeFileSync(resultFile, JSON.stringify(results));
  return failed ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// The outer process: preconditions, the namespace's life, the inner process.

function skipReason(): string | undefined {
  if (process.platform !== 'linux') {
    return 'it needs Linux';
  }
  if (process.getuid?.() !== 0) {
    return 'it needs root (a network namespace, taps, VXLAN devices, bridges, nftables): run `sudo BENCH_ONLY=dataplane npm run bench`';
  }
  for (const [cmd, args, pkg] of [
    ['ip', ['-V'], 'iproute2'],
    ['bridge', ['-V'], 'iproute2'],
    ['nft', ['--version'], 'nftables'],
  ] as const) {
    try {
      execFileSync(cmd, args, { stdio: 'ignore' });
    } catch {
      return `\`${cmd}\` is not available: install ${pkg}`;
    }
  }
  return undefined;
}

/** Deletes the namespace should this process die without doing it (SIGKILL): polls our pid. */
const WATCHDOG_SCRIPT = `
const { execFileSync } = require('child_process');
const [parent, ns] = process.argv.slice(1);
const alive = () => { try { process.kill(Number(parent), 0); return true; } catch (e) { return e.code === 'EPERM'; } };
setInterval(() => {
  if (alive()) return;
  try { for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\\s+/).filter(Boolean)) { try { process.kill(Number(pid), 'SIGKILL'); } catch {} } } catch {}
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch {}
  process.exit(0);
}, 250);
`;

function nsPids(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function nsExists(ns: string): boolean {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .some((l) => l.split(' ')[0] === ns);
  } catch {
    return false;
  }
}

async function outerMain(): Promise<number> {
  const reason = skipReason();
  if (reason) {
    console.log(`dataplane benchmark SKIPPED: ${reason}`);
    return 0;
  }
  const ns = `ovl-bench-dp-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
  } catch (err) {
    console.log(`dataplane benchmark SKIPPED: \`ip netns add\` is not available here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
    return 0;
  }
  const wallStart = performance.now();
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SCRIPT, String(process.pid), ns], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  const resultFile = path.join(os.tmpdir(), `${ns}-${process.pid}.json`);
  let child: ChildProcess | undefined;
  let interrupted: NodeJS.Signals | undefined;
  let timedOut = false;

  let cleaned = false;
  const cleanup = (): void => {
    if (cleaned) {
      return;
    }
    cleaned = true;
    for (const pid of nsPids(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'pipe' });
    } catch (err) {
      console.error(`\nCleanup: could not delete namespace ${ns} (${String((err as { stderr?: Buffer }).stderr ?? err).trim()}); delete it with \`ip netns del ${ns}\``);
    }
    if (watchdog.pid !== undefined && !nsExists(ns)) {
      try {
        process.kill(watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', () => {
    cleanup();
    rmSync(resultFile, { force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      interrupted = signal;
      console.error(`\n${signal}: stopping the dataplane benchmark`);
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
      }
    });
  }

  let code: number;
  try {
    child = spawn('ip', ['netns', 'exec', ns, process.execPath, __filename, '--inner', resultFile, ns], { stdio: 'inherit' });
    const hard = setTimeout(() => {
      timedOut = true;
      console.error(`\nThe dataplane run exceeded ${HARD_DEADLINE_MS / 1000} s: killing it`);
      child?.kill('SIGKILL');
    }, HARD_DEADLINE_MS);
    code = await new Promise<number>((resolve) => {
      child!.once('error', (err) => {
        console.error(`could not start the inner process: ${err.message}`);
        resolve(1);
      });
      child!.once('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
    });
    clearTimeout(hard);
  } finally {
    cleanup();
  }
  const gone = !nsExists(ns);
  const leaked = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(`: ${TAP_LEAK_PREFIX}`)).length;
  console.log(`\nCleanup: namespace ${ns} ${gone ? 'deleted' : 'NOT deleted'}${leaked ? `; !! ${leaked} bench taps found in the root namespace` : ''}`);

  let results: Results | undefined;
  try {
    results = JSON.parse(readFileSync(resultFile, 'utf8')) as Results;
  } catch {
    // the inner process died before writing; write what is known
  }
  rmSync(resultFile, { force: true });
  results ??= { meta: { namespace: ns }, setup: {}, cold: {}, noop: {}, nft: {}, floors: {}, targets: [], errors: [] };
  if (interrupted) {
    results.errors.push(`interrupted by ${interrupted}`);
  }
  if (timedOut) {
    results.errors.push(`killed after ${HARD_DEADLINE_MS / 1000} s`);
  }
  if (code !== 0 && !results.errors.length) {
    results.errors.push(`inner process exited with ${code}`);
  }
  results.meta.namespaceDeleted = gone;
  if (!writeResults(OUT_FILE, results, wallStart, performance.now())) {
    code = code || 1;
  }
  if (interrupted) {
    return 130;
  }
  return code !== 0 || !gone || leaked ? Math.max(code, 1) : 0;
}

const innerArgs = process.argv[2] === '--inner' ? process.argv.slice(3) : undefined;
(innerArgs ? innerMain(innerArgs[0], innerArgs[1]) : outerMain()).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('dataplane bench crashed:', err);
    process.exit(1);
  },
);
