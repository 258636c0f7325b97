import { SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Role } from './principal';

/**
 * Who may call a route, declared on its handler: `@Allow('operator', 'auditor')` (admin is
 * always allowed), or `@Public()` for the few routes that answer without a token. A route that
 * declares neither is refused to everyone but admin (AccessGuard): forgetting the declaration
 * fails closed, and a unit test lists every route's declaration.
 */
export type Access = { public: true } | { public: false; roles: readonly Role[] };

const ACCESS = 'overlay:access';

export const Allow = (...roles: Exclude<Role, 'admin'>[]): MethodDecorator => SetMetadata(ACCESS, { public: false, roles: ['admin', ...roles] } satisfies Access);
export const Public = (): MethodDecorator => SetMetadata(ACCESS, { public: true } satisfies Access);

/** The declaration of a route handler; undefined when it has none. */
export function accessOf(handler: object, reflector = new Reflector()): Access | undefined {
  return reflector.get<Access | undefined>(ACCESS, handler as () => unknown);
}

/** Whether `role` may call a route with this declaration (none: admin only). */
export function allows(access: Access | undefined, role: Role): boolean {
  if (!access) {
    return role === 'admin';
  }
  return access.public || access.roles.includes(role);
}

/** The roles a declaration lets in, for messages and the OpenAPI document. */
export function rolesOf(access: Access | undefined): readonly Role[] {
  return access === undefined ? ['admin'] : access.public ? [] : access.roles;
}
