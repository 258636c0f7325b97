import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { parseQuery, QueryParams } from '../http/query';
import { PAGE_QUERY, pageRequestOf } from '../store/page';
import { HostService } from './host.service';

@Controller('v1/hosts')
export class HostController {
  constructor(private readonly hosts: HostService) {}

  @Post()
  create(@Body() body: unknown) {
    return this.hosts.create(body);
  }

  @Get()
  @QueryParams(PAGE_QUERY)
  list(@Query() query: unknown) {
    return this.hosts.list(pageRequestOf(parseQuery(PAGE_QUERY, query)));
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.hosts.get(id);
  }

  @Patch(':id')
  update(@Param('id') id: string, @Body() body: unknown) {
    return this.hosts.update(id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  delete(@Param('id') id: string) {
    return this.hosts.delete(id);
  }
}
