#!/usr/bin/env node
import { Logger } from '@nestjs/common';
import { createApp } from './app';
import { ConfigError, loadConfig } from './config';

/** overlayd: configuration from the environment, then the HTTP API on OVERLAY_HTTP_PORT. */
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
  new Logger('overlayd').log(`listening on :${config.httpPort} (Redis ${config.redisUrl.replace(/\/\/[^@]*@/, '//***@')}, keys {${config.keyPrefix}}:*, VNIs ${config.vniRanges.map((r) => `${r.from}-${r.to}`).join(',')})`);
}

main().catch((err: unknown) => {
  console.error('overlayd: failed to start:', err);
  process.exit(1);
});
