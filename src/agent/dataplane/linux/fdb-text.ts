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

/**
 * `text` in memory of its own. V8 keeps a substring of 13 characters or more as a slice of the
 * string it was cut from: a MAC (17) kept from a listing would keep the whole listing alive (0.8
 * MB at 1,000 taps and 10,000 remote entries) for as long as a pass holds its entries. JSON makes
 * a new string (about 0.2 µs each).
 */
const ownCopy = (text: string): string => JSON.parse(JSON.stringify(text)) as string;

/**
 * One line of `bridge fdb show`, with the fields FdbRecord names (the MAC in lower case), none of
 * them sharing the line's memory (ownCopy); undefined when it does not follow the form. `dsts`:
 * the destinations already seen (a listing names the same few VTEPs thousands of times), each
 * kept once.
 */
export function parseFdbLine(line: string, dsts?: Map<string, string>): FdbRecord | undefined {
  const words = line.trim().split(/\s+/);
  const mac = words[0] ?? '';
  if (!MAC_RE.test(mac)) {
    return undefined;
  }
  const record: FdbRecord = { mac: ownCopy(mac.toLowerCase()) };
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
      let dst = dsts?.get(value);
      if (dst === undefined) {
        dst = ownCopy(value);
        dsts?.set(dst, dst);
      }
      record.dst = dst;
    }
  }
  return record;
}

/**
 * Reads a `bridge fdb show` listing given in pieces in order (`push`, then `end`): each entry to
 * `each` as its line is complete; throws on a line that does not follow the form (see
 * parseFdbLine). Holds only the line not yet complete.
 */
export class FdbTextReader {
  private pending = '';
  private lines = 0;
  /** The destinations seen (see parseFdbLine). */
  private readonly dsts = new Map<string, string>();

  constructor(private readonly each: (record: FdbRecord) => void) {}

  push(text: string): void {
    const body = this.pending + text;
    let start = 0;
    for (let end = body.indexOf('\n'); end >= 0; start = end + 1, end = body.indexOf('\n', start)) {
      this.line(body.slice(start, end));
    }
    this.pending = body.slice(start);
  }

  end(): void {
    if (this.pending !== '') {
      this.line(this.pending);
      this.pending = '';
    }
  }

  private line(line: string): void {
    this.lines++;
    if (line.trim() === '') {
      return;
    }
    const record = parseFdbLine(line, this.dsts);
    if (record === undefined) {
      throw new Error(`bridge fdb show: line ${this.lines} is not a forwarding entry: ${JSON.stringify(line.slice(0, 120))}`);
    }
    this.each(record);
  }
}
