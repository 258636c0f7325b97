import { Public } from '../auth/access';
import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { RedisStore } from '../store/redis-store';
import { StoreRecovery } from '../store/store-recovery';

/**
 * Liveness says the process serves HTTP; readiness says it can reach Redis, its only source of
 * truth, and whether the store is in recovery. A recovery stays ready (200): the operator must
 * reach the API to end it, and a load balancer would take every replica out at once.
 */
@Controller()
export class HealthController {
  constructor(
    private readonly store: RedisStore,
    private readonly recovery: StoreRecovery,
  ) {}

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
    if (!redis) {
      await reply.status(503).send({ status: 'not ready', redis: 'unreachable' });
      return;
    }
    await reply.status(200).send({ status: 'ready', redis: 'ok', ...(this.recovery.active && { store: 'recovery' }) });
  }
}
