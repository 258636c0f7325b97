import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { Allow } from '../auth/access';
import type { Actor, Principal } from '../auth/principal';
import { Acting, Caller } from '../auth/request-context';
import { parseBody } from '../http/body';
import { parseQuery, QueryParams } from '../http/query';
import { parseId } from '../model/value-parsers';
import { pageRequestOf } from '../store/page';
import { createTokenSchema, TOKEN_LIST_QUERY } from './token.schemas';
import { TokenService } from './token.service';

/** Tokens: admin makes and revokes them; an auditor may read their records (never a token). */
@Controller('v1/tokens')
export class TokenController {
  constructor(private readonly tokens: TokenService) {}

  @Post()
  @Allow()
  create(@Body() body: unknown, @Caller() caller: Principal, @Acting() actor: Actor) {
    return this.tokens.create(parseBody(createTokenSchema, body), caller, actor);
  }

  @Get()
  @Allow('auditor')
  @QueryParams(TOKEN_LIST_QUERY)
  list(@Query() query: unknown) {
    const q = parseQuery(TOKEN_LIST_QUERY, query);
    return this.tokens.list(pageRequestOf(q), { role: q.role, tenantId: q.tenantId });
  }

  @Get(':id')
  @Allow('auditor')
  get(@Param('id') id: string) {
    return this.tokens.get(parseId(id));
  }

  @Delete(':id')
  @Allow()
  @HttpCode(204)
  async delete(@Param('id') id: string, @Acting() actor: Actor) {
    await this.tokens.delete(parseId(id), actor);
  }
}
