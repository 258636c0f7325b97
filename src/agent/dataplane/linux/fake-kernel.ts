import { readFileSync } from 'node:fs';
import { connectionKey, PROTOCOL_NAMES, PROTOCOLS, type TrackedConnection } from '../../../common/tracked-connection';
import { CommandError, type CommandRunner } from './command-runner';

/** A link as the fake kernel keeps it. */
export interface FakeLink {
  /** Given at creation, never reused (as the kernel does). */
  ifindex?: number;
  ifname: string;
  kind: 'bridge' | 'vxlan' | 'veth' | 'erspan' | 'ip6erspan';
  up: boolean;
  master?: string;
  alias?: string;
  /** As a bridge port: whether the bridge learns source MACs on it. */
  portLearning?: boolean;
  /** `ip link set promisc on`: one more in its promiscuity count (a bridge it is a port of is one too). */
  promisc?: boolean;
  /** A bridge's MAC ageing time, centiseconds (the kernel's default 30000 when unset). */
  ageing?: number;
  vxlan?: { id: number; local: string; remote?: string; port: number; learning: boolean };
  /** An ERSPAN device's: the GRE key (the session ID), sequence numbers, version 1 (index) or 2 (dir, hwid). */
  erspan?: { key: number; seq: boolean; local: string; remote: string; version: number; index?: number; dir?: 'ingress' | 'egress'; hwid?: number };
}

/** A tc filter: a classic-BPF cls_bpf one, with at most one mirred action. */
export interface FakeFilter {
  pref: number;
  handle: number;
  da: boolean;
  bytecode: string;
  action?: { kind: 'mirror' | 'redirect'; dev?: string; control: string; cookie: string; packets: number; bytes: number };
}

/** A forwarding entry: a VXLAN device's remote (`dst`, `self`), or a MAC a bridge learned on a port (`master`). */
interface FakeFdbEntry {
  ifname: string;
  mac: string;
  dst?: string;
  master?: string;
}

interface FakeNftSet {
  kind: 'set' | 'map';
  handle: number;
  type: string;
  flags: string[];
  elements: string[];
}

interface FakeNftChain {
  handle: number;
  hook?: string;
  rules: { handle: number; text: string }[];
}

interface FakeNftTable {
  family: string;
  name: string;
  handle: number;
  sets: Map<string, FakeNftSet>;
  chains: Map<string, FakeNftChain>;
  /** The last handle given in this table (nft numbers objects per table). */
  lastHandle: number;
}

/** A command failed as the real tool fails: non-zero status, this text on stderr. */
class Refused extends Error {}

const UP_FLAGS = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'];
const DOWN_FLAGS = ['BROADCAST', 'MULTICAST'];

/**
 * A fake Linux kernel behind the CommandRunner, for the Linux dataplane's unit specs. It keeps
 * state (links with their attributes and master, VXLAN and ERSPAN ones with their options, the
 * bridge fdb, tc clsact qdiscs bound to shared blocks and the blocks' filters, nftables tables with their sets, maps, chains and rules,
 * conntrack entries by zone) and answers the commands the dataplane issues from that state: the
 * reads (`ip -j -d link show`, `bridge fdb show`, `tc -j qdisc show clsact`, `tc -j filter show
 * block <n> egress`, `nft -j list table|set|map`, `conntrack -L`) and the mutations (`ip -batch -`,
 * `bridge -batch -`, `tc -batch -`, `nft -f -`, `nft -c -f -`, `conntrack -R|-D`), and runs
 * `bridge monitor fdb` and `ip -o monitor link` (a veth added). Batches stop at the first line that fails, after the lines before it,
 * with `Command failed -:<line>` as iproute2 prints it; an `nft -f` load is one transaction.
 * What it does not know it refuses, so a spec notices a command it did not expect; a link kind
 * in `missingKinds` it refuses as a kernel built without it does.
 *
 * Every command run is recorded in `calls` (the command line, then its input after a newline);
 * `sh` changes the state as a person at a shell would (drift), without being recorded.
 */
export class FakeKernel implements CommandRunner {
  readonly links = new Map<string, FakeLink>();
  readonly fdb: FakeFdbEntry[] = [];
  /** Device -> the block its clsact egress is bound to (0: a clsact without a shared block). */
  readonly qdiscs = new Map<string, number>();
  /** Attach point (`block <n> egress`, `dev <name> ingress`) -> its filters, by pref. */
  readonly filters = new Map<string, FakeFilter[]>();
  readonly nft = new Map<string, FakeNftTable>();
  /** Zone -> connections tracked in it. */
  readonly conntrack = new Map<number, TrackedConnection[]>();
  readonly calls: string[] = [];
  /** Whether `ct` expressions load in a bridge table (CONFIG_NF_CONNTRACK_BRIDGE). */
  bridgeConntrack = true;
  /** Connections the kernel refuses to insert. */
  refuseConnection: (c: TrackedConnection) => boolean = () => false;
  /** Link kinds this kernel was built without (`erspan`, say): `ip link add ... type <kind>` fails as it does then. */
  readonly missingKinds = new Set<string>();

  private readonly failures: { match: (line: string) => boolean; stderr: string }[] = [];
  private readonly lineFailures: { match: (line: string) => boolean; stderr: string }[] = [];
  private readonly monitors = new Set<(line: string) => void>();
  private readonly linkMonitors = new Set<(line: string) => void>();
  private lastTableHandle = 0;
  private lastIfindex = 0;
  private lastActionIndex = 0;

  /** A veth, as a hypervisor's tap (or the host's uplink) stands here: down, on no bridge, unless told; `ip -o monitor link` sees it (with `mac`). */
  addVeth(ifname: string, opts: { up?: boolean; master?: string; mac?: string } = {}): this {
    const ifindex = ++this.lastIfindex;
    this.links.set(ifname, { ifindex, ifname, kind: 'veth', up: opts.up ?? false, ...(opts.master ? { master: opts.master, portLearning: true } : {}) });
    const mac = opts.mac ?? `02:00:00:00:${(ifindex >> 8).toString(16).padStart(2, '0')}:${(ifindex & 255).toString(16).padStart(2, '0')}`;
    this.linkMonitors.forEach((emit) => emit(`${ifindex}: ${ifname}@if${ifindex + 1}: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether ${mac} brd ff:ff:ff:ff:ff:ff`));
    return this;
  }

  /** The mirred action with this cookie copies (or redirects) frames: its counters grow. */
  count(cookie: string, packets: number, bytes: number): void {
    const action = [...this.filters.values()].flat().find((f) => f.action?.cookie === cookie)?.action;
    if (!action) {
      throw new Error(`no action with cookie ${cookie}`);
    }
    action.packets += packets;
    action.bytes += bytes;
  }

  /** The filters of an attach point (`block 4701 egress`, `dev tap1 ingress`). */
  filtersAt(where: string): FakeFilter[] {
    return this.filters.get(where) ?? [];
  }

  /** Makes every later command whose line (`cmd args...`) matches fail with `stderr`. */
  failWhen(line: string | RegExp, stderr: string): void {
    this.failures.push({ match: (l) => (typeof line === 'string' ? l === line : line.test(l)), stderr });
  }

  /** Makes every later batch line matching `line` (`<cmd> <the line>`, e.g. `ip link set dev tapX up`) fail with `stderr`, the rest of its batch running as the tool would. */
  failLine(line: string | RegExp, stderr: string): void {
    this.lineFailures.push({ match: (l) => (typeof line === 'string' ? l === line : line.test(l)), stderr });
  }

  /** Stops failing commands (see failWhen, failLine). */
  healed(): void {
    this.failures.length = 0;
    this.lineFailures.length = 0;
  }

  /** The bridge learns `mac` on the port `ifname`, as when a frame from it arrives; monitors see it. */
  learn(ifname: string, mac: string): void {
    const master = this.links.get(ifname)?.master;
    if (!master) {
      throw new Error(`${ifname} is on no bridge`);
    }
    this.fdb.push({ ifname, mac, master });
    this.monitors.forEach((emit) => emit(`${mac} dev ${ifname} master ${master} `));
  }

  /** Runs `line` (`ip ...`, `bridge ...`, `tc ...`, `nft ...`) as a person at a shell would: not recorded in `calls`. Throws on failure. */
  sh(line: string): void {
    const [cmd, ...rest] = line.split(' ');
    switch (cmd) {
      case 'ip':
      case 'bridge':
      case 'tc':
        this.batch(cmd, [rest.join(' ')], false);
        return;
      case 'nft':
        this.nftLoad(rest.join(' ') + '\n');
        return;
      default:
        throw new Error(`sh: ${cmd}: not known`);
    }
  }

  /** The commands that changed (or tried to change) something, as recorded in `calls`. */
  mutations(): string[] {
    return this.calls.filter((c) => /^(\S+ (-force )?-batch -|nft -f -|conntrack -[RDI])/.test(c));
  }

  /** The batches run that change something, each as `<cmd>\n<its lines>` (`<cmd> -force` for a forced one). */
  batches(): string[] {
    return this.calls.filter((c) => /^\S+ (-force )?-batch -\n/.test(c)).map((c) => c.replace(' -batch -', ''));
  }

  watch(cmd: string, args: string[], onLine: (line: string) => void): { stop(): void } {
    const monitors = new Map([
      ['bridge monitor fdb', this.monitors],
      ['ip -o monitor link', this.linkMonitors],
    ]).get(`${cmd} ${args.join(' ')}`);
    if (!monitors) {
      throw new Error(`fake kernel: cannot watch ${cmd} ${args.join(' ')}`);
    }
    monitors.add(onLine);
    return { stop: () => monitors.delete(onLine) };
  }

  async run(cmd: string, args: string[], stdin?: string): Promise<string> {
    const line = [cmd, ...args].join(' ');
    this.calls.push(stdin === undefined ? line : `${line}\n${stdin}`);
    const failure = this.failures.find((f) => f.match(line));
    try {
      if (failure) {
        throw new Refused(failure.stderr);
      }
      return this.answer(cmd, args, stdin ?? '');
    } catch (err) {
      if (err instanceof Refused) {
        throw new CommandError(`${line} exited with status 1: ${err.message}`, 1, err.message);
      }
      throw err;
    }
  }

  private answer(cmd: string, args: string[], stdin: string): string {
    const line = [cmd, ...args].join(' ');
    const force = args.join(' ') === '-force -batch -';
    if ((args.join(' ') === '-batch -' || force) && (cmd === 'ip' || cmd === 'bridge' || cmd === 'tc')) {
      this.batch(cmd, stdin.replace(/\n$/, '').split('\n'), force);
      return '';
    }
    if (line === 'tc -j -s -batch -') {
      return stdin
        .replace(/\n$/, '')
        .split('\n')
        .map((l) => JSON.stringify(this.filterShow(l)) + '\n')
        .join('');
    }
    const show = /^tc -j -s (filter show .*)$/.exec(line);
    if (show) {
      return JSON.stringify(this.filterShow(show[1]));
    }
    const nftList = /^nft -j list (table|set|map) (\S+) (\S+)(?: (\S+))?$/.exec(line);
    if (nftList) {
      return JSON.stringify({ nftables: [{ metainfo: { version: '1.0.6', json_schema_version: 1 } }, ...this.nftJson(nftList[1], nftList[2], nftList[3], nftList[4])] });
    }
    const ct = /^conntrack -([LD]) -w (\d+) -([sd]) (\S+)$/.exec(line);
    if (ct) {
      return this.conntrackListOrDelete(ct[1] as 'L' | 'D', Number(ct[2]), ct[3] === 's' ? 'src' : 'dst', ct[4]);
    }
    if (cmd === 'conntrack' && args[0] === '-R' && args.length === 2) {
      this.conntrackLoad(readFileSync(args[1], 'utf8'));
      return '';
    }
    switch (line) {
      case 'ip -j -d link show':
        return JSON.stringify([...this.links.values()].map((l, i) => this.linkJson(l, i)));
      case 'bridge fdb show':
        // As iproute2 6.1 prints them: `<mac> dev <dev> [dst <ip>] {master <br>|self} permanent`.
        return this.fdb.map((e) => `${e.mac} dev ${e.ifname} ${e.dst ? `dst ${e.dst} ` : ''}${e.master ? `master ${e.master}` : 'self'} permanent\n`).join('');
      case 'tc -V':
        return 'tc utility, iproute2-6.1.0, libbpf 1.1.0\n';
      case 'tc -j qdisc show clsact':
        return JSON.stringify([...this.qdiscs].map(([dev, b]) => ({ kind: 'clsact', handle: 'ffff:', dev, parent: 'ffff:fff1', ...(b ? { egress_block: b } : {}), options: {} })));
      case 'nft --version':
        return 'nftables v1.0.6 (Lester Gooch #5)\n';
      case 'nft -f -':
        this.nftLoad(stdin);
        return '';
      case 'nft -c -f -':
        this.nftLoad(stdin, { check: true });
        return '';
      default:
        throw new Error(`fake kernel: unexpected command: ${line}`);
    }
  }

  /** The options of `link add ... type erspan|ip6erspan`, checked as iproute2 and the kernel check them. */
  private erspanOptions(w: string[], opt: (key: string) => string | undefined): NonNullable<FakeLink['erspan']> {
    const version = Number(opt('erspan_ver') ?? 1);
    // `erspan <index>`, not the `erspan` of `type erspan`.
    const at = w.indexOf('erspan', w.indexOf('type') + 2);
    const indexText = at < 0 ? undefined : w[at + 1];
    const index = indexText === undefined ? undefined : Number(indexText);
    if (version !== 1 && version !== 2) {
      throw new Refused(`Error: argument "${opt('erspan_ver')}" is wrong: erspan version must be 1 or 2`);
    }
    if (index !== undefined && (!Number.isInteger(index) || index < 1 || index > 0xfffff)) {
      throw new Refused(`Error: argument "${indexText}" is wrong: erspan index must be > 0 and <= 20-bit`);
    }
    const dir = opt('erspan_dir');
    if (dir !== undefined && dir !== 'ingress' && dir !== 'egress') {
      throw new Refused(`Error: argument "${dir}" is wrong: Invalid erspan direction.`);
    }
    if (opt('key') === undefined) {
      throw new Refused('Error: ERSPAN requires a key.');
    }
    return {
      key: Number(opt('key')),
      seq: w.includes('seq'),
      local: opt('local') ?? '',
      remote: opt('remote') ?? '',
      version,
      ...(version === 1 ? { index: index ?? 0 } : { dir: dir ?? 'ingress', hwid: Number(opt('erspan_hwid') ?? 0) }),
    };
  }

  /** An ERSPAN device's info_data as iproute2 prints it (`ip -d -j link show`: gre_print_opt). */
  private erspanJson(e: NonNullable<FakeLink['erspan']>): Record<string, unknown> {
    const key = `${(e.key >>> 24) & 255}.${(e.key >>> 16) & 255}.${(e.key >>> 8) & 255}.${e.key & 255}`;
    return {
      remote: e.remote || 'any',
      local: e.local || 'any',
      ttl: 0,
      pmtudisc: true,
      ikey: key,
      okey: key,
      ...(e.seq ? { iseq: true, oseq: true } : {}),
      ...(e.version === 1 ? { erspan_index: e.index ?? 0 } : {}),
      erspan_ver: e.version,
      ...(e.version === 2 ? { erspan_dir: e.dir, erspan_hwid: (e.hwid ?? 0).toString(16) } : {}),
    };
  }

  private linkJson(l: FakeLink, i: number): unknown {
    const local = l.vxlan && (l.vxlan.local.includes(':') ? { local6: l.vxlan.local } : { local: l.vxlan.local });
    const remote = l.vxlan?.remote ? (l.vxlan.remote.includes(':') ? { remote6: l.vxlan.remote } : { remote: l.vxlan.remote }) : {};
    return {
      ifindex: l.ifindex ?? 1000 + i,
      ifname: l.ifname,
      flags: l.up ? UP_FLAGS : DOWN_FLAGS,
      mtu: 1500,
      ...(l.master ? { master: l.master } : {}),
      operstate: l.up ? 'UP' : 'DOWN',
      promiscuity: (l.promisc ? 1 : 0) + (l.master ? 1 : 0),
      linkinfo: {
        info_kind: l.kind,
        ...(l.kind === 'bridge' ? { info_data: { forward_delay: 1500, hello_time: 200, max_age: 2000, ageing_time: l.ageing ?? 30_000, stp_state: 0 } } : {}),
        ...(l.vxlan ? { info_data: { id: l.vxlan.id, ...remote, ...local, port: l.vxlan.port, learning: l.vxlan.learning, ttl: 0 } } : {}),
        ...(l.erspan ? { info_data: this.erspanJson(l.erspan) } : {}),
        ...(l.master ? { info_slave_kind: 'bridge', info_slave_data: { state: 'forwarding', learning: l.portLearning ?? true } } : {}),
      },
      ...(l.alias ? { ifalias: l.alias } : {}),
    };
  }

  /** Runs batch lines in order; the first that fails stops it, the lines before it stay done; with `force` every line runs, and the failures are told together. */
  private batch(cmd: 'ip' | 'bridge' | 'tc', lines: string[], force: boolean): void {
    const failures: string[] = [];
    lines.forEach((text, i) => {
      try {
        const refused = this.lineFailures.find((f) => f.match(`${cmd} ${text.trim()}`));
        if (refused) {
          throw new Refused(refused.stderr);
        }
        const words = text.trim().split(/\s+/);
        switch (cmd) {
          case 'ip':
            this.ipLink(words);
            break;
          case 'bridge':
            this.bridgeFdb(words);
            break;
          case 'tc':
            this.tc(words, text);
            break;
        }
      } catch (err) {
        if (!(err instanceof Refused)) {
          throw err;
        }
        failures.push(`${err.message}\nCommand failed -:${i + 1}`);
        if (!force) {
          throw new Refused(failures[0]);
        }
      }
    });
    if (failures.length) {
      throw new Refused(failures.join('\n'));
    }
  }

  private link(name: string | undefined): FakeLink {
    const link = name === undefined ? undefined : this.links.get(name);
    if (!link) {
      throw new Refused(`Cannot find device "${name}"`);
    }
    return link;
  }

  /** `link add|del|set ...`, the forms the dataplane uses. */
  private ipLink(w: string[]): void {
    const opt = (key: string): string | undefined => (w.includes(key) ? w[w.indexOf(key) + 1] : undefined);
    if (w[0] !== 'link') {
      throw new Refused(`Object "${w[0]}" is unknown, try "ip help".`);
    }
    if (w[1] === 'add') {
      const name = opt('name')!;
      if (this.links.has(name)) {
        throw new Refused('RTNETLINK answers: File exists');
      }
      const kind = opt('type');
      if (kind !== undefined && this.missingKinds.has(kind)) {
        throw new Refused('Error: Unknown device type.');
      }
      if (kind === 'erspan' || kind === 'ip6erspan') {
        this.links.set(name, { ifindex: ++this.lastIfindex, ifname: name, kind, up: false, erspan: this.erspanOptions(w, opt) });
        return;
      }
      if (kind === 'bridge') {
        this.links.set(name, { ifindex: ++this.lastIfindex, ifname: name, kind: 'bridge', up: false });
      } else if (kind === 'vxlan') {
        const clash = [...this.links.values()].find((l) => l.vxlan && l.vxlan.id === Number(opt('id')) && l.vxlan.port === Number(opt('dstport') ?? 8472));
        if (clash) {
          throw new Refused('Error: A VXLAN device with the specified VNI already exists.');
        }
        this.links.set(name, { ifindex: ++this.lastIfindex, ifname: name, kind: 'vxlan', up: false, vxlan: { id: Number(opt('id')), local: opt('local') ?? '', ...(opt('remote') ? { remote: opt('remote') } : {}), port: Number(opt('dstport') ?? 8472), learning: !w.includes('nolearning') } });
      } else {
        throw new Refused(`Error: Unknown device type "${kind}".`);
      }
      return;
    }
    const dev = this.link(opt('dev'));
    if (w[1] === 'del') {
      this.deleteLink(dev);
      return;
    }
    if (w[1] !== 'set') {
      throw new Refused(`Command "${w[1]}" is unknown, try "ip link help".`);
    }
    const rest = w.slice(4);
    if (rest[0] === 'up' || rest[0] === 'down') {
      dev.up = rest[0] === 'up';
    } else if (rest[0] === 'alias') {
      dev.alias = rest[1];
    } else if (rest[0] === 'promisc' && (rest[1] === 'on' || rest[1] === 'off')) {
      dev.promisc = rest[1] === 'on';
    } else if (rest.slice(0, 3).join(' ') === 'type bridge ageing_time' && dev.kind === 'bridge') {
      dev.ageing = Number(rest[3]);
    } else if (rest[0] === 'addrgenmode') {
      // IPv6 address generation: nothing the dataplane reads back.
    } else if (rest[0] === 'nomaster') {
      this.release(dev);
    } else if (rest[0] === 'master') {
      const master = this.links.get(rest[1]);
      if (master?.kind !== 'bridge') {
        throw new Refused(`Error: argument "${rest[1]}" is wrong: Device does not exist`);
      }
      if (dev.master !== master.ifname) {
        this.release(dev);
        dev.master = master.ifname;
        dev.portLearning = true;
      }
    } else if (rest.join(' ') === 'type bridge_slave learning off' || rest.join(' ') === 'type bridge_slave learning on') {
      if (!dev.master) {
        throw new Refused('Error: argument "bridge_slave" is wrong: not a bridge port');
      }
      dev.portLearning = rest[3] === 'on';
    } else if (rest[0] === 'type' && rest[1] === 'vxlan' && dev.vxlan) {
      dev.vxlan.local = opt('local') ?? dev.vxlan.local;
      dev.vxlan.learning = w.includes('nolearning') ? false : w.includes('learning') ? true : dev.vxlan.learning;
    } else {
      throw new Refused(`Error: either "dev" is duplicate, or "${rest[0]}" is a garbage.`);
    }
  }

  /** A link deleted: its fdb entries and qdisc go with it; a bridge releases its ports. */
  private deleteLink(link: FakeLink): void {
    this.links.delete(link.ifname);
    for (const port of this.links.values()) {
      if (port.master === link.ifname) {
        this.release(port);
      }
    }
    this.removeFdb((e) => e.ifname === link.ifname || e.master === link.ifname);
    this.unbind(link.ifname);
    // A mirred action whose device goes keeps no device (the kernel drops its reference).
    for (const f of [...this.filters.values()].flat()) {
      if (f.action?.dev === link.ifname) {
        delete f.action.dev;
      }
    }
  }

  private release(port: FakeLink): void {
    if (port.master) {
      this.removeFdb((e) => e.ifname === port.ifname && e.master === port.master);
    }
    delete port.master;
    delete port.portLearning;
  }

  private removeFdb(match: (e: FakeFdbEntry) => boolean): number {
    const before = this.fdb.length;
    const kept = this.fdb.filter((e) => !match(e));
    this.fdb.splice(0, this.fdb.length, ...kept);
    return before - kept.length;
  }

  /** `fdb append|replace|del <mac> dev <vxlan> [dst <ip>] self [permanent]`: the VXLAN driver's remotes. */
  private bridgeFdb(w: string[]): void {
    const [obj, op, mac] = w;
    const dev = this.link(w[w.indexOf('dev') + 1]);
    const dst = w.includes('dst') ? w[w.indexOf('dst') + 1] : undefined;
    if (obj !== 'fdb' || !w.includes('self') || dev.kind !== 'vxlan') {
      throw new Refused(`fake kernel: bridge ${w.join(' ')}: not a VXLAN remote`);
    }
    const remotes = this.fdb.filter((e) => e.ifname === dev.ifname && e.mac === mac && !e.master);
    switch (op) {
      case 'append':
        if (!dst || remotes.some((e) => e.dst === dst)) {
          throw new Refused('RTNETLINK answers: File exists');
        }
        this.fdb.push({ ifname: dev.ifname, mac, dst });
        return;
      case 'replace':
        if (remotes[0]) {
          remotes[0].dst = dst;
        } else {
          this.fdb.push({ ifname: dev.ifname, mac, dst });
        }
        return;
      case 'del':
        if (this.removeFdb((e) => remotes.includes(e) && (dst === undefined || e.dst === dst)) === 0) {
          throw new Refused('RTNETLINK answers: No such file or directory');
        }
        return;
      default:
        throw new Refused(`Command "${op}" is unknown, try "bridge fdb help".`);
    }
  }

  /**
   * `qdisc add dev <d> [egress_block <n>] clsact`, `qdisc del dev <d> clsact`; `filter add|replace
   * (block <n> egress|dev <d> ingress) pref <p> handle <h> bpf [da] bytecode "<b>" [action mirred
   * egress mirror|redirect dev <t> [continue] cookie <c>]`, `filter del ... pref <p>`.
   */
  private tc(w: string[], text: string): void {
    if (w[0] === 'qdisc' && w.at(-1) === 'clsact') {
      const dev = this.link(w[3]).ifname;
      if (w[1] === 'add') {
        if (this.qdiscs.has(dev)) {
          throw new Refused('Error: Exclusivity flag on, cannot modify.');
        }
        this.qdiscs.set(dev, w[4] === 'egress_block' ? Number(w[5]) : 0);
        return;
      }
      if (w[1] === 'del') {
        if (!this.qdiscs.has(dev)) {
          throw new Refused('Error: Cannot find specified qdisc on specified device.');
        }
        this.unbind(dev);
        return;
      }
    }
    const del = /^filter del (block \d+ egress|dev \S+ ingress) pref (\d+)$/.exec(text.trim());
    if (del) {
      const where = this.attachPoint(del[1]);
      const kept = this.filtersAt(where).filter((f) => f.pref !== Number(del[2]));
      if (kept.length === this.filtersAt(where).length) {
        throw new Refused('Error: Filter with specified priority/protocol not found.');
      }
      this.filters.set(where, kept);
      return;
    }
    const filter = /^filter (add|replace) (block \d+ egress|dev \S+ ingress) pref (\d+) handle (\d+) bpf( da)? bytecode "([^"]*)"(?: action mirred egress (mirror|redirect) dev (\S+)( continue)? cookie ([0-9a-f]+))?$/.exec(text.trim());
    if (filter) {
      const [, op, at, pref, handle, da, bytecode, kind, dev, cont, cookie] = filter;
      const where = this.attachPoint(at);
      if (dev !== undefined) {
        this.link(dev);
      }
      const list = this.filtersAt(where);
      const existing = list.find((f) => f.pref === Number(pref));
      if (existing && op === 'add') {
        throw new Refused('Error: Filter already exists.');
      }
      const made: FakeFilter = {
        pref: Number(pref),
        handle: Number(handle),
        da: da !== undefined,
        bytecode,
        ...(kind ? { action: { kind: kind as 'mirror' | 'redirect', dev, control: cont ? 'continue' : kind === 'mirror' ? 'pipe' : 'stolen', cookie, packets: 0, bytes: 0 } } : {}),
      };
      this.filters.set(where, [...list.filter((f) => f !== existing), made].sort((a, b) => a.pref - b.pref));
      return;
    }
    throw new Refused(`fake kernel: tc ${text}: not known`);
  }

  /** `block <n> egress` (a block someone is bound to) or `dev <d> ingress` (a device with a clsact). */
  private attachPoint(at: string): string {
    const [what, name] = at.split(' ');
    if (what === 'block' && ![...this.qdiscs.values()].includes(Number(name))) {
      throw new Refused('Error: Block of given index was not found.');
    }
    if (what === 'dev' && !this.qdiscs.has(this.link(name).ifname)) {
      throw new Refused("Error: Parent Qdisc doesn't exists.");
    }
    return at;
  }

  /** Removes a device's clsact (its ingress filters go with it); a shared block nobody is bound to any more goes, with its filters. */
  private unbind(dev: string): void {
    const block = this.qdiscs.get(dev);
    this.qdiscs.delete(dev);
    this.filters.delete(`dev ${dev} ingress`);
    if (block && ![...this.qdiscs.values()].includes(block)) {
      this.filters.delete(`block ${block} egress`);
    }
  }

  /** `filter show block <n> egress` or `filter show dev <d> ingress`, as `tc -j -s` prints it. */
  private filterShow(line: string): unknown[] {
    const m = /^filter show (block (\d+) egress|dev (\S+) ingress)$/.exec(line);
    if (!m) {
      throw new Error(`fake kernel: unexpected tc listing: ${line}`);
    }
    if (m[2] !== undefined && ![...this.qdiscs.values()].includes(Number(m[2]))) {
      throw new Refused(`Cannot find block "${m[2]}"`);
    }
    if (m[3] !== undefined) {
      this.link(m[3]);
    }
    return this.filtersAt(m[1]).flatMap((f) => {
      const head = { protocol: 'all', pref: f.pref, kind: 'bpf', chain: 0 };
      const [, ...insns] = f.bytecode.split(',');
      const code = insns.map((i) => i.split(' ').map(Number)).map(([c, jt, jf, k]) => ({ code: c, jt, jf, k }));
      const a = f.action;
      const actions = a
        ? [{ order: 1, kind: 'mirred', mirred_action: a.kind, direction: 'egress', ...(a.dev ? { to_dev: a.dev } : {}), control_action: { type: a.control }, index: ++this.lastActionIndex, ref: 1, bind: 1, stats: { bytes: a.bytes, packets: a.packets, drops: 0, overlimits: 0, requeues: 0, backlog: 0, qlen: 0 }, cookie: a.cookie }]
        : undefined;
      return [head, { ...head, options: { handle: `0x${f.handle.toString(16)}`, ...(f.da ? { 'direct-action': true } : {}), not_in_hw: true, bytecode: { length: code.length, insns: code }, ...(actions ? { actions } : {}) } }];
    });
  }

  /**
   * Loads nft text as one transaction (`check`: only checks it): table add, delete and
   * definition blocks with sets, maps and chains; `flush set|map`, `add element`, `delete
   * element`, `add rule`, `delete|replace rule ... handle <n>`, `flush ruleset`. Refuses anything else.
   */
  private nftLoad(text: string, opts: { check?: boolean } = {}): void {
    const tables = new Map([...this.nft].map(([k, t]) => [k, { ...t, sets: new Map([...t.sets].map(([n, s]) => [n, { ...s, elements: [...s.elements] }])), chains: new Map([...t.chains].map(([n, c]) => [n, { ...c, rules: [...c.rules] }])) }]));
    const syntax = (l: string) => new Refused(`/dev/stdin:1:1-${l.length}: Error: syntax error, unexpected junk\n${l}`);
    const table = (family: string, name: string): FakeNftTable => {
      const t = tables.get(`${family} ${name}`);
      if (!t) {
        throw new Refused(`Error: No such file or directory; did you mean table '${name}' in family ${family}?`);
      }
      return t;
    };
    const addTable = (family: string, name: string): FakeNftTable => {
      let t = tables.get(`${family} ${name}`);
      if (!t) {
        t = { family, name, handle: ++this.lastTableHandle, sets: new Map(), chains: new Map(), lastHandle: 0 };
        tables.set(`${family} ${name}`, t);
      }
      return t;
    };
    const set = (t: FakeNftTable, name: string): FakeNftSet => {
      const s = t.sets.get(name);
      if (!s) {
        throw new Refused(`Error: No such file or directory; set ${name} not in table ${t.family} ${t.name}`);
      }
      return s;
    };
    const addRule = (t: FakeNftTable, chain: FakeNftChain, rule: string): void => {
      if (t.family === 'bridge' && !this.bridgeConntrack && /\bct\b/.test(rule)) {
        throw new Refused('Error: Could not process rule: Protocol error');
      }
      chain.rules.push({ handle: ++t.lastHandle, text: rule });
    };
    const elements = (list: string) => list.split(', ').filter((e) => e !== '');
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i].trim();
      let m: RegExpExecArray | null;
      if (l === '') {
        continue;
      } else if (l === 'flush ruleset') {
        tables.clear();
      } else if ((m = /^table (\w+) (\S+)$/.exec(l))) {
        addTable(m[1], m[2]);
      } else if ((m = /^delete table (\w+) (\S+)$/.exec(l))) {
        table(m[1], m[2]);
        tables.delete(`${m[1]} ${m[2]}`);
      } else if ((m = /^flush (set|map) (\w+) (\S+) (\S+)$/.exec(l))) {
        set(table(m[2], m[3]), m[4]).elements = [];
      } else if ((m = /^(add|delete) element (\w+) (\S+) (\S+) \{ (.*) \}$/.exec(l))) {
        // As nft: adding an element already there is no error (a map's key with another
        // verdict is); deleting one that is not there is (a map's element is deleted by its key).
        const s = set(table(m[2], m[3]), m[4]);
        const keyOf = (e: string) => (s.kind === 'map' ? e.split(' : ')[0] : e);
        for (const e of elements(m[5])) {
          const at = s.elements.findIndex((x) => keyOf(x) === keyOf(e));
          if (m[1] === 'add' && at >= 0 && s.elements[at] !== e) {
            throw new Refused(`/dev/stdin:${i + 1}: Error: Could not process rule: File exists\n${l}`);
          } else if (m[1] === 'add' && at < 0) {
            s.elements.push(e);
          } else if (m[1] === 'delete' && at < 0) {
            throw new Refused(`/dev/stdin:${i + 1}: Error: Could not process rule: No such file or directory\n${l}`);
          } else if (m[1] === 'delete') {
            s.elements.splice(at, 1);
          }
        }
      } else if ((m = /^add rule (\w+) (\S+) (\S+) (.+)$/.exec(l))) {
        const t = table(m[1], m[2]);
        const chain = t.chains.get(m[3]);
        if (!chain) {
          throw new Refused(`Error: No such file or directory; chain ${m[3]}`);
        }
        addRule(t, chain, m[4]);
      } else if ((m = /^(delete|replace) rule (\w+) (\S+) (\S+) handle (\d+)(?: (.+))?$/.exec(l))) {
        const chain = table(m[2], m[3]).chains.get(m[4]);
        const at = chain?.rules.findIndex((r) => r.handle === Number(m![5])) ?? -1;
        if (!chain || at < 0) {
          throw new Refused('Error: Could not process rule: No such file or directory');
        }
        chain.rules.splice(at, 1, ...(m[1] === 'replace' ? [{ handle: chain.rules[at].handle, text: m[6] ?? '' }] : []));
      } else if ((m = /^table (\w+) (\S+) \{$/.exec(l))) {
        const t = addTable(m[1], m[2]);
        for (i++; i < lines.length && lines[i].trim() !== '}'; i++) {
          const block = /^(set|map|chain) (\S+) \{$/.exec(lines[i].trim());
          if (!block) {
            if (lines[i].trim() !== '') {
              throw syntax(lines[i]);
            }
            continue;
          }
          const body: string[] = [];
          for (i++; i < lines.length && lines[i].trim() !== '}'; i++) {
            body.push(lines[i].trim());
          }
          if (block[1] === 'chain') {
            const chain = t.chains.get(block[2]) ?? { handle: ++t.lastHandle, rules: [] };
            t.chains.set(block[2], chain);
            for (const rule of body) {
              if (rule.startsWith('type filter hook ')) {
                chain.hook = rule;
              } else {
                addRule(t, chain, rule);
              }
            }
          } else {
            const type = body.find((b) => b.startsWith('type '));
            const listed = body.map((b) => /^elements = \{ (.*) \}$/.exec(b)).find((e) => e);
            if (!type || body.some((b) => !b.startsWith('type ') && !b.startsWith('elements = ') && b !== 'flags interval' && b !== 'auto-merge')) {
              throw syntax(body.join(' '));
            }
            t.sets.set(block[2], { kind: block[1] as 'set' | 'map', handle: ++t.lastHandle, type: type.slice(5), flags: body.filter((b) => b === 'flags interval' || b === 'auto-merge'), elements: listed ? elements(listed[1]) : [] });
          }
        }
      } else {
        throw syntax(l);
      }
    }
    if (!opts.check) {
      this.nft.clear();
      tables.forEach((t, k) => this.nft.set(k, t));
    }
  }

  /** What `nft -j list` prints of a table or of one set or map (its elements included). */
  private nftJson(what: string, family: string, tableName: string, setName?: string): unknown[] {
    const t = this.nft.get(`${family} ${tableName}`);
    const setJson = (name: string, s: FakeNftSet) => {
      const [key, data] = s.type.split(' : ');
      const types = key.split(' . ');
      const type = { type: types.length > 1 ? types : key, ...(data ? { map: data } : {}) };
      const elem = s.elements.map((e) => nftElementJson(s.type, e));
      return { [s.kind]: { family, name, table: tableName, ...type, handle: s.handle, ...(s.flags.includes('flags interval') ? { flags: ['interval'] } : {}), ...(elem.length ? { elem } : {}) } };
    };
    if (what !== 'table') {
      const s = t?.sets.get(setName ?? '');
      if (!s || s.kind !== what) {
        throw new Refused(`Error: No such file or directory\nlist ${what} ${family} ${tableName} ${setName}`);
      }
      return [setJson(setName!, s)];
    }
    if (!t) {
      throw new Refused(`Error: No such file or directory\nlist table ${family} ${tableName}`);
    }
    return [
      { table: { family, name: tableName, handle: t.handle } },
      ...[...t.sets].map(([name, s]) => setJson(name, s)),
      ...[...t.chains].map(([name, c]) => ({ chain: { family, table: tableName, name, handle: c.handle, ...(c.hook ? { hook: c.hook } : {}) } })),
      ...[...t.chains].flatMap(([name, c]) => c.rules.map((r) => ({ rule: { family, table: tableName, chain: name, handle: r.handle, expr: [{ text: r.text }] } }))),
    ];
  }

  /** `conntrack -L` (the entries of an address in a zone, as conntrack prints them) or `-D` (deletes them). */
  private conntrackListOrDelete(op: 'L' | 'D', zone: number, side: 'src' | 'dst', ip: string): string {
    const entries = this.conntrack.get(zone) ?? [];
    const matching = entries.filter((c) => c[side] === ip);
    if (op === 'D') {
      this.conntrack.set(
        zone,
        entries.filter((c) => !matching.includes(c)),
      );
      if (matching.length === 0) {
        throw new Refused('conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.');
      }
      return '';
    }
    return matching
      .map((c) => {
        const proto = PROTOCOL_NAMES[c.protocol];
        const orig = `src=${c.src} dst=${c.dst} sport=${c.srcPort} dport=${c.dstPort}`;
        const reply = `src=${c.dst} dst=${c.src} sport=${c.dstPort} dport=${c.srcPort}`;
        const state = c.protocol === 6 ? ` ${c.tcpState}` : '';
        return `${proto.padEnd(8)} ${c.protocol} ${c.timeoutSeconds}${state} ${orig}${c.seenReply ? '' : ' [UNREPLIED]'} ${reply}${c.assured ? ' [ASSURED]' : ''} mark=0 zone=${zone} use=1\n`;
      })
      .join('');
  }

  /** `conntrack -R`: one `-I` line each; stops at the first one refused, the ones before it inserted. */
  private conntrackLoad(text: string): void {
    for (const line of text.split('\n').filter((l) => l !== '')) {
      const w = line.split(' ');
      const opt = (key: string) => w[w.indexOf(key) + 1];
      const status = w.includes('-u') ? opt('-u').split(',') : [];
      const c: TrackedConnection = {
        protocol: PROTOCOLS[opt('-p')],
        src: opt('-s'),
        dst: opt('-d'),
        srcPort: Number(opt('--sport')),
        dstPort: Number(opt('--dport')),
        tcpState: w.includes('--state') ? opt('--state') : '',
        timeoutSeconds: Number(opt('-t')),
        seenReply: status.includes('SEEN_REPLY'),
        assured: status.includes('ASSURED'),
      };
      const zone = Number(opt('-w'));
      const entries = this.conntrack.get(zone) ?? [];
      if (w[0] !== '-I' || this.refuseConnection(c) || entries.some((e) => connectionKey(e) === connectionKey(c))) {
        throw new Refused(`conntrack v1.4.7 (conntrack-tools): Operation failed: invalid parameters\n${line}`);
      }
      this.conntrack.set(zone, [...entries, c]);
    }
  }
}

/**
 * One element (as loaded: `"tap1" . 02:00:00:00:00:01`, `10.0.1.0/24`, `"tap1" : jump c`) as
 * `nft -j list` prints it for a set or map of `type` (`ifname . ether_addr`, `ifname : verdict`):
 * interface names unquoted, MACs in lower case, prefixes and ranges as objects, concatenations
 * as `{concat: [...]}`, a map's element as `[key, verdict]`. Addresses are printed as given
 * (nft compresses IPv6 ones), and nothing is merged (nft merges the elements of an `auto-merge` set).
 */
function nftElementJson(type: string, element: string): unknown {
  const [keyType, dataType] = type.split(' : ');
  const value = (t: string, v: string): unknown => {
    if (t === 'ifname') {
      return v.replace(/^"(.*)"$/, '$1');
    }
    if (t === 'ether_addr') {
      return v.toLowerCase();
    }
    if (v.includes('/')) {
      return { prefix: { addr: v.split('/')[0], len: Number(v.split('/')[1]) } };
    }
    return v.includes('-') ? { range: v.split('-') } : v;
  };
  const key = (k: string): unknown => {
    const types = keyType.split(' . ');
    const parts = k.split(' . ');
    return types.length > 1 ? { concat: parts.map((p, i) => value(types[i], p)) } : value(keyType, k);
  };
  if (dataType === 'verdict') {
    const [k, verdict] = element.split(' : ');
    const [name, target] = verdict.split(' ');
    return [key(k), { [name]: target === undefined ? null : { target } }];
  }
  return key(element);
}
