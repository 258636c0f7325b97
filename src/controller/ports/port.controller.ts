import { Allow } from '../auth/access';
import type { Actor, Principal } from '../auth/principal';
import { Acting, Caller } from '../auth/request-context';
import { TenantScope, tenantOf } from '../auth/tenant-scope';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { parseId } from '../model/value-parsers';
import { ControllerConfig } from '../config';
import { parseBody } from '../http/body';
import { parseQuery, QueryParams } from '../http/query';
import { emptyPage, pageRequestOf } from '../store/page';
import { createPortSchema, PORT_LIST_QUERY, portBatchParser, updatePortSchema, WAIT_QUERY, waitOf, type CreatePort } from './port.schemas';
import { PortService } from './port.service';

/** A write that waited for realization and timed out answers 202: done, not yet everywhere. */
function statusAfterWait(reply: FastifyReply, items: { realized?: boolean }[], done: number): void {
  void reply.status(items.some((i) => i.realized === false) ? 202 : done);
}

@Controller('v1')
export class PortController {
  private readonly parseBatch: (body: unknown) => CreatePort[];

  constructor(
    private readonly ports: PortService,
    private readonly scope: TenantScope,
    @Inject(ControllerConfig) config: ControllerConfig,
  ) {
    this.parseBatch = portBatchParser(config.maxBatchSize);
  }

  @Post('ports')
  @Allow('operator', 'tenant')
  @QueryParams(WAIT_QUERY)
  async create(@Body() body: unknown, @Query() query: unknown, @Caller() caller: Principal, @Acting() actor: Actor, @Res({ passthrough: true }) reply: FastifyReply) {
    const wait = waitOf(parseQuery(WAIT_QUERY, query));
    // A tenant names only its own segments (checked with the others, in order); the port's tenant is its segment's.
    const port = await this.ports.create(parseBody(createPortSchema, body), actor, wait, tenantOf(caller));
    statusAfterWait(reply, [port], 201);
    return port;
  }

  @Post('ports/batch')
  @Allow('operator', 'tenant')
  @QueryParams(WAIT_QUERY)
  async createBatch(@Body() body: unknown, @Query() query: unknown, @Caller() caller: Principal, @Acting() actor: Actor, @Res({ passthrough: true }) reply: FastifyReply) {
    const wait = waitOf(parseQuery(WAIT_QUERY, query));
    const result = await this.ports.createBatch(this.parseBatch(body), actor, wait, tenantOf(caller));
    statusAfterWait(reply, result.items, 201);
    return result;
  }

  @Get('ports')
  @Allow('operator', 'tenant', 'migration-hook', 'auditor')
  @QueryParams(PORT_LIST_QUERY)
  list(@Query() query: unknown, @Caller() caller: Principal) {
    const q = parseQuery(PORT_LIST_QUERY, query);
    const scope = this.scope.list(caller, q.tenantId);
    return scope ? this.ports.list(pageRequestOf(q), { segmentId: q.segmentId, hostId: q.hostId, vmId: q.vmId, mac: q.mac, tenantId: scope.tenantId }) : emptyPage();
  }

  @Get('ports/:id')
  @Allow('operator', 'tenant', 'migration-hook', 'auditor')
  async get(@Param('id') id: string, @Caller() caller: Principal) {
    const portId = parseId(id);
    await this.scope.own(caller, 'port', portId);
    return this.ports.get(portId);
  }

  @Patch('ports/:id')
  @Allow('operator', 'tenant')
  @QueryParams(WAIT_QUERY)
  async update(@Param('id') id: string, @Body() body: unknown, @Query() query: unknown, @Caller() caller: Principal, @Acting() actor: Actor, @Res({ passthrough: true }) reply: FastifyReply) {
    const wait = waitOf(parseQuery(WAIT_QUERY, query));
    const portId = parseId(id);
    const input = parseBody(updatePortSchema, body);
    await this.scope.own(caller, 'port', portId);
    const port = await this.ports.update(portId, input, actor, wait);
    statusAfterWait(reply, [port], 200);
    return port;
  }

  @Delete('ports/:id')
  @Allow('operator', 'tenant')
  @HttpCode(204)
  @QueryParams(WAIT_QUERY)
  async delete(@Param('id') id: string, @Query() query: unknown, @Caller() caller: Principal, @Acting() actor: Actor, @Res({ passthrough: true }) reply: FastifyReply) {
    const wait = waitOf(parseQuery(WAIT_QUERY, query));
    const portId = parseId(id);
    await this.scope.own(caller, 'port', portId);
    const result = await this.ports.delete(portId, actor, wait);
    if (result.realized === false) {
      // Deleted, not yet withdrawn everywhere: 202 with what is known (a 204 has no body).
      void reply.status(202);
      return result;
    }
    return undefined;
  }

  @Get('segments/:id/mappings')
  @Allow('operator', 'auditor')
  mappings(@Param('id') id: string) {
    return this.ports.mappings(parseId(id));
  }
}
