import type { Actor } from '../auth/principal';
import { Acting } from '../auth/request-context';
import { Allow } from '../auth/access';
import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { parseId } from '../model/value-parsers';
import { parseBody } from '../http/body';
import { parseQuery, QueryParams } from '../http/query';
import { PAGE_QUERY, pageRequestOf } from '../store/page';
import { createHostSchema, updateHostSchema } from './host.schemas';
import { HostService } from './host.service';

@Controller('v1/hosts')
export class HostController {
  constructor(private readonly hosts: HostService) {}

  @Post()
  @Allow('operator')
  create(@Body() body: unknown, @Acting() actor: Actor) {
    return this.hosts.create(parseBody(createHostSchema, body), actor);
  }

  @Get()
  @Allow('operator', 'migration-hook', 'auditor')
  @QueryParams(PAGE_QUERY)
  list(@Query() query: unknown) {
    return this.hosts.list(pageRequestOf(parseQuery(PAGE_QUERY, query)));
  }

  @Get(':id')
  @Allow('operator', 'migration-hook', 'auditor')
  get(@Param('id') id: string) {
    return this.hosts.get(parseId(id));
  }

  @Patch(':id')
  @Allow('operator')
  update(@Param('id') id: string, @Body() body: unknown, @Acting() actor: Actor) {
    return this.hosts.update(parseId(id), parseBody(updateHostSchema, body), actor);
  }

  @Delete(':id')
  @Allow('operator')
  @HttpCode(204)
  delete(@Param('id') id: string, @Acting() actor: Actor) {
    return this.hosts.delete(parseId(id), actor);
  }
}
