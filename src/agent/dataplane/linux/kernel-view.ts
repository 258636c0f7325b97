import { fdbKey, fdbKeyParts, type FdbEntry, type HostKernelState } from '../dataplane';
import type { HostLink } from '../taps';
import { CommandError, type CommandRunner } from './command-runner';
import { FdbTextReader } from './fdb-text';
import { GATES, holdsGateFilter, TAP_GATE_BLOCK, type TcFilter } from './tc-gate';

/**
 * The kernel as the Linux dataplane's drivers read it: every read is a listing run through the
 * command runner and parsed here (JSON from `ip -j`, `tc -j`, `nft -j`; the forwarding entries as
 * text, fdb-text.ts), one reader shared by the drivers. What one observe or apply needs (links, remote entries, the gate) is
 * read in one pass, the KernelView. Also the ownership rule of links: which ones are the agent's.
 */

/** Every link the agent creates carries this alias (IFLA_IFALIAS): the proof that it is ours. */
export const OWNER_ALIAS = 'overlay-agent';
/** The IANA VXLAN port. */
export const VXLAN_PORT = 4789;
/** The all-zero MAC: the vxlan driver's default destinations, i.e. the head-end replication list. */
export const FLOOD_MAC = '00:00:00:00:00:00';
export const VNI_MAX = 16_777_215;
const OWNED_NAME_RE = /^(vx|br)([1-9][0-9]{0,7})$/;
/** The names of every device the agent makes (names.ts): VXLAN devices, bridges, mirror devices. None of them is a VM's tap. */
const AGENT_DEVICE_RE = /^(vx|br|mx|ms)[0-9]+$/;
/** A name a tap may have (and a batch line or an nft string may carry): see common/tap-name.ts. */
const LINK_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Whether a device may be a VM's tap: any but the agent's own (its name alone decides: an adopted tap may be named anything else). */
export const mayBeTap = (name: string): boolean => !AGENT_DEVICE_RE.test(name);

/** The fields of `ip -j -d link show` the drivers read. */
export interface IpLink {
  ifindex?: number;
  ifname: string;
  flags?: string[];
  master?: string;
  ifalias?: string;
  /** Its MAC (`link/ether`). */
  address?: string;
  /** The promiscuity count: one per promiscuous user (a bridge the link is a port of, `ip link set promisc on`, a capture). */
  promiscuity?: number;
  linkinfo?: {
    info_kind?: string;
    /** A VXLAN device's (id, port, learning), or a GRE/ERSPAN one's (okey a dotted quad; erspan_hwid hex text), as iproute2 prints them. */
    info_data?: {
      id?: number;
      local?: string;
      local6?: string;
      remote?: string;
      remote6?: string;
      port?: number;
      learning?: boolean;
      okey?: string;
      oseq?: boolean;
      erspan_ver?: number;
      erspan_index?: number;
      erspan_dir?: string;
      erspan_hwid?: string;
      /** A bridge's MAC ageing time, in centiseconds as iproute2 6.1 prints it (the kernel's clock_t). */
      ageing_time?: number;
    };
    info_slave_kind?: string;
    info_slave_data?: { learning?: boolean };
  };
}

/** The fields of a forwarding entry (`bridge fdb show`) the drivers read. */
export interface FdbRecord {
  mac: string;
  ifname?: string;
  dst?: string;
  master?: string;
}

/** The fields of `tc -j qdisc show clsact` the drivers read. */
interface TcQdisc {
  kind?: string;
  dev?: string;
  egress_block?: number;
}

/** What the kernel holds, read in one pass: every link by name, and the remote entries of our VXLAN devices. */
export interface KernelView {
  links: Map<string, IpLink>;
  /** vni -> MAC -> remote VTEPs, for owned VXLAN devices only, by VNI ascending; the flood list sits under FLOOD_MAC. */
  remotes: Map<number, Map<string, readonly string[]>>;
  /** Device -> the block its clsact egress is bound to (0: a clsact without a shared block). */
  clsact: Map<string, number>;
  /** The gate blocks holding the gate filter at pref 1 (see tc-gate.ts). */
  gateFilters: Set<number>;
  /** The filters of the taps' gate block (the gate and the mirror filters of what VMs receive). */
  tapBlockFilters: TcFilter[];
  /** The ingress filters of every tap and mirror device with a clsact (mirror filters, analyzer drops, sink redirects). */
  ingressFilters: Map<string, TcFilter[]>;
}

/** The entry of `mac` on `vni` to the destinations `vteps` (several joined, sorted: that cannot be desired, so the plan replaces them). */
const remoteEntry = (vni: number, mac: string, vteps: readonly string[]): FdbEntry => ({ vni, mac, vtep: vteps.length === 1 ? vteps[0] : [...vteps].sort().join(',') });

/**
 * The remote forwarding entries of a kernel view (KernelView.remotes, the flood lists left out)
 * as DataplaneState.fdb holds them, read in place: each entry is made when it is asked for, and
 * not kept. A Map of them would hold, through each pass, 10,000 keys and entries more at 10,000
 * remote entries (1.5 MB beside the view's own).
 */
export class RemoteFdb implements ReadonlyMap<string, FdbEntry> {
  readonly size: number;

  constructor(private readonly remotes: ReadonlyMap<number, ReadonlyMap<string, readonly string[]>>) {
    let size = 0;
    for (const byMac of remotes.values()) {
      size += byMac.size - (byMac.has(FLOOD_MAC) ? 1 : 0);
    }
    this.size = size;
  }

  get(key: string): FdbEntry | undefined {
    const parts = fdbKeyParts(key);
    if (!parts || parts.mac === FLOOD_MAC) {
      return undefined;
    }
    const vteps = this.remotes.get(parts.vni)?.get(parts.mac);
    return vteps && remoteEntry(parts.vni, parts.mac, vteps);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  *entries(): IterableIterator<[string, FdbEntry]> {
    for (const [vni, byMac] of this.remotes) {
      for (const [mac, vteps] of byMac) {
        if (mac !== FLOOD_MAC) {
          yield [fdbKey(vni, mac), remoteEntry(vni, mac, vteps)];
        }
      }
    }
  }

  *keys(): IterableIterator<string> {
    for (const [key] of this.entries()) {
      yield key;
    }
  }

  *values(): IterableIterator<FdbEntry> {
    for (const [, entry] of this.entries()) {
      yield entry;
    }
  }

  [Symbol.iterator](): IterableIterator<[string, FdbEntry]> {
    return this.entries();
  }

  forEach(callback: (entry: FdbEntry, key: string, map: ReadonlyMap<string, FdbEntry>) => void, thisArg?: unknown): void {
    for (const [key, entry] of this.entries()) {
      callback.call(thisArg, entry, key, this);
    }
  }
}

export const isUp = (link: IpLink): boolean => link.flags?.includes('UP') ?? false;

/** The VNI of an overlay link: named vx<vni>/br<vni>, of the right kind, and carrying our alias. */
export function ownedVni(link: IpLink | undefined): number | undefined {
  const m = link ? OWNED_NAME_RE.exec(link.ifname) : null;
  if (!link || !m || link.ifalias !== OWNER_ALIAS) {
    return undefined;
  }
  const kind = m[1] === 'vx' ? 'vxlan' : 'bridge';
  const vni = Number(m[2]);
  return link.linkinfo?.info_kind === kind && vni <= VNI_MAX ? vni : undefined;
}

export const vxlanLocal = (link: IpLink): string | undefined => link.linkinfo?.info_data?.local ?? link.linkinfo?.info_data?.local6;

/** Whether `dev`'s egress is bound to the gate block `block`, and that block holds the gate filter. */
export const gateHolds = (view: KernelView, dev: string, block: number): boolean => view.clsact.get(dev) === block && view.gateFilters.has(block);

/** What a view shows of the host's taps and the agent's bridges (see HostKernelState); a link without the numbers is left out. */
export function hostKernelState(view: Pick<KernelView, 'links'>): HostKernelState {
  const state: HostKernelState = { taps: new Map(), bridgeAgeing: new Map() };
  for (const link of view.links.values()) {
    if (mayBeTap(link.ifname) && typeof link.promiscuity === 'number') {
      state.taps.set(link.ifname, { promiscuity: link.promiscuity, bridged: link.linkinfo?.info_slave_kind === 'bridge' });
    }
    const ageing = link.linkinfo?.info_data?.ageing_time;
    const vni = link.ifname.startsWith('br') ? ownedVni(link) : undefined;
    if (vni !== undefined && typeof ageing === 'number') {
      state.bridgeAgeing.set(vni, Math.floor(ageing / 100));
    }
  }
  return state;
}

/** The fields of `ip -j addr show` the tap resolver reads. */
interface IpAddrLink {
  ifname?: unknown;
  addr_info?: { family?: unknown; scope?: unknown }[];
}

/**
 * The host's links as the tap resolver reads them (taps.ts), from `ip -j -d link show` (hostile
 * text: a link whose name could not be a tap is left out, a MAC that is not one reads as none),
 * with `addressed` the links that carry an IP address, when read.
 */
export function hostLinks(links: ReadonlyMap<string, IpLink>, addressed?: ReadonlySet<string>): Map<string, HostLink> {
  const out = new Map<string, HostLink>();
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  for (const link of links.values()) {
    const name = text(link.ifname);
    if (!LINK_NAME_RE.test(name)) {
      continue;
    }
    const mac = text(link.address).toLowerCase();
    const master = text(link.master);
    out.set(name, {
      name,
      mac: MAC_RE.test(mac) ? mac : '',
      kind: text(link.linkinfo?.info_kind),
      master,
      masterIsOverlay: master !== '' && ownedVni(links.get(master)) !== undefined && master.startsWith('br'),
      owned: !mayBeTap(name),
      ...(addressed ? { addressed: addressed.has(name) } : {}),
    });
  }
  return out;
}

/** The links that carry an IP address, IPv6 link-local aside, from `ip -j addr show`. */
export function addressedLinks(text: string): Set<string> {
  const out = new Set<string>();
  for (const link of parseJsonArray<IpAddrLink>(text, 'ip -j addr show')) {
    const infos = Array.isArray(link.addr_info) ? link.addr_info : [];
    if (typeof link.ifname === 'string' && infos.some((a) => !(a.family === 'inet6' && a.scope === 'link'))) {
      out.add(link.ifname);
    }
  }
  return out;
}

const pick = <T extends object, K extends keyof T>(from: T, keys: readonly K[]): Pick<T, K> => {
  const out = {} as Pick<T, K>;
  for (const key of keys) {
    if (from[key] !== undefined) {
      out[key] = from[key];
    }
  }
  return out;
};

type LinkInfo = NonNullable<IpLink['linkinfo']>;
type LinkInfoData = NonNullable<LinkInfo['info_data']>;
const LINK_FIELDS = ['ifindex', 'ifname', 'flags', 'master', 'ifalias', 'address', 'promiscuity'] as const satisfies readonly (keyof IpLink)[];
const INFO_DATA_FIELDS = ['id', 'local', 'local6', 'remote', 'remote6', 'port', 'learning', 'okey', 'oseq', 'erspan_ver', 'erspan_index', 'erspan_dir', 'erspan_hwid', 'ageing_time'] as const satisfies readonly (keyof LinkInfoData)[];
const isObject = (v: unknown): v is object => typeof v === 'object' && v !== null;

/**
 * A link of `ip -j -d link show` with only the fields IpLink names, values as printed: the
 * details of a bridge port (forty-odd `info_slave_data` fields per tap), statistics and the rest
 * are dropped, so that what the drivers keep between passes (the last observe's links) is small.
 */
export function slimLink(raw: IpLink): IpLink {
  const link = pick(raw, LINK_FIELDS) as IpLink;
  const info = raw.linkinfo;
  if (isObject(info)) {
    const slim: LinkInfo = pick(info, ['info_kind', 'info_slave_kind']);
    if (isObject(info.info_data)) {
      slim.info_data = pick(info.info_data, INFO_DATA_FIELDS);
    }
    if (isObject(info.info_slave_data)) {
      slim.info_slave_data = pick(info.info_slave_data, ['learning']);
    }
    link.linkinfo = slim;
  }
  return link;
}

/** The links of an `ip -j -d link show` output by name, slimmed (slimLink) one by one as parsed (see mapJsonArray). */
export function linksByName(text: string): Map<string, IpLink> {
  return new Map(mapJsonArray<IpLink, IpLink>(text, 'ip -j -d link show', 'ifindex', slimLink).map((l) => [l.ifname, l]));
}

/**
 * `map` of each element of a JSON array of objects (an iproute2 `-j` listing whose elements each
 * begin with the key `first`, or an nft `-j` listing's array whose elements each begin with one
 * of the keys `first` lists), the elements parsed one at a time (ArrayCutter), so that what `map`
 * does not keep dies young: parsed whole, the 3 MB a pass reads are 6-7 MB of objects, all
 * promoted out of the young generation. When a piece does not parse alone (see ArrayCutter), or
 * the text is not an array of such elements, the array is parsed whole instead, so the result is
 * JSON.parse's whatever the text. `map` may see an element twice: when it keeps anything aside,
 * `restart` (called before the elements are given again) drops it. Undefined from `map` drops the
 * element.
 */
export function mapJsonArray<T, U>(text: string, what: string, first: string | readonly string[], map: (element: T) => U | undefined, restart?: () => void): U[] {
  const out: U[] = [];
  try {
    const cutter = new ArrayCutter(typeof first === 'string' ? [first] : first, (piece) => {
      const mapped = map(parseElement<T>(piece));
      if (mapped !== undefined) {
        out.push(mapped);
      }
    });
    cutter.push(text);
    cutter.end();
    return out;
  } catch {
    out.length = 0;
    restart?.();
  }
  for (const element of parseJsonArray<T>(text, what)) {
    if (!isObject(element) || Array.isArray(element)) {
      throw new Error(`${what}: expected a JSON array of objects`);
    }
    const mapped = map(element);
    if (mapped !== undefined) {
      out.push(mapped);
    }
  }
  return out;
}

/** One element's text (a piece ArrayCutter cut), parsed; throws when it is not a JSON object. */
function parseElement<T>(piece: string): T {
  const element: unknown = JSON.parse(piece);
  if (!isObject(element) || Array.isArray(element)) {
    throw new Error('not an object');
  }
  return element as T;
}

/** A key an element may begin with (see ArrayCutter): a word, so that it needs no escaping in a pattern. */
const ELEMENT_KEY_RE = /^[a-z_]+$/;

/**
 * Cuts the text of a JSON array of objects, given in pieces in order (`push`, then `end`), into
 * the texts of its elements as each is complete, to `element`: where `},{"<key>":` or
 * `}, {"<key>":` stands for one of `keys` (as iproute2 and nft print their listings). Inside a
 * JSON string a `"` is escaped, so that text is a boundary between two elements or lies in a
 * nested array, and a cut there leaves pieces that do not parse alone: the caller then parses
 * the listing whole. Throws when the text is not an array whose first element begins with one of
 * `keys`. Holds only the text of the element not yet complete.
 */
export class ArrayCutter {
  private pending = '';
  /** Where the next search for a boundary starts in `pending` (none can begin before). */
  private from = 0;
  private started = false;
  private readonly boundary: RegExp;
  private readonly openings: string[];
  /** The longest boundary, less one character: a boundary not complete at the end of `pending` begins within this many characters of it. */
  private readonly reach: number;

  constructor(
    keys: readonly string[],
    private readonly element: (text: string) => void,
  ) {
    if (keys.length === 0 || !keys.every((k) => ELEMENT_KEY_RE.test(k))) {
      throw new Error(`element keys must be words: ${JSON.stringify(keys)}`);
    }
    this.boundary = new RegExp(`\\}, ?(?=\\{"(?:${keys.join('|')})":)`, 'g');
    this.openings = keys.map((k) => `[{"${k}":`);
    this.reach = Math.max(...keys.map((k) => k.length)) + 7;
  }

  push(text: string): void {
    let body = this.pending + text;
    if (!this.started) {
      body = body.trimStart();
      if (!this.openings.some((o) => body.startsWith(o))) {
        if (this.openings.some((o) => o.startsWith(body))) {
          this.pending = body; // the opening is not all here yet
          return;
        }
        throw new Error('not an array of the elements expected');
      }
      this.started = true;
      body = body.slice(1);
    }
    let start = 0;
    this.boundary.lastIndex = this.from;
    for (let m = this.boundary.exec(body); m !== null; m = this.boundary.exec(body)) {
      this.element(body.slice(start, m.index + 1));
      start = m.index + m[0].length;
    }
    this.pending = body.slice(start);
    this.from = Math.max(0, this.pending.length - this.reach);
  }

  end(): void {
    const body = this.pending.trimEnd();
    if (!this.started || !body.endsWith('}]')) {
      throw new Error('not an array of the elements expected');
    }
    this.pending = '';
    this.element(body.slice(0, -1));
  }
}

export function parseJsonArray<T>(text: string, what: string): T[] {
  if (text.trim() === '') {
    return [];
  }
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed)) {
    throw new Error(`${what}: expected a JSON array`);
  }
  return parsed as T[];
}

const LINKS_ARGS = ['-j', '-d', 'link', 'show'];

/** Reads the kernel through the command runner. Holds no state; never mutates. */
export class KernelReader {
  constructor(private readonly runner: CommandRunner) {}

  /**
   * Every link (`ip -j -d link show`), by name, with only the fields IpLink names (see slimLink),
   * each slimmed as its text is read (ArrayCutter); a listing that cannot be cut so is read again
   * and parsed whole (linksByName).
   */
  async links(): Promise<Map<string, IpLink>> {
    const links = new Map<string, IpLink>();
    const cutter = new ArrayCutter(['ifindex'], (piece) => {
      const link = slimLink(parseElement<IpLink>(piece));
      links.set(link.ifname, link);
    });
    try {
      await this.read('ip', LINKS_ARGS, (piece) => cutter.push(piece));
      cutter.end();
      return links;
    } catch (err) {
      if (err instanceof CommandError) {
        throw err;
      }
      return linksByName(await this.runner.run('ip', LINKS_ARGS));
    }
  }

  /**
   * Runs a listing and gives its output to `each` in pieces (CommandRunner.runInPieces: at 1,000
   * taps and 10,000 entries the links' JSON is 1.6 MB, the entries' text 0.8 MB, which then never
   * exist whole), or whole from a runner that cannot.
   */
  private async read(cmd: string, args: string[], each: (piece: string) => void): Promise<void> {
    if (this.runner.runInPieces) {
      return this.runner.runInPieces(cmd, args, each);
    }
    each(await this.runner.run(cmd, args));
  }

  /** The links that carry an IP address (see addressedLinks). */
  async addressed(): Promise<Set<string>> {
    return addressedLinks(await this.runner.run('ip', ['-j', 'addr', 'show']));
  }

  /**
   * Links, our VXLAN devices' remote entries, the clsact qdiscs, then (when there are any) the
   * filters of the gate blocks and the ingress of taps and mirror devices: three processes in
   * parallel, then one `tc -batch`. Without the gate (`gated` false) a host may lack `tc`: its
   * qdiscs then read as none (nor can mirrors be put there). The links and the entries are read
   * in pieces (see read), parsed element by element or line by line, and only what is used is
   * kept: the links slimmed (slimLink), of the forwarding entries the remote ones alone, of the
   * qdiscs the clsact ones.
   */
  async view(gated: boolean): Promise<KernelView> {
    // `clsact`: only the qdiscs at the ingress/clsact parent (0.1 against 0.3 MB for every qdisc).
    const qdiscRead = this.runner.run('tc', ['-j', 'qdisc', 'show', 'clsact']);
    const [links, byDevice, qdiscs] = await Promise.all([this.links(), this.remoteEntries(), gated ? qdiscRead : qdiscRead.catch(() => '[]')]);
    const owned = [...byDevice].flatMap(([ifname, byMac]) => {
      const vni = ownedVni(links.get(ifname));
      return vni !== undefined && ifname.startsWith('vx') ? [[vni, byMac] as const] : [];
    });
    const remotes = new Map(owned.sort(([a], [b]) => a - b));
    return { links, remotes, ...(await this.tc(qdiscs)) };
  }

  /** Every forwarding entry (see fdbEntries): remote ones on VXLAN devices, learned ones on bridge ports. */
  async fdb(): Promise<FdbRecord[]> {
    return this.fdbEntries((): FdbRecord[] => [], (all, r) => all.push(r));
  }

  /**
   * The remote entries of devices among every forwarding entry (see fdb), by device then MAC,
   * each destination once: the VXLAN driver's own (`self`, with a dst); bridge entries name a
   * master. Gathered as the listing is read, with no record kept per entry; the entries of one
   * destination share one array (never changed: a second destination makes a new one), not an
   * array each (0.5 MB at 10,000 entries).
   */
  private remoteEntries(): Promise<Map<string, Map<string, readonly string[]>>> {
    const only = new Map<string, readonly string[]>();
    return this.fdbEntries(
      () => new Map<string, Map<string, readonly string[]>>(),
      (byDevice, r) => {
        if (!r.ifname || !r.dst || r.master) {
          return;
        }
        const byMac = byDevice.get(r.ifname) ?? new Map<string, readonly string[]>();
        byDevice.set(r.ifname, byMac);
        const dsts = byMac.get(r.mac);
        if (!dsts) {
          let one = only.get(r.dst);
          if (!one) {
            one = [r.dst];
            only.set(r.dst, one);
          }
          byMac.set(r.mac, one);
        } else if (!dsts.includes(r.dst)) {
          byMac.set(r.mac, [...dsts, r.dst]);
        }
      },
    );
  }

  /**
   * The forwarding entries (MACs in lower case) gathered by `add` into what `start` makes, from
   * `bridge fdb show` as text (fdb-text.ts). A listing the text parser does not know (a word
   * another iproute2 prints, on any entry, the agent's or not) is read again as JSON
   * (`bridge -j fdb show`) into a new start, so that it costs one more read, not every pass of
   * the agent; only when neither can be read does the read fail.
   */
  private async fdbEntries<A>(start: () => A, add: (into: A, record: FdbRecord) => void): Promise<A> {
    try {
      const into = start();
      const reader = new FdbTextReader((r) => add(into, r));
      await this.read('bridge', ['fdb', 'show'], (piece) => reader.push(piece));
      reader.end();
      return into;
    } catch (err) {
      if (err instanceof CommandError) {
        throw err;
      }
      const records = mapJsonArray<FdbRecord, FdbRecord>(await this.runner.run('bridge', ['-j', 'fdb', 'show']), 'bridge -j fdb show', 'mac', (r) => {
        if (typeof r.mac !== 'string') {
          throw new Error('bridge -j fdb show: an entry without a MAC');
        }
        return { ...r, mac: r.mac.toLowerCase() };
      });
      const into = start();
      records.forEach((r) => add(into, r));
      return into;
    }
  }

  /** `nft -j list <what...>` as printed; undefined when nft cannot list it (a table or set that does not exist). */
  async nft(what: string[]): Promise<string | undefined> {
    return this.runner.run('nft', ['-j', 'list', ...what]).catch(() => undefined);
  }

  /**
   * The tc state: which device's clsact egress is bound to which block (`tc -j qdisc show clsact`,
   * every device at once), the filters of the gate blocks in use (`filter show block <n> egress`; a
   * block nobody is bound to does not exist) and the ingress filters of taps and mirror devices
   * with a clsact, all listed by one `tc -j -s -batch -` (one JSON array a line). Should a device
   * vanish in between and fail the batch, each listing is read alone, a failed one as empty.
   */
  private async tc(qdiscs: string): Promise<Pick<KernelView, 'clsact' | 'gateFilters' | 'tapBlockFilters' | 'ingressFilters'>> {
    const clsact = new Map<string, number>();
    for (const q of mapJsonArray<TcQdisc, TcQdisc>(qdiscs, 'tc -j qdisc show clsact', 'kind', (q) => (q.kind === 'clsact' && q.dev ? pick(q, ['dev', 'egress_block']) : undefined))) {
      clsact.set(q.dev!, q.egress_block ?? 0);
    }
    const bound = new Set(clsact.values());
    const gates = GATES.filter((g) => bound.has(g.block));
    // Taps (whatever their name) and mirror VXLAN devices; never the agent's other devices.
    const devs = [...clsact.keys()].filter((d) => (mayBeTap(d) || d.startsWith('mx')) && LINK_NAME_RE.test(d)).sort();
    const lines = [...gates.map((g) => `filter show block ${g.block} egress`), ...devs.map((d) => `filter show dev ${d} ingress`)];
    const listings = await this.listings(lines);
    const gateFilters = new Set<number>();
    let tapBlockFilters: TcFilter[] = [];
    gates.forEach((gate, i) => {
      if (holdsGateFilter(listings[i], gate)) {
        gateFilters.add(gate.block);
      }
      if (gate.block === TAP_GATE_BLOCK) {
        tapBlockFilters = listings[i];
      }
    });
    const ingressFilters = new Map(devs.map((d, i) => [d, listings[gates.length + i]]));
    return { clsact, gateFilters, tapBlockFilters, ingressFilters };
  }

  private async listings(lines: string[]): Promise<TcFilter[][]> {
    if (lines.length === 0) {
      return [];
    }
    const parse = (text: string, line: string) => parseJsonArray<TcFilter>(text, `tc -j -s ${line}`);
    const out = await this.runner.run('tc', ['-j', '-s', '-batch', '-'], lines.join('\n') + '\n').catch(() => undefined);
    const arrays = out?.split('\n').filter((l) => l.trim() !== '');
    if (arrays?.length === lines.length) {
      return arrays.map((text, i) => parse(text, lines[i]));
    }
    return Promise.all(lines.map((line) => this.runner.run('tc', ['-j', '-s', ...line.split(' ')]).then((text) => parse(text, line), () => [])));
  }
}
