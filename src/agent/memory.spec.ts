import { collectAndReleaseGarbage, collectGarbage } from './memory';

describe("the agent's garbage collections", () => {
  const global = globalThis as { gc?: () => void };
  const saved = global.gc;
  afterEach(() => {
    global.gc = saved;
  });

  it('collect once between stages, twice after a pass (the second gives back the pages the first emptied)', () => {
    let calls = 0;
    global.gc = () => void calls++;
    collectGarbage();
    expect(calls).toBe(1);
    collectAndReleaseGarbage();
    expect(calls).toBe(3);
  });

  it('do nothing without --expose-gc', () => {
    global.gc = undefined;
    expect(() => {
      collectGarbage();
      collectAndReleaseGarbage();
    }).not.toThrow();
  });
});
