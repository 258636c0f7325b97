import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ErrorCode, OverlayError } from '../../common/errors';
import { MAX_WAIT_TIMEOUT_MS, parseWait } from '../ports/port.service';
import { DEFAULT_PREPARE_WAIT_MS, MigrationService } from './migration.service';

/** `?timeout=<ms>` on prepare: how long to wait for the destination's ack (0 = do not wait). */
function parsePrepareTimeout(query: Record<string, unknown>): number {
  if (query.timeout === undefined) {
    return DEFAULT_PREPARE_WAIT_MS;
  }
  const raw = typeof query.timeout === 'string' ? query.timeout : '';
  if (!/^\d+$/.test(raw) || Number(raw) > MAX_WAIT_TIMEOUT_MS) {
    throw new OverlayError(ErrorCode.InvalidValue, `timeout must be milliseconds between 0 and ${MAX_WAIT_TIMEOUT_MS}`, { field: 'timeout' });
  }
  return Number(raw);
}

@Controller('v1/migrations')
export class MigrationController {
  constructor(private readonly migrations: MigrationService) {}

  /** 201 prepared (destination acked), 202 still preparing (timed out waiting), 200 a retry of an open migration. */
  @Post()
  async prepare(@Body() body: unknown, @Query() query: Record<string, unknown>, @Res({ passthrough: true }) reply: FastifyReply) {
    const { migration, created } = await this.migrations.prepare(body, parsePrepareTimeout(query));
    void reply.status(migration.state === 'preparing' ? 202 : created ? 201 : 200);
    return migration;
  }

  /** 200; with `?wait=realized`, once every peer and the source acked (202 if that timed out). */
  @Post(':id/commit')
  @HttpCode(200)
  async commit(@Param('id') id: string, @Query() query: Record<string, unknown>, @Res({ passthrough: true }) reply: FastifyReply) {
    const wait = parseWait(query);
    const migration = await this.migrations.commit(id, wait);
    if (wait && migration.state !== 'completed') {
      void reply.status(202);
    }
    return migration;
  }

  @Post(':id/abort')
  @HttpCode(200)
  abort(@Param('id') id: string) {
    return this.migrations.abort(id);
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.migrations.get(id);
  }
}
