import { EventEmitter } from 'node:events';
import { exitOnSignals } from './shutdown';

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

function setup(close: () => Promise<void>, timeoutMs = 50) {
  const signals = new EventEmitter();
  const exits: number[] = [];
  const calls: string[] = [];
  let exited: (code: number) => void = () => undefined;
  const firstExit = new Promise<number>((r) => (exited = r));
  exitOnSignals(
    { begin: () => calls.push('begin'), close: () => (calls.push('close'), close()) },
    {
      timeoutMs,
      logger: quiet,
      signals,
      exit: (code) => {
        exits.push(code);
        exited(code);
      },
    },
  );
  return { signals, exits, calls, firstExit };
}

describe('exitOnSignals', () => {
  it('begins, closes and exits 0 on SIGTERM', async () => {
    const { signals, calls, firstExit } = setup(() => Promise.resolve());
    signals.emit('SIGTERM', 'SIGTERM');
    expect(await firstExit).toBe(0);
    expect(calls).toEqual(['begin', 'close']);
  });

  it('does the same on SIGINT', async () => {
    const { signals, firstExit } = setup(() => Promise.resolve());
    signals.emit('SIGINT', 'SIGINT');
    expect(await firstExit).toBe(0);
  });

  it('exits 1 when closing has not finished within the timeout', async () => {
    const { signals, firstExit } = setup(() => new Promise(() => undefined), 30);
    const started = Date.now();
    signals.emit('SIGTERM', 'SIGTERM');
    expect(await firstExit).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('exits 1 when closing fails', async () => {
    const { signals, firstExit } = setup(() => Promise.reject(new Error('boom')));
    signals.emit('SIGTERM', 'SIGTERM');
    expect(await firstExit).toBe(1);
  });

  it('exits 1 at once on a second signal, closing only once', async () => {
    const { signals, exits, calls } = setup(() => new Promise(() => undefined), 10_000);
    signals.emit('SIGTERM', 'SIGTERM');
    signals.emit('SIGTERM', 'SIGTERM');
    expect(exits).toEqual([1]);
    expect(calls).toEqual(['begin', 'close']);
  });

  it('does not exit twice when closing ends after the deadline', async () => {
    let finish: () => void = () => undefined;
    const { signals, exits, firstExit } = setup(() => new Promise<void>((r) => (finish = r)), 20);
    signals.emit('SIGTERM', 'SIGTERM');
    expect(await firstExit).toBe(1);
    finish();
    await new Promise((r) => setImmediate(r));
    expect(exits).toEqual([1]);
  });
});
