import { Allow } from '../auth/access';
import type { Actor, Principal } from '../auth/principal';
import { Acting, Caller } from '../auth/request-context';
import { TenantScope } from '../auth/tenant-scope';
import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { parseId } from '../model/value-parsers';
import { parseBody } from '../http/body';
import { parseQuery, QueryParams } from '../http/query';
import { emptyPage, pageRequestOf } from '../store/page';
import { createSecurityGroupSchema, replaceSecurityGroupSchema, SECURITY_GROUP_LIST_QUERY, updateSecurityGroupSchema } from './security-group.schemas';
import { SecurityGroupService } from './security-group.service';

@Controller('v1/security-groups')
export class SecurityGroupController {
  constructor(
    private readonly groups: SecurityGroupService,
    private readonly scope: TenantScope,
  ) {}

  @Post()
  @Allow('operator', 'tenant')
  create(@Body() body: unknown, @Caller() caller: Principal, @Acting() actor: Actor) {
    const input = parseBody(createSecurityGroupSchema, body);
    this.scope.tenant(caller, input.tenantId, 'tenantId');
    return this.groups.create(input, actor);
  }

  @Get()
  @Allow('operator', 'tenant', 'auditor')
  @QueryParams(SECURITY_GROUP_LIST_QUERY)
  list(@Query() query: unknown, @Caller() caller: Principal) {
    const q = parseQuery(SECURITY_GROUP_LIST_QUERY, query);
    const scope = this.scope.list(caller, q.tenantId);
    return scope ? this.groups.list(pageRequestOf(q), scope.tenantId) : emptyPage();
  }

  @Get(':id')
  @Allow('operator', 'tenant', 'auditor')
  async get(@Param('id') id: string, @Caller() caller: Principal) {
    const groupId = parseId(id);
    await this.scope.own(caller, 'securityGroup', groupId);
    return this.groups.get(groupId);
  }

  @Put(':id')
  @Allow('operator', 'tenant')
  async replace(@Param('id') id: string, @Body() body: unknown, @Caller() caller: Principal, @Acting() actor: Actor) {
    const groupId = parseId(id);
    const input = parseBody(replaceSecurityGroupSchema, body);
    await this.scope.own(caller, 'securityGroup', groupId);
    return this.groups.replace(groupId, input, actor);
  }

  @Patch(':id')
  @Allow('operator', 'tenant')
  async update(@Param('id') id: string, @Body() body: unknown, @Caller() caller: Principal, @Acting() actor: Actor) {
    const groupId = parseId(id);
    const input = parseBody(updateSecurityGroupSchema, body);
    await this.scope.own(caller, 'securityGroup', groupId);
    return this.groups.update(groupId, input, actor);
  }

  @Delete(':id')
  @Allow('operator', 'tenant')
  @HttpCode(204)
  async delete(@Param('id') id: string, @Caller() caller: Principal, @Acting() actor: Actor) {
    const groupId = parseId(id);
    await this.scope.own(caller, 'securityGroup', groupId);
    return this.groups.delete(groupId, actor);
  }
}
