import { Public } from '../auth/access';
import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { RedisStore } from '../store/redis-store';

/** Liveness says the process serves HTTP; readiness says it can reach Redis, its only source of truth. */
@Controller()
export class HealthController {
  constructor(private readonly store: RedisStore) {}

  @Get('healthz')
  @Public()
  @HttpCode(200)
  healthz() {
    return { status: 'ok' };
  }

  @Get('readyz')
  @Public()
  async readyz(@Res() reply: FastifyReply) {
    const redis = await this.store.ping();
    await reply.status(redis ? 200 : 503).send({ status: redis ? 'ready' : 'not ready', redis: redis ? 'ok' : 'unreachable' });
  }
}
