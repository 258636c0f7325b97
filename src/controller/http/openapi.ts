import { rolesOf } from '../auth/access';
import type { Role } from '../auth/principal';
import { openApiPath, routeKey, type Route } from '../auth/route-table';
import { ErrorCode } from '../errors';
import { writesDuringRecovery } from '../recovery/recovery-routes';
import { httpStatusOf } from './http-status';
import type { JsonSchema, Schema } from './schema';
import type { QuerySpec } from './query';
import { openApiParameters, querySpecOf } from './query';

/**
 * The vocabulary of the OpenAPI document served at /docs (OpenAPI 3.1), and its frame. Each
 * resource folder describes its own routes in a `*.openapi.ts` beside its controller, as plain
 * OpenAPI data built from the same schema objects and query declarations that validate those
 * routes (`AppModule` lists them). Plain data rather than @nestjs/swagger route decorators: those
 * describe bodies through DTO classes and add operation ids of their own, while our bodies are
 * `http/schema` objects whose `json` is already the OpenAPI schema, served exactly as written.
 *
 * An operation declares its `operationId`, its successful answers and the codes of its own
 * refusals (`errors`); `openApiDocument` adds the rest from the declarations that already exist:
 * who may call it (the route table), the refusals of its query, path id and body (their parsers'
 * codes) and those any request can get. Each error status then documents exactly its codes.
 */
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A successful answer: what it means and, unless it has none, its body (`json(...)`). */
export interface Answer {
  description: string;
  content?: Record<string, { schema: JsonSchema; example?: unknown }>;
}

export interface Operation {
  /** camelCase, unique in the document: generated clients name their methods after it. */
  operationId: string;
  tags: string[];
  summary: string;
  description?: string;
  /** Path and query parameters (`idParam`, `openApiParameters(SPEC)`). */
  parameters?: object[];
  /** The request body: its schema is documented as written, and its refusals (`codes`) added to the operation's. */
  body?: Schema<unknown>;
  /** The successful answers, by status. */
  responses: Record<string, Answer>;
  /**
   * The codes of the operation's own refusals: its service's checks and its scripts' (conflicts,
   * missing things, checks across fields). Those of the body, query and path id, of the token, and
   * those any request can get are added from their declarations.
   */
  errors: readonly ErrorCode[];
}

export interface ApiDescription {
  /** OpenAPI `paths`: path -> method -> operation. */
  paths: Record<string, Partial<Record<HttpMethod, Operation>>>;
  /** Named response schemas (`components.schemas`), referred to with `ref`. */
  schemas: Record<string, JsonSchema>;
}

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (schema: JsonSchema) => ({ content: { 'application/json': { schema } } });

/** A schema that also takes null (OpenAPI 3.1: JSON Schema's `type: [..., 'null']`). */
export function orNull(schema: JsonSchema): JsonSchema {
  if (typeof schema.type !== 'string') {
    return { anyOf: [schema, { type: 'null' }] };
  }
  return { ...schema, type: [schema.type, 'null'], ...(Array.isArray(schema.enum) ? { enum: [...(schema.enum as unknown[]), null] } : {}) };
}

export const str = { type: 'string' };
export const int = { type: 'integer' };
export const bool = { type: 'boolean' };
export const nullableStr = orNull(str);
export const nullableInt = orNull(int);
export const strings = { type: 'array', items: str };

/**
 * An object the API answers with: every property is always present (null where the schema allows
 * it says "none"), except those listed in `optional`, whose descriptions say when they are there.
 */
export function record(properties: Record<string, JsonSchema>, opts: { optional?: readonly string[]; description?: string; example?: unknown } = {}): JsonSchema {
  const optional = new Set(opts.optional ?? []);
  return {
    type: 'object',
    ...(opts.description ? { description: opts.description } : {}),
    required: Object.keys(properties).filter((name) => !optional.has(name)),
    properties,
    ...(opts.example === undefined ? {} : { example: opts.example }),
  };
}

export const page = (item: string) => record({ items: { type: 'array', items: ref(item) }, nextCursor: { ...nullableStr, description: 'pass as ?cursor= for the next page; null on the last one' } });
/** `{id}` in a path: a resource id. */
export const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

const capitalized = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

/**
 * The four routes every resource has: create (`create<Kind>`), list (`list<Kind>s`, with the
 * query it declares), get and delete, with the codes each refuses with besides the common ones. A
 * resource adds its other routes, and changes these, in its own description.
 */
export function crudPaths(opts: {
  /** The schema's name and the operations': `securityGroup`. */
  kind: string;
  /** The path's and the tag's: `security-groups`. */
  plural: string;
  /** In words: `security group` (default: kind). */
  label?: string;
  create: Schema<unknown>;
  listQuery: QuerySpec;
  errors: { create: readonly ErrorCode[]; list?: readonly ErrorCode[]; get: readonly ErrorCode[]; delete: readonly ErrorCode[] };
}): ApiDescription['paths'] {
  const { kind, plural, label = kind } = opts;
  const tags = [plural];
  const Kind = capitalized(kind);
  return {
    [`/v1/${plural}`]: {
      post: { operationId: `create${Kind}`, tags, summary: `Create a ${label}`, body: opts.create, responses: { '201': { description: 'created', ...json(ref(kind)) } }, errors: opts.errors.create },
      get: { operationId: `list${Kind}s`, tags, summary: `List ${plural}`, parameters: openApiParameters(opts.listQuery), responses: { '200': { description: 'a page', ...json(page(kind)) } }, errors: opts.errors.list ?? [] },
    },
    [`/v1/${plural}/{id}`]: {
      get: { operationId: `get${Kind}`, tags, summary: `Get a ${label}`, parameters: [idParam], responses: { '200': { description: label, ...json(ref(kind)) } }, errors: opts.errors.get },
      delete: { operationId: `delete${Kind}`, tags, summary: `Delete a ${label}`, parameters: [idParam], responses: { '204': { description: 'deleted' } }, errors: opts.errors.delete },
    },
  };
}

// The refusals every operation shares, each from where it is decided.

/** Answered by the HTTP server before any route runs (http/server.ts), and a bug's answer. */
const REQUEST_CODES = [ErrorCode.MalformedRequest, ErrorCode.RequestTimeout, ErrorCode.HeadersTooLarge, ErrorCode.Internal];
/** Checking the token (auth/authenticator.ts, access.guard.ts) reads Redis. */
const TOKEN_CODES = [ErrorCode.Unauthenticated, ErrorCode.Forbidden, ErrorCode.StoreUnavailable];
/** Reading a body (http/body.ts, error.filter.ts), before its schema. */
const BODY_CODES = [ErrorCode.InvalidJson, ErrorCode.UnsupportedMediaType, ErrorCode.BodyTooLarge];
/**
 * The methods whose body the server reads before the route runs, whether or not the route takes
 * one (a body-less POST or DELETE sent a body): such an operation answers BODY_CODES too.
 */
const BODY_READ_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The codes every operation, or every one with a token or a body, can answer with: the least telling examples. */
const SHARED_CODES = new Set([...REQUEST_CODES, ...TOKEN_CODES, ...BODY_CODES]);

/** What the query guard refuses on a route taking `spec` (http/query.ts): an unknown parameter on any route. */
function queryCodes(spec: QuerySpec): ErrorCode[] {
  const params = Object.values(spec);
  return params.length ? [ErrorCode.UnknownParameter, ErrorCode.InvalidCharacter, ...params.map((p) => p.code)] : [ErrorCode.UnknownParameter];
}

/** Every code `operation` can answer with on `route`, in ErrorCode's order. */
function codesOfOperation(operation: Pick<Operation, 'body' | 'errors'>, path: string, route: Route | undefined): ErrorCode[] {
  const codes = new Set<ErrorCode>([
    ...REQUEST_CODES,
    // Writes refused while the store is in recovery (recovery/recovery.guard.ts).
    ...(route && !route.access?.public && !writesDuringRecovery(route.method, route.path) ? [ErrorCode.StoreRecovery] : []),
    ...(route?.access?.public ? [] : TOKEN_CODES),
    ...queryCodes(route ? querySpecOf(route.handler) : {}),
    ...(path.includes('{id}') ? [ErrorCode.InvalidId] : []),
    ...(operation.body || (route && BODY_READ_METHODS.has(route.method)) ? BODY_CODES : []),
    ...(operation.body?.codes ?? []),
    ...operation.errors,
  ]);
  return Object.values(ErrorCode).filter((code) => codes.has(code));
}

const errorSchema = (codes: readonly ErrorCode[], example: ErrorCode = codes[0]): JsonSchema => ({
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', enum: codes, example, description: 'stable; docs/api.md lists each with its HTTP status' },
    message: { type: 'string', description: 'for people; may change' },
    field: { type: 'string', description: 'the input at fault, when one is: a JSON path into the body (`ports[3].mac`), a path or a query parameter name' },
  },
});

/** Codes by HTTP status, in the order given. */
function byStatus(codes: readonly ErrorCode[]): Map<number, ErrorCode[]> {
  const out = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = httpStatusOf(code);
    out.set(status, [...(out.get(status) ?? []), code]);
  }
  return out;
}

/** The statuses with a single code each: one shared response apiece (`components.responses`, named after the code). */
const SOLE_CODE = new Map<number, ErrorCode>();
for (const [status, codes] of byStatus(Object.values(ErrorCode))) {
  if (codes.length === 1) {
    SOLE_CODE.set(status, codes[0]);
  }
}
const responseName = (code: ErrorCode) => code.toLowerCase().replace(/(^|_)([a-z])/g, (_m, _sep, c: string) => c.toUpperCase());

const SOLE_CODE_MEANING: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.Unauthenticated]: 'no token, or an unknown, revoked or expired one',
  [ErrorCode.Forbidden]: "the token's role or scope may not do this; the message names the roles that may",
  [ErrorCode.RequestTimeout]: 'the request was not received within OVERLAY_HTTP_REQUEST_TIMEOUT_MS',
  [ErrorCode.BodyTooLarge]: 'the body is larger than OVERLAY_MAX_BODY_BYTES',
  [ErrorCode.UnsupportedMediaType]: 'send the body as application/json in UTF-8, without Content-Encoding',
  [ErrorCode.HeadersTooLarge]: 'the request line and headers are larger than 16 KiB',
  [ErrorCode.Internal]: 'a bug; the details are in the controller log',
  [ErrorCode.StoreUnavailable]: "Redis unreachable; a write's outcome is unknown (read it back before retrying)",
  [ErrorCode.StoreRecovery]: 'the store is in recovery (it came back empty or older than what was seen); nothing changed; see GET /v1/admin/recovery',
  [ErrorCode.Timeout]: "this replica's view did not catch up with Redis in time; retry",
};

const SHARED_STATUS_MEANING: Record<number, string> = {
  400: 'refused: the request is malformed or invalid; nothing changed',
  404: "not found (another tenant's objects answer as missing)",
  409: 'refused: it conflicts with the current state; nothing changed',
};

/**
 * The error answers of an operation that can refuse with `codes`: one per status, each with
 * exactly its codes, its example one of its own (`own`) rather than one every operation has.
 */
function errorResponses(codes: readonly ErrorCode[], own: readonly ErrorCode[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, ofStatus] of [...byStatus(codes)].sort(([a], [b]) => a - b)) {
    const sole = SOLE_CODE.get(status);
    const example = own.find((code) => ofStatus.includes(code)) ?? ofStatus.find((code) => !SHARED_CODES.has(code)) ?? ofStatus[0];
    out[status] = sole ? { $ref: `#/components/responses/${responseName(sole)}` } : { description: SHARED_STATUS_MEANING[status] ?? 'refused', ...json(errorSchema(ofStatus, example)) };
  }
  return out;
}

function sharedResponses(): Record<string, unknown> {
  return Object.fromEntries([...SOLE_CODE.values()].map((code) => [responseName(code), { description: `${code}: ${SOLE_CODE_MEANING[code] ?? 'refused'}`, ...json(errorSchema([code])) }]));
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

/**
 * An operation as the document states it: its description with who may call it, from the route
 * table (auth/route-table.ts) rather than by hand (`x-roles` and a sentence; a public operation
 * says `security: []` instead), its body, and its error answers. Copies: the descriptions are
 * shared module data. An operation no route serves gets no roles and no query codes (openapi.spec.ts refuses it).
 */
function documented(path: string, operation: Operation, route: Route | undefined): Record<string, unknown> {
  const { body, errors, responses, ...rest } = operation;
  const refusals = errorResponses(codesOfOperation({ body, errors }, path, route), [...errors, ...(body?.codes ?? [])]);
  const clash = Object.keys(responses).find((status) => status in refusals);
  if (clash) {
    throw new Error(`${operation.operationId} declares answer ${clash}, which its error codes use too`);
  }
  const out: Record<string, unknown> = {
    ...rest,
    ...(body ? { requestBody: { required: true, ...json(body.json) } } : {}),
    responses: { ...responses, ...refusals },
  };
  if (!route) {
    return out;
  }
  const said = operation.description === undefined ? '' : `${operation.description}\n\n`;
  if (route.access?.public) {
    return { ...out, description: `${said}No token needed.`, security: [] };
  }
  const roles = rolesOf(route.access);
  return { ...out, description: `${said}Roles: ${roles.map((role) => roleWithScope(role, route)).join(', ')}.`, 'x-roles': roles };
}

/** The document: every route description, with who may call it (`routes`) and its error answers, and the schemas they name. */
export function openApiDocument(descriptions: ApiDescription[], routes: Route[]): Record<string, unknown> {
  const byOperation = new Map(routes.map((r) => [routeKey({ method: r.method.toLowerCase(), path: openApiPath(r.path) }), r]));
  const paths: Record<string, Record<string, unknown>> = {};
  for (const description of descriptions) {
    for (const [path, operations] of Object.entries(description.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        (paths[path] ??= {})[method] = documented(path, operation, byOperation.get(routeKey({ method, path })));
      }
    }
  }
  return {
    openapi: '3.1.1',
    info: {
      title: 'overlayd',
      version: '0.1.0',
      description: 'SDN overlay controller: tenants, VXLAN segments, hosts, VM ports, their security groups, mirror sessions and live migrations.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    // The controller serving this document.
    servers: [{ url: '/' }],
    paths,
    // Every operation needs a bearer token unless it says `security: []` (health, readiness).
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token (POST /v1/tokens; the first one from the bootstrap, see docs/api.md, Tokens and roles)' } },
      schemas: Object.assign({}, ...descriptions.map((d) => d.schemas)) as Record<string, unknown>,
      responses: sharedResponses(),
    },
  };
}
