/** The largest slab; a place is its slab's index times this plus the offset in it (a small integer). */
const SLAB_SPAN = 1 << 20;
/** The first slab: a revision of live writes encodes a few resources, a snapshot storm 100,000s. */
const FIRST_SLAB = 16 * 1024;
/** Encodings larger than this are not kept (they would waste most of a slab's end). */
export const MAX_ARENA_ITEM = 64 * 1024;
/** Places stay below 2^31: small integers, kept in the Map without an object of their own. */
const MAX_SLABS = 2 ** 31 / SLAB_SPAN;
/** Each encoding is preceded by its length (4 bytes, little endian). */
const HEADER = 4;

/**
 * Encodings by id, packed into a few large buffers (slabs) instead of one Buffer each: the Map
 * holds a number per id, where a Buffer costs about 200 bytes of V8 heap on top of its bytes (a
 * snapshot storm at 100,000 ports kept 100,000 of them: 20 MB). Slabs grow from 16 KiB to 1 MiB.
 *
 * `get` returns a view into a slab. Nothing is ever written over: `clear` drops the slabs, and a
 * view taken before stays valid (it keeps its slab alive) with the same bytes.
 */
export class EncodingArena {
  private slabs: Buffer[] = [];
  private used = 0;
  private readonly places = new Map<string, number>();
  private reserved = 0;

  /** Bytes of the slabs allocated since the last clear. */
  get bytes(): number {
    return this.reserved;
  }

  get size(): number {
    return this.places.size;
  }

  get(id: string): Buffer | undefined {
    const place = this.places.get(id);
    if (place === undefined) {
      return undefined;
    }
    const slab = this.slabs[Math.floor(place / SLAB_SPAN)];
    const start = place % SLAB_SPAN;
    return slab.subarray(start + HEADER, start + HEADER + slab.readUInt32LE(start));
  }

  /** Keeps a copy of `bytes` for `id` (replacing any); false when it is too large, or the arena full, to keep it. */
  put(id: string, bytes: Uint8Array): boolean {
    const need = HEADER + bytes.length;
    if (bytes.length > MAX_ARENA_ITEM) {
      return false;
    }
    let slab = this.slabs[this.slabs.length - 1];
    if (!slab || this.used + need > slab.length) {
      if (this.slabs.length >= MAX_SLABS) {
        return false;
      }
      const size = slab ? Math.min(SLAB_SPAN, slab.length * 2) : FIRST_SLAB;
      slab = Buffer.allocUnsafeSlow(Math.max(size, need));
      this.slabs.push(slab);
      this.reserved += slab.length;
      this.used = 0;
    }
    slab.writeUInt32LE(bytes.length, this.used);
    slab.set(bytes, this.used + HEADER);
    this.places.set(id, (this.slabs.length - 1) * SLAB_SPAN + this.used);
    this.used += need;
    return true;
  }

  /** Forgets every encoding; the slabs go with the last view into them. */
  clear(): void {
    this.slabs = [];
    this.used = 0;
    this.reserved = 0;
    this.places.clear();
  }
}
