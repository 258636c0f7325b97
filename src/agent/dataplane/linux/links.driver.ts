import { isIP } from 'node:net';
import { tapNameProblem } from '../../../common/tap-name';
import { emptyDataplaneState, fdbKey, type DataplanePlan, type DataplaneState, type ForwardingStep, type HostKernelState, type LocalPortState, type SegmentState } from '../dataplane';
import { bridgeName, vxlanName } from '../names';
import { CommandError, type CommandRunner } from './command-runner';
import { cleanAgentText } from '../../../common/agent-text';
import type { Logger } from '../../../common/logger';
import { FLOOD_MAC, gateHolds, hostKernelState, isUp, mayBeTap, OWNER_ALIAS, ownedVni, RemoteFdb, VNI_MAX, VXLAN_PORT, vxlanLocal, type IpLink, type KernelReader, type KernelView } from './kernel-view';
import { compileMirrors, erspanFailure, IFNAME_RE, observeMirrors, type MirrorScript } from './mirrors';
import { GATES, gateFilterLine, TAP_GATE_BLOCK, VXLAN_GATE_BLOCK } from './tc-gate';

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** The first step that would write an unsafe or malformed value into a batch script, described. */
function invalidStep(plan: DataplanePlan): string | undefined {
  const vni = (v: number) => (Number.isInteger(v) && v >= 1 && v <= VNI_MAX ? undefined : `VNI ${v} out of range`);
  const mac = (m: string) => (MAC_RE.test(m.toLowerCase()) && m.toLowerCase() !== FLOOD_MAC ? undefined : `MAC ${JSON.stringify(m)} is not a unicast MAC`);
  const ip = (a: string) => (isIP(a) ? undefined : `${JSON.stringify(a)} is not an IP address`);
  const tap = (t: string) => (tapNameProblem(t) === undefined ? undefined : `${JSON.stringify(t)} is not a tap name`);
  const ifname = (n: string) => (IFNAME_RE.test(n) ? undefined : `${JSON.stringify(n)} is not an interface name`);
  const port = (p: number) => (Number.isInteger(p) && p >= 1 && p <= 65_535 ? undefined : `UDP port ${p} out of range`);
  const cookie = (c: string) => (/^[0-9a-f]{32}$/.test(c) ? undefined : `${JSON.stringify(c)} is not a mirror cookie`);
  // iproute2 exits on an argument it cannot parse, -force or not: nothing out of range may reach it.
  const erspanId = (id: number) => (Number.isInteger(id) && id >= 1 && id <= 1023 ? undefined : `ERSPAN session id ${id} out of range`);
  for (const step of plan) {
    let problem: string | undefined;
    switch (step.op) {
      case 'remove-port':
        problem = tap(step.tap);
        break;
      case 'remove-fdb':
        problem = vni(step.vni) ?? mac(step.mac);
        break;
      case 'remove-segment':
        problem = vni(step.vni);
        break;
      case 'put-segment':
        problem = vni(step.segment.vni) ?? ip(step.segment.localVtep) ?? step.segment.floodVteps.map(ip).find((p) => p);
        break;
      case 'put-fdb':
        problem = vni(step.entry.vni) ?? mac(step.entry.mac) ?? ip(step.entry.vtep);
        break;
      case 'put-port':
        problem = tap(step.port.tap) ?? vni(step.port.vni);
        break;
      case 'remove-analyzer':
        problem = tap(step.tap);
        break;
      case 'put-analyzer':
        problem = tap(step.analyzer.tap);
        break;
      case 'remove-mirror-device':
        problem = vni(step.vni);
        break;
      case 'remove-erspan-mirror-device':
        problem = erspanId(step.erspanId);
        break;
      case 'put-erspan-mirror-device': {
        const d = step.device;
        problem =
          erspanId(d.erspanId) ??
          ip(d.localVtep) ??
          ip(d.remote) ??
          (isIP(d.localVtep) === isIP(d.remote) ? undefined : `${d.remote} and ${d.localVtep} are of two families`) ??
          (d.version === 1 || d.version === 2 ? undefined : `ERSPAN version ${d.version}`) ??
          ((d.version === 1 ? d.dir === '' : d.dir === 'ingress' || d.dir === 'egress') ? undefined : `ERSPAN direction ${JSON.stringify(d.dir)} for version ${d.version}`);
        break;
      }
      case 'put-mirror-device': {
        const d = step.device;
        problem = vni(d.vni) ?? ip(d.localVtep) ?? (d.remote ? ip(d.remote) : undefined) ?? port(d.dstport) ?? (d.redirect ? ifname(d.redirect) : undefined);
        break;
      }
      case 'remove-mirror-filter':
      case 'put-mirror-filter': {
        const f = step.filter;
        problem = cookie(f.cookie) ?? (f.direction === 'ingress' || f.direction === 'egress' ? undefined : `direction ${JSON.stringify(f.direction)}`) ?? tap(f.dev) ?? (step.op === 'put-mirror-filter' ? ifname(f.target) : undefined);
        break;
      }
    }
    if (problem) {
      return `${step.op}: ${problem}`;
    }
  }
  return undefined;
}

/**
 * What a `-force -batch` run said of each line that failed: line number -> the message printed
 * before its `Command failed -:<n>` (iproute2 prints the error, then that marker).
 */
export function batchErrors(stderr: string): Map<number, string> {
  const out = new Map<number, string>();
  let said: string[] = [];
  for (const text of stderr.split('\n')) {
    const marker = /^Command failed -:(\d+)$/.exec(text.trim());
    if (marker) {
      out.set(Number(marker[1]), said.join(' ').trim());
      said = [];
    } else if (text.trim() !== '') {
      said.push(text.trim());
    }
  }
  return out;
}

/** Longest reason given for a port that could not be put in place (the tools' output is hostile text: cleaned, then cut). */
export const MAX_PORT_REASON = 240;

/** The tap a batch line is about (`... dev tap<id> ...`), if any. */
export function tapOfLine(line: string): string | undefined {
  return /(?:^|\s)dev (tap[A-Za-z0-9]{1,12})(?:\s|$)/.exec(line)?.[1];
}

/** Why a tap is not in place, in one bounded line: the tool, the line refused (without bytecode) and what the tool said of it. */
export function portReason(cmd: string, line: string, said: string): string {
  return cleanAgentText(`${cmd} refused "${line.replace(/ bytecode "[^"]*"/, '')}": ${said || 'no reason given'}`, MAX_PORT_REASON);
}

/**
 * Pure: what the failed lines of a `-force -batch` run (`failed`: line number -> what the tool
 * said, see batchErrors) mean: the taps they concern, each with the reason of its first failed
 * line, and the failed lines that concern no tap (a VXLAN device, a gate filter), which no port
 * can carry alone: they fail the whole apply.
 */
export function tapFailures(cmd: string, lines: string[], failed: ReadonlyMap<number, string>): { taps: Map<string, string>; unattributed: string[] } {
  const taps = new Map<string, string>();
  const unattributed: string[] = [];
  for (const [n, said] of [...failed].sort(([a], [b]) => a - b)) {
    const line = lines[n - 1];
    const tap = line === undefined ? undefined : tapOfLine(line);
    if (tap === undefined) {
      unattributed.push(line === undefined ? `line ${n}: ${said}` : `"${line}": ${said}`);
    } else if (!taps.has(tap)) {
      taps.set(tap, portReason(cmd, line, said));
    }
  }
  return { taps, unattributed };
}

/** The commands of one plan, in the five batches they run in, in this order. */
interface Script {
  /** `bridge -batch`: entries removed before any link changes (removals come first). */
  fdbRemovals: string[];
  /** `ip -batch`: link removals (taps detached included), then segments. */
  links: string[];
  /** `tc -batch`: the gate bound to new VXLAN devices and to taps before they are attached, and its filters. */
  gates: string[];
  /** `ip -batch`: taps attached and set up, once gated. */
  ports: string[];
  /** `bridge -batch`: flood lists and unicast entries put. */
  fdbPuts: string[];
  /** Taps of put-port steps that do not exist (yet). */
  missingTaps: string[];
  /** The mirror batches (mirrors.ts), run last: their failures never stop the links. */
  mirrors: MirrorScript;
}

/**
 * The links driver: programs one host's overlay links and forwarding entries through iproute2,
 * and binds them to the tc gate (tc-gate.ts) when the firewall is on. Per segment VNI it owns a VXLAN device
 * `vx<vni>` (id vni, `local <localVtep>`, UDP 4789, no learning) enslaved to a bridge `br<vni>`
 * (the bridge port without learning either), both up; the flood list as all-zero entries
 * `00:00:00:00:00:00 dst <vtep>` on the VXLAN device (head-end replication), and one permanent
 * entry `<mac> dst <vtep>` per remote MAC. A local port is a tap the hypervisor created, which
 * it attaches to its segment's bridge and sets up; it never creates or deletes taps.
 *
 * Ownership: a link is the dataplane's only if it is named vx<vni>/br<vni>, has the expected
 * kind, and carries the alias `overlay-agent`, set when it was created. A host's own `br0` or
 * `br1` is never read, changed or deleted; a put-segment that would need a name taken by
 * someone else fails with a message naming it. Ports are the taps enslaved to an owned bridge.
 *
 * `observe` reads the kernel view (kernel-view.ts: `ip -j -d link show`, `bridge fdb show`,
 * and the gate's `tc -j` listings when gated) and maps what it owns to DataplaneState. A segment whose devices are not exactly as put-segment
 * leaves them (device missing, down, detached, learning on, wrong VNI or port) is reported with
 * an empty `localVtep`, and a tap that is attached but down with VNI -1, so that the plan puts
 * them again and drift is repaired.
 *
 * `apply` reads the kernel first and emits only the commands that change something, in at most
 * five batch processes (see Script), so it is idempotent: applying the same plan again runs nothing.
 * Per port: a tap that does not exist yet is skipped (logged once), and the taps' gates and
 * attachments run in `-force` batches whose refused lines are mapped back to their taps; those
 * taps stay closed and are reported by `portFailures` (a retry attaches them), the rest of the
 * plan goes on. Any other failure throws, with the failing batch line in the message. When
 * gated, a VXLAN device it puts and a tap it attaches are bound to their gate block first (one
 * `tc -batch -`, before the taps are attached), and a device or tap without its gate is reported
 * as needing repair.
 *
 * Mirror sessions (mirrors.ts): mirror devices (VXLAN and ERSPAN), analyzer taps and mirror
 * filters are read back with the rest (by cookie, with their counters) and put in four more
 * batches after the links, each `-force`: a mirror that cannot be put (a kernel without ERSPAN
 * included) is reported by `mirrorFailures`, never thrown.
 */
export class LinksDriver {
  /** Taps already reported missing, so a reconcile loop logs each one once. */
  private readonly reportedMissing = new Set<string>();
  /** Whether taps and VXLAN devices get the tc gate (the firewall is on); see enableGate. */
  private gated = false;
  /** Why mirror filters of the last apply are not in place (cookie -> reason). */
  private mirrorFailed = new Map<string, string>();
  /** What the last observe saw of the taps and bridges (`observeHost`). */
  private host?: HostKernelState;
  /** Taps the last apply could not put in place (tap -> reason): missing, or a line of theirs refused. */
  private portFailed = new Map<string, string>();
  /** Every link the last observe saw (`lastLinks`). */
  private links?: Map<string, IpLink>;
  /**
   * What each observe read, by the state it returned, for the apply of the same pass (see
   * apply's `from`): one kernel read per pass, not two. Weak: a view lives only as long as the
   * caller holds its state (a pass), never between passes.
   */
  private readonly views = new WeakMap<DataplaneState, KernelView>();

  constructor(
    private readonly runner: CommandRunner,
    private readonly kernel: KernelReader,
    private readonly logger: Logger,
  ) {}

  /** From now on, binds every VXLAN device and tap to its gate and reads the gate back. Checks that `tc` runs. Idempotent. */
  async enableGate(): Promise<void> {
    await this.runner.run('tc', ['-V']).catch((err: unknown) => {
      throw new Error(`tc (iproute2) does not run, so ports cannot be gated: ${(err as Error).message}`);
    });
    this.gated = true;
  }

  /** Reads back what this dataplane owns. Never mutates. */
  async observe(): Promise<DataplaneState> {
    const view = await this.kernel.view(this.gated);
    this.host = hostKernelState(view);
    this.links = view.links;
    const state: DataplaneState = { ...emptyDataplaneState(), fdb: new RemoteFdb(view.remotes) };
    const vnis = new Set<number>();
    for (const link of view.links.values()) {
      const vni = ownedVni(link);
      if (vni !== undefined) {
        vnis.add(vni);
      }
    }
    for (const vni of [...vnis].sort((a, b) => a - b)) {
      const vx = view.links.get(vxlanName(vni));
      const br = view.links.get(bridgeName(vni));
      const ownVx = ownedVni(vx) === vni ? vx : undefined;
      const ownBr = ownedVni(br) === vni ? br : undefined;
      const info = ownVx?.linkinfo?.info_data;
      const healthy =
        ownVx !== undefined &&
        ownBr !== undefined &&
        info?.id === vni &&
        info.port === VXLAN_PORT &&
        info.learning === false &&
        ownVx.master === ownBr.ifname &&
        ownVx.linkinfo?.info_slave_data?.learning === false &&
        isUp(ownVx) &&
        isUp(ownBr) &&
        (!this.gated || gateHolds(view, ownVx.ifname, VXLAN_GATE_BLOCK));
      const flood = view.remotes.get(vni)?.get(FLOOD_MAC) ?? [];
      const segment: SegmentState = {
        vni,
        localVtep: healthy ? (vxlanLocal(ownVx) ?? '') : '',
        floodVteps: [...flood].sort(),
      };
      state.segments.set(vni, segment);
    }
    for (const link of view.links.values()) {
      if (!mayBeTap(link.ifname) || !link.master?.startsWith('br')) {
        continue;
      }
      const vni = ownedVni(view.links.get(link.master));
      if (vni !== undefined) {
        const port: LocalPortState = { tap: link.ifname, vni: isUp(link) && (!this.gated || gateHolds(view, link.ifname, TAP_GATE_BLOCK)) ? vni : -1 };
        state.ports.set(link.ifname, port);
      }
    }
    observeMirrors(view, state);
    this.views.set(state, view);
    return state;
  }

  /** Every link the last observe saw, by name; undefined before the first. */
  lastLinks(): Map<string, IpLink> | undefined {
    return this.links;
  }

  /** What the last observe saw of the host's taps and the owned bridges; undefined before the first. */
  observeHost(): HostKernelState | undefined {
    return this.host;
  }

  /** Why mirror filters of the last apply are not in place (cookie -> reason): skipped, or refused by the kernel. */
  mirrorFailures(): ReadonlyMap<string, string> {
    return this.mirrorFailed;
  }

  /**
   * Taps of the last apply's put-port steps that are not in place, each with why: the tap does
   * not exist (yet), or the kernel refused its gate or its attachment. The rest of the plan was
   * applied; such a tap is left closed (never attached without its gate) and the next apply
   * tries it again.
   */
  portFailures(): ReadonlyMap<string, string> {
    return this.portFailed;
  }

  /**
   * Applies a plan. Idempotent: the commands are computed against the kernel as read just before:
   * by the observe that returned `from` (the same pass: only the firewall was loaded since, which
   * changes no link), else read now. A view serves one apply: the next one reads again.
   */
  async apply(plan: DataplanePlan, from?: DataplaneState): Promise<void> {
    this.portFailed = new Map();
    const observed = from === undefined ? undefined : this.views.get(from);
    if (from !== undefined) {
      this.views.delete(from);
    }
    if (plan.length === 0) {
      return;
    }
    const invalid = invalidStep(plan);
    if (invalid) {
      throw new Error(`refusing to apply a plan with an invalid step: ${invalid}`);
    }
    const view = observed ?? (await this.kernel.view(this.gated));
    const script = compile(plan, view, this.gated);
    for (const tap of script.missingTaps) {
      if (!this.reportedMissing.has(tap)) {
        this.reportedMissing.add(tap);
        this.logger.warn(`tap ${tap} does not exist yet; its port is reported not in place (failed_ports) and attached by a retry once it exists`);
      }
    }
    for (const tap of this.reportedMissing) {
      if (view.links.has(tap) || !plan.some((s) => s.op === 'put-port' && s.port.tap === tap)) {
        this.reportedMissing.delete(tap);
      }
    }
    const failed = new Map(script.missingTaps.map((tap) => [tap, `tap ${tap} does not exist (the hypervisor has not created it yet)`]));
    await this.batch('bridge', script.fdbRemovals);
    await this.batch('ip', script.links);
    // Per port from here: a tap whose gate or attachment the kernel refuses stays closed and is
    // reported; every other port, and the forwarding entries, go on.
    const gates = await this.tapBatch('tc', script.gates);
    // Never attached without its gate; one already attached is taken out (closing is safe).
    const ungated = [...gates.keys()].filter((tap) => ownedVni(view.links.get(view.links.get(tap)?.master ?? '')) !== undefined).map((tap) => `link set dev ${tap} nomaster`);
    const ports = await this.tapBatch('ip', [...ungated, ...script.ports.filter((line) => !gates.has(tapOfLine(line) ?? ''))]);
    for (const [tap, reason] of [...gates, ...ports]) {
      if (!failed.has(tap)) {
        failed.set(tap, reason);
      }
    }
    this.portFailed = failed;
    await this.batch('bridge', script.fdbPuts);
    await this.mirrorBatches(script.mirrors);
  }

  /**
   * The fast path's forwarding entries (Dataplane.updateForwarding): one `bridge -batch`,
   * removals first, without reading the kernel. `replace` puts an entry whatever was there
   * before; `del` of an entry that is not there fails, as does any line on a missing device:
   * the batch stops there and this throws (the caller's full pass repairs).
   */
  async updateForwarding(steps: ForwardingStep[]): Promise<void> {
    const invalid = invalidStep(steps);
    if (invalid) {
      throw new Error(`refusing to apply a plan with an invalid step: ${invalid}`);
    }
    const lines: string[] = [];
    for (const step of steps) {
      if (step.op === 'remove-fdb') {
        lines.push(`fdb del ${step.mac.toLowerCase()} dev ${vxlanName(step.vni)} self`);
      }
    }
    for (const step of steps) {
      if (step.op === 'put-fdb') {
        lines.push(`fdb replace ${step.entry.mac.toLowerCase()} dev ${vxlanName(step.entry.vni)} dst ${step.entry.vtep} self permanent`);
      }
    }
    await this.batch('bridge', lines);
  }

  /**
   * Runs a batch of lines that concern taps (their gates, their attachment) with `-force`, so a
   * line refused for one tap does not stop the others; the taps whose lines failed, with why.
   * Throws when a line that concerns no tap failed (a VXLAN device's gate, a gate filter) or the
   * tool said nothing it could map to lines.
   */
  private async tapBatch(cmd: 'ip' | 'tc', lines: string[]): Promise<Map<string, string>> {
    if (lines.length === 0) {
      return new Map();
    }
    try {
      await this.runner.run(cmd, ['-force', '-batch', '-'], lines.join('\n') + '\n');
      return new Map();
    } catch (err) {
      const stderr = err instanceof CommandError ? err.stderr : '';
      const { taps, unattributed } = tapFailures(cmd, lines, batchErrors(stderr));
      if (unattributed.length || taps.size === 0) {
        const message = (err as Error).message;
        throw new CommandError(`${cmd} -force -batch failed${unattributed.length ? ` at ${unattributed.join(', ')}` : ''}: ${message}`, err instanceof CommandError ? err.exitCode : null, stderr);
      }
      return taps;
    }
  }

  /**
   * The mirror batches, each `-force` (a line that fails does not stop the others): a mirror
   * whose tap or sink is missing, or that the kernel refuses, is reported per filter (see
   * mirrorFailures) and logged, never thrown: the links are in place whatever mirrors do.
   */
  private async mirrorBatches(m: MirrorScript): Promise<void> {
    const failed = new Map(m.skipped);
    /** Runs a batch; the lines that failed, each with what the tool said of it. */
    const run = async (cmd: 'ip' | 'tc', lines: string[]): Promise<Map<string, string>> => {
      const refused = new Map<string, string>();
      if (lines.length === 0) {
        return refused;
      }
      try {
        await this.runner.run(cmd, ['-force', '-batch', '-'], lines.join('\n') + '\n');
      } catch (err) {
        const stderr = err instanceof CommandError ? err.stderr : (err as Error).message;
        for (const [n, said] of batchErrors(stderr)) {
          const line = lines[n - 1];
          if (line !== undefined && !refused.has(line)) {
            refused.set(line, said);
          }
          const owner = line === undefined ? undefined : m.owners.get(line);
          if (owner) {
            failed.set(owner, `${cmd} refused "${line.replace(/ bytecode "[^"]*"/, '')}"`);
          }
        }
        this.logger.warn(`mirrors: ${cmd} -force -batch failed at ${[...refused.keys()].map((l) => `"${l}"`).join(', ') || 'an unknown line'}: ${stderr.trim().split('\n')[0] ?? ''}`);
      }
      return refused;
    };
    await run('tc', m.removals);
    // A mirror device the kernel refused (the first of its lines that failed says why): the
    // filters sending into it are not put, and say that instead.
    const brokenDevices = new Map<string, string>();
    for (const [line, said] of await run('ip', m.links)) {
      const device = m.deviceLines.get(line);
      if (device && !brokenDevices.has(device)) {
        brokenDevices.set(device, erspanFailure(line, said));
      }
    }
    const filters = m.filters.filter((line) => {
      const owner = m.owners.get(line);
      const why = owner === undefined ? undefined : brokenDevices.get(m.targets.get(owner) ?? '');
      if (owner !== undefined && why !== undefined) {
        failed.set(owner, why);
        return false;
      }
      return true;
    });
    await run('tc', filters);
    await run('ip', m.ups);
    this.mirrorFailed = failed;
  }

  /** Runs one batch (nothing when empty); on failure names the line that failed. */
  private async batch(cmd: 'ip' | 'bridge' | 'tc', lines: string[]): Promise<void> {
    if (lines.length === 0) {
      return;
    }
    try {
      await this.runner.run(cmd, ['-batch', '-'], lines.join('\n') + '\n');
    } catch (err) {
      const message = (err as Error).message;
      const line = /-:(\d+)/.exec(message);
      const failed = line ? lines[Number(line[1]) - 1] : undefined;
      throw new CommandError(`${cmd} -batch failed${failed ? ` at "${failed}"` : ''}: ${message}`, err instanceof CommandError ? err.exitCode : null, err instanceof CommandError ? err.stderr : '');
    }
  }
}

/**
 * Pure: the commands that carry out `plan` on a kernel that looks like `view`. With `gated`, every
 * VXLAN device it puts and every tap it attaches is bound to its gate block first.
 */
function compile(plan: DataplanePlan, view: KernelView, gated = false): Script {
  const script: Omit<Script, 'mirrors'> = { fdbRemovals: [], links: [], gates: [], ports: [], fdbPuts: [], missingTaps: [] };
  /** Blocks bound to a device by this script. */
  const bound = new Set<number>();
  /** Devices whose clsact this script (re)creates, and the block it is bound to. */
  const rebound = new Map<string, number>();
  /** Taps this script takes out of a bridge. */
  const detached = new Set<string>();
  const gate = (dev: string, block: number, fresh: boolean): void => {
    const current = fresh ? undefined : view.clsact.get(dev);
    if (!gated || current === block) {
      return;
    }
    if (current !== undefined) {
      // Someone else's clsact (or one bound elsewhere): ours replaces it; its block cannot be changed in place.
      script.gates.push(`qdisc del dev ${dev} clsact`);
    }
    script.gates.push(`qdisc add dev ${dev} egress_block ${block} clsact`);
    bound.add(block);
    rebound.set(dev, block);
  };
  const removedSegments = new Set<number>();
  const putTaps = new Set<string>();
  const plannedMacs = new Set<string>();
  for (const step of plan) {
    if (step.op === 'remove-segment') {
      removedSegments.add(step.vni);
    } else if (step.op === 'put-port') {
      putTaps.add(step.port.tap);
    } else if (step.op === 'put-fdb' || step.op === 'remove-fdb') {
      const vni = step.op === 'put-fdb' ? step.entry.vni : step.vni;
      plannedMacs.add(fdbKey(vni, (step.op === 'put-fdb' ? step.entry.mac : step.mac).toLowerCase()));
    }
  }
  const owned = (name: string): IpLink | undefined => {
    const link = view.links.get(name);
    return ownedVni(link) !== undefined ? link : undefined;
  };
  /** VXLAN devices created by this plan: they start without entries. */
  const fresh = new Set<number>();

  // 1. Removals, in plan order.
  for (const step of plan) {
    switch (step.op) {
      case 'remove-port': {
        // A tap that moves to another segment is simply enslaved there (below), never detached in between.
        const tap = view.links.get(step.tap);
        if (!putTaps.has(step.tap) && tap?.master && owned(tap.master)) {
          script.links.push(`link set dev ${step.tap} nomaster`);
          detached.add(step.tap);
        }
        break;
      }
      case 'remove-fdb': {
        const mac = step.mac.toLowerCase();
        if (!removedSegments.has(step.vni) && view.remotes.get(step.vni)?.has(mac)) {
          script.fdbRemovals.push(`fdb del ${mac} dev ${vxlanName(step.vni)} self`);
        }
        break;
      }
      case 'remove-segment':
        // Deleting the VXLAN device deletes its entries; deleting the bridge releases its taps.
        for (const name of [vxlanName(step.vni), bridgeName(step.vni)]) {
          if (owned(name)) {
            script.links.push(`link del dev ${name}`);
          }
        }
        break;
      default:
        break;
    }
  }

  // 2. Segments: bridge, VXLAN device, flood list.
  for (const step of plan) {
    if (step.op !== 'put-segment') {
      continue;
    }
    const { vni, localVtep, floodVteps } = step.segment;
    const vxName = vxlanName(vni);
    const brName = bridgeName(vni);
    const gone = removedSegments.has(vni);
    const vx = gone ? undefined : view.links.get(vxName);
    const br = gone ? undefined : view.links.get(brName);
    for (const link of [vx, br]) {
      if (link && ownedVni(link) !== vni) {
        throw new Error(`cannot program segment ${vni}: link ${link.ifname} exists but is not an overlay-agent ${link.ifname.startsWith('vx') ? 'vxlan' : 'bridge'} (alias ${OWNER_ALIAS}); it is left untouched, rename or delete it`);
      }
    }
    if (!br) {
      script.links.push(`link add name ${brName} type bridge`, `link set dev ${brName} alias ${OWNER_ALIAS}`, `link set dev ${brName} addrgenmode none`);
    }
    const info = vx?.linkinfo?.info_data;
    const recreate = vx !== undefined && (info?.id !== vni || info.port !== VXLAN_PORT);
    if (!vx || recreate) {
      if (recreate) {
        script.links.push(`link del dev ${vxName}`);
      }
      script.links.push(
        `link add name ${vxName} type vxlan id ${vni} local ${localVtep} dstport ${VXLAN_PORT} nolearning`,
        `link set dev ${vxName} alias ${OWNER_ALIAS}`,
        `link set dev ${vxName} addrgenmode none`,
      );
      fresh.add(vni);
    } else if (vxlanLocal(vx) !== localVtep || info?.learning !== false) {
      script.links.push(`link set dev ${vxName} type vxlan local ${localVtep} nolearning`);
    }
    const isFresh = fresh.has(vni);
    const enslave = isFresh || vx?.master !== brName;
    if (enslave) {
      script.links.push(`link set dev ${vxName} master ${brName}`);
    }
    if (enslave || vx?.linkinfo?.info_slave_data?.learning !== false) {
      script.links.push(`link set dev ${vxName} type bridge_slave learning off`);
    }
    if (isFresh || !isUp(vx!)) {
      script.links.push(`link set dev ${vxName} up`);
    }
    gate(vxName, VXLAN_GATE_BLOCK, isFresh);
    if (!br || !isUp(br)) {
      script.links.push(`link set dev ${brName} up`);
    }
    const remotes = isFresh ? undefined : view.remotes.get(vni);
    const flood = remotes?.get(FLOOD_MAC) ?? [];
    for (const vtep of flood.filter((v) => !floodVteps.includes(v))) {
      script.fdbRemovals.push(`fdb del ${FLOOD_MAC} dev ${vxName} dst ${vtep} self`);
    }
    for (const vtep of floodVteps.filter((v) => !flood.includes(v))) {
      script.fdbPuts.push(`fdb append ${FLOOD_MAC} dev ${vxName} dst ${vtep} self permanent`);
    }
    if (recreate) {
      // The old device's entries died with it; those the plan does not mention are put back as they were.
      for (const [mac, dsts] of view.remotes.get(vni) ?? []) {
        if (mac !== FLOOD_MAC && !plannedMacs.has(fdbKey(vni, mac)) && dsts.length === 1) {
          script.fdbPuts.push(`fdb replace ${mac} dev ${vxName} dst ${dsts[0]} self permanent`);
        }
      }
    }
  }

  // 3. Remote MACs: replace semantics (one destination per MAC; `replace` is atomic).
  for (const step of plan) {
    if (step.op !== 'put-fdb') {
      continue;
    }
    const { vni, vtep } = step.entry;
    const mac = step.entry.mac.toLowerCase();
    const dsts = fresh.has(vni) ? undefined : view.remotes.get(vni)?.get(mac);
    if (dsts?.length === 1 && dsts[0] === vtep) {
      continue;
    }
    if (dsts && dsts.length > 1) {
      // `replace` only rewrites the first destination; drop the whole entry first.
      script.fdbRemovals.push(`fdb del ${mac} dev ${vxlanName(vni)} self`);
    }
    script.fdbPuts.push(`fdb replace ${mac} dev ${vxlanName(vni)} dst ${vtep} self permanent`);
  }

  // 4. Local ports: the hypervisor's taps, attached and up.
  for (const step of plan) {
    if (step.op !== 'put-port') {
      continue;
    }
    const { tap, vni } = step.port;
    const link = view.links.get(tap);
    if (!link) {
      script.missingTaps.push(tap);
      continue;
    }
    // Gated before it is attached: no frame reaches the VM unless the firewall stamped it.
    gate(tap, TAP_GATE_BLOCK, false);
    const brName = bridgeName(vni);
    if (link.master !== brName || removedSegments.has(vni)) {
      script.ports.push(`link set dev ${tap} master ${brName}`);
    }
    if (!isUp(link)) {
      script.ports.push(`link set dev ${tap} up`);
    }
  }

  // 5. The gate filters: in a block just bound (a block nobody was bound to starts empty, and
  // an empty block passes everything) or bound but without its filter.
  let tapGatePut = false;
  if (gated) {
    for (const gate of GATES) {
      const inUse = [...view.clsact.values()].includes(gate.block);
      if (bound.has(gate.block) || (inUse && !view.gateFilters.has(gate.block))) {
        script.gates.push(gateFilterLine(gate));
        tapGatePut ||= gate.block === TAP_GATE_BLOCK;
      }
    }
  }
  return { ...script, mirrors: compileMirrors(plan, view, { gated, rebound, detached, gateFilterPut: tapGatePut }) };
}
