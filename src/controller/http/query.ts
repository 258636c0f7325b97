import { Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { ErrorCode, OverlayError } from '../errors';
import type { JsonSchema } from './schema';
import { forbiddenCharacter } from './text';
import { type ResourceId } from '../../common/values';
import { parseId, parseIsoTime } from '../model/value-parsers';

/**
 * Query parameters, as strictly as bodies: each route declares the parameters it takes
 * (`@QueryParams(spec)`), and `QueryGuard` refuses, on every route, an unknown parameter
 * (UNKNOWN_PARAMETER: `?vmId=` on a route without that filter must not silently list
 * everything), a repeated one, a malformed value and bad percent-encoding, naming the parameter
 * in `field`. A route without a declaration takes none. The same declarations give the OpenAPI
 * parameters (`openApiParameters`), so the documentation cannot drift either.
 */
export interface QueryParam<T> {
  /** Reads one value (already percent-decoded); throws `OverlayError` with `field` = `name`. */
  parse(raw: string, name: string): T;
  /** The code of a refused value; a repeated parameter is refused with it too. */
  readonly code: ErrorCode;
  readonly schema: JsonSchema;
  readonly description?: string;
}

export type QuerySpec = Readonly<Record<string, QueryParam<unknown>>>;
export type QueryValues<S extends QuerySpec> = { [K in keyof S]?: S[K] extends QueryParam<infer T> ? T : never };

/** A value whose percent-encoding is not UTF-8 (`%ff`, `%e0%a4`, `%zz`): kept aside, refused by `parseQuery`. */
export class MalformedQueryValue {
  constructor(readonly raw: string) {}
}

type RawQueryValue = string | MalformedQueryValue;
export type RawQuery = Record<string, RawQueryValue | RawQueryValue[]>;

function decodeComponent(raw: string): string | MalformedQueryValue {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return new MalformedQueryValue(raw);
  }
}

/**
 * Pairs of a query string read at most: no route takes more than a few parameters, so a query
 * with more is refused whatever they are (parseQuery), and the rest is not read. The router
 * parses the query before any token is checked: a 16 KiB query string of one repeated name cost
 * ~100 ms of CPU, one of undecodable names ~60 ms.
 */
export const MAX_QUERY_PAIRS = 64;

/** Set on a parsed query that had more than MAX_QUERY_PAIRS pairs (a symbol: no parameter name can be it). */
const TOO_MANY_PAIRS = Symbol('overlay.query.tooManyPairs');

/**
 * The query string parser given to Fastify: `application/x-www-form-urlencoded` pairs, a
 * repeated name collected into an array (so that it can be refused, not silently resolved), an
 * undecodable value kept as `MalformedQueryValue` (Fastify's default keeps the raw text, which
 * would then be taken literally). The object has no prototype (`?__proto__=` is just a name).
 */
export function parseQueryString(text: string): RawQuery {
  const out: RawQuery = Object.create(null) as RawQuery;
  let pairs = 0;
  for (const pair of text.split('&')) {
    if (pair === '') {
      continue;
    }
    if (++pairs > MAX_QUERY_PAIRS) {
      (out as { [TOO_MANY_PAIRS]?: true })[TOO_MANY_PAIRS] = true;
      break;
    }
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    const decodedName = decodeComponent(rawName);
    const name = typeof decodedName === 'string' ? decodedName : rawName;
    const value = decodeComponent(eq < 0 ? '' : pair.slice(eq + 1));
    const seen = out[name];
    out[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return out;
}

/** Parses a route's query with its spec: every parameter known, given once, well-formed. */
export function parseQuery<S extends QuerySpec>(spec: S, query: unknown): QueryValues<S> {
  const raw = (query ?? {}) as Record<string, unknown> & { [TOO_MANY_PAIRS]?: true };
  if (raw[TOO_MANY_PAIRS]) {
    throw new OverlayError(ErrorCode.UnknownParameter, `the query string holds more than ${MAX_QUERY_PAIRS} parameters; no route takes that many`);
  }
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(raw)) {
    const param = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
    if (!param) {
      const known = Object.keys(spec);
      const takes = known.length ? `it takes ${known.join(', ')}` : 'it takes none';
      throw new OverlayError(ErrorCode.UnknownParameter, `unknown query parameter ${JSON.stringify(name)}; ${takes}`, { field: name });
    }
    const value = raw[name];
    if (Array.isArray(value)) {
      throw new OverlayError(param.code, `query parameter ${name} is given ${value.length} times; give it once`, { field: name });
    }
    if (value instanceof MalformedQueryValue || typeof value !== 'string') {
      throw new OverlayError(ErrorCode.InvalidCharacter, `query parameter ${name} is not valid percent-encoded UTF-8`, { field: name });
    }
    const bad = forbiddenCharacter(value);
    if (bad) {
      throw new OverlayError(ErrorCode.InvalidCharacter, `query parameter ${name} holds ${bad.what} at position ${bad.index}`, { field: name });
    }
    out[name] = param.parse(value, name);
  }
  return out as QueryValues<S>;
}

const QUERY_PARAMS = 'overlay:query-params';

/** Declares the query parameters a route takes (none without it). */
export const QueryParams = (spec: QuerySpec): MethodDecorator => SetMetadata(QUERY_PARAMS, spec);

/** The spec a route handler declared, for the guard and for the OpenAPI check. */
export function querySpecOf(handler: object, reflector = new Reflector()): QuerySpec {
  return reflector.get<QuerySpec | undefined>(QUERY_PARAMS, handler as () => unknown) ?? {};
}

/** Applied to every route (APP_GUARD): refuses a query its route does not take. */
@Injectable()
export class QueryGuard implements CanActivate {
  /** Each handler's spec, read once (a declaration never changes): reflect-metadata cost every request about 1 µs. */
  private readonly specs = new WeakMap<object, QuerySpec>();

  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    let spec = this.specs.get(handler);
    if (spec === undefined) {
      spec = querySpecOf(handler, this.reflector);
      this.specs.set(handler, spec);
    }
    parseQuery(spec, context.switchToHttp().getRequest<FastifyRequest>().query);
    return true;
  }
}

/** OpenAPI `parameters` for a spec. */
export function openApiParameters(spec: QuerySpec): object[] {
  return Object.entries(spec).map(([name, param]) => ({ name, in: 'query', required: false, schema: param.schema, ...(param.description ? { description: param.description } : {}) }));
}

// Parameter kinds.

export function idParam(description: string): QueryParam<ResourceId> {
  return { code: ErrorCode.InvalidId, schema: { type: 'string', format: 'uuid' }, description, parse: (raw, name) => parseId(raw, name) };
}

/** A decimal integer within bounds; the message names them (`limit must be an integer between 1 and 1000`). */
export function integerParam(opts: { min: number; max: number; default?: number; unit?: string; description: string }): QueryParam<number> {
  const { min, max } = opts;
  return {
    code: ErrorCode.InvalidValue,
    schema: { type: 'integer', minimum: min, maximum: max, ...(opts.default === undefined ? {} : { default: opts.default }) },
    description: opts.description,
    parse(raw, name) {
      if (!/^\d{1,10}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
        throw new OverlayError(ErrorCode.InvalidValue, `${name} must be ${opts.unit ?? 'an integer'} between ${min} and ${max}`, { field: name });
      }
      return Number(raw);
    },
  };
}

export function enumParam<T extends string>(values: readonly T[], description: string): QueryParam<T> {
  return {
    code: ErrorCode.InvalidValue,
    schema: { type: 'string', enum: values },
    description,
    parse(raw, name) {
      if (!(values as readonly string[]).includes(raw)) {
        throw new OverlayError(ErrorCode.InvalidValue, `${name} must be ${values.map((v) => JSON.stringify(v)).join(' or ')}`, { field: name });
      }
      return raw as T;
    },
  };
}

/** A string matching a pattern (the body schema's rule for the same field). */
export function stringParam(opts: { min: number; max: number; pattern: RegExp; description: string }): QueryParam<string> {
  return {
    code: ErrorCode.InvalidValue,
    schema: { type: 'string', minLength: opts.min, maxLength: opts.max, pattern: opts.pattern.source },
    description: opts.description,
    parse(raw, name) {
      if (raw.length < opts.min || raw.length > opts.max || !opts.pattern.test(raw)) {
        throw new OverlayError(ErrorCode.InvalidValue, `${name} must be a string of ${opts.min}-${opts.max} characters matching ${opts.pattern.source}`, { field: name });
      }
      return raw;
    },
  };
}

/** An ISO 8601 time with its zone, read as ms. */
export function timeParam(description: string): QueryParam<number> {
  return {
    code: ErrorCode.InvalidValue,
    schema: { type: 'string', format: 'date-time' },
    description,
    parse: (raw, name) => parseIsoTime(raw, name),
  };
}
