import { ChangeLogReader } from './change-log-reader';
import { keysFor } from './keys';
import type { RedisStore } from './redis-store';

/** A store whose change log holds the revisions `kept` (entries `<revision>-<nonce>`, as the scripts write them). */
function readerOver(kept: number[]) {
  const log = kept.map((revision): [string, string[]] => [`${revision}-${4294967296 + revision}`, ['at', String(1000 + revision), 'ops', '[]']]);
  const ranges: string[] = [];
  const redis = {
    xrange: async (_key: string, start: string, end: string) => {
      ranges.push(`${start}..${end}`);
      const [low, high] = [parseInt(start, 10), parseInt(end, 10)];
      return log.filter(([id]) => parseInt(id, 10) >= low && parseInt(id, 10) <= high);
    },
  };
  const store = { keys: keysFor('t'), read: <T>(fn: (r: typeof redis) => Promise<T>) => fn(redis) } as unknown as RedisStore;
  return { reader: new ChangeLogReader(store), ranges };
}

describe('change-log reader', () => {
  it('reads the records after `from` up to `to`, in order', async () => {
    const { reader } = readerOver([1, 2, 3, 4, 5]);
    expect((await reader.read(2, 4))!.map((r) => [r.revision, r.at])).toEqual([
      [3, 1003],
      [4, 1004],
    ]);
  });

  it('reads nothing, without asking Redis, for an empty range', async () => {
    const { reader, ranges } = readerOver([1, 2]);
    expect(await reader.read(2, 2)).toEqual([]);
    expect(ranges).toEqual([]);
  });

  it('answers undefined when the log was trimmed past the range', async () => {
    const { reader } = readerOver([4, 5, 6]);
    expect(await reader.read(2, 6)).toBeUndefined();
    expect(await reader.read(3, 6)).toHaveLength(3);
  });

  it('reads through a head that moves on while the log is read', async () => {
    const { reader, ranges } = readerOver([1, 2, 3, 4, 5, 6]);
    const heads = [4, 6, 6];
    const records = await reader.readThrough(1, () => heads.shift() ?? 6);
    expect(records!.map((r) => r.revision)).toEqual([2, 3, 4, 5, 6]);
    expect(ranges).toEqual(['2-0..4-18446744073709551615', '5-0..6-18446744073709551615']);
  });

  it('answers undefined through a head whose records the log no longer holds', async () => {
    const { reader } = readerOver([1, 2, 3]);
    const heads = [3, 5, 5];
    expect(await reader.readThrough(1, () => heads.shift() ?? 5)).toBeUndefined();
  });
});
