import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { ErrorCode, OverlayError } from '../errors';
import { accessOf, allows, rolesOf, type Access } from './access';

/**
 * Applied to every route (APP_GUARD, before the query is checked): a public route passes; any
 * other needs the principal the authentication hook set, with a role the route allows (403
 * FORBIDDEN naming the roles that may). A route that declares nothing is admin-only.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  /** Each handler's declaration, read once: a declaration never changes, and reading it (reflect-metadata) cost every request about 1 µs. */
  private readonly declared = new WeakMap<object, Access | undefined>();

  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    let access = this.declared.get(handler);
    if (access === undefined && !this.declared.has(handler)) {
      access = accessOf(handler, this.reflector);
      this.declared.set(handler, access);
    }
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
