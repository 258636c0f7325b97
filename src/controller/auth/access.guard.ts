import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { ErrorCode, OverlayError } from '../errors';
import { accessOf, allows, rolesOf } from './access';

/**
 * Applied to every route (APP_GUARD, before the query is checked): a public route passes; any
 * other needs the principal the authentication hook set, with a role the route allows (403
 * FORBIDDEN naming the roles that may). A route that declares nothing is admin-only.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const access = accessOf(context.getHandler(), this.reflector);
    if (access?.public) {
      return true;
    }
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = request.principal;
    if (!principal) {
      throw new OverlayError(ErrorCode.Unauthenticated, 'send a token: Authorization: Bearer <token>');
    }
    if (!allows(access, principal.role)) {
      // Recorded as a refused call by the ErrorFilter, like every FORBIDDEN.
      throw new OverlayError(
        ErrorCode.Forbidden,
        `${request.method} ${request.routeOptions.url ?? request.url} needs role ${rolesOf(access).join(' or ')}; token '${principal.name}' has role ${principal.role}`,
      );
    }
    return true;
  }
}
