import { Allow } from '../auth/access';
import { HostScope } from '../auth/host-scope';
import type { Actor, Principal } from '../auth/principal';
import { Acting, Caller } from '../auth/request-context';
import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { parseId } from '../model/value-parsers';
import { parseBody } from '../http/body';
import { parseQuery, QueryParams } from '../http/query';
import { WAIT_QUERY, waitOf } from '../ports/port.schemas';
import { DEFAULT_PREPARE_WAIT_MS, MIGRATION_LIST_QUERY, PREPARE_QUERY, prepareMigrationSchema } from './migration.schemas';
import { pageRequestOf } from '../store/page';
import { MigrationService } from './migration.service';

@Controller('v1/migrations')
export class MigrationController {
  constructor(
    private readonly migrations: MigrationService,
    private readonly scope: HostScope,
  ) {}

  /** 201 prepared (destination acked), 202 still preparing (timed out waiting), 200 a retry of an open migration. */
  @Post()
  @Allow('operator', 'migration-hook')
  @QueryParams(PREPARE_QUERY)
  async prepare(@Body() body: unknown, @Query() query: unknown, @Caller() caller: Principal, @Acting() actor: Actor, @Res({ passthrough: true }) reply: FastifyReply) {
    const waitMs = parseQuery(PREPARE_QUERY, query).timeout ?? DEFAULT_PREPARE_WAIT_MS;
    const input = parseBody(prepareMigrationSchema, body);
    this.scope.prepare(caller, input);
    const { migration, created } = await this.migrations.prepare(input, actor, waitMs);
    void reply.status(migration.state === 'preparing' ? 202 : created ? 201 : 200);
    return migration;
  }

  /** 200; with `?wait=realized`, once every peer and the source acked (202 if that timed out). */
  @Post(':id/commit')
  @Allow('operator', 'migration-hook')
  @HttpCode(200)
  @QueryParams(WAIT_QUERY)
  async commit(@Param('id') id: string, @Query() query: unknown, @Caller() caller: Principal, @Acting() actor: Actor, @Res({ passthrough: true }) reply: FastifyReply) {
    const wait = waitOf(parseQuery(WAIT_QUERY, query));
    const migrationId = parseId(id);
    await this.scope.own(caller, migrationId);
    const migration = await this.migrations.commit(migrationId, actor, wait);
    if (wait && migration.state !== 'completed') {
      void reply.status(202);
    }
    return migration;
  }

  @Post(':id/abort')
  @Allow('operator', 'migration-hook')
  @HttpCode(200)
  async abort(@Param('id') id: string, @Caller() caller: Principal, @Acting() actor: Actor) {
    const migrationId = parseId(id);
    await this.scope.own(caller, migrationId);
    return this.migrations.abort(migrationId, actor);
  }

  /** Newest first; a host-scoped hook sees only migrations from or to its hosts. */
  @Get()
  @Allow('operator', 'migration-hook', 'auditor')
  @QueryParams(MIGRATION_LIST_QUERY)
  list(@Query() query: unknown, @Caller() caller: Principal) {
    const q = parseQuery(MIGRATION_LIST_QUERY, query);
    return this.migrations.list(pageRequestOf(q), { state: q.state, vmId: q.vmId, hostId: q.hostId }, this.scope.visible(caller));
  }

  @Get(':id')
  @Allow('operator', 'migration-hook', 'auditor')
  async get(@Param('id') id: string, @Caller() caller: Principal) {
    const migrationId = parseId(id);
    await this.scope.own(caller, migrationId);
    return this.migrations.get(migrationId);
  }
}
