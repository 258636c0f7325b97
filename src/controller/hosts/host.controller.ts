import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { parsePageQuery } from '../store/page';
import { HostService } from './host.service';

@Controller('v1/hosts')
export class HostController {
  constructor(private readonly hosts: HostService) {}

  @Post()
  create(@Body() body: unknown) {
    return this.hosts.create(body);
  }

  @Get()
  list(@Query() query: Record<string, unknown>) {
    return this.hosts.list(parsePageQuery(query));
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
