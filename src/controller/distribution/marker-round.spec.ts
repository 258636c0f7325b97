import { MarkerRound, type MarkerTarget } from './marker-round';

/** A session that counts its markers; `behind` says whether it would be sent one. */
class Target implements MarkerTarget {
  markers = 0;
  constructor(public behind = true) {}
  sendMarker(): boolean {
    this.markers += this.behind ? 1 : 0;
    return this.behind;
  }
}

function sessions(count: number): Map<string, Target> {
  return new Map(Array.from({ length: count }, (_, i) => [`h${i}`, new Target()]));
}

const counts = (map: Map<string, Target>) => [...map.values()].map((t) => t.markers);

describe('MarkerRound', () => {
  it('sends every session a marker each tick while they are no more than the budget', () => {
    const map = sessions(5);
    const round = new MarkerRound(map, 5);
    expect([round.tick(), round.tick()]).toEqual([5, 5]);
    expect(counts(map)).toEqual([2, 2, 2, 2, 2]);
  });

  it('with more sessions than the budget, takes them in turn from where the last tick stopped', () => {
    const map = sessions(5);
    const round = new MarkerRound(map, 2);
    expect([round.tick(), round.tick(), round.tick()]).toEqual([2, 2, 2]);
    expect(counts(map)).toEqual([2, 1, 1, 1, 1]);
    round.tick();
    round.tick();
    expect(counts(map)).toEqual([2, 2, 2, 2, 2]);
  });

  it('counts only markers sent: sessions already at the revision do not use the budget, and a tick visits each session once at most', () => {
    const map = sessions(6);
    [...map.values()].forEach((t, i) => (t.behind = i === 4 || i === 5));
    const round = new MarkerRound(map, 1);
    expect(round.tick()).toBe(1);
    expect(round.tick()).toBe(1);
    expect(counts(map)).toEqual([0, 0, 0, 0, 1, 1]);
    [...map.values()].forEach((t) => (t.behind = false));
    expect(round.tick()).toBe(0);
  });

  it('follows sessions added and removed between ticks, and answers 0 with none', () => {
    const map = sessions(3);
    const round = new MarkerRound(map, 2);
    round.tick(); // h0, h1
    map.delete('h2');
    map.set('h3', new Target());
    round.tick(); // h3, then h0 of the next turn
    expect(counts(map)).toEqual([2, 1, 1]);
    map.clear();
    expect(round.tick()).toBe(0);
  });
});
