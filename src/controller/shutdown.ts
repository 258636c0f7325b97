import type { LoggerService } from '@nestjs/common';

/** What a shutdown needs of the app: to start (HTTP stops keeping connections alive), then to close. */
export interface Closable {
  begin(): void;
  close(): Promise<void>;
}

/**
 * SIGTERM and SIGINT close the app and exit: 0 once it has closed, 1 if it has not within
 * `timeoutMs` (whatever still waits is abandoned) or if closing failed. A second signal exits at
 * once with 1. Every wait inside the close is meant to be short by itself (see RedisStore.closeNow,
 * MaterializedView.stop); the deadline is the bound on what is not.
 */
export function exitOnSignals(
  app: Closable,
  opts: { timeoutMs: number; logger: Pick<LoggerService, 'log' | 'warn' | 'error'>; exit?: (code: number) => void; signals?: NodeJS.EventEmitter },
): void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const signals = opts.signals ?? process;
  const { logger, timeoutMs } = opts;
  let stopping = false;
  let finished = false;
  const finish = (code: number): void => {
    if (!finished) {
      finished = true;
      exit(code);
    }
  };
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn(`${signal} again: exiting now`);
      exit(1);
      return;
    }
    stopping = true;
    const started = Date.now();
    logger.log(`${signal}: shutting down`);
    const deadline = setTimeout(() => {
      logger.error(`shutdown not finished after ${timeoutMs} ms (OVERLAY_SHUTDOWN_TIMEOUT_MS); exiting anyway`);
      finish(1);
    }, timeoutMs);
    app.begin();
    app.close().then(
      () => {
        clearTimeout(deadline);
        logger.log(`shut down in ${Date.now() - started} ms`);
        finish(0);
      },
      (err: unknown) => {
        clearTimeout(deadline);
        logger.error(`shutdown failed: ${(err as Error).stack ?? String(err)}`);
        finish(1);
      },
    );
  };
  signals.on('SIGTERM', shutdown);
  signals.on('SIGINT', shutdown);
}
