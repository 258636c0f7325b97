import { Allow } from '../auth/access';
import type { Actor, Principal } from '../auth/principal';
import { Acting, Caller } from '../auth/request-context';
import { TenantScope, tenantOf } from '../auth/tenant-scope';
import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { parseId } from '../model/value-parsers';
import { parseBody } from '../http/body';
import { parseQuery, QueryParams } from '../http/query';
import { PAGE_QUERY, pageRequestOf } from '../store/page';
import { createTenantSchema } from './tenant.schemas';
import { TenantService } from './tenant.service';

@Controller('v1/tenants')
export class TenantController {
  constructor(
    private readonly tenants: TenantService,
    private readonly scope: TenantScope,
  ) {}

  @Post()
  @Allow('operator')
  create(@Body() body: unknown, @Acting() actor: Actor) {
    return this.tenants.create(parseBody(createTenantSchema, body), actor);
  }

  @Get()
  @Allow('operator', 'tenant', 'auditor')
  @QueryParams(PAGE_QUERY)
  list(@Query() query: unknown, @Caller() caller: Principal) {
    return this.tenants.list(pageRequestOf(parseQuery(PAGE_QUERY, query)), tenantOf(caller));
  }

  @Get(':id')
  @Allow('operator', 'tenant', 'auditor')
  get(@Param('id') id: string, @Caller() caller: Principal) {
    const tenantId = parseId(id);
    this.scope.tenant(caller, tenantId);
    return this.tenants.get(tenantId);
  }

  @Delete(':id')
  @Allow('operator')
  @HttpCode(204)
  delete(@Param('id') id: string, @Acting() actor: Actor) {
    return this.tenants.delete(parseId(id), actor);
  }
}
