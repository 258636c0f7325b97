import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { parsePageQuery } from '../store/page';
import { TenantService } from './tenant.service';

@Controller('v1/tenants')
export class TenantController {
  constructor(private readonly tenants: TenantService) {}

  @Post()
  create(@Body() body: unknown) {
    return this.tenants.create(body);
  }

  @Get()
  list(@Query() query: Record<string, unknown>) {
    return this.tenants.list(parsePageQuery(query));
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.tenants.get(id);
  }

  @Delete(':id')
  @HttpCode(204)
  delete(@Param('id') id: string) {
    return this.tenants.delete(id);
  }
}
