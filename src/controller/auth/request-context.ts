import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Actor, Principal } from './principal';

/**
 * The actor of the work in progress, for the audit trail: every mutation script records who
 * asked for it (RedisStore.mutate reads `currentActor()`), without each service passing it
 * down. A request handler runs as its token's holder (registerRequestContext); work the
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

/**
 * Runs each authenticated request's route as its caller: a Fastify `preHandler` hook, the last
 * step before the route (Nest's guards, pipes and handler) runs, calls the rest of the request
 * inside `runAs`, so the route's promise chain keeps the actor. Not a Nest interceptor: any
 * interceptor puts every request through rxjs and, on Node 20, AsyncResource.bind (which makes
 * two deprecation wrappers per call); that took half the single-create rate.
 */
export function registerRequestContext(fastify: FastifyInstance): void {
  fastify.addHook('preHandler', (request, _reply, done) => {
    const principal = request.principal;
    if (!principal) {
      done();
      return;
    }
    runAs(actorOf(request, principal), done);
  });
}

/** The caller of a /v1 route, as a handler parameter: `@Caller() caller: Principal`. */
export const Caller = createParamDecorator((_data: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<FastifyRequest>().principal;
  if (!principal) {
    throw new Error('@Caller() on a route without authentication');
  }
  return principal;
});
