/**
 * nftables objects as data, and the one printer that turns them into `nft -f` text. The firewall
 * renderer (nftables.ts) builds an NftRuleset; the nftables driver loads its text and reads the
 * structure for everything else (which tables to read back, which sets a set update rewrites).
 * Pure.
 */

/** A table by family and name (`bridge overlay`). */
export interface NftTableRef {
  family: string;
  name: string;
}

/** A named set (`set`) or verdict map (`map`), with its elements as nft prints them. */
export interface NftSet {
  kind: 'set' | 'map';
  name: string;
  type: string;
  /** `flags interval`: elements may be prefixes and ranges. */
  interval?: boolean;
  /** `auto-merge`: overlapping elements are merged instead of refused. */
  autoMerge?: boolean;
  elements: string[];
}

/** A base chain's hook: always `type filter` with `policy accept`. */
export interface NftHook {
  hook: 'prerouting' | 'postrouting';
  /** A number, or a standard priority name (`raw`, `filter`). */
  priority: number | 'raw' | 'filter';
}

export interface NftChain {
  name: string;
  /** Absent: a regular chain, entered only by a jump or a verdict map. */
  hook?: NftHook;
  /** The rules, one nft statement each, in order. */
  rules: string[];
}

export interface NftTable extends NftTableRef {
  sets: NftSet[];
  chains: NftChain[];
}

/**
 * A whole ruleset for one `nft -f -` transaction: the tables in `replaces` are added then deleted
 * (so the load works whether or not they exist, and leaves nothing stale), then `tables` are
 * defined.
 */
export interface NftRuleset {
  replaces: NftTableRef[];
  tables: NftTable[];
}

/** One set or map whose elements a set update changes: `set` as it is to be, `previous` as it was. */
export interface NftSetRewrite {
  table: NftTableRef;
  set: NftSet;
  previous: NftSet;
}

/**
 * How a set update changes one set: `delta` given, only those elements (delete the gone ones,
 * a map's by key, then add the new ones; see elementDelta in nft-elements.ts); otherwise the set
 * is flushed and refilled with all its elements.
 */
export interface NftSetChange {
  table: NftTableRef;
  set: Pick<NftSet, 'kind' | 'name' | 'elements'>;
  delta?: { remove: string[]; add: string[] };
}

function printSet(set: NftSet): string[] {
  return [
    `\t${set.kind} ${set.name} {`,
    `\t\ttype ${set.type}`,
    ...(set.interval ? ['\t\tflags interval'] : []),
    ...(set.autoMerge ? ['\t\tauto-merge'] : []),
    ...(set.elements.length ? [`\t\telements = { ${set.elements.join(', ')} }`] : []),
    '\t}',
  ];
}

function printChain(chain: NftChain): string[] {
  const hook = chain.hook ? [`type filter hook ${chain.hook.hook} priority ${chain.hook.priority}; policy accept;`] : [];
  return [`\tchain ${chain.name} {`, ...[...hook, ...chain.rules].map((rule) => `\t\t${rule}`), '\t}'];
}

/** The `nft -f` text of a ruleset: sets and maps before chains in each table, blocks separated by a blank line. */
export function printRuleset(ruleset: NftRuleset): string {
  const lines = ruleset.replaces.flatMap((t) => [`table ${t.family} ${t.name}`, `delete table ${t.family} ${t.name}`]);
  for (const table of ruleset.tables) {
    const blocks = [...table.sets.map(printSet), ...table.chains.map(printChain)];
    lines.push(`table ${table.family} ${table.name} {`, ...blocks.flatMap((block, i) => (i === 0 ? block : ['', ...block])), '}');
  }
  return [...lines, ''].join('\n');
}

/**
 * The ruleset `text` prints, when it is the printer's output (the one checked by printing it
 * again); undefined for any other text. Reads the text the Dataplane contract carries today
 * back into the structure it was printed from.
 */
export function parseRuleset(text: string): NftRuleset | undefined {
  const lines = text.split('\n');
  const ruleset: NftRuleset = { replaces: [], tables: [] };
  let i = 0;
  for (let add: RegExpExecArray | null; (add = /^table (\S+) (\S+)$/.exec(lines[i] ?? '')) && lines[i + 1] === `delete table ${add[1]} ${add[2]}`; i += 2) {
    ruleset.replaces.push({ family: add[1], name: add[2] });
  }
  for (let head: RegExpExecArray | null; (head = /^table (\S+) (\S+) \{$/.exec(lines[i] ?? '')); i++) {
    const table: NftTable = { family: head[1], name: head[2], sets: [], chains: [] };
    ruleset.tables.push(table);
    for (i++; lines[i] !== undefined && lines[i] !== '}'; i++) {
      const block = /^\t(set|map|chain) (\S+) \{$/.exec(lines[i]);
      if (!block) {
        continue; // the blank line between blocks; anything else fails the check below
      }
      const body: string[] = [];
      for (i++; lines[i] !== undefined && lines[i] !== '\t}'; i++) {
        body.push(lines[i].replace(/^\t\t/, ''));
      }
      if (block[1] === 'chain') {
        const hook = /^type filter hook (prerouting|postrouting) priority (-?\d+|raw|filter); policy accept;$/.exec(body[0] ?? '');
        const priority = hook?.[2] === 'raw' || hook?.[2] === 'filter' ? hook[2] : Number(hook?.[2]);
        table.chains.push({ name: block[2], ...(hook ? { hook: { hook: hook[1] as NftHook['hook'], priority } } : {}), rules: hook ? body.slice(1) : body });
      } else {
        const elements = /^elements = \{ (.*) \}$/.exec(body.at(-1) ?? '');
        table.sets.push({
          kind: block[1] as NftSet['kind'],
          name: block[2],
          type: (body[0] ?? '').replace(/^type /, ''),
          ...(body.includes('flags interval') ? { interval: true } : {}),
          ...(body.includes('auto-merge') ? { autoMerge: true } : {}),
          elements: elements ? elements[1].split(', ') : [],
        });
      }
    }
  }
  return printRuleset(ruleset) === text ? ruleset : undefined;
}

/** The ruleset with every set's elements left out: what a set update cannot change. */
const skeleton = (ruleset: NftRuleset): string => JSON.stringify({ ...ruleset, tables: ruleset.tables.map((t) => ({ ...t, sets: t.sets.map((s) => ({ ...s, elements: [] })) })) });

/**
 * When `next` differs from `previous` only in the elements of sets and maps, the sets and maps
 * whose elements differ (in `next`'s order); otherwise undefined (load `next` whole), also when
 * nothing differs. Pure.
 */
export function setUpdate(previous: NftRuleset, next: NftRuleset): NftSetRewrite[] | undefined {
  if (skeleton(previous) !== skeleton(next)) {
    return undefined;
  }
  const rewrites = next.tables.flatMap((table, t) =>
    table.sets.flatMap((set, s) => {
      const before = previous.tables[t].sets[s];
      return set.elements.join('\n') !== before.elements.join('\n') ? [{ table: { family: table.family, name: table.name }, set, previous: before }] : [];
    }),
  );
  return rewrites.length ? rewrites : undefined;
}

/**
 * The `nft -f` text of a set update, all in one transaction: per set, `flush set|map` then
 * `add element` (all of them), or with a delta `delete element` (the gone ones) then
 * `add element` (the new ones). Empty when no set has anything to change.
 */
export function printSetUpdate(changes: NftSetChange[]): string {
  const lines = changes.flatMap(({ table, set, delta }) => {
    const where = `${table.family} ${table.name} ${set.name}`;
    const element = (verb: string, items: string[]) => (items.length ? [`${verb} element ${where} { ${items.join(', ')} }`] : []);
    return delta ? [...element('delete', delta.remove), ...element('add', delta.add)] : [`flush ${set.kind} ${where}`, ...element('add', set.elements)];
  });
  return lines.length ? lines.join('\n') + '\n' : '';
}
