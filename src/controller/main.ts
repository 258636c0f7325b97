#!/usr/bin/env node
import { Logger } from '@nestjs/common';
import { createApp } from './app';
import { ConfigError } from '../common/env';
import { loadConfig } from './config';
import { beginHttpShutdown } from './http/server';
import { exitOnSignals } from './shutdown';

/**
 * overlayd: configuration from the environment, then the HTTP API on OVERLAY_HTTP_PORT. SIGTERM
 * (or SIGINT) closes the app: Redis commands in flight fail at once (STORE_UNAVAILABLE), the
 * agents' streams end (they reconnect elsewhere), the HTTP server stops; then the process exits
 * 0. Whatever still waits after OVERLAY_SHUTDOWN_TIMEOUT_MS is abandoned: exit 1 (shutdown.ts).
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`overlayd: bad configuration: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
  const app = await createApp(config);
  await app.listen(config.httpPort, '0.0.0.0');
  const logger = new Logger('overlayd');
  logger.log(`listening on :${config.httpPort} (Redis ${config.redisUrl.replace(/\/\/[^@]*@/, '//***@')}, keys {${config.keyPrefix}}:*, VNIs ${config.vniRanges.map((r) => `${r.from}-${r.to}`).join(',')})`);

  exitOnSignals({ begin: () => beginHttpShutdown(app.getHttpAdapter().getInstance()), close: () => app.close() }, { timeoutMs: config.shutdownTimeoutMs, logger });
}

main().catch((err: unknown) => {
  console.error('overlayd: failed to start:', err);
  process.exit(1);
});
