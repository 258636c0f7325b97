import { Allow } from '../auth/access';
import type { Actor, Principal } from '../auth/principal';
import { Acting, Caller } from '../auth/request-context';
import { TenantScope } from '../auth/tenant-scope';
import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { parseId } from '../model/value-parsers';
import { parseQuery, QueryParams } from '../http/query';
import { emptyPage, pageRequestOf } from '../store/page';
import { parseCreateSegment, SEGMENT_LIST_QUERY } from './segment.schemas';
import { SegmentService } from './segment.service';

@Controller('v1/segments')
export class SegmentController {
  constructor(
    private readonly segments: SegmentService,
    private readonly scope: TenantScope,
  ) {}

  @Post()
  @Allow('operator', 'tenant')
  create(@Body() body: unknown, @Caller() caller: Principal, @Acting() actor: Actor) {
    const input = parseCreateSegment(body);
    this.scope.tenant(caller, input.tenantId, 'tenantId');
    this.scope.vniPinning(caller, input.vni);
    return this.segments.create(input, actor);
  }

  @Get()
  @Allow('operator', 'tenant', 'auditor')
  @QueryParams(SEGMENT_LIST_QUERY)
  list(@Query() query: unknown, @Caller() caller: Principal) {
    const q = parseQuery(SEGMENT_LIST_QUERY, query);
    const scope = this.scope.list(caller, q.tenantId);
    return scope ? this.segments.list(pageRequestOf(q), scope.tenantId) : emptyPage();
  }

  @Get(':id')
  @Allow('operator', 'tenant', 'auditor')
  async get(@Param('id') id: string, @Caller() caller: Principal) {
    const segmentId = parseId(id);
    await this.scope.own(caller, 'segment', segmentId);
    return this.segments.get(segmentId);
  }

  @Delete(':id')
  @Allow('operator', 'tenant')
  @HttpCode(204)
  async delete(@Param('id') id: string, @Caller() caller: Principal, @Acting() actor: Actor) {
    const segmentId = parseId(id);
    await this.scope.own(caller, 'segment', segmentId);
    return this.segments.delete(segmentId, actor);
  }
}
