import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { emptyDataplaneState, fdbKey, type Dataplane, type DataplanePlan, type DataplaneState, type FdbEntry, type FirewallRuleset, type InsertedConnections, type LocalPortState, type SegmentState, type TrackedConnection } from '../dataplane';
import { bridgeName, vxlanName } from '../names';
import { CommandError, type CommandRunner } from './command-runner';
import { connectionKey, isCarriable } from '../../../common/tracked-connection';
import { insertLine, parseConntrackList } from './conntrack';
import { MARK_EGRESS_OK, MARK_INGRESS_OK, renderSetUpdate, type ConntrackMode } from './nftables';

/** Where conntrack for the firewall comes from: a mode, or `auto` (probe). See config.ts. */
export type ConntrackSetting = 'auto' | ConntrackMode;

/**
 * The /proc/sys seam: reads and writes the agent's own network namespace's sysctls (the
 * net.bridge.* ones are per namespace). Unit specs replace it with a map.
 */
export interface Sysctls {
  /** The value (trimmed), or undefined when the file does not exist. */
  read(path: string): string | undefined;
  /** Writes a value; throws on failure. */
  write(path: string, value: string): void;
}

export const procSysctls: Sysctls = {
  read(path) {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return undefined;
    }
  },
  write(path, value) {
    writeFileSync(path, value);
  },
};

/** br_netfilter's switches: bridged IPv4/IPv6 frames traverse the inet hooks (conntrack included). */
export const BR_NETFILTER_SYSCTLS = ['/proc/sys/net/bridge/bridge-nf-call-iptables', '/proc/sys/net/bridge/bridge-nf-call-ip6tables'];

/** A bridge table that uses `ct state`: `nft -c` accepts it only with bridge conntrack. */
const BRIDGE_CONNTRACK_PROBE = 'table bridge overlay_probe {\n\tchain probe {\n\t\ttype filter hook prerouting priority 0; policy accept;\n\t\tct state established accept\n\t}\n}\n';

/**
 * The tc gate of the firewall: shared filter blocks bound to the egress (clsact) of every overlay
 * tap and VXLAN device, each holding one classic-BPF filter in direct-action mode that passes a
 * frame only if it carries the firewall's stamp (the mark bit its nftables verdicts set, see
 * nftables.ts) and drops it otherwise. Whatever happens to the nftables tables (never loaded, a
 * failed load, `nft flush ruleset` by hand), an unstamped frame never reaches a VM (tap egress:
 * MARK_INGRESS_OK) or leaves one for the network (VXLAN egress: MARK_EGRESS_OK).
 */
export const TAP_GATE_BLOCK = 4701;
export const VXLAN_GATE_BLOCK = 4702;
/** `ld mark; jset #bit; ret TC_ACT_OK; ret TC_ACT_SHOT` (SKF_AD_OFF + SKF_AD_MARK = 0xfffff014). */
const gateBytecode = (bit: number): string => `4,32 0 0 ${0xfffff014},69 0 1 ${bit},6 0 0 0,6 0 0 2`;
const GATES = [
  { block: TAP_GATE_BLOCK, bytecode: gateBytecode(MARK_INGRESS_OK) },
  { block: VXLAN_GATE_BLOCK, bytecode: gateBytecode(MARK_EGRESS_OK) },
] as const;

/** Every link the agent creates carries this alias (IFLA_IFALIAS): the proof that it is ours. */
export const OWNER_ALIAS = 'overlay-agent';
/** The IANA VXLAN port. */
export const VXLAN_PORT = 4789;
/** The all-zero MAC: the vxlan driver's default destinations, i.e. the head-end replication list. */
const FLOOD_MAC = '00:00:00:00:00:00';
const VNI_MAX = 16_777_215;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const TAP_RE = /^tap[A-Za-z0-9]{1,12}$/;
const OWNED_NAME_RE = /^(vx|br)([1-9][0-9]{0,7})$/;

export interface DataplaneLogger {
  info(message: string): void;
  warn(message: string): void;
}

const consoleLogger: DataplaneLogger = {
  info: (m) => console.log(JSON.stringify({ level: 'info', time: new Date().toISOString(), component: 'dataplane', msg: m })),
  warn: (m) => console.warn(JSON.stringify({ level: 'warn', time: new Date().toISOString(), component: 'dataplane', msg: m })),
};

/** The fields of `ip -j -d link show` this dataplane reads. */
interface IpLink {
  ifname: string;
  flags?: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; local?: string; local6?: string; port?: number; learning?: boolean };
    info_slave_kind?: string;
    info_slave_data?: { learning?: boolean };
  };
}

/** The fields of `bridge -j fdb show` this dataplane reads. */
interface FdbRecord {
  mac: string;
  ifname?: string;
  dst?: string;
  master?: string;
}

/** The fields of `tc -j qdisc show` this dataplane reads. */
interface TcQdisc {
  kind?: string;
  dev?: string;
  egress_block?: number;
}

/** The fields of `tc -j filter show block <n> egress` this dataplane reads. */
interface TcFilter {
  kind?: string;
  pref?: number;
  options?: { handle?: string; 'direct-action'?: boolean; bytecode?: { insns?: { code: number; jt: number; jf: number; k: number }[] } };
}

/** What the kernel holds, read in one pass: every link by name, and the remote entries of our VXLAN devices. */
interface KernelView {
  links: Map<string, IpLink>;
  /** vni -> MAC -> remote VTEPs, for owned VXLAN devices only; the flood list sits under FLOOD_MAC. */
  remotes: Map<number, Map<string, string[]>>;
  /** With the gate: device -> the block its clsact egress is bound to (0: a clsact of someone else). */
  clsact: Map<string, number>;
  /** With the gate: the blocks whose one filter is the gate (see GATES). */
  gateFilters: Set<number>;
}

const isUp = (link: IpLink): boolean => link.flags?.includes('UP') ?? false;

/** The VNI of an overlay link: named vx<vni>/br<vni>, of the right kind, and carrying our alias. */
function ownedVni(link: IpLink | undefined): number | undefined {
  const m = link ? OWNED_NAME_RE.exec(link.ifname) : null;
  if (!link || !m || link.ifalias !== OWNER_ALIAS) {
    return undefined;
  }
  const kind = m[1] === 'vx' ? 'vxlan' : 'bridge';
  const vni = Number(m[2]);
  return link.linkinfo?.info_kind === kind && vni <= VNI_MAX ? vni : undefined;
}

const vxlanLocal = (link: IpLink): string | undefined => link.linkinfo?.info_data?.local ?? link.linkinfo?.info_data?.local6;

function parseJsonArray<T>(text: string, what: string): T[] {
  if (text.trim() === '') {
    return [];
  }
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) {
    throw new Error(`${what}: expected a JSON array`);
  }
  return parsed as T[];
}

/** The first step that would write an unsafe or malformed value into a batch script, described. */
function invalidStep(plan: DataplanePlan): string | undefined {
  const vni = (v: number) => (Number.isInteger(v) && v >= 1 && v <= VNI_MAX ? undefined : `VNI ${v} out of range`);
  const mac = (m: string) => (MAC_RE.test(m.toLowerCase()) && m.toLowerCase() !== FLOOD_MAC ? undefined : `MAC ${JSON.stringify(m)} is not a unicast MAC`);
  const ip = (a: string) => (isIP(a) ? undefined : `${JSON.stringify(a)} is not an IP address`);
  const tap = (t: string) => (TAP_RE.test(t) ? undefined : `${JSON.stringify(t)} is not a tap name`);
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
    }
    if (problem) {
      return `${step.op}: ${problem}`;
    }
  }
  return undefined;
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
}

/**
 * Programs one host's overlay through iproute2. Per segment VNI it owns a VXLAN device
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
 * `observe` reads the kernel with two processes (`ip -j -d link show`, `bridge -j fdb show`) and
 * maps what it owns to DataplaneState. A segment whose devices are not exactly as put-segment
 * leaves them (device missing, down, detached, learning on, wrong VNI or port) is reported with
 * an empty `localVtep`, and a tap that is attached but down with VNI -1, so that the plan puts
 * them again and drift is repaired.
 *
 * `apply` reads the kernel first and emits only the commands that change something, in at most
 * three batch processes (`bridge -batch -` for removals, `ip -batch -`, `bridge -batch -` for
 * entries put), so it is idempotent: applying the same plan again runs nothing. A tap that does
 * not exist yet is skipped and logged (a later reconcile attaches it); any other failure throws,
 * with the failing batch line in the message.
 */
export class LinuxDataplane implements Dataplane {
  /** Taps already reported missing, so a reconcile loop logs each one once. */
  private readonly reportedMissing = new Set<string>();

  /** The firewall's conntrack mode, once prepareFirewall chose it. */
  private conntrack?: ConntrackMode;
  /** The firewall last loaded successfully; undefined = unknown. */
  private loadedFirewall?: FirewallRuleset;
  /** Whether taps and VXLAN devices get the tc gate (set by prepareFirewall: the firewall is on). */
  private gated = false;
  /** What the kernel held right after that load (see firewallFingerprint); undefined = unknown: the next apply loads whole. */
  private loadedFingerprint?: Fingerprint;

  constructor(
    private readonly runner: CommandRunner,
    private readonly logger: DataplaneLogger = consoleLogger,
    private readonly sysctls: Sysctls = procSysctls,
  ) {}

  /**
   * Chooses the firewall's conntrack mode (see nftables.ts) and readies the kernel for it; call
   * once at start, before applyFirewall. Checks that `nft` runs. `auto` probes with `nft -c` (checks, never loads) a
   * bridge table using `ct state`: accepted -> `bridge`; refused -> `br_netfilter` if that module
   * is loaded (its /proc/sys/net/bridge files exist). Throws, saying why, when the chosen mode
   * cannot work here. Idempotent.
   */
  async prepareFirewall(setting: ConntrackSetting): Promise<ConntrackMode> {
    await this.runner.run('nft', ['--version']).catch((err: unknown) => {
      throw new Error(`nft (nftables) does not run: ${(err as Error).message}`);
    });
    let mode: ConntrackMode;
    if (setting === 'auto') {
      const native = await this.runner.run('nft', ['-c', '-f', '-'], BRIDGE_CONNTRACK_PROBE).then(
        () => true,
        () => false,
      );
      mode = native ? 'bridge' : 'br_netfilter';
      if (!native && this.sysctls.read(BR_NETFILTER_SYSCTLS[0]) === undefined) {
        throw new Error('the kernel has no bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE) and br_netfilter is not loaded: `modprobe br_netfilter`, or set OVERLAY_FIREWALL=0');
      }
    } else {
      mode = setting;
    }
    await this.runner.run('tc', ['-V']).catch((err: unknown) => {
      throw new Error(`tc (iproute2) does not run, so ports cannot be gated: ${(err as Error).message}`);
    });
    this.conntrack = mode;
    this.gated = true;
    if (mode === 'br_netfilter') {
      this.ensureBrNetfilter();
    }
    this.logger.info(`firewall conntrack: ${mode}${setting === 'auto' ? ' (probed)' : ''}`);
    return mode;
  }

  /** Reads back what this dataplane owns. Never mutates. */
  async observe(): Promise<DataplaneState> {
    const view = await this.read();
    const state = emptyDataplaneState();
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
      const remotes = view.remotes.get(vni) ?? new Map<string, string[]>();
      const segment: SegmentState = {
        vni,
        localVtep: healthy ? (vxlanLocal(ownVx) ?? '') : '',
        floodVteps: [...(remotes.get(FLOOD_MAC) ?? [])].sort(),
      };
      state.segments.set(vni, segment);
      for (const [mac, vteps] of remotes) {
        if (mac !== FLOOD_MAC) {
          // Several destinations for one MAC cannot be desired: report them joined, so the plan replaces them.
          const entry: FdbEntry = { vni, mac, vtep: [...vteps].sort().join(',') };
          state.fdb.set(fdbKey(vni, mac), entry);
        }
      }
    }
    for (const link of view.links.values()) {
      if (!link.ifname.startsWith('tap') || !link.master?.startsWith('br')) {
        continue;
      }
      const vni = ownedVni(view.links.get(link.master));
      if (vni !== undefined) {
        const port: LocalPortState = { tap: link.ifname, vni: isUp(link) && (!this.gated || gateHolds(view, link.ifname, TAP_GATE_BLOCK)) ? vni : -1 };
        state.ports.set(link.ifname, port);
      }
    }
    return state;
  }

  /** Applies a plan. Idempotent: the commands are computed against the kernel as read just before. */
  async apply(plan: DataplanePlan): Promise<void> {
    if (plan.length === 0) {
      return;
    }
    const invalid = invalidStep(plan);
    if (invalid) {
      throw new Error(`refusing to apply a plan with an invalid step: ${invalid}`);
    }
    const view = await this.read();
    const script = compile(plan, view, this.gated);
    for (const tap of script.missingTaps) {
      if (!this.reportedMissing.has(tap)) {
        this.reportedMissing.add(tap);
        this.logger.warn(`tap ${tap} does not exist yet; its port will be attached by a later reconcile`);
      }
    }
    for (const tap of this.reportedMissing) {
      if (view.links.has(tap) || !plan.some((s) => s.op === 'put-port' && s.port.tap === tap)) {
        this.reportedMissing.delete(tap);
      }
    }
    await this.batch('bridge', script.fdbRemovals);
    await this.batch('ip', script.links);
    await this.batch('tc', script.gates);
    await this.batch('ip', script.ports);
    await this.batch('bridge', script.fdbPuts);
  }

  /**
   * Loads the firewall text in one `nft -f -` transaction (the text replaces its own tables).
   * When the text differs from the one last loaded only in set and map elements (a port joined
   * or left a group, a port came, went or changed addresses with the rules of another port), it
   * loads just those sets' new elements instead (`renderSetUpdate`, still one transaction):
   * chains, rules and their handles stay as they are.
   *
   * Drift repair without reloading: after each load it reads the tables back once
   * (`nft -j list table`, the elements included) and keeps a fingerprint of them (rule handles
   * and expressions, chains, sets, elements). Given the same text as last time (the agent's
   * periodic reconcile), it reads the tables again and reloads the whole text only when the
   * fingerprint differs (a rule inserted or deleted by hand, a table deleted, an element
   * removed...): an unchanged kernel costs one read. After a set update only the sets it
   * rewrote are read again (the rest of the fingerprint stays as read after the last whole
   * load, so drift there is found by the next check). In br_netfilter mode it first turns br_netfilter's switches back on if someone
   * turned them off (without them bridged frames have no conntrack: replies would be dropped).
   * Idempotent.
   */
  async applyFirewall(firewall: FirewallRuleset): Promise<void> {
    const ruleset = firewall.text;
    if (this.conntrack === 'br_netfilter') {
      this.ensureBrNetfilter();
    }
    const previous = this.loadedFirewall;
    const known = this.loadedFingerprint;
    let drifted = false;
    if (previous?.text === ruleset && known) {
      const drift = fingerprintDrift(known, await this.firewallFingerprint(ruleset));
      if (!drift) {
        this.loadedFirewall = firewall; // the same text: its tap digests describe what is in force
        return;
      }
      drifted = true;
      this.logger.warn(`firewall drift (${drift}): reloading the whole table`);
    }
    const update = previous !== undefined && previous.text !== ruleset && known ? renderSetUpdate(previous.text, ruleset) : undefined;
    this.loadedFirewall = undefined;
    this.loadedFingerprint = undefined;
    try {
      await this.runner.run('nft', ['-f', '-'], update ?? ruleset);
    } catch (err) {
      // A load is one transaction: a failed one left the kernel as it was, which is still what
      // was loaded before, unless that had drifted (then nothing known is in force).
      if (!drifted) {
        this.loadedFirewall = previous;
        this.loadedFingerprint = known;
      }
      throw err;
    }
    this.loadedFingerprint = update && known ? await this.refreshSets(known, update) : await this.firewallFingerprint(ruleset);
    this.loadedFirewall = firewall;
  }

  /**
   * The firewall text in force as far as this dataplane knows: the last one loaded (a failed
   * load leaves the one before), or undefined when none was loaded or the tables were found
   * changed behind its back and could not be loaded again.
   */
  firewallInForce(): FirewallRuleset | undefined {
    return this.loadedFirewall;
  }

  /**
   * Reads the tables `ruleset` defines (`nft -j list table <family> <name>`, one process each,
   * in parallel) and reduces them to a fingerprint. A table that cannot be listed (deleted)
   * reads as `missing`; undefined when an output is not what nft prints. Never mutates.
   */
  private async firewallFingerprint(ruleset: string): Promise<Fingerprint | undefined> {
    const tables = [...new Set([...ruleset.matchAll(/^table (\w+) (\S+) \{$/gm)].map((m) => `${m[1]} ${m[2]}`))];
    const listed = await Promise.all(
      tables.map((ft) =>
        this.runner.run('nft', ['-j', 'list', 'table', ...ft.split(' ')]).then(
          (text) => ({ ft, text }),
          () => ({ ft, text: undefined }),
        ),
      ),
    );
    const fp: Fingerprint = new Map();
    for (const { ft, text } of listed) {
      if (text === undefined) {
        fp.set(`table ${ft}`, 'missing');
      } else if (!addToFingerprint(fp, text)) {
        return undefined;
      }
    }
    return fp;
  }

  /**
   * `known` with the sets and maps a set update rewrote read again (`nft -j list set|map`, in
   * parallel); undefined when one cannot be read. The rest is left as read after the last whole
   * load: drift there is found by the next periodic check. Never mutates.
   */
  private async refreshSets(known: Fingerprint, update: string): Promise<Fingerprint | undefined> {
    const rewritten = [...update.matchAll(/^flush (set|map) (\S+) (\S+) (\S+)$/gm)].map((m) => m.slice(1));
    const listed = await Promise.all(rewritten.map((args) => this.runner.run('nft', ['-j', 'list', ...args]).catch(() => undefined)));
    const fp: Fingerprint = new Map(known);
    return listed.every((text) => text !== undefined && addToFingerprint(fp, text)) ? fp : undefined;
  }

  /** Sets bridge-nf-call-ip{,6}tables to 1 in this namespace when they are not. Throws when br_netfilter is not loaded. */
  private ensureBrNetfilter(): void {
    for (const path of BR_NETFILTER_SYSCTLS) {
      const value = this.sysctls.read(path);
      if (value === undefined) {
        throw new Error(`${path} does not exist: br_netfilter is not loaded (modprobe br_netfilter)`);
      }
      if (value !== '1') {
        this.sysctls.write(path, '1');
        this.logger.warn(`${path} was ${value}: set to 1 (the firewall's conntrack needs it)`);
      }
    }
  }

  /** Taps watched for a migrating VM's arrival -> its MAC (lower case). */
  private watchedTaps = new Map<string, string>();
  private onArrival?: (tap: string) => void;
  private fdbMonitor?: { stop(): void };
  private lastArrivalRead = 0;

  /**
   * Reports a migrating VM's first frame on its prepared tap: the bridge learns the VM's MAC on
   * the tap, which `bridge monitor fdb` prints as a new entry. The monitor stays up once started
   * (a monitor started just before the VM lands may subscribe too late to see it), and while taps
   * are watched every call also reads the learned entries once (at most every 200 ms: the agent
   * calls this after every realize, revision markers included), so an arrival the monitor missed
   * is seen at the latest a marker later.
   */
  watchArrivals(ports: ReadonlyMap<string, string>, arrived: (tap: string) => void): void {
    this.watchedTaps = new Map([...ports].map(([tap, mac]) => [tap, mac.toLowerCase()]));
    this.onArrival = arrived;
    if (this.watchedTaps.size === 0 || !this.runner.watch) {
      return;
    }
    this.fdbMonitor ??= this.runner.watch('bridge', ['monitor', 'fdb'], (line) => {
      // `<mac> dev <port> master <bridge> ...` for a learned entry; removals start with `Deleted`.
      const m = /^([0-9a-f]{2}(?::[0-9a-f]{2}){5}) dev (\S+) master /.exec(line.trim().toLowerCase());
      if (m) {
        this.learned(m[2], m[1]);
      }
    });
    const now = Date.now();
    if (now - this.lastArrivalRead >= 200) {
      this.lastArrivalRead = now;
      void this.runner
        .run('bridge', ['-j', 'fdb', 'show'])
        .then((text) => parseJsonArray<FdbRecord>(text, 'bridge -j fdb show').forEach((r) => r.ifname && r.master && this.learned(r.ifname, r.mac.toLowerCase())))
        .catch(() => undefined);
    }
  }

  private learned(tap: string, mac: string): void {
    if (this.watchedTaps.get(tap) === mac) {
      this.watchedTaps.delete(tap);
      this.onArrival?.(tap);
    }
  }

  /** conntrack -D of each address, as source and as destination, in the zone. A missing conntrack tool is reported once. */
  async forgetConnections(zone: number, ips: string[]): Promise<void> {
    const runs = ips.flatMap((ip) => ['-s', '-d'].map((side) => this.runner.run('conntrack', ['-D', '-w', String(zone), side, ip]).catch((err: unknown) => err as Error)));
    for (const outcome of await Promise.all(runs)) {
      // Exit status 1 with "0 flow entries have been deleted" is the normal nothing-to-do.
      if (outcome instanceof Error && /ENOENT|not found|spawn/i.test(outcome.message) && !this.conntrackMissing) {
        this.conntrackMissing = true;
        this.logger.warn(`conntrack (conntrack-tools) is not installed: a VM that returns to this host may have its TCP connections stall until they time out (${outcome.message})`);
      }
    }
  }

  private conntrackMissing = false;

  /**
   * `conntrack -L -w <zone>` with `-s` and with `-d` for each address (in parallel), parsed; an
   * entry is listed once. Never mutates.
   */
  async listConnections(zone: number, ips: string[], limit: number): Promise<TrackedConnection[]> {
    const texts = await Promise.all(ips.flatMap((ip) => ['-s', '-d'].map((side) => this.runner.run('conntrack', ['-L', '-w', String(zone), side, ip]))));
    const seen = new Map<string, TrackedConnection>();
    for (const c of texts.flatMap(parseConntrackList)) {
      if (seen.size >= limit) {
        break;
      }
      seen.set(connectionKey(c), c);
    }
    return [...seen.values()];
  }

  /**
   * `conntrack -R <file>` of a load file written to a private temporary directory: conntrack opens
   * the file by name, and `/dev/stdin` cannot be opened when stdin is a socket (what Node gives a
   * child for a pipe).
   */
  private async loadConntrack(text: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'overlay-agent-ct-'));
    try {
      const file = join(dir, 'load');
      await writeFile(file, text, { mode: 0o600 });
      await this.runner.run('conntrack', ['-R', file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Inserts with `conntrack -R` (one process for all of them), skipping those already tracked.
   * The tool stops at the first line the kernel refuses: the entries before it are in, so the
   * first one still missing is the one refused; it is counted failed and the rest loaded again
   * (at most 16 times, then the rest count as failed). Idempotent.
   */
  async insertConnections(zone: number, ips: string[], connections: TrackedConnection[]): Promise<InsertedConnections> {
    const valid = new Map<string, TrackedConnection>();
    for (const c of connections) {
      if (isCarriable(c)) {
        valid.set(connectionKey(c), c);
      }
    }
    const invalid = connections.length - valid.size;
    let error = invalid ? `${invalid} connection(s) not valid` : '';
    let refused = 0;
    let pending = [...valid.values()];
    for (let round = 0; pending.length > 0; round++) {
      const tracked = new Set((await this.listConnections(zone, ips, Number.MAX_SAFE_INTEGER)).map(connectionKey));
      pending = pending.filter((c) => !tracked.has(connectionKey(c)));
      if (pending.length === 0 || round >= 16) {
        break;
      }
      try {
        await this.loadConntrack(pending.map((c) => insertLine(zone, c)).join('\n') + '\n');
        pending = [];
      } catch (err) {
        // Refused at some line: the lines before it went in, so the first one still missing after
        // them is the one refused. It is dropped; the next round loads the rest.
        error = (err as Error).message;
        const now = new Set((await this.listConnections(zone, ips, Number.MAX_SAFE_INTEGER)).map(connectionKey));
        const first = pending.findIndex((c) => !now.has(connectionKey(c)));
        pending.splice(Math.max(0, first), 1);
        refused++;
      }
    }
    const failed = invalid + refused + pending.length;
    return { installed: valid.size - refused - pending.length, failed, error };
  }


  async close(): Promise<void> {
    this.fdbMonitor?.stop();
    this.fdbMonitor = undefined;
  }

  private async read(): Promise<KernelView> {
    const [linksText, fdbText, gates] = await Promise.all([this.runner.run('ip', ['-j', '-d', 'link', 'show']), this.runner.run('bridge', ['-j', 'fdb', 'show']), this.readGates()]);
    const links = new Map(parseJsonArray<IpLink>(linksText, 'ip -j -d link show').map((l) => [l.ifname, l]));
    const remotes = new Map<number, Map<string, string[]>>();
    for (const record of parseJsonArray<FdbRecord>(fdbText, 'bridge -j fdb show')) {
      // Remote entries are the VXLAN driver's own (`self`, with a dst); bridge entries name a master.
      if (!record.ifname || !record.dst || record.master) {
        continue;
      }
      const vni = ownedVni(links.get(record.ifname));
      if (vni === undefined || !record.ifname.startsWith('vx')) {
        continue;
      }
      const byMac = remotes.get(vni) ?? new Map<string, string[]>();
      remotes.set(vni, byMac);
      const mac = record.mac.toLowerCase();
      const dsts = byMac.get(mac) ?? [];
      byMac.set(mac, dsts);
      if (!dsts.includes(record.dst)) {
        dsts.push(record.dst);
      }
    }
    return { links, remotes, ...gates };
  }

  /**
   * The gate as the kernel holds it (nothing when not gated): which device's clsact egress is
   * bound to which block (`tc -j qdisc show`, every device at once), and which gate blocks hold
   * exactly the gate filter (`tc -j filter show block <n> egress`; a block nobody is bound to
   * does not exist, and reads as without its filter).
   */
  private async readGates(): Promise<Pick<KernelView, 'clsact' | 'gateFilters'>> {
    const clsact = new Map<string, number>();
    const gateFilters = new Set<number>();
    if (!this.gated) {
      return { clsact, gateFilters };
    }
    const [qdiscs, ...filters] = await Promise.all([
      this.runner.run('tc', ['-j', 'qdisc', 'show']),
      ...GATES.map((g) => this.runner.run('tc', ['-j', 'filter', 'show', 'block', String(g.block), 'egress']).catch(() => '[]')),
    ]);
    for (const q of parseJsonArray<TcQdisc>(qdiscs, 'tc -j qdisc show')) {
      if (q.kind === 'clsact' && q.dev) {
        clsact.set(q.dev, q.egress_block ?? 0);
      }
    }
    GATES.forEach((gate, i) => {
      const found = parseJsonArray<TcFilter>(filters[i], `tc -j filter show block ${gate.block} egress`).filter((f) => f.options);
      const insns = found[0]?.options?.bytecode?.insns?.map((x) => `${x.code} ${x.jt} ${x.jf} ${x.k}`).join(',');
      if (found.length === 1 && found[0].options?.['direct-action'] && `${insns?.split(',').length},${insns}` === gate.bytecode) {
        gateFilters.add(gate.block);
      }
    });
    return { clsact, gateFilters };
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
 * The firewall tables as the kernel lists them, reduced to comparable parts: `table <family> <name>`,
 * `chain <family> <name>`, `rules <family> <chain>` (each rule with its handle and expressions,
 * in order), `set <family> <name>` (without elements) and `elements <family> <set>` (sorted), each
 * mapped to a JSON string (a digest when long).
 */
type Fingerprint = Map<string, string>;

const digest = (text: string): string => (text.length > 64 ? createHash('sha256').update(text).digest('hex') : text);

/** Adds the objects of one `nft -j list` output to `fp`; false when the output is not what nft prints. */
function addToFingerprint(fp: Fingerprint, json: string): boolean {
  let items: Record<string, Record<string, unknown>>[];
  try {
    items = (JSON.parse(json) as { nftables: Record<string, Record<string, unknown>>[] }).nftables;
  } catch {
    return false;
  }
  if (!Array.isArray(items)) {
    return false;
  }
  const rules = new Map<string, string[]>();
  for (const item of items) {
    for (const [kind, obj] of Object.entries(item)) {
      if (kind === 'metainfo') {
        continue;
      }
      const family = String(obj.family);
      if (kind === 'rule') {
        const key = `rules ${family} ${String(obj.chain)}`;
        rules.set(key, [...(rules.get(key) ?? []), JSON.stringify(obj)]);
      } else if (kind === 'set' || kind === 'map') {
        const { elem, ...rest } = obj;
        fp.set(`set ${family} ${String(obj.name)}`, JSON.stringify(rest));
        const elements = Array.isArray(elem) ? elem.map((e) => JSON.stringify(e)).sort() : [];
        fp.set(`elements ${family} ${String(obj.name)}`, digest(elements.join('\n')));
      } else {
        fp.set(`${kind} ${family} ${String(obj.name)}`, JSON.stringify(obj));
      }
    }
  }
  for (const [key, list] of rules) {
    fp.set(key, digest(list.join('\n')));
  }
  return true;
}

/** The first difference between what was loaded and what the kernel holds now, as text; undefined when none. */
function fingerprintDrift(loaded: Fingerprint, now: Fingerprint | undefined): string | undefined {
  if (!now) {
    return 'tables unreadable';
  }
  for (const key of new Set([...loaded.keys(), ...now.keys()])) {
    if (loaded.get(key) !== now.get(key)) {
      return now.get(key) === 'missing' ? `${key} missing` : loaded.has(key) ? (now.has(key) ? `${key} changed` : `${key} gone`) : `${key} added`;
    }
  }
  return undefined;
}

/** Whether `dev`'s egress is bound to the gate block `block`, and that block holds the gate filter. */
const gateHolds = (view: KernelView, dev: string, block: number): boolean => view.clsact.get(dev) === block && view.gateFilters.has(block);

/**
 * Pure: the commands that carry out `plan` on a kernel that looks like `view`. With `gated`, every
 * VXLAN device it puts and every tap it attaches is bound to its gate block first.
 */
function compile(plan: DataplanePlan, view: KernelView, gated = false): Script {
  const script: Script = { fdbRemovals: [], links: [], gates: [], ports: [], fdbPuts: [], missingTaps: [] };
  /** Blocks bound to a device by this script. */
  const bound = new Set<number>();
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
      case 'put-segment':
      case 'put-fdb':
      case 'put-port':
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
  if (gated) {
    for (const { block, bytecode } of GATES) {
      const inUse = [...view.clsact.values()].includes(block);
      if (bound.has(block) || (inUse && !view.gateFilters.has(block))) {
        script.gates.push(`filter replace block ${block} egress pref 1 handle 1 bpf da bytecode "${bytecode}"`);
      }
    }
  }
  return script;
}
