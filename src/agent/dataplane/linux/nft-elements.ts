/**
 * Set and map elements compared by what they mean rather than by how nft prints them, and the
 * element-level change between two versions of a set. The nftables driver uses both to load a
 * change of elements as `delete element` + `add element` (instead of flushing and refilling the
 * set) and to know what the kernel holds afterwards without listing the set again.
 *
 * The kernel does not always list an element as it was added: nft prints IPv6 addresses
 * compressed, MACs in lower case, concatenations and verdicts as JSON objects, and in an
 * interval set of addresses with `auto-merge` it merges overlapping and adjacent elements
 * (10.0.0.1 and 10.0.0.2 list as 10.0.0.1-10.0.0.2). So both the elements we load (our text) and
 * those nft lists (its JSON) are reduced to one canonical form: per element its values
 * (interface names, MACs, address ranges as numbers, the verdict), and for an interval set of
 * plain addresses the addresses it covers (the merged ranges), which is what a lookup in it
 * matches. An element of a form not known here reduces to nothing (undefined): such a set is
 * always rewritten whole and read back. Pure.
 */
import { createHash } from 'node:crypto';
import type { NftSet } from './nft-ruleset';

/** A range of addresses, both ends included. */
interface Range {
  v6: boolean;
  lo: bigint;
  hi: bigint;
}

const OCTET = /^(0|[1-9]\d{0,2})$/;

function parseV4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p) && Number(p) <= 255)) {
    return undefined;
  }
  return BigInt(parts.reduce((n, p) => n * 256 + Number(p), 0));
}

function parseV6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) {
    return undefined;
  }
  const words = (half: string): number[] | undefined => {
    if (half === '') {
      return [];
    }
    const out: number[] = [];
    const groups = half.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = parseV4(g);
        if (v4 === undefined) {
          return undefined;
        }
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        out.push(parseInt(g, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  if (!head || !tail || (halves.length === 2 ? head.length + tail.length > 7 : head.length !== 8)) {
    return undefined;
  }
  const all = [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  return all.reduce((n, w) => (n << 16n) | BigInt(w), 0n);
}

/** An address (`10.0.0.1`, `2001:db8::1`) or a prefix without host bits (`10.0.1.0/24`); undefined for anything else. */
export function addressRange(text: string): Range | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const v6 = addr.includes(':');
  const value = v6 ? parseV6(addr) : parseV4(addr);
  const bits = v6 ? 128 : 32;
  if (value === undefined) {
    return undefined;
  }
  const lenText = slash < 0 ? String(bits) : text.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(lenText) || Number(lenText) > bits) {
    return undefined;
  }
  const host = (1n << BigInt(bits - Number(lenText))) - 1n;
  return (value & host) === 0n ? { v6, lo: value, hi: value | host } : undefined;
}

function printAddress(v6: boolean, value: bigint): string {
  if (!v6) {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  }
  return Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
}

/** A range as nft reads it: an address, a prefix when it is one, else `<first>-<last>`. */
function printRange(r: Range): string {
  if (r.lo === r.hi) {
    return printAddress(r.v6, r.lo);
  }
  const size = r.hi - r.lo + 1n;
  if ((size & (size - 1n)) === 0n && (r.lo & (size - 1n)) === 0n) {
    return `${printAddress(r.v6, r.lo)}/${(r.v6 ? 128 : 32) - (size.toString(2).length - 1)}`;
  }
  return `${printAddress(r.v6, r.lo)}-${printAddress(r.v6, r.hi)}`;
}

const rangeKey = (r: Range): string => `${r.v6 ? '6' : '4'}:${r.lo.toString(16)}-${r.hi.toString(16)}`;

/** The ranges merged where they overlap or touch, in order: the addresses they cover, as auto-merge stores them. */
function merged(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => (a.v6 !== b.v6 ? (a.v6 ? 1 : -1) : a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && last.v6 === r.v6 && r.lo <= last.hi + 1n) {
      last.hi = r.hi > last.hi ? r.hi : last.hi;
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

const ADDRESS_TYPES = new Set(['ipv4_addr', 'ipv6_addr']);
const VALUE_TYPES = new Set([...ADDRESS_TYPES, 'ifname', 'ether_addr']);

/** How a set's elements are read: its key's value types, whether it maps to verdicts, whether it is a set of address ranges that may merge. */
interface Shape {
  types: string[];
  verdicts: boolean;
  /** An interval set of plain addresses: compared by the addresses it covers. */
  covering: boolean;
}

/** The shape of one of our sets (`type ifname . ether_addr`, `type ifname : verdict`); undefined when a type is not known here. */
function shapeOf(set: Pick<NftSet, 'kind' | 'type' | 'interval'>): Shape | undefined {
  const [key, data] = set.type.split(' : ');
  const verdicts = set.kind === 'map';
  if (verdicts ? data !== 'verdict' : data !== undefined) {
    return undefined;
  }
  const types = key.split(' . ');
  if (!types.every((t) => VALUE_TYPES.has(t))) {
    return undefined;
  }
  return { types, verdicts, covering: !verdicts && set.interval === true && types.length === 1 && ADDRESS_TYPES.has(types[0]) };
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const VERDICT = /^(accept|drop|continue|return|(jump|goto) [A-Za-z0-9_.-]+)$/;

function addressOfType(type: string, r: Range | undefined): Range | undefined {
  return r && r.v6 === (type === 'ipv6_addr') ? r : undefined;
}

/** One value of our text (`"tap1"`, `02:00:00:00:00:01`, `10.0.0.0/24`) in canonical form. */
function textValue(type: string, text: string): string | undefined {
  if (type === 'ifname') {
    const m = /^"([^"\\]*)"$/.exec(text);
    return m ? JSON.stringify(m[1]) : undefined;
  }
  if (type === 'ether_addr') {
    const mac = text.toLowerCase();
    return MAC.test(mac) ? mac : undefined;
  }
  const r = addressOfType(type, addressRange(text));
  return r && rangeKey(r);
}

/** One value as nft -j lists it (a string, `{prefix: {addr, len}}`, `{range: [a, b]}`) in canonical form. */
function kernelValue(type: string, value: unknown): string | undefined {
  if (type === 'ifname') {
    return typeof value === 'string' ? JSON.stringify(value) : undefined;
  }
  if (type === 'ether_addr') {
    const mac = typeof value === 'string' ? value.toLowerCase() : '';
    return MAC.test(mac) ? mac : undefined;
  }
  const r = addressOfType(type, kernelRange(value));
  return r && rangeKey(r);
}

function kernelRange(value: unknown): Range | undefined {
  if (typeof value === 'string') {
    return addressRange(value);
  }
  if (typeof value !== 'object' || value === null) {
    return undefined;
  }
  const { prefix, range } = value as { prefix?: { addr?: unknown; len?: unknown }; range?: unknown };
  if (Object.keys(value).length !== 1) {
    return undefined;
  }
  if (prefix && typeof prefix.addr === 'string' && typeof prefix.len === 'number') {
    return addressRange(`${prefix.addr}/${prefix.len}`);
  }
  if (Array.isArray(range) && range.length === 2 && typeof range[0] === 'string' && typeof range[1] === 'string') {
    const [a, b] = [addressRange(range[0]), addressRange(range[1])];
    return a && b && a.v6 === b.v6 && a.lo === a.hi && b.lo === b.hi && a.lo <= b.lo ? { v6: a.v6, lo: a.lo, hi: b.hi } : undefined;
  }
  return undefined;
}

/** A verdict as nft -j lists it (`{jump: {target}}`, `{accept: null}`) as nft text. */
function kernelVerdict(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Object.keys(value).length !== 1) {
    return undefined;
  }
  const [[verdict, arg]] = Object.entries(value);
  const text = verdict === 'jump' || verdict === 'goto' ? `${verdict} ${String((arg as { target?: unknown } | null)?.target)}` : verdict;
  return VERDICT.test(text) ? text : undefined;
}

/** The canonical key of one element of our text; undefined when its form is not known. */
function textKey(shape: Shape, element: string): string | undefined {
  let key = element;
  let verdict = '';
  if (shape.verdicts) {
    const at = element.indexOf(' : ');
    verdict = element.slice(at + 3);
    if (at < 0 || !VERDICT.test(verdict)) {
      return undefined;
    }
    key = element.slice(0, at);
    verdict = ` : ${verdict}`;
  }
  const parts = key.split(' . ');
  if (parts.length !== shape.types.length) {
    return undefined;
  }
  const values = parts.map((p, i) => textValue(shape.types[i], p));
  return values.every((v) => v !== undefined) ? values.join(' . ') + verdict : undefined;
}

/** The canonical key of one element as nft -j lists it; undefined when its form is not known. */
function kernelKey(shape: Shape, element: unknown): string | undefined {
  let key = element;
  let verdict = '';
  if (shape.verdicts) {
    if (!Array.isArray(element) || element.length !== 2) {
      return undefined;
    }
    const v = kernelVerdict(element[1]);
    if (v === undefined) {
      return undefined;
    }
    key = element[0];
    verdict = ` : ${v}`;
  }
  let parts: unknown[] = [key];
  if (shape.types.length > 1) {
    const concat = typeof key === 'object' && key !== null && Object.keys(key).length === 1 ? (key as { concat?: unknown }).concat : undefined;
    if (!Array.isArray(concat)) {
      return undefined;
    }
    parts = concat;
  }
  if (parts.length !== shape.types.length) {
    return undefined;
  }
  const values = parts.map((p, i) => kernelValue(shape.types[i], p));
  return values.every((v) => v !== undefined) ? values.join(' . ') + verdict : undefined;
}

const hash = (keys: string[]): string => `elements ${createHash('sha256').update(keys.join('\n')).digest('hex')}`;

/** The key of a covering set: the merged ranges its elements cover. */
function coverKey(ranges: (Range | undefined)[]): string | undefined {
  return ranges.every((r) => r !== undefined) ? hash(merged(ranges).map(rangeKey)) : undefined;
}

/**
 * What the elements of one of our sets mean, as one comparable string: equal to
 * kernelElementsKey of the set nft lists after loading them. Undefined when an element's form is
 * not known here.
 */
export function textElementsKey(set: Pick<NftSet, 'kind' | 'type' | 'interval' | 'elements'>): string | undefined {
  const shape = shapeOf(set);
  if (!shape) {
    return undefined;
  }
  if (shape.covering) {
    return coverKey(set.elements.map((e) => addressOfType(shape.types[0], addressRange(e))));
  }
  const keys = set.elements.map((e) => textKey(shape, e));
  return keys.every((k) => k !== undefined) ? hash((keys).sort()) : undefined;
}

/**
 * What the elements of a set or map nft -j lists mean (see textElementsKey); undefined when its
 * type or an element's form is not known here (then the caller compares the raw listing).
 */
export function kernelElementsKey(kind: 'set' | 'map', obj: Record<string, unknown>): string | undefined {
  const types = Array.isArray(obj.type) ? (obj.type as unknown[]) : [obj.type];
  if (!types.every((t) => typeof t === 'string' && VALUE_TYPES.has(t))) {
    return undefined;
  }
  if (kind === 'map' ? obj.map !== 'verdict' : obj.map !== undefined) {
    return undefined;
  }
  const interval = Array.isArray(obj.flags) && obj.flags.includes('interval');
  const shape: Shape = { types: types as string[], verdicts: kind === 'map', covering: kind === 'set' && interval && types.length === 1 && ADDRESS_TYPES.has(types[0] as string) };
  const elements: unknown[] = obj.elem === undefined ? [] : Array.isArray(obj.elem) ? obj.elem : [undefined];
  if (shape.covering) {
    return coverKey(elements.map((e) => addressOfType(shape.types[0], kernelRange(e))));
  }
  const keys = elements.map((e) => kernelKey(shape, e));
  return keys.every((k) => k !== undefined) ? hash((keys).sort()) : undefined;
}

/** What to delete from a set (the elements, or for a map the keys) and what to add to it. */
export interface ElementDelta {
  remove: string[];
  add: string[];
}

/**
 * The element-level change from `previous` to `next` (two versions of one set: same kind and
 * type), or undefined when it cannot be loaded safely as `delete element` + `add element`, so
 * that the set is to be flushed and refilled:
 *  - a set or map whose elements nft stores as given (no merging: not interval, or interval
 *    with concatenations as port_ips4/6): the elements that went and came (a map's by key, so
 *    a key whose verdict changed is deleted then added again);
 *  - an interval set of addresses (the groups' sets, `auto-merge`): the kernel holds the merged
 *    ranges of its elements, so the change is computed on those ranges: the ranges that went are
 *    deleted as they are stored, the ones that came added. Only when every such range stands
 *    alone, touching and overlapping no other range of either version: then nft stores an added
 *    range as given (nothing to merge it with) and deletes a gone range exactly (it is one
 *    stored element). Anything else (an element that merges with a neighbour, a prefix that
 *    shrinks) is a rewrite.
 * Undefined also when an element's form is not known here. Both lists are empty when the
 * elements changed but not what the set matches (an address added inside a prefix already there).
 */
export function elementDelta(previous: Pick<NftSet, 'kind' | 'type' | 'interval' | 'elements'>, next: Pick<NftSet, 'kind' | 'type' | 'interval' | 'elements'>): ElementDelta | undefined {
  const shape = shapeOf(next);
  if (!shape || previous.kind !== next.kind || previous.type !== next.type || previous.interval !== next.interval) {
    return undefined;
  }
  if (shape.covering) {
    const ranges = (elements: string[]) => elements.map((e) => addressOfType(shape.types[0], addressRange(e)));
    const [before, after] = [ranges(previous.elements), ranges(next.elements)];
    if (!before.every((r) => r !== undefined) || !after.every((r) => r !== undefined)) {
      return undefined;
    }
    const [was, is] = [merged(before), merged(after)];
    const [wasKeys, isKeys] = [new Set(was.map(rangeKey)), new Set(is.map(rangeKey))];
    const alone = new Set(merged([...was, ...is]).map(rangeKey));
    const gone = was.filter((r) => !isKeys.has(rangeKey(r)));
    const came = is.filter((r) => !wasKeys.has(rangeKey(r)));
    if (![...gone, ...came].every((r) => alone.has(rangeKey(r)))) {
      return undefined;
    }
    return { remove: gone.map(printRange), add: came.map(printRange) };
  }
  if (![...previous.elements, ...next.elements].every((e) => textKey(shape, e) !== undefined)) {
    return undefined;
  }
  const [before, after] = [new Set(previous.elements), new Set(next.elements)];
  const gone = previous.elements.filter((e) => !after.has(e));
  const came = next.elements.filter((e) => !before.has(e));
  const keyOf = (e: string) => (shape.verdicts ? e.slice(0, e.indexOf(' : ')) : e);
  return { remove: gone.map(keyOf), add: came };
}
