import { createParamDecorator, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AsyncLocalStorage } from 'node:async_hooks';
import { Observable } from 'rxjs';
import type { Actor, Principal } from './principal';

/**
 * The actor of the work in progress, for the audit trail: every mutation script records who
 * asked for it (RedisStore.mutate reads `currentActor()`), without each service passing it
 * down. A request handler runs as its token's holder (RequestContextInterceptor); work the
 * controller starts itself runs as a system actor (`runAs`); anything else is `overlayd`.
 */
const storage = new AsyncLocalStorage<Actor>();

const OVERLAYD: Actor = { kind: 'system', name: 'overlayd' };

export function currentActor(): Actor {
  return storage.getStore() ?? OVERLAYD;
}

/** Runs `fn` (and all it awaits) as `actor`. */
export function runAs<T>(actor: Actor, fn: () => T): T {
  return storage.run(actor, fn);
}

export const systemActor = (name: string): Actor => ({ kind: 'system', name });

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on every route that needs a token. */
    principal?: Principal;
  }
}

/** The actor of a request: its principal, where it came from, and what it called. */
export function actorOf(request: FastifyRequest, principal: Principal): Actor {
  return {
    kind: 'token',
    tokenId: principal.tokenId,
    name: principal.name,
    role: principal.role,
    source: request.ip,
    method: request.method,
    route: request.routeOptions.url ?? request.url,
  };
}

/** Runs each authenticated handler as its caller (APP_INTERCEPTOR). */
@Injectable()
export class RequestContextInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = request.principal;
    if (!principal) {
      return next.handle();
    }
    const actor = actorOf(request, principal);
    // Subscribing inside `run` calls the handler there: its promise chain keeps the actor.
    return new Observable((subscriber) => runAs(actor, () => next.handle().subscribe(subscriber)));
  }
}

/** The caller of a /v1 route, as a handler parameter: `@Caller() caller: Principal`. */
export const Caller = createParamDecorator((_data: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<FastifyRequest>().principal;
  if (!principal) {
    throw new Error('@Caller() on a route without authentication');
  }
  return principal;
});
