import { APPLY_SECONDS_BUCKETS } from '../../../common/metrics';
import { createHash, type Hash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Counter, Histogram } from 'prom-client';
import type { FirewallRuleset } from '../dataplane';
import type { CommandRunner } from './command-runner';
import type { Logger } from '../../../common/logger';
import { mapJsonArray, type KernelReader } from './kernel-view';
import { elementDelta, kernelElementsKey, textElementsKey } from './nft-elements';
import { parseRuleset, printSetUpdate, setUpdate, type NftRuleset, type NftSet, type NftSetChange, type NftSetRewrite } from './nft-ruleset';
import type { ConntrackMode } from './nftables';

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
 * The nftables driver: loads the firewall (a FirewallRuleset from renderFirewall) and knows
 * which one is in force. Owns the agent's nftables tables (`bridge overlay`, `inet overlay`) and, in
 * br_netfilter mode, the bridge-nf-call sysctls of its namespace. Invariant: `loadedFirewall` is
 * the ruleset the kernel held right after the last load that succeeded, `loadedFingerprint` what
 * it read back then; undefined when that is not known (never loaded, or found drifted and not
 * loaded again). A text the printer did not print (no structure) is loaded whole every time it
 * changes, and nothing of it is read back.
 */
export class NftablesDriver {
  /** The firewall's conntrack mode, once chosen (see use). */
  private conntrack?: ConntrackMode;
  /** The firewall last loaded successfully, and its structure when the text is the printer's; undefined = unknown. */
  private loadedFirewall?: { firewall: FirewallRuleset; ruleset?: NftRuleset };
  /** What the kernel held right after that load (see firewallFingerprint); undefined = unknown: the next apply loads whole. */
  private loadedFingerprint?: Fingerprint;
  /** `nft -f -` runs (the instruments belong to no registry: the agent's metrics register them). */
  readonly loadSeconds = new Histogram<'load' | 'result'>({
    name: 'overlay_agent_nft_load_seconds',
    help: 'Firewall loads (one nft -f - transaction), by load (whole: the tables replaced; sets: sets flushed and refilled; elements: set elements deleted and added, sets flushed and refilled beside them) and result (ok, failed)',
    labelNames: ['load', 'result'],
    buckets: APPLY_SECONDS_BUCKETS,
    registers: [],
  });
  readonly driftRepairs = new Counter({
    name: 'overlay_agent_firewall_drift_repairs_total',
    help: "Firewall reloads because the kernel's tables no longer held what was loaded (a rule or element changed, a table deleted)",
    registers: [],
  });

  constructor(
    private readonly runner: CommandRunner,
    private readonly kernel: KernelReader,
    private readonly logger: Logger,
    private readonly sysctls: Sysctls,
  ) {}

  /**
   * The conntrack mode for `setting`, checking that `nft` runs. `auto` probes with `nft -c`
   * (checks, never loads) a bridge table using `ct state`: accepted -> `bridge`; refused ->
   * `br_netfilter` if that module is loaded (its /proc/sys/net/bridge files exist). Throws,
   * saying why, when no mode can work here. Never mutates.
   */
  async chooseMode(setting: ConntrackSetting): Promise<ConntrackMode> {
    await this.runner.run('nft', ['--version']).catch((err: unknown) => {
      throw new Error(`nft (nftables) does not run: ${(err as Error).message}`);
    });
    if (setting !== 'auto') {
      return setting;
    }
    const native = await this.runner.run('nft', ['-c', '-f', '-'], BRIDGE_CONNTRACK_PROBE).then(
      () => true,
      () => false,
    );
    if (!native && this.sysctls.read(BR_NETFILTER_SYSCTLS[0]) === undefined) {
      throw new Error('the kernel has no bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE) and br_netfilter is not loaded: `modprobe br_netfilter`, or set OVERLAY_FIREWALL=0');
    }
    return native ? 'bridge' : 'br_netfilter';
  }

  /** Uses `mode` from now on, readying the kernel for it (br_netfilter's sysctls). Throws when it cannot. Idempotent. */
  use(mode: ConntrackMode): void {
    this.conntrack = mode;
    if (mode === 'br_netfilter') {
      this.ensureBrNetfilter();
    }
  }

  /**
   * Loads the firewall text in one `nft -f -` transaction (the text replaces its own tables).
   * When the text differs from the one last loaded only in set and map elements (a port joined
   * or left a group, a port came, went or changed addresses with the rules of another port), it
   * loads just those sets' changes instead (setUpdate, still one transaction): chains, rules and
   * their handles stay as they are. A set is changed element by element when that is exact
   * (updateSets: the gone elements deleted, the new ones added), else flushed and refilled.
   *
   * Drift repair without reloading: after each load it reads the tables back once
   * (`nft -j list table`, the elements included) and keeps a fingerprint of them (rule handles
   * and expressions, chains, sets, what their elements mean). Given the same text as last time
   * (the agent's periodic reconcile), it reads the tables again and reloads the whole text only
   * when the fingerprint differs (a rule inserted or deleted by hand, a table deleted, an element
   * removed or added...): an unchanged kernel costs one read. After a set update only the sets
   * it flushed and refilled are read again; those it changed element by element are not read:
   * their fingerprint is what their new elements mean (the rest of the fingerprint stays as
   * read after the last whole load, so drift there is found by the next check). In br_netfilter mode it first turns
   * br_netfilter's switches back on if someone turned them off (without them bridged frames have no conntrack: replies would be dropped).
   * Idempotent.
   */
  async apply(firewall: FirewallRuleset): Promise<void> {
    if (this.conntrack === 'br_netfilter') {
      this.ensureBrNetfilter();
    }
    const text = firewall.text;
    // The renderer's structure when it gave one (no parse of the text it printed: 1.6 MB and ~10 ms at 1,000 ports).
    const ruleset = firewall.ruleset ?? parseRuleset(text);
    const previous = this.loadedFirewall;
    const known = this.loadedFingerprint;
    let drifted = false;
    if (previous?.firewall.text === text && known) {
      const drift = fingerprintDrift(known, await this.firewallFingerprint(ruleset));
      if (!drift) {
        this.loadedFirewall = { firewall, ruleset: previous.ruleset }; // the same text: its tap digests describe what is in force
        return;
      }
      drifted = true;
      this.driftRepairs.inc();
      this.logger.warn(`firewall drift (${drift}): reloading the whole table`);
    }
    const rewrites = previous?.ruleset && ruleset && known ? setUpdate(previous.ruleset, ruleset) : undefined;
    this.loadedFirewall = undefined;
    this.loadedFingerprint = undefined;
    try {
      if (rewrites && known) {
        this.loadedFingerprint = await this.updateSets(known, rewrites);
      } else {
        await this.load('whole', text);
        this.loadedFingerprint = await this.firewallFingerprint(ruleset);
      }
    } catch (err) {
      // A load is one transaction: a failed one left the kernel as it was, which is still what
      // was loaded before, unless that had drifted (then nothing known is in force).
      if (!drifted) {
        this.loadedFirewall = previous;
        this.loadedFingerprint = known;
      }
      throw err;
    }
    this.loadedFirewall = { firewall, ruleset };
  }

  /**
   * Loads a set update and returns the fingerprint after it. Each set whose elements the kernel
   * held exactly as last loaded (its `elements` in `known` is what its previous version means,
   * see textElementsKey) and whose change elementDelta can express changes by its elements alone:
   * `delete element` + `add element`, and its fingerprint is then what its new version means,
   * with no read. The other sets are flushed and refilled, and read back. All in one
   * transaction; when that fails (an element to delete is not there, one to add clashes: the
   * kernel was changed by hand), every set is flushed and refilled instead and read back, in a
   * second transaction. Throws when that fails too (the kernel then is as it was).
   */
  private async updateSets(known: Fingerprint, rewrites: NftSetRewrite[]): Promise<Fingerprint | undefined> {
    const changes: NftSetChange[] = rewrites.map((r) => ({ ...r, delta: this.deltaOf(known, r) }));
    if (changes.some((c) => c.delta)) {
      const update = printSetUpdate(changes);
      try {
        if (update) {
          await this.load('elements', update);
        }
      } catch (err) {
        this.logger.warn(`firewall element update failed (${(err as Error).message.split('\n')[0]}): rewriting the sets whole`);
        await this.load('sets', printSetUpdate(rewrites));
        return this.refreshSets(known, rewrites);
      }
      const fp: Fingerprint = new Map(known);
      rewrites.forEach(({ table, set }, i) => changes[i].delta && fp.set(`elements ${table.family} ${set.name}`, elementsKeyOf(set)!));
      return this.refreshSets(fp, changes.filter((c) => !c.delta));
    }
    await this.load('sets', printSetUpdate(rewrites));
    return this.refreshSets(known, rewrites);
  }

  /** The element delta of one set of a set update, when it is safe (see updateSets); undefined: flush and refill it. */
  private deltaOf(known: Fingerprint, { table, set, previous }: NftSetRewrite): NftSetChange['delta'] {
    const was = elementsKeyOf(previous);
    if (was === undefined || known.get(`elements ${table.family} ${set.name}`) !== was || elementsKeyOf(set) === undefined) {
      return undefined;
    }
    return elementDelta(previous, set);
  }

  /** Runs one `nft -f -` transaction, timed by `load` and result. */
  private async load(load: 'whole' | 'sets' | 'elements', text: string): Promise<void> {
    const start = performance.now();
    try {
      await this.runner.run('nft', ['-f', '-'], text);
      this.loadSeconds.observe({ load, result: 'ok' }, (performance.now() - start) / 1000);
    } catch (err) {
      this.loadSeconds.observe({ load, result: 'failed' }, (performance.now() - start) / 1000);
      throw err;
    }
  }

  /**
   * The firewall in force as far as this driver knows: the last one loaded (a failed
   * load leaves the one before), or undefined when none was loaded or the tables were found
   * changed behind its back and could not be loaded again.
   */
  inForce(): FirewallRuleset | undefined {
    return this.loadedFirewall?.firewall;
  }

  /**
   * Reads the tables `ruleset` defines (`nft -j list table <family> <name>`, one after the other,
   * each reduced before the next is read: at 1,000 ports a listing is megabytes) and reduces them
   * to a fingerprint. A table that cannot be listed (deleted) reads as `missing`; undefined when
   * an output is not what nft prints. Never mutates.
   */
  private async firewallFingerprint(ruleset: NftRuleset | undefined): Promise<Fingerprint | undefined> {
    const fp: Fingerprint = new Map();
    for (const { family, name } of ruleset?.tables ?? []) {
      const text = await this.kernel.nft(['table', family, name]);
      if (text === undefined) {
        fp.set(`table ${family} ${name}`, 'missing');
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
  private async refreshSets(known: Fingerprint, rewrites: Pick<NftSetChange, 'table' | 'set'>[]): Promise<Fingerprint | undefined> {
    const listed = await Promise.all(rewrites.map(({ table, set }) => this.kernel.nft([set.kind, table.family, table.name, set.name])));
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
}

/**
 * The firewall tables as the kernel lists them, reduced to comparable parts: `table <family> <name>`,
 * `chain <family> <name>`, `rules <family> <chain>` (each rule with its handle and expressions,
 * in order), `set <family> <name>` (without elements), each mapped to a JSON string (a digest
 * when long), and `elements <family> <set>`: what the elements mean (kernelElementsKey: the same
 * string as textElementsKey of the elements loaded, so a set update can compute it without
 * reading), or `raw <digest>` of the sorted elements as listed when their form is not known.
 */
type Fingerprint = Map<string, string>;

/** textElementsKey of a set of a parsed ruleset, computed once per set (a set update needs it for the version before and after). */
const elementsKeys = new WeakMap<NftSet, string | undefined>();
function elementsKeyOf(set: NftSet): string | undefined {
  if (!elementsKeys.has(set)) {
    elementsKeys.set(set, textElementsKey(set));
  }
  return elementsKeys.get(set);
}

const digest = (text: string): string => (text.length > 64 ? createHash('sha256').update(text).digest('hex') : text);

/**
 * The objects a listing of the agent's tables holds (the elements of its `nftables` array begin
 * with one of these), where mapJsonArray cuts it. Named counters, quotas and limits are left out:
 * those names are also statements inside a rule, where a cut would make the listing be parsed
 * whole (as one holding such an object is: its result is the same).
 */
const NFT_OBJECTS = ['metainfo', 'table', 'chain', 'rule', 'set', 'map'];

/**
 * Adds the objects of one `nft -j list` output to `fp`; false when the output is not what nft
 * prints. The objects are parsed one at a time (mapJsonArray) and each reduced at once: a
 * chain's rules go into one digest as they come (nft lists them in order, chain by chain), so
 * that neither the whole listing parsed (tens of thousands of objects at 1,000 ports) nor the
 * text of every rule is held at once.
 */
function addToFingerprint(fp: Fingerprint, json: string): boolean {
  const body = json.trim();
  const head = /^\{\s*"nftables"\s*:\s*/.exec(body);
  if (!head || !body.endsWith('}')) {
    return false;
  }
  // This listing's part, apart until it is whole: a listing parsed whole after a cut that did
  // not parse gives its objects again (see mapJsonArray), and starts over.
  let listed: Fingerprint = new Map();
  let rules = new RuleDigests(listed);
  try {
    mapJsonArray<Record<string, unknown>, undefined>(
      body.slice(head[0].length, -1),
      'nft -j list',
      NFT_OBJECTS,
      (item) => {
        for (const [kind, obj] of Object.entries(item)) {
          if (kind !== 'metainfo') {
            addObject(listed, rules, kind, obj);
          }
        }
        return undefined;
      },
      () => {
        listed = new Map();
        rules = new RuleDigests(listed);
      },
    );
  } catch {
    return false;
  }
  rules.end();
  for (const [key, value] of listed) {
    fp.set(key, value);
  }
  return true;
}

/** One object of a listing (see Fingerprint) into `fp`, a rule into its chain's digest; throws when it is not an object. */
function addObject(fp: Fingerprint, rules: RuleDigests, kind: string, value: unknown): void {
  if (typeof value !== 'object' || value === null) {
    throw new Error(`nft -j list: ${kind} is not an object`);
  }
  const obj = value as Record<string, unknown>;
  const family = String(obj.family);
  if (kind === 'rule') {
    rules.add(`rules ${family} ${String(obj.chain)}`, JSON.stringify(obj));
  } else if (kind === 'set' || kind === 'map') {
    const { elem, ...rest } = obj;
    fp.set(`set ${family} ${String(obj.name)}`, JSON.stringify(rest));
    const raw = (): string => `raw ${digest((Array.isArray(elem) ? elem.map((e) => JSON.stringify(e)).sort() : []).join('\n'))}`;
    fp.set(`elements ${family} ${String(obj.name)}`, kernelElementsKey(kind, obj) ?? raw());
  } else {
    fp.set(`${kind} ${family} ${String(obj.name)}`, JSON.stringify(obj));
  }
}

/**
 * The rules of each chain of a listing, in order, as one digest per chain (`rules <family>
 * <chain>`), taken as they come: the rules of one chain follow each other, so one hash is open
 * at a time. Should a chain's rules come in two runs (not as nft lists them), the second
 * run's digest is chained to the first's: still a function of the rules and their order.
 */
class RuleDigests {
  private key?: string;
  private hash?: Hash;

  constructor(private readonly fp: Fingerprint) {}

  add(key: string, rule: string): void {
    if (key !== this.key) {
      this.end();
      this.key = key;
      this.hash = createHash('sha256');
      const before = this.fp.get(key);
      if (before !== undefined) {
        this.hash.update(`${before}\n`);
      }
    } else {
      this.hash!.update('\n');
    }
    this.hash!.update(rule);
  }

  /** Puts the open chain's digest in the fingerprint. */
  end(): void {
    if (this.key !== undefined) {
      this.fp.set(this.key, this.hash!.digest('hex'));
      this.key = undefined;
      this.hash = undefined;
    }
  }
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

