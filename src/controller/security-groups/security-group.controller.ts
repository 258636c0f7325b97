import { Allow } from '../auth/access';
import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { parseId } from '../model/value-parsers';
import { parseBody } from '../http/body';
import { parseQuery, QueryParams } from '../http/query';
import { pageRequestOf } from '../store/page';
import { createSecurityGroupSchema, replaceSecurityGroupSchema, SECURITY_GROUP_LIST_QUERY, updateSecurityGroupSchema } from './security-group.schemas';
import { SecurityGroupService } from './security-group.service';

@Controller('v1/security-groups')
export class SecurityGroupController {
  constructor(private readonly groups: SecurityGroupService) {}

  @Post()
  @Allow('operator', 'tenant')
  create(@Body() body: unknown) {
    return this.groups.create(parseBody(createSecurityGroupSchema, body));
  }

  @Get()
  @Allow('operator', 'tenant', 'auditor')
  @QueryParams(SECURITY_GROUP_LIST_QUERY)
  list(@Query() query: unknown) {
    const q = parseQuery(SECURITY_GROUP_LIST_QUERY, query);
    return this.groups.list(pageRequestOf(q), q.tenantId);
  }

  @Get(':id')
  @Allow('operator', 'tenant', 'auditor')
  get(@Param('id') id: string) {
    return this.groups.get(parseId(id));
  }

  @Put(':id')
  @Allow('operator', 'tenant')
  replace(@Param('id') id: string, @Body() body: unknown) {
    return this.groups.replace(parseId(id), parseBody(replaceSecurityGroupSchema, body));
  }

  @Patch(':id')
  @Allow('operator', 'tenant')
  update(@Param('id') id: string, @Body() body: unknown) {
    return this.groups.update(parseId(id), parseBody(updateSecurityGroupSchema, body));
  }

  @Delete(':id')
  @Allow('operator', 'tenant')
  @HttpCode(204)
  delete(@Param('id') id: string) {
    return this.groups.delete(parseId(id));
  }
}
