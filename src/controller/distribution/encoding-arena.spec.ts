import { EncodingArena, MAX_ARENA_ITEM } from './encoding-arena';
import { prng } from '../../../test/support/prng';

/** Bytes of a given length, different for each `seed`: the seed's 4 bytes, repeated. */
function bytesOf(length: number, seed: number): Buffer {
  const pattern = Buffer.alloc(4);
  pattern.writeUInt32LE(seed >>> 0);
  return Buffer.alloc(length, pattern);
}

describe('EncodingArena', () => {
  it('returns the bytes kept for each id, across many slabs, and nothing for an id it does not hold', () => {
    const random = prng(7);
    const arena = new EncodingArena();
    const kept = new Map<string, Buffer>();
    let refused = 0;
    // About 6 MB: slabs from 16 KiB up to several of 1 MiB.
    for (let i = 0; i < 30_000; i++) {
      const length = random() < 0.01 ? Math.floor(random() * MAX_ARENA_ITEM) : Math.floor(random() * 400);
      const bytes = bytesOf(length, i);
      refused += arena.put(`id-${i}`, bytes) ? 0 : 1;
      kept.set(`id-${i}`, bytes);
    }
    expect(refused).toBe(0);
    expect(arena.size).toBe(30_000);
    expect(arena.bytes).toBeGreaterThan(5_000_000);
    expect([...kept].filter(([id, bytes]) => !arena.get(id)?.equals(bytes)).map(([id]) => id)).toEqual([]);
    expect(arena.get('id-30000')).toBeUndefined();
  });

  it('holds an empty encoding and one of the largest size', () => {
    const arena = new EncodingArena();
    arena.put('empty', Buffer.alloc(0));
    arena.put('large', bytesOf(MAX_ARENA_ITEM, 3));
    arena.put('small', bytesOf(10, 4));
    expect(arena.get('empty')).toEqual(Buffer.alloc(0));
    expect(arena.get('large')?.equals(bytesOf(MAX_ARENA_ITEM, 3))).toBe(true);
    expect(arena.get('small')?.equals(bytesOf(10, 4))).toBe(true);
  });

  it('keeps no encoding larger than MAX_ARENA_ITEM', () => {
    const arena = new EncodingArena();
    expect(arena.put('huge', bytesOf(MAX_ARENA_ITEM + 1, 1))).toBe(false);
    expect(arena.get('huge')).toBeUndefined();
    expect(arena.bytes).toBe(0);
  });

  it('keeps a copy: changing the bytes given afterwards changes nothing', () => {
    const arena = new EncodingArena();
    const bytes = bytesOf(20, 1);
    arena.put('a', bytes);
    bytes.fill(0);
    expect(arena.get('a')?.equals(bytesOf(20, 1))).toBe(true);
  });

  it('returns the latest bytes put for an id', () => {
    const arena = new EncodingArena();
    arena.put('a', bytesOf(20, 1));
    arena.put('a', bytesOf(30, 2));
    expect(arena.get('a')?.equals(bytesOf(30, 2))).toBe(true);
  });

  it('forgets everything on clear, and a view taken before keeps its bytes while new ones are written', () => {
    const arena = new EncodingArena();
    for (let i = 0; i < 1000; i++) {
      arena.put(`id-${i}`, bytesOf(100, i));
    }
    const before = arena.get('id-5')!;
    arena.clear();
    expect(arena.size).toBe(0);
    expect(arena.bytes).toBe(0);
    expect(arena.get('id-5')).toBeUndefined();
    for (let i = 0; i < 1000; i++) {
      arena.put(`id-${i}`, bytesOf(100, i + 1));
    }
    expect(before.equals(bytesOf(100, 5))).toBe(true);
    expect(arena.get('id-5')?.equals(bytesOf(100, 6))).toBe(true);
  });
});
