import { Reflector } from '@nestjs/core';
import type { ExecutionContext } from '@nestjs/common';
import { ErrorCode } from '../errors';
import { AccessGuard } from './access.guard';
import { Allow, Public } from './access';
import { parseId } from '../model/value-parsers';
import type { Principal } from './principal';

class Routes {
  @Allow('operator')
  write(): void {}

  @Public()
  health(): void {}

  undeclared(): void {}
}

const principal = (role: Principal['role']): Principal => ({ tokenId: parseId('01890a5d-ac96-774b-bcce-b302099a8057'), name: 'n', role, tenantId: null, hostIds: null, allowVniPinning: false });

function contextOf(handler: () => void, who?: Principal): ExecutionContext {
  const request = { method: 'POST', url: '/v1/x', routeOptions: { url: '/v1/x' }, principal: who };
  return { getHandler: () => handler, switchToHttp: () => ({ getRequest: () => request }) } as unknown as ExecutionContext;
}

describe('AccessGuard', () => {
  it('lets in the roles a route allows (admin always), refuses the others, and needs no token on a public route', () => {
    const guard = new AccessGuard(new Reflector());
    const { write, health, undeclared } = Routes.prototype;
    expect(guard.canActivate(contextOf(write, principal('operator')))).toBe(true);
    expect(guard.canActivate(contextOf(write, principal('admin')))).toBe(true);
    expect(() => guard.canActivate(contextOf(write, principal('auditor')))).toThrow(expect.objectContaining({ code: ErrorCode.Forbidden }));
    expect(() => guard.canActivate(contextOf(write))).toThrow(expect.objectContaining({ code: ErrorCode.Unauthenticated }));
    expect(guard.canActivate(contextOf(health))).toBe(true);
    expect(guard.canActivate(contextOf(undeclared, principal('admin')))).toBe(true);
    expect(() => guard.canActivate(contextOf(undeclared, principal('operator')))).toThrow(expect.objectContaining({ code: ErrorCode.Forbidden }));
  });

  it('reads each handler\'s declaration once, also a missing one', () => {
    const reflector = new Reflector();
    const reads = jest.spyOn(reflector, 'get');
    const guard = new AccessGuard(reflector);
    const { write, undeclared } = Routes.prototype;
    for (let i = 0; i < 3; i++) {
      guard.canActivate(contextOf(write, principal('operator')));
      guard.canActivate(contextOf(undeclared, principal('admin')));
    }
    expect(reads).toHaveBeenCalledTimes(2);
  });
});
