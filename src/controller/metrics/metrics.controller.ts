import { Controller, Get, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Allow } from '../auth/access';
import { ControllerMetrics } from './controller-metrics';

/**
 * GET /metrics: Prometheus' text format. Behind a token like the API (the metrics name hosts and
 * tell the deployment's shape): the `metrics` role exists for the scraper, which then can read
 * nothing else; operators and auditors may read them too.
 */
@Controller()
export class MetricsController {
  constructor(private readonly metrics: ControllerMetrics) {}

  @Get('metrics')
  @Allow('operator', 'auditor', 'metrics')
  async scrape(@Res() reply: FastifyReply) {
    const body = await this.metrics.expose();
    await reply.header('content-type', this.metrics.registry.contentType).send(body);
  }
}
