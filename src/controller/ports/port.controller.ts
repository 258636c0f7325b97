import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { parsePageQuery } from '../store/page';
import { parseWait, PortService } from './port.service';

/** A write that waited for realization and timed out answers 202: done, not yet everywhere. */
function statusAfterWait(reply: FastifyReply, items: { realized?: boolean }[], done: number): void {
  void reply.status(items.some((i) => i.realized === false) ? 202 : done);
}

@Controller('v1')
export class PortController {
  constructor(private readonly ports: PortService) {}

  @Post('ports')
  async create(@Body() body: unknown, @Query() query: Record<string, unknown>, @Res({ passthrough: true }) reply: FastifyReply) {
    const port = await this.ports.create(body, parseWait(query));
    statusAfterWait(reply, [port], 201);
    return port;
  }

  @Post('ports/batch')
  async createBatch(@Body() body: unknown, @Query() query: Record<string, unknown>, @Res({ passthrough: true }) reply: FastifyReply) {
    const result = await this.ports.createBatch(body, parseWait(query));
    statusAfterWait(reply, result.items, 201);
    return result;
  }

  @Get('ports')
  list(@Query() query: Record<string, unknown>) {
    return this.ports.list(parsePageQuery(query), { segmentId: query.segmentId as string | undefined, hostId: query.hostId as string | undefined });
  }

  @Get('ports/:id')
  get(@Param('id') id: string) {
    return this.ports.get(id);
  }

  @Patch('ports/:id')
  async update(@Param('id') id: string, @Body() body: unknown, @Query() query: Record<string, unknown>, @Res({ passthrough: true }) reply: FastifyReply) {
    const port = await this.ports.update(id, body, parseWait(query));
    statusAfterWait(reply, [port], 200);
    return port;
  }

  @Delete('ports/:id')
  @HttpCode(204)
  delete(@Param('id') id: string) {
    return this.ports.delete(id);
  }

  @Get('segments/:id/mappings')
  mappings(@Param('id') id: string) {
    return this.ports.mappings(id);
  }
}
