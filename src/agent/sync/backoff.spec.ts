import { Backoff } from './backoff';

describe('reconnect backoff', () => {
  it('grows exponentially up to its cap, with full jitter', () => {
    const max = new Backoff(100, 1000, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6].map(() => max.next())).toEqual([99, 199, 399, 799, 999, 999]);
    const min = new Backoff(100, 1000, () => 0);
    expect(min.next()).toBe(0);
  });

  it('starts over after a reset', () => {
    const backoff = new Backoff(100, 1000, () => 0.5);
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.next()).toBe(50);
  });
});
