import { Allow } from '../auth/access';
import type { Actor, Principal } from '../auth/principal';
import { Acting, Caller } from '../auth/request-context';
import { TenantScope } from '../auth/tenant-scope';
import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ErrorCode, OverlayError } from '../errors';
import { parseId } from '../model/value-parsers';
import { parseBody } from '../http/body';
import { parseQuery, QueryParams } from '../http/query';
import { emptyPage, pageRequestOf } from '../store/page';
import { createMirrorSessionSchema, MIRROR_SESSION_LIST_QUERY, updateMirrorSessionSchema, type SinkInput } from './mirror-session.schemas';
import { MirrorSessionService } from './mirror-session.service';

/**
 * An uplink sink sends a tenant's copies out of a host's physical NIC: cabling an analyzer to a
 * host is the operator's decision, so a tenant token may not choose one (it may still change the
 * other fields of a session an operator gave an uplink sink).
 */
function checkSinkAllowed(caller: Principal, sink: SinkInput | undefined): void {
  if (sink?.type === 'uplink' && caller.role === 'tenant') {
    throw new OverlayError(ErrorCode.Forbidden, `an uplink sink (a host's NIC) needs role operator; token '${caller.name}' has role tenant (use a port, vxlan or erspan sink)`, { field: 'sink.type' });
  }
}

@Controller('v1/mirror-sessions')
export class MirrorSessionController {
  constructor(
    private readonly sessions: MirrorSessionService,
    private readonly scope: TenantScope,
  ) {}

  @Post()
  @Allow('operator', 'tenant')
  create(@Body() body: unknown, @Caller() caller: Principal, @Acting() actor: Actor) {
    const input = parseBody(createMirrorSessionSchema, body);
    this.scope.tenant(caller, input.tenantId, 'tenantId');
    checkSinkAllowed(caller, input.sink);
    this.scope.vniPinning(caller, input.sink.type === 'vxlan' ? input.sink.vni : undefined, 'sink.vni');
    return this.sessions.create(input, actor);
  }

  @Get()
  @Allow('operator', 'tenant', 'auditor')
  @QueryParams(MIRROR_SESSION_LIST_QUERY)
  list(@Query() query: unknown, @Caller() caller: Principal) {
    const q = parseQuery(MIRROR_SESSION_LIST_QUERY, query);
    const scope = this.scope.list(caller, q.tenantId);
    return scope ? this.sessions.list(pageRequestOf(q), scope.tenantId) : emptyPage();
  }

  @Get(':id')
  @Allow('operator', 'tenant', 'auditor')
  async get(@Param('id') id: string, @Caller() caller: Principal) {
    const sessionId = parseId(id);
    await this.scope.own(caller, 'mirrorSession', sessionId);
    return this.sessions.get(sessionId);
  }

  @Patch(':id')
  @Allow('operator', 'tenant')
  async update(@Param('id') id: string, @Body() body: unknown, @Caller() caller: Principal, @Acting() actor: Actor) {
    const sessionId = parseId(id);
    const input = parseBody(updateMirrorSessionSchema, body);
    await this.scope.own(caller, 'mirrorSession', sessionId);
    checkSinkAllowed(caller, input.sink);
    return this.sessions.update(sessionId, input, actor);
  }

  @Delete(':id')
  @Allow('operator', 'tenant')
  @HttpCode(204)
  async delete(@Param('id') id: string, @Caller() caller: Principal, @Acting() actor: Actor) {
    const sessionId = parseId(id);
    await this.scope.own(caller, 'mirrorSession', sessionId);
    return this.sessions.delete(sessionId, actor);
  }
}
