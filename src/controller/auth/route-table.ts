import { RequestMethod, type Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { accessOf, type Access } from './access';

/**
 * One route of the API as the controllers declare it: the single list of who may call what.
 * The OpenAPI document states each route's roles from it, and the tests check every route
 * against it (declared, documented, and answering as declared for every role).
 */
export interface Route {
  /** Upper case: GET, POST... */
  method: string;
  /** The pattern the HTTP server matches, as Fastify names it in `routeOptions.url`: `/v1/ports/:id`. */
  path: string;
  /** `Controller.method`, for messages. */
  name: string;
  /** The handler, to read its other declarations (the query it takes). */
  handler: object;
  /** Its @Allow or @Public; undefined when it has neither (then admin only). */
  access: Access | undefined;
}

/** `GET /v1/ports/:id`: how tests and messages name a route. */
export const routeKey = (route: Pick<Route, 'method' | 'path'>): string => `${route.method} ${route.path}`;

/** The OpenAPI form of a path pattern: `/v1/ports/:id` -> `/v1/ports/{id}`. */
export const openApiPath = (path: string): string => path.replace(/:(\w+)/g, '{$1}');

/** Joins a controller's path and a handler's as Nest does: one leading slash, none doubled or trailing. */
function joinPath(...parts: string[]): string {
  const segments = parts.flatMap((p) => p.split('/')).filter((s) => s !== '');
  return `/${segments.join('/')}`;
}

const pathsOf = (target: object): string[] => {
  const path = Reflect.getMetadata(PATH_METADATA, target) as string | string[] | undefined;
  return path === undefined ? [] : Array.isArray(path) ? path : [path];
};

/**
 * Every route the controllers declare, read from their decorators (what Nest itself reads to
 * map them), in declaration order. No app is needed: the OpenAPI document is built before one
 * exists, and unit tests have none.
 */
export function routeTable(controllers: readonly Type[]): Route[] {
  const routes: Route[] = [];
  for (const controller of controllers) {
    const bases = pathsOf(controller);
    const proto = controller.prototype as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const handler = proto[name];
      if (name === 'constructor' || typeof handler !== 'function' || Reflect.getMetadata(METHOD_METADATA, handler) === undefined) {
        continue;
      }
      const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
      for (const base of bases.length ? bases : ['']) {
        for (const sub of pathsOf(handler)) {
          routes.push({ method, path: joinPath(base, sub), name: `${controller.name}.${name}`, handler, access: accessOf(handler) });
        }
      }
    }
  }
  return routes;
}
