import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { parsePageQuery } from '../store/page';
import { PortService } from './port.service';

@Controller('v1')
export class PortController {
  constructor(private readonly ports: PortService) {}

  @Post('ports')
  create(@Body() body: unknown) {
    return this.ports.create(body);
  }

  @Post('ports/batch')
  createBatch(@Body() body: unknown) {
    return this.ports.createBatch(body);
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
  update(@Param('id') id: string, @Body() body: unknown) {
    return this.ports.update(id, body);
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
