import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { AppModule } from './app.module';
import type { ControllerConfig } from './config';
import { buildOpenApiDocument } from './http/openapi';
import { MaterializedView } from './store/materialized-view';

/** Builds overlayd (HTTP API, docs, the materialized view) without listening; main.ts and tests share it. */
export async function createApp(config: ControllerConfig, opts: { logger?: false } = {}): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({ bodyLimit: config.maxBodyBytes });
  // JSON only: a text/plain body must be refused (415), not parsed into a string.
  adapter.getInstance().removeContentTypeParser(['text/plain']);
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forConfig(config), adapter, {
    logger: opts.logger === false ? false : new Logger(),
    bufferLogs: false,
  });
  app.enableShutdownHooks();
  SwaggerModule.setup('docs', app, buildOpenApiDocument(config.maxBatchSize) as unknown as OpenAPIObject);
  await app.init();
  await app.get(MaterializedView).start();
  return app;
}
