import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Put, Query } from '@nestjs/common';
import { parsePageQuery } from '../store/page';
import { SecurityGroupService } from './security-group.service';

@Controller('v1/security-groups')
export class SecurityGroupController {
  constructor(private readonly groups: SecurityGroupService) {}

  @Post()
  create(@Body() body: unknown) {
    return this.groups.create(body);
  }

  @Get()
  list(@Query() query: Record<string, unknown>) {
    return this.groups.list(parsePageQuery(query), query.tenantId as string | undefined);
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.groups.get(id);
  }

  @Put(':id')
  replace(@Param('id') id: string, @Body() body: unknown) {
    return this.groups.replace(id, body);
  }

  @Patch(':id')
  update(@Param('id') id: string, @Body() body: unknown) {
    return this.groups.update(id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  delete(@Param('id') id: string) {
    return this.groups.delete(id);
  }
}
