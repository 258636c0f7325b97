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
  it('sends every session a marker each tick while they are no more than the budget', async () => {
    const map = sessions(5);
    const round = new MarkerRound(map, 5);
    expect([await round.tick(), await round.tick()]).toEqual([5, 5]);
    expect(counts(map)).toEqual([2, 2, 2, 2, 2]);
  });

  it('with more sessions than the budget, takes them in turn from where the last tick stopped', async () => {
    const map = sessions(5);
    const round = new MarkerRound(map, 2);
    expect([await round.tick(), await round.tick(), await round.tick()]).toEqual([2, 2, 2]);
    expect(counts(map)).toEqual([2, 1, 1, 1, 1]);
    await round.tick();
    await round.tick();
    expect(counts(map)).toEqual([2, 2, 2, 2, 2]);
  });

  it('counts only markers sent: sessions already at the revision do not use the budget, and a tick visits each session once at most', async () => {
    const map = sessions(6);
    [...map.values()].forEach((t, i) => (t.behind = i === 4 || i === 5));
    const round = new MarkerRound(map, 1);
    expect(await round.tick()).toBe(1);
    expect(await round.tick()).toBe(1);
    expect(counts(map)).toEqual([0, 0, 0, 0, 1, 1]);
    [...map.values()].forEach((t) => (t.behind = false));
    expect(await round.tick()).toBe(0);
  });

  it('follows sessions added and removed between ticks, and answers 0 with none', async () => {
    const map = sessions(3);
    const round = new MarkerRound(map, 2);
    await round.tick(); // h0, h1
    map.delete('h2');
    map.set('h3', new Target());
    await round.tick(); // h3, then h0 of the next turn
    expect(counts(map)).toEqual([2, 1, 1]);
    map.clear();
    expect(await round.tick()).toBe(0);
  });

  it('sends a slice at a time, the event loop served between slices; a tick while one is sending sends none', async () => {
    const map = sessions(10);
    const round = new MarkerRound(map, 10, 3);
    const turns: number[] = [];
    const sentSoFar = () => counts(map).reduce((a, b) => a + b, 0);
    const ticking = round.tick();
    // Runs between the slices: what had been sent when the event loop got each turn.
    const watch = (): void => {
      turns.push(sentSoFar());
      if (turns.length < 10) {
        setImmediate(watch);
      }
    };
    setImmediate(watch);
    expect(await round.tick()).toBe(0);
    expect(await ticking).toBe(10);
    // The loop got turns with the tick half done (the first after its second slice: the tick's own
    // turn was queued before the watch's); in one piece the first turn would have seen all 10.
    expect(turns.slice(0, 2)).toEqual([6, 9]);
    // Once it is done, the next tick sends again.
    expect(await round.tick()).toBe(10);
  });
});
