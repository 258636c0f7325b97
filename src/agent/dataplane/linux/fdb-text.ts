import { isIP } from 'node:net';
import type { FdbRecord } from './kernel-view';

/**
 * `bridge fdb show` as text, read line by line (iproute2 6.1's print_fdb): `<mac> [dev <name>]
 * [dst <ip>] [vlan|port|vni|src_vni|via|nhid|link-netnsid|master|used <value>]... [<flag or
 * state>]...`, flags such as `self`, `extern_learn`, `sticky`, the state last (`permanent`,
 * `static`, `stale`, none for a learned entry, `state=0x..` for another). Half the size of `-j`
 * (0.8 against 1.4 MB at 1,000 taps and 10,000 remote entries) and read without an object per
 * entry. Hostile text: a line that does not follow this form makes the whole listing unreadable,
 * as a JSON listing that does not parse does; the entries the drivers act on are never guessed.
 */

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
/** The words print_fdb follows with a value. */
const VALUED = new Set(['dev', 'dst', 'vlan', 'port', 'vni', 'src_vni', 'via', 'nhid', 'link-netnsid', 'master', 'used']);
/** A flag or a state: a word, or `state=0x..`. */
const FLAG_RE = /^[a-z][a-z_-]*(=0x[0-9a-f]+)?$/;

/** One line of `bridge fdb show`, with the fields FdbRecord names (the MAC in lower case); undefined when it does not follow the form. */
export function parseFdbLine(line: string): FdbRecord | undefined {
  const words = line.trim().split(/\s+/);
  const mac = words[0] ?? '';
  if (!MAC_RE.test(mac)) {
    return undefined;
  }
  const record: FdbRecord = { mac: mac.toLowerCase() };
  const seen = new Set<string>();
  for (let i = 1; i < words.length; i++) {
    const word = words[i];
    if (!VALUED.has(word)) {
      if (!FLAG_RE.test(word)) {
        return undefined;
      }
      continue;
    }
    const value = words[++i];
    if (value === undefined || seen.has(word)) {
      return undefined;
    }
    seen.add(word);
    if (word === 'dev') {
      record.ifname = value;
    } else if (word === 'master') {
      record.master = value;
    } else if (word === 'dst') {
      if (isIP(value) === 0) {
        return undefined;
      }
      record.dst = value;
    }
  }
  return record;
}

/** Every entry of a `bridge fdb show` listing that `keep` keeps; throws on a line that does not follow the form (see parseFdbLine). */
export function parseFdbText<U>(text: string, keep: (record: FdbRecord) => U | undefined): U[] {
  const out: U[] = [];
  let start = 0;
  let n = 0;
  while (start < text.length) {
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end < 0 ? text.length : end);
    start = end < 0 ? text.length : end + 1;
    n++;
    if (line.trim() === '') {
      continue;
    }
    const record = parseFdbLine(line);
    if (record === undefined) {
      throw new Error(`bridge fdb show: line ${n} is not a forwarding entry: ${JSON.stringify(line.slice(0, 120))}`);
    }
    const kept = keep(record);
    if (kept !== undefined) {
      out.push(kept);
    }
  }
  return out;
}
