import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { parseQuery, QueryParams } from '../http/query';
import { pageRequestOf } from '../store/page';
import { PORT_LIST_QUERY, WAIT_QUERY } from './port.schemas';
import { PortService, waitOf } from './port.service';

/** A write that waited for realization and timed out answers 202: done, not yet everywhere. */
function statusAfterWait(reply: FastifyReply, items: { realized?: boolean }[], done: number): void {
  void reply.status(items.some((i) => i.realized === false) ? 202 : done);
}

@Controller('v1')
export class PortController {
  constructor(private readonly ports: PortService) {}

  @Post('ports')
  @QueryParams(WAIT_QUERY)
  async create(@Body() body: unknown, @Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const port = await this.ports.create(body, waitOf(parseQuery(WAIT_QUERY, query)));
    statusAfterWait(reply, [port], 201);
    return port;
  }

  @Post('ports/batch')
  @QueryParams(WAIT_QUERY)
  async createBatch(@Body() body: unknown, @Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const result = await this.ports.createBatch(body, waitOf(parseQuery(WAIT_QUERY, query)));
    statusAfterWait(reply, result.items, 201);
    return result;
  }

  @Get('ports')
  @QueryParams(PORT_LIST_QUERY)
  list(@Query() query: unknown) {
    const q = parseQuery(PORT_LIST_QUERY, query);
    return this.ports.list(pageRequestOf(q), { segmentId: q.segmentId, hostId: q.hostId, vmId: q.vmId });
  }

  @Get('ports/:id')
  get(@Param('id') id: string) {
    return this.ports.get(id);
  }

  @Patch('ports/:id')
  @QueryParams(WAIT_QUERY)
  async update(@Param('id') id: string, @Body() body: unknown, @Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const port = await this.ports.update(id, body, waitOf(parseQuery(WAIT_QUERY, query)));
    statusAfterWait(reply, [port], 200);
    return port;
  }

  @Delete('ports/:id')
  @HttpCode(204)
  @QueryParams(WAIT_QUERY)
  async delete(@Param('id') id: string, @Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const result = await this.ports.delete(id, waitOf(parseQuery(WAIT_QUERY, query)));
    if (result.realized === false) {
      // Deleted, not yet withdrawn everywhere: 202 with what is known (a 204 has no body).
      void reply.status(202);
      return result;
    }
    return undefined;
  }

  @Get('segments/:id/mappings')
  mappings(@Param('id') id: string) {
    return this.ports.mappings(id);
  }
}
