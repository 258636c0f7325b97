import type { MirrorTapCounters__Output } from '../../generated/overlay/v1/MirrorTapCounters';
import type { MaterializedView } from '../store/materialized-view';
import { MAX_MIRROR_COUNTER_ENTRIES, MIRROR_COUNTERS_WRITE_MS, MirrorCountersIntake, readMirrorCounters } from './mirror-counters.intake';
import type { MirrorCountersRepository, MirrorTapCounters } from './mirror-counters.repository';

const entry = (id: string, fields: Partial<MirrorTapCounters__Output> = {}): MirrorTapCounters__Output => ({ id, packets: 3, bytes: 300, error: '', ...fields });
const inSpan = (id: string) => id.startsWith('s1/');
const read = (entries: MirrorTapCounters__Output[]) => readMirrorCounters({ entries }, inSpan, 42);

describe('reading an agent’s mirror counters', () => {
  it('keeps the taps of the host’s span, stamped, and ignores the others', () => {
    const result = read([entry('s1/p1'), entry('s2/p9'), entry('s1/p2', { packets: 0, bytes: 0, error: 'no such\ndevice' })]);
    expect(result).toEqual({
      entries: new Map([
        ['s1/p1', { packets: 3, bytes: 300, error: '', at: 42 }],
        ['s1/p2', { packets: 0, bytes: 0, error: 'no such device', at: 42 }],
      ]),
    });
  });

  it('bounds an error’s text', () => {
    const result = read([entry('s1/p1', { error: 'x'.repeat(100_000) })]);
    expect('entries' in result && result.entries.get('s1/p1')!.error.length).toBeLessThan(600);
  });

  it.each([
    ['too many entries', Array.from({ length: MAX_MIRROR_COUNTER_ENTRIES + 1 }, (_, i) => entry(`s1/p${i}`)), /at most 4096/],
    ['an id that is no tap id', [entry('s1')], /not a mirror tap id/],
    ['an id with two slashes', [entry('s1/p/x')], /not a mirror tap id/],
    ['an overlong id', [entry(`s1/${'p'.repeat(300)}`)], /not a mirror tap id/],
    ['a tap twice', [entry('s1/p1'), entry('s1/p1')], /twice/],
    ['a count past 2^53', [entry('s1/p1', { bytes: 2 ** 64 })], /bytes is not a count/],
    ['a negative count', [entry('s1/p1', { packets: -1 })], /packets is not a count/],
    ['a count that is not a number', [entry('s1/p1', { packets: Number.NaN })], /packets is not a count/],
  ])('refuses %s', (_name, entries, reason) => {
    const result = read(entries);
    expect('violation' in result && result.violation).toMatch(reason);
  });

  it('accepts 4096 entries, those of other spans included', () => {
    const result = read(Array.from({ length: MAX_MIRROR_COUNTER_ENTRIES }, (_, i) => entry(`s${i % 2 ? 1 : 2}/p${i}`)));
    expect('entries' in result && result.entries.size).toBe(MAX_MIRROR_COUNTER_ENTRIES / 2);
  });
});

describe('the mirror counters intake', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function intake(hosts: string[] = ['h1', 'h2']) {
    const writes: { hostId: string; ids: string[] }[] = [];
    const repository = { write: async (hostId: string, entries: ReadonlyMap<string, MirrorTapCounters>) => void writes.push({ hostId, ids: [...entries.keys()] }) } as unknown as MirrorCountersRepository;
    const view = { current: { hosts: new Map(hosts.map((h) => [h, {}])) } } as unknown as MaterializedView;
    return { writes, intake: new MirrorCountersIntake(repository, view) };
  }
  const counters = (...ids: string[]) => new Map(ids.map((id) => [id, { packets: 1, bytes: 1, error: '', at: 0 }]));

  it('writes a host’s first report at once, then at most once per interval: the latest report pending', async () => {
    const { writes, intake: it } = intake();
    it.report('h1', counters('s/a'));
    await jest.advanceTimersByTimeAsync(0);
    expect(writes).toEqual([{ hostId: 'h1', ids: ['s/a'] }]);
    for (const id of ['s/b', 's/c', 's/d']) {
      it.report('h1', counters(id));
      await jest.advanceTimersByTimeAsync(100);
    }
    it.report('h2', counters('s/x')); // another host is not held back
    await jest.advanceTimersByTimeAsync(0);
    expect(writes).toEqual([
      { hostId: 'h1', ids: ['s/a'] },
      { hostId: 'h2', ids: ['s/x'] },
    ]);
    await jest.advanceTimersByTimeAsync(MIRROR_COUNTERS_WRITE_MS);
    expect(writes).toEqual([
      { hostId: 'h1', ids: ['s/a'] },
      { hostId: 'h2', ids: ['s/x'] },
      { hostId: 'h1', ids: ['s/d'] },
    ]);
    await jest.advanceTimersByTimeAsync(10 * MIRROR_COUNTERS_WRITE_MS);
    expect(writes).toHaveLength(3);
  });

  it('writes nothing for a host the view no longer has, nor after it stopped', async () => {
    const { writes, intake: it } = intake(['h1']);
    it.report('gone', counters('s/a'));
    await jest.advanceTimersByTimeAsync(0);
    it.report('h1', counters('s/a'));
    await jest.advanceTimersByTimeAsync(0);
    it.report('h1', counters('s/b'));
    it.stop();
    it.report('h1', counters('s/c'));
    await jest.advanceTimersByTimeAsync(10 * MIRROR_COUNTERS_WRITE_MS);
    expect(writes).toEqual([{ hostId: 'h1', ids: ['s/a'] }]);
  });
});
