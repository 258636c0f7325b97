import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { parsePageQuery } from '../store/page';
import { SegmentService } from './segment.service';

@Controller('v1/segments')
export class SegmentController {
  constructor(private readonly segments: SegmentService) {}

  @Post()
  create(@Body() body: unknown) {
    return this.segments.create(body);
  }

  @Get()
  list(@Query() query: Record<string, unknown>) {
    return this.segments.list(parsePageQuery(query), query.tenantId as string | undefined);
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.segments.get(id);
  }

  @Delete(':id')
  @HttpCode(204)
  delete(@Param('id') id: string) {
    return this.segments.delete(id);
  }
}
