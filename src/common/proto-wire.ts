/**
 * The protobuf wire format, written by hand for the hot messages (span resources, Delta,
 * SnapshotChunk). protobufjs's Writer keeps a linked list of operations per message and
 * allocates on every field; these helpers let an encoder compute the size first and write once
 * into one Buffer. Each encoder that uses them is checked against protobufjs' reflective
 * encoding in its spec.
 */

export const WIRE_VARINT = 0;
export const WIRE_LEN = 2;

export const tag = (field: number, wire: number): number => (field << 3) | wire;

export function varintLength(value: number): number {
  let n = 1;
  while (value > 127) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

export function writeVarint(buf: Buffer, pos: number, value: number): number {
  while (value > 127) {
    buf[pos++] = (value % 128) | 128;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/** UTF-8 length; a quick loop for the ASCII strings spans are made of (ids, MACs, IPs). */
export function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      return Buffer.byteLength(s, 'utf8');
    }
  }
  return s.length;
}

export function writeString(buf: Buffer, pos: number, s: string, length: number): number {
  if (length === s.length) {
    for (let i = 0; i < length; i++) {
      buf[pos + i] = s.charCodeAt(i);
    }
  } else {
    buf.write(s, pos, length, 'utf8');
  }
  return pos + length;
}

/**
 * A message of string fields (singular or repeated) and varints, sized first and then written
 * into one Buffer, wrapped as field `outer` of an enclosing message. Proto3: an empty singular
 * string and a zero varint are omitted; an empty element of a repeated string is still written.
 */
export class FlatMessage {
  // Parallel arrays rather than an object per field: this runs for every resource of a snapshot.
  private readonly numbers: number[] = [];
  private readonly values: (string | number | Uint8Array)[] = [];
  private readonly lengths: number[] = [];
  private size = 0;

  string(field: number, s: string): this {
    const length = utf8Length(s);
    if (length > 0) {
      this.push(field, s, length);
    }
    return this;
  }

  strings(field: number, values: readonly string[]): this {
    for (const s of values) {
      this.push(field, s, utf8Length(s));
    }
    return this;
  }

  varint(field: number, value: number): this {
    if (value) {
      this.numbers.push(field);
      this.values.push(value);
      this.lengths.push(0);
      this.size += 1 + varintLength(value);
    }
    return this;
  }

  /** Fields already encoded (tags included), written as they are. */
  raw(bytes: Uint8Array): this {
    if (bytes.length > 0) {
      this.numbers.push(0);
      this.values.push(bytes);
      this.lengths.push(bytes.length);
      this.size += bytes.length;
    }
    return this;
  }

  /** The message's bytes, as field `outer` (length-delimited) of its parent. */
  finishAs(outer: number): Buffer {
    const buf = Buffer.allocUnsafe(1 + varintLength(this.size) + this.size);
    let pos = 0;
    buf[pos++] = tag(outer, WIRE_LEN);
    pos = writeVarint(buf, pos, this.size);
    for (let i = 0; i < this.numbers.length; i++) {
      const value = this.values[i];
      if (typeof value === 'number') {
        buf[pos++] = tag(this.numbers[i], WIRE_VARINT);
        pos = writeVarint(buf, pos, value);
      } else if (typeof value !== 'string') {
        buf.set(value, pos);
        pos += value.length;
      } else {
        buf[pos++] = tag(this.numbers[i], WIRE_LEN);
        pos = writeVarint(buf, pos, this.lengths[i]);
        pos = writeString(buf, pos, value, this.lengths[i]);
      }
    }
    return buf;
  }

  private push(field: number, s: string, length: number): void {
    this.numbers.push(field);
    this.values.push(s);
    this.lengths.push(length);
    this.size += 1 + varintLength(length) + length;
  }
}

/** Size of `repeated bytes/message` entries with field tag < 16. */
export function embeddedSize(parts: Uint8Array[]): number {
  let size = 0;
  for (const p of parts) {
    size += 1 + varintLength(p.length) + p.length;
  }
  return size;
}

export function putEmbedded(buf: Buffer, pos: number, field: number, parts: Uint8Array[]): number {
  for (const p of parts) {
    buf[pos++] = tag(field, WIRE_LEN);
    pos = writeVarint(buf, pos, p.length);
    buf.set(p, pos);
    pos += p.length;
  }
  return pos;
}

export function putString(buf: Buffer, pos: number, field: number, s: string, length: number): number {
  if (length === 0) {
    return pos;
  }
  buf[pos++] = tag(field, WIRE_LEN);
  pos = writeVarint(buf, pos, length);
  return writeString(buf, pos, s, length);
}
