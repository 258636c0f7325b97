import { rolesOf } from '../auth/access';
import type { Role } from '../auth/principal';
import { openApiPath, routeKey, type Route } from '../auth/route-table';
import { ErrorCode } from '../errors';
import type { JsonSchema } from './schema';
import type { QuerySpec } from './query';
import { openApiParameters } from './query';

/**
 * The vocabulary of the OpenAPI document served at /docs, and its frame. Each resource folder
 * describes its own routes in a `*.openapi.ts` beside its controller, as plain OpenAPI data built
 * from the same schema objects and query declarations that validate those routes (`AppModule`
 * lists them). Plain data rather than @nestjs/swagger route decorators: those describe bodies
 * through DTO classes and add operation ids of their own, while our bodies are `common/schema`
 * objects whose `json` is already the OpenAPI schema, served exactly as written.
 */
export interface ApiDescription {
  /** OpenAPI `paths`: path -> method -> operation. */
  paths: Record<string, Record<string, unknown>>;
  /** Named response schemas (`components.schemas`), referred to with `ref`. */
  schemas: Record<string, JsonSchema>;
}

const error: JsonSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', enum: Object.values(ErrorCode), example: 'VNI_RANGE_EXHAUSTED', description: 'stable; the README lists each with its HTTP status' },
    message: { type: 'string' },
    field: { type: 'string', example: 'vni', description: 'the input at fault: a JSON path into the body, a path or a query parameter name' },
  },
};

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (schema: JsonSchema) => ({ content: { 'application/json': { schema } } });
/** The error responses every operation has. */
export const errors = { '4XX': { description: 'refused; nothing changed', ...json(ref('Error')) }, '503': { description: 'Redis unreachable', ...json(ref('Error')) } };
export const page = (item: string) => ({ type: 'object', properties: { items: { type: 'array', items: ref(item) }, nextCursor: { type: 'string', nullable: true } } });
/** `{id}` in a path: a resource id. */
export const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

export const str = { type: 'string' };
export const nullableStr = { type: 'string', nullable: true };
export const nullableInt = { type: 'integer', nullable: true };

/**
 * The four routes every resource has: create, list (with the query it declares), get and delete.
 * A resource adds its other routes, and changes these, in its own description.
 */
export function crudPaths(kind: string, plural: string, create: JsonSchema, listQuery: QuerySpec, label = kind): ApiDescription['paths'] {
  return {
    [`/v1/${plural}`]: {
      post: { tags: [plural], summary: `Create a ${label}`, requestBody: { required: true, ...json(create) }, responses: { '201': { description: 'created', ...json(ref(kind)) }, ...errors } },
      get: { tags: [plural], summary: `List ${plural}`, parameters: openApiParameters(listQuery), responses: { '200': { description: 'a page', ...json(page(kind)) }, ...errors } },
    },
    [`/v1/${plural}/{id}`]: {
      get: { tags: [plural], summary: `Get a ${label}`, parameters: [idParam], responses: { '200': { description: label, ...json(ref(kind)) }, ...errors } },
      delete: { tags: [plural], summary: `Delete a ${label}`, parameters: [idParam], responses: { '204': { description: 'deleted' }, ...errors } },
    },
  };
}

/** What limits a role beyond the route's declaration: its scope, said the same way on every operation. */
function roleWithScope(role: Role, route: Route): string {
  if (role === 'tenant') {
    return 'tenant (own tenant only)';
  }
  if (role === 'migration-hook' && route.path.startsWith('/v1/migrations')) {
    return "migration-hook (its hosts' migrations only, when the token names hosts)";
  }
  return role;
}

const unauthenticated = { description: 'UNAUTHENTICATED: no token, or an unknown, revoked or expired one', ...json(ref('Error')) };
const forbidden = { description: "FORBIDDEN: the token's role or scope may not do this; the message names the roles that may", ...json(ref('Error')) };

/**
 * Who may call each operation, from the route table (auth/route-table.ts) rather than by hand:
 * `x-roles` and a sentence in the description, the 401 and 403 answers; a public operation says
 * `security: []` instead. Copies: the descriptions are shared module data. An operation no route
 * serves is left as it is (the route table's test refuses it).
 */
function withAccess(paths: ApiDescription['paths'], routes: Route[]): ApiDescription['paths'] {
  const byOperation = new Map(routes.map((r) => [routeKey({ method: r.method.toLowerCase(), path: openApiPath(r.path) }), r]));
  const out: ApiDescription['paths'] = {};
  for (const [path, operations] of Object.entries(paths)) {
    out[path] = {};
    for (const [method, operation] of Object.entries(operations as Record<string, Record<string, unknown>>)) {
      const route = byOperation.get(routeKey({ method, path }));
      if (!route) {
        out[path][method] = operation;
        continue;
      }
      const said = typeof operation.description === 'string' ? `${operation.description}\n\n` : '';
      const responses = operation.responses as Record<string, unknown>;
      if (route.access?.public) {
        out[path][method] = { ...operation, description: `${said}No token needed.`, security: [] };
        continue;
      }
      const roles = rolesOf(route.access);
      out[path][method] = {
        ...operation,
        description: `${said}Roles: ${roles.map((role) => roleWithScope(role, route)).join(', ')}.`,
        'x-roles': roles,
        responses: { ...responses, '401': unauthenticated, '403': forbidden },
      };
    }
  }
  return out;
}

/** The document: every route description, with who may call it (`routes`), and the schemas they name plus `Error`. */
export function openApiDocument(descriptions: ApiDescription[], routes: Route[]): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: { title: 'overlayd', version: '0.1.0', description: 'SDN overlay controller: tenants, VXLAN segments, hosts, VM ports, their security groups, and live migrations.' },
    paths: withAccess(Object.assign({}, ...descriptions.map((d) => d.paths)) as ApiDescription['paths'], routes),
    // Every operation needs a bearer token unless it says `security: []` (health, readiness).
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token (POST /v1/tokens; the first one from the bootstrap, see the README)' } },
      schemas: Object.assign({ Error: error }, ...descriptions.map((d) => d.schemas)) as Record<string, unknown>,
    },
  };
}
