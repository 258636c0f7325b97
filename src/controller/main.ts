#!/usr/bin/env node
import { Logger } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { createApp } from './app';
import { ConfigError } from '../common/env';
import { loadConfig } from './config';
import { beginHttpShutdown } from './http/server';
import { hostPort, SyncServer } from './distribution/sync.server';
import { exitOnSignals } from './shutdown';
import { ErrorCode, OverlayError } from './errors';
import { redisProblem, unusableRedisMessage } from './store/redis-probe';
import { describeRedis } from './store/redis-connection';

/**
 * overlayd: configuration from the environment, then the HTTP API on OVERLAY_HTTP_PORT. SIGTERM
 * (or SIGINT) closes the app: Redis commands in flight fail at once (STORE_UNAVAILABLE), the
 * agents' streams end (they reconnect elsewhere), the HTTP server stops; then the process exits
 * 0. Whatever still waits after OVERLAY_SHUTDOWN_TIMEOUT_MS is abandoned: exit 1 (shutdown.ts).
 * The HTTP API listens on OVERLAY_HTTP_HOST (HTTPS with OVERLAY_HTTP_TLS_CERT and _KEY), the
 * agents' gRPC server on OVERLAY_GRPC_HOST (app.ts); the line `listening on ...` says where.
 *
 * A Redis that cannot be used at start (unreachable, or refusing PING) ends the process with one
 * line and exit 1: its supervisor (systemd's Restart=on-failure, compose's restart policy)
 * starts it again. Once running, a lost Redis is retried for ever and GET /readyz answers 503.
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
  // Under Sentinel the first connection asks the sentinels; a failure there is the same one line below.
  const problem = config.redisSentinel ? undefined : await redisProblem(config.redisUrl);
  if (problem !== undefined) {
    console.error(`overlayd: ${unusableRedisMessage(describeRedis(config), problem)}; exiting`);
    process.exit(1);
  }
  let app;
  try {
    app = await createApp(config);
  } catch (err) {
    // Redis went away between the check and the boot: the same one line, not a stack trace.
    if (err instanceof OverlayError && err.code === ErrorCode.StoreUnavailable) {
      console.error(`overlayd: ${unusableRedisMessage(describeRedis(config), err.message)}; exiting`);
      process.exit(1);
    }
    throw err;
  }
  await app.listen(config.httpPort, config.httpHost);
  const logger = new Logger('overlayd');
  const rest = `${config.httpTls ? 'https' : 'http'}://${hostPort(config.httpHost, (app.getHttpServer().address() as AddressInfo).port)}`;
  const grpc = `${hostPort(config.grpcHost, app.get(SyncServer).boundPort)} (agents' gRPC, ${config.tls ? 'TLS' : 'insecure'})`;
  logger.log(`listening on ${rest} (REST API) and ${grpc}; Redis ${describeRedis(config)}, keys {${config.keyPrefix}}:*, VNIs ${config.vniRanges.map((r) => `${r.from}-${r.to}`).join(',')}`);

  exitOnSignals({ begin: () => beginHttpShutdown(app.getHttpAdapter().getInstance()), close: () => app.close() }, { timeoutMs: config.shutdownTimeoutMs, logger });
}

main().catch((err: unknown) => {
  console.error('overlayd: failed to start:', err);
  process.exit(1);
});
