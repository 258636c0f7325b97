import { Command } from 'ioredis';

/** What a mutation script is given: strings, numbers (sent as their decimal text) and Buffers. */
export type ScriptArg = string | number | Buffer;

const CR = 13;
const LF = 10;
const ZERO = 48;
const ARRAY_MARK = 0x2a; // '*'
const BULK_MARK = 0x24; // '$'

function digitCount(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

/** Writes `<mark><n>\r\n` at `at` (n >= 0): a RESP header, without making a string of it. */
function writeHeader(wire: Buffer, at: number, mark: number, n: number): number {
  wire[at++] = mark;
  const digits = digitCount(n);
  for (let i = at + digits - 1; i >= at; i--) {
    wire[i] = ZERO + (n % 10);
    n = Math.floor(n / 10);
  }
  at += digits;
  wire[at++] = CR;
  wire[at++] = LF;
  return at;
}

/** Bulk strings in RESP, as one Buffer: `count` of them, to follow a command's name and first argument. */
export interface EncodedArgs {
  readonly count: number;
  readonly bytes: Buffer;
}

/**
 * `lists`, joined, as RESP bulk strings (`$<bytes>\r\n<bytes>\r\n` each) in one Buffer: strings as
 * UTF-8 and numbers as their decimal text, as ioredis sends them. The lists are read here and
 * not kept.
 */
export function encodeArgs(...lists: readonly (readonly ScriptArg[])[]): EncodedArgs {
  const count = lists.reduce((n, list) => n + list.length, 0);
  // Each value's byte count, found once (a batch's are 9,000): in a typed array, outside V8's heap when large.
  const lengths = new Int32Array(count);
  let total = 0;
  let i = 0;
  for (const list of lists) {
    for (const arg of list) {
      const n = typeof arg === 'string' ? Buffer.byteLength(arg) : typeof arg === 'number' ? Buffer.byteLength(String(arg)) : arg.length;
      lengths[i++] = n;
      total += 1 + digitCount(n) + 2 + n + 2;
    }
  }
  const bytes = Buffer.allocUnsafe(total);
  let at = 0;
  i = 0;
  for (const list of lists) {
    for (const arg of list) {
      at = writeHeader(bytes, at, BULK_MARK, lengths[i++]);
      at += typeof arg === 'string' ? bytes.write(arg, at, 'utf8') : typeof arg === 'number' ? bytes.write(String(arg), at, 'latin1') : arg.copy(bytes, at);
      bytes[at++] = CR;
      bytes[at++] = LF;
    }
  }
  return { count, bytes };
}

/**
 * A command of a name, a first argument and arguments already encoded (`encodeArgs`), for the
 * mutation scripts: EVALSHA <sha> and, when Redis lacks the script, EVAL <source> with the same
 * bytes after it. Its wire form is one Buffer, made as it is created.
 *
 * ioredis makes a command's wire form by concatenating a string per argument: for a batch of
 * 1,000 ports (9,000 arguments) 27,000 string pieces, the whole then flattened, then copied again
 * as UTF-8 as the socket wrote it, about 2.4 kB of V8 heap per port. And it keeps the arguments
 * until the reply, so a batch's 9,000 strings were still live at every young-generation collection
 * while Redis ran its script, copied each time, then promoted (docs/benchmarks.md). Here the bytes
 * are outside V8's heap, and the command's own arguments are only the first (what the command
 * metrics and error reports name).
 */
export class EncodedCommand extends Command {
  private readonly wire: Buffer;

  constructor(name: string, first: string, rest: EncodedArgs, options?: ConstructorParameters<typeof Command>[2]) {
    super(name, [first], options);
    const head = encodeArgs([name, first]);
    const wire = Buffer.allocUnsafe(1 + digitCount(rest.count + 2) + 2 + head.bytes.length + rest.bytes.length);
    let at = writeHeader(wire, 0, ARRAY_MARK, rest.count + 2);
    at += head.bytes.copy(wire, at);
    rest.bytes.copy(wire, at);
    this.wire = wire;
  }

  override toWritable(): Buffer {
    return this.wire;
  }
}
