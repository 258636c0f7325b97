import { isIP } from 'node:net';
import type { MirrorDirection, MirrorMatch } from '../dataplane';

/**
 * The classic-BPF programs of mirror filters (`tc ... bpf bytecode "<n>,<code jt jf k>,..."`,
 * not direct-action: they return -1 to match, so the filter's action runs, and 0 otherwise).
 * Pure. cls_bpf pushes the MAC header back at ingress, so in both directions offsets count from
 * the Ethernet header (frames of VM taps are untagged): ethertype at 12; IPv4 protocol at 23,
 * source at 26, destination at 30; IPv6 next header at 20 (the first one: a protocol behind
 * extension headers does not match), source at 22, destination at 38.
 *
 * `ifindex` (for filters in the taps' shared egress block) first checks the device the frame
 * leaves by (SKF_AD_IFINDEX), so one block holds the filters of every tap.
 */

/** One instruction: `code jt jf k`, as tc's bytecode string spells it. */
type Insn = [code: number, jt: number, jf: number, k: number];

const LD_W_ABS = 0x20;
const LD_H_ABS = 0x28;
const LD_B_ABS = 0x30;
const JEQ_K = 0x15;
const AND_K = 0x54;
const RET_K = 0x06;
/** SKF_AD_OFF + SKF_AD_IFINDEX: loads the ifindex of the device the frame is on. */
const LD_IFINDEX = 0xfffff008;
/** What a non-direct-action cls_bpf program returns to match (the filter's own class: its actions run). */
const MATCH = 0xffffffff;

const ETHERTYPE = { IPv4: 0x0800, IPv6: 0x86dd } as const;

/** The 32-bit words of an address and the mask of each for a prefix length (only words the prefix reaches). */
function prefixWords(cidr: string): { offset: number; value: number; mask: number }[] {
  const [ip, len] = cidr.split('/');
  const family = isIP(ip);
  if (family === 0) {
    throw new Error(`${JSON.stringify(cidr)} is not a prefix`);
  }
  const bytes = family === 4 ? ip.split('.').map(Number) : ipv6Bytes(ip);
  const bits = len === undefined ? bytes.length * 8 : Number(len);
  if (!Number.isInteger(bits) || bits < 0 || bits > bytes.length * 8) {
    throw new Error(`${JSON.stringify(cidr)} is not a prefix`);
  }
  const words: { offset: number; value: number; mask: number }[] = [];
  for (let w = 0; w * 32 < bits; w++) {
    const wordBits = Math.min(32, bits - w * 32);
    const mask = wordBits === 32 ? 0xffffffff : (0xffffffff << (32 - wordBits)) >>> 0;
    const word = ((bytes[w * 4] << 24) | (bytes[w * 4 + 1] << 16) | (bytes[w * 4 + 2] << 8) | bytes[w * 4 + 3]) >>> 0;
    words.push({ offset: w * 4, value: (word & mask) >>> 0, mask });
  }
  return words;
}

function ipv6Bytes(ip: string): number[] {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  let parts = groups(head);
  let rest = groups(tail);
  // An embedded IPv4 tail (::ffff:10.0.0.1) is two groups.
  const v4 = (list: string[]) => {
    const last = list.at(-1);
    if (last?.includes('.')) {
      const b = last.split('.').map(Number);
      list.splice(-1, 1, ((b[0] << 8) | b[1]).toString(16), ((b[2] << 8) | b[3]).toString(16));
    }
    return list;
  };
  if (tail === undefined) {
    parts = v4(parts);
  } else {
    rest = v4(rest);
  }
  const all = tail === undefined ? parts : [...parts, ...Array<string>(8 - parts.length - rest.length).fill('0'), ...rest];
  return all.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

/**
 * The program of a mirror filter: [the device check], then the match's checks in order, each
 * jumping to the final `ret #0` when it fails; `ret #-1` when all passed. `direction` picks the
 * remote address: the destination of what the VM sends (egress), the source of what it
 * receives (ingress). Throws on a malformed match.
 */
export function mirrorProgram(match: MirrorMatch, direction: MirrorDirection, ifindex?: number): string {
  /** Checks, each `[load, and-mask?, equals]`: fails to the reject. */
  const checks: { load: Insn; mask?: number; equals: number }[] = [];
  if (ifindex !== undefined) {
    if (!Number.isInteger(ifindex) || ifindex < 1 || ifindex > 0x7fffffff) {
      throw new Error(`ifindex ${ifindex} out of range`);
    }
    checks.push({ load: [LD_W_ABS, 0, 0, LD_IFINDEX], equals: ifindex });
  }
  if (match.ethertype !== '') {
    const v6 = match.ethertype === 'IPv6';
    checks.push({ load: [LD_H_ABS, 0, 0, 12], equals: ETHERTYPE[match.ethertype] });
    if (match.protocol) {
      if (!Number.isInteger(match.protocol) || match.protocol < 0 || match.protocol > 255) {
        throw new Error(`protocol ${match.protocol} out of range`);
      }
      checks.push({ load: [LD_B_ABS, 0, 0, v6 ? 20 : 23], equals: match.protocol });
    }
    if (match.remoteCidr) {
      if (isIP(match.remoteCidr.split('/')[0]) !== (v6 ? 6 : 4)) {
        throw new Error(`${JSON.stringify(match.remoteCidr)} is not an ${match.ethertype} prefix`);
      }
      const base = v6 ? (direction === 'egress' ? 38 : 22) : direction === 'egress' ? 30 : 26;
      for (const word of prefixWords(match.remoteCidr)) {
        checks.push({ load: [LD_W_ABS, 0, 0, base + word.offset], mask: word.mask === 0xffffffff ? undefined : word.mask, equals: word.value });
      }
    }
  } else if (match.protocol || match.remoteCidr) {
    throw new Error('a protocol or remote CIDR needs an ethertype');
  }
  const insns: Insn[] = [];
  const jumps: number[] = [];
  for (const check of checks) {
    insns.push(check.load);
    if (check.mask !== undefined) {
      insns.push([AND_K, 0, 0, check.mask]);
    }
    jumps.push(insns.length);
    insns.push([JEQ_K, 0, 0, check.equals]);
  }
  insns.push([RET_K, 0, 0, MATCH]);
  const reject = insns.length;
  insns.push([RET_K, 0, 0, 0]);
  for (const at of jumps) {
    // jf counts from the next instruction; a short program never needs more than 8 bits.
    insns[at][2] = reject - at - 1;
  }
  return `${insns.length},${insns.map((i) => i.join(' ')).join(',')}`;
}

/** Matches every frame (a sink's redirect filter). */
export const MATCH_ALL_PROGRAM = `1,${RET_K} 0 0 ${MATCH}`;
/** Direct action: drops every frame (TC_ACT_SHOT), on an analyzer tap's ingress. */
export const DROP_ALL_PROGRAM = `1,${RET_K} 0 0 2`;

/** The ifindex a program checks (see mirrorProgram), from its instructions as `tc -j` lists them; undefined when it checks none. */
export function programIfindex(insns: { code: number; jt: number; jf: number; k: number }[] | undefined): number | undefined {
  const [first, second] = insns ?? [];
  return first?.code === LD_W_ABS && first.k === LD_IFINDEX && second?.code === JEQ_K ? second.k : undefined;
}
