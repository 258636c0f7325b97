import type { CommandRunner } from './command-runner';
import { GATES, holdsGateFilter, type TcFilter } from './tc-gate';

/**
 * The kernel as the Linux dataplane's drivers read it: every read is a JSON listing (`ip -j`,
 * `bridge -j`, `tc -j`, `nft -j`) run through the command runner and parsed here, one reader
 * shared by the drivers. What one observe or apply needs (links, remote entries, the gate) is
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

/** The fields of `ip -j -d link show` the drivers read. */
export interface IpLink {
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

/** The fields of `bridge -j fdb show` the drivers read. */
export interface FdbRecord {
  mac: string;
  ifname?: string;
  dst?: string;
  master?: string;
}

/** The fields of `tc -j qdisc show` the drivers read. */
interface TcQdisc {
  kind?: string;
  dev?: string;
  egress_block?: number;
}

/** What the kernel holds, read in one pass: every link by name, and the remote entries of our VXLAN devices. */
export interface KernelView {
  links: Map<string, IpLink>;
  /** vni -> MAC -> remote VTEPs, for owned VXLAN devices only; the flood list sits under FLOOD_MAC. */
  remotes: Map<number, Map<string, string[]>>;
  /** With the gate: device -> the block its clsact egress is bound to (0: a clsact of someone else). */
  clsact: Map<string, number>;
  /** With the gate: the blocks whose one filter is the gate (see tc-gate.ts). */
  gateFilters: Set<number>;
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

/** Reads the kernel through the command runner. Holds no state; never mutates. */
export class KernelReader {
  constructor(private readonly runner: CommandRunner) {}

  /** Links, our VXLAN devices' remote entries and, when `gated`, the gate: two processes, five when gated, in parallel. */
  async view(gated: boolean): Promise<KernelView> {
    const [linksText, fdb, gates] = await Promise.all([this.runner.run('ip', ['-j', '-d', 'link', 'show']), this.fdb(), this.gates(gated)]);
    const links = new Map(parseJsonArray<IpLink>(linksText, 'ip -j -d link show').map((l) => [l.ifname, l]));
    const remotes = new Map<number, Map<string, string[]>>();
    for (const record of fdb) {
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

  /** Every forwarding entry (`bridge -j fdb show`): remote ones on VXLAN devices, learned ones on bridge ports. */
  async fdb(): Promise<FdbRecord[]> {
    return parseJsonArray<FdbRecord>(await this.runner.run('bridge', ['-j', 'fdb', 'show']), 'bridge -j fdb show');
  }

  /** `nft -j list <what...>` as printed; undefined when nft cannot list it (a table or set that does not exist). */
  async nft(what: string[]): Promise<string | undefined> {
    return this.runner.run('nft', ['-j', 'list', ...what]).catch(() => undefined);
  }

  /**
   * The gate as the kernel holds it (nothing when not gated): which device's clsact egress is
   * bound to which block (`tc -j qdisc show`, every device at once), and which gate blocks hold
   * exactly the gate filter (`tc -j filter show block <n> egress`; a block nobody is bound to
   * does not exist, and reads as without its filter).
   */
  private async gates(gated: boolean): Promise<Pick<KernelView, 'clsact' | 'gateFilters'>> {
    const clsact = new Map<string, number>();
    const gateFilters = new Set<number>();
    if (!gated) {
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
      if (holdsGateFilter(parseJsonArray<TcFilter>(filters[i], `tc -j filter show block ${gate.block} egress`), gate)) {
        gateFilters.add(gate.block);
      }
    });
    return { clsact, gateFilters };
  }
}
