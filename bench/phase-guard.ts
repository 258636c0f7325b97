/**
 * What every bench phase does around its run, in one place: SIGINT or SIGTERM stops it (its
 * cleanup, then exit 130; a signal while it cleans up is ignored, so the cleanup is not cut short),
 * a soft deadline asks the work to stop starting new steps, and a hard one cleans up and exits 2.
 */
export interface PhaseGuardOptions {
  /** How the deadline messages name the run: `The ${name} exceeded 240 s: ...`. */
  name: string;
  /** Sets the phase's stop flag: its loops stop starting new work. */
  stop: () => void;
  /** Stops what the phase started and deletes its keys; called once or more (it must be idempotent). */
  cleanup: () => Promise<void>;
  /** After this long the work is asked to stop (none: only the hard deadline). */
  softMs?: number;
  hardMs: number;
  /** What the hard deadline does, for its message (`killing the controller`). */
  hardAction: string;
}

export interface PhaseGuard {
  /**
   * Runs the phase's work, then its cleanup, then cancels the deadlines. An error, or a stop
   * before the work ended, is recorded in `errors` and printed (`BENCH ERROR: ...`), and `onError`
   * adds what the phase knows (its processes' logs). Resolves to whether the run failed.
   */
  run(work: () => Promise<void>, report: { errors: string[]; onError?: (message: string) => Promise<void> | void }): Promise<boolean>;
}

/** Installs the guard; its `run` runs the phase. */
export function guardPhase(opts: PhaseGuardOptions): PhaseGuard {
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    opts.stop();
  };
  let signalled = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (signalled) {
        return; // already stopping
      }
      signalled = true;
      stop();
      console.error(`\n${signal}: stopping`);
      void opts.cleanup().finally(() => process.exit(130));
    });
  }
  const soft =
    opts.softMs === undefined
      ? undefined
      : setTimeout(() => {
          stop();
          console.error(`\nThe ${opts.name} exceeded ${opts.softMs! / 1000} s: stopping`);
        }, opts.softMs);
  const hard = setTimeout(() => {
    stop();
    console.error(`\nThe ${opts.name} exceeded ${opts.hardMs / 1000} s: ${opts.hardAction}`);
    void opts.cleanup().finally(() => process.exit(2));
  }, opts.hardMs);
  soft?.unref();
  hard.unref();
  return {
    async run(work, report) {
      try {
        await work();
        if (stopped) {
          throw new Error('run aborted before the end; figures are partial');
        }
        return false;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        report.errors.push(message);
        console.error(`\nBENCH ERROR: ${message}`);
        await report.onError?.(message);
        return true;
      } finally {
        await opts.cleanup();
        clearTimeout(soft);
        clearTimeout(hard);
      }
    },
  };
}
