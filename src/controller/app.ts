import 'reflect-metadata';
import { Logger, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { apiRoutes, AppModule, buildOpenApiDocument } from './app.module';
import { Authenticator, registerAuthentication } from './auth/authenticator';
import { TokenService } from './tokens/token.service';
import type { ControllerConfig } from './config';
import { bufferedStdout, createLog, type ProcessLog } from '../common/logger';
import { NestPinoLogger } from './logging/nest-logger';
import { registerRequestLog, requestIdOptions } from './logging/request-log';
import { registerJsonBodyParser } from './http/body';
import { closeConnectionsOnShutdown, httpServerOptions, limitConnections } from './http/server';
import { ControllerMetrics } from './metrics/controller-metrics';
import { recordHttpRequests } from './metrics/http-metrics';
import { MigrationMonitor } from './migrations/migration.monitor';
import { AuditEvaluator } from './audit/audit.evaluator';
import { DistributionPipeline } from './distribution/pipeline';
import { transportSecurityFrom } from './distribution/sync.server';
import { StoreRecovery } from './store/store-recovery';

/**
 * Builds overlayd: the materialized view loaded, the gRPC sync server bound on OVERLAY_GRPC_PORT,
 * the HTTP API ready but not yet listening (main.ts and tests choose where). Signals are the
 * caller's: main.ts closes the app on SIGTERM within OVERLAY_SHUTDOWN_TIMEOUT_MS. `log`: the
 * process's log (default: stdout at OVERLAY_LOG_LEVEL and _FORMAT), which gets the request lines
 * and, unless `logger` says otherwise, every Nest Logger's lines; `logger`: none of those (false),
 * or a LoggerService of the caller's (tests that read what the parts say).
 */
export async function createApp(config: ControllerConfig, opts: { logger?: false | LoggerService; log?: ProcessLog } = {}): Promise<NestFastifyApplication> {
  // JSON lines buffered (bufferedStdout): a write per API call's line cost each call a system call.
  const log = opts.log ?? createLog(config, 'overlayd', config.logFormat === 'json' ? bufferedStdout() : undefined);
  const adapter = new FastifyAdapter({ ...httpServerOptions(config), ...requestIdOptions });
  // First of the hooks: every answer, a refused one too, carries its request id.
  registerRequestLog(adapter.getInstance(), log);
  limitConnections(adapter.getInstance().server, config.httpMaxConnections);
  closeConnectionsOnShutdown(adapter.getInstance());
  // JSON in UTF-8 only: a text/plain body must be refused (415), not parsed into a string.
  registerJsonBodyParser(adapter.getInstance(), config.maxBodyBytes);
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forConfig(config), adapter, {
    logger: opts.logger ?? new NestPinoLogger(log),
    bufferLogs: false,
    // Nest's own parsers would add application/x-www-form-urlencoded; ours (http/body.ts) is the only one wanted.
    bodyParser: false,
  });
  SwaggerModule.setup('docs', app, buildOpenApiDocument(config.maxBatchSize) as unknown as OpenAPIObject);
  registerAuthentication(adapter.getInstance(), app.get(Authenticator), apiRoutes());
  recordHttpRequests(adapter.getInstance(), app.get(ControllerMetrics).httpRequests);
  // Every answer says when the store is in recovery: reads then show a state that lost data.
  const recovery = app.get(StoreRecovery);
  // Callback style, not async: no promise per answer.
  adapter.getInstance().addHook('onSend', (_request, reply, payload, done) => {
    if (recovery.active) {
      void reply.header('overlay-store-state', 'recovery');
    }
    done(null, payload);
  });
  // The store may have lost its tokens with the rest: an admin must be able to call accept.
  recovery.on('entered', () => void app.get(TokenService).bootstrap().catch((err: Error) => new Logger('recovery').warn(`making an admin token after the store recovery began: ${err.message}`)));
  // Routes run as their caller, whom the audit trail names (once authenticated, before the route runs).
  await app.init();
  try {
    await app.get(TokenService).bootstrap();
    await app.get(DistributionPipeline).start(transportSecurityFrom(config));
  } catch (err) {
    // Not started: nothing of it may keep running (its Redis connection, the change log's tail).
    await app.close();
    throw err;
  }
  app.get(MigrationMonitor).start();
  app.get(AuditEvaluator).start();
  return app;
}
