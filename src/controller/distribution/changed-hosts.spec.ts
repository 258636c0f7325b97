import { ChangedHostsLog } from './changed-hosts';

describe('ChangedHostsLog', () => {
  it('gives back the hosts of every revision it holds, and knows a revision that changed no span', () => {
    const log = new ChangedHostsLog(16, 8);
    log.record(1, ['a', 'b']);
    log.record(2, []);
    log.record(3, ['b', 'c', 'd']);
    expect(log.get(1)).toEqual(['a', 'b']);
    expect(log.get(2)).toEqual([]);
    expect(log.get(3)).toEqual(['b', 'c', 'd']);
    expect(log.get(4)).toBeUndefined();
    expect(log.get(0)).toBeUndefined();
  });

  it('forgets a revision once its slot is taken by a later one', () => {
    const log = new ChangedHostsLog(1000, 4);
    for (let r = 1; r <= 6; r++) {
      log.record(r, [`h${r}`]);
    }
    expect(log.get(1)).toBeUndefined();
    expect(log.get(2)).toBeUndefined();
    expect([3, 4, 5, 6].map((r) => log.get(r))).toEqual([['h3'], ['h4'], ['h5'], ['h6']]);
  });

  it('forgets a revision once later ones have overwritten its hosts, never answering with theirs', () => {
    const log = new ChangedHostsLog(5, 100);
    log.record(10, ['a', 'b', 'c']);
    log.record(11, ['d', 'e']);
    expect(log.get(10)).toEqual(['a', 'b', 'c']);
    log.record(12, ['f']); // wraps over 'a'
    expect(log.get(10)).toBeUndefined();
    expect(log.get(11)).toEqual(['d', 'e']);
    expect(log.get(12)).toEqual(['f']);
  });

  it('records a revision with more hosts than it can hold as unknown', () => {
    const log = new ChangedHostsLog(3, 10);
    log.record(1, ['a']);
    log.record(2, ['a', 'b', 'c', 'd']);
    expect(log.get(2)).toBeUndefined();
    expect(log.get(1)).toEqual(['a']);
    log.record(3, ['x', 'y', 'z']);
    expect(log.get(3)).toEqual(['x', 'y', 'z']);
  });

  it('forgets everything on clear, and refuses revisions out of order', () => {
    const log = new ChangedHostsLog(10, 10);
    log.record(5, ['a']);
    expect(() => log.record(5, ['b'])).toThrow();
    log.clear();
    expect(log.get(5)).toBeUndefined();
    log.record(3, ['b']);
    expect(log.get(3)).toEqual(['b']);
  });

  it('keeps memory fixed however many revisions and hosts go through it', () => {
    const log = new ChangedHostsLog(64, 16);
    for (let r = 1; r <= 10_000; r++) {
      log.record(r, [`host-${r % 50}`, `host-${(r * 7) % 50}`]);
    }
    expect(log.get(10_000)).toEqual(['host-0', 'host-0']);
    expect(log.get(9_999)).toEqual(['host-49', `host-${(9_999 * 7) % 50}`]);
    expect(log.get(9_000)).toBeUndefined();
  });

  it('starts its numbering over when host ids churn past its bound, still answering right', () => {
    const log = new ChangedHostsLog(100, 100, 4);
    for (let r = 1; r <= 20; r++) {
      log.record(r, [`once-${r}`]);
    }
    // Numbers start over at 5, 9, 13 and 17: what came before is forgotten, what came after is right.
    expect([17, 18, 19, 20].map((r) => log.get(r))).toEqual([['once-17'], ['once-18'], ['once-19'], ['once-20']]);
    expect(log.get(16)).toBeUndefined();
  });
});
