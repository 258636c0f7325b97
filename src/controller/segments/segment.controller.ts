import { Allow } from '../auth/access';
import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { parseId } from '../model/value-parsers';
import { parseQuery, QueryParams } from '../http/query';
import { pageRequestOf } from '../store/page';
import { parseCreateSegment, SEGMENT_LIST_QUERY } from './segment.schemas';
import { SegmentService } from './segment.service';

@Controller('v1/segments')
export class SegmentController {
  constructor(private readonly segments: SegmentService) {}

  @Post()
  @Allow('operator', 'tenant')
  create(@Body() body: unknown) {
    return this.segments.create(parseCreateSegment(body));
  }

  @Get()
  @Allow('operator', 'tenant', 'auditor')
  @QueryParams(SEGMENT_LIST_QUERY)
  list(@Query() query: unknown) {
    const q = parseQuery(SEGMENT_LIST_QUERY, query);
    return this.segments.list(pageRequestOf(q), q.tenantId);
  }

  @Get(':id')
  @Allow('operator', 'tenant', 'auditor')
  get(@Param('id') id: string) {
    return this.segments.get(parseId(id));
  }

  @Delete(':id')
  @Allow('operator', 'tenant')
  @HttpCode(204)
  delete(@Param('id') id: string) {
    return this.segments.delete(parseId(id));
  }
}
