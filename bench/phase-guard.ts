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

/** Installs the guard; the function it returns cancels the deadlines once the run has ended. */
export function guardPhase(opts: PhaseGuardOptions): () => void {
  let signalled = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (signalled) {
        return; // already stopping
      }
      signalled = true;
      opts.stop();
      console.error(`\n${signal}: stopping`);
      void opts.cleanup().finally(() => process.exit(130));
    });
  }
  const soft =
    opts.softMs === undefined
      ? undefined
      : setTimeout(() => {
          opts.stop();
          console.error(`\nThe ${opts.name} exceeded ${opts.softMs! / 1000} s: stopping`);
        }, opts.softMs);
  const hard = setTimeout(() => {
    opts.stop();
    console.error(`\nThe ${opts.name} exceeded ${opts.hardMs / 1000} s: ${opts.hardAction}`);
    void opts.cleanup().finally(() => process.exit(2));
  }, opts.hardMs);
  soft?.unref();
  hard.unref();
  return () => {
    clearTimeout(soft);
    clearTimeout(hard);
  };
}
