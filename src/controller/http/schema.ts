import { ErrorCode, OverlayError } from '../errors';
import { forbiddenCharacter } from './text';

/**
 * Tiny validation combinators. One declaration per request body gives both the parser (which
 * throws `OverlayError` naming the offending field) and the JSON Schema published at `/docs`,
 * so the documentation cannot drift from what the API accepts.
 *
 * Every string of a body enters through `text` (the only combinators that take strings call
 * it), so no field can carry a lone surrogate or a control character (see `text.ts`).
 */
export type JsonSchema = Record<string, unknown>;

export interface Schema<T> {
  /** Returns the parsed value or throws `OverlayError` with `field` set to `path`. */
  parse(value: unknown, path: string): T;
  readonly json: JsonSchema;
  readonly optional: boolean;
  /** Every code `parse` can refuse with: the OpenAPI document lists them on the operations that take this body. */
  readonly codes: readonly ErrorCode[];
}

/** What `checkText` refuses with. */
const TEXT_CODES = [ErrorCode.InvalidType, ErrorCode.InvalidCharacter] as const;

/** The codes of several schemas, each once. */
export const codesOf = (...lists: (readonly ErrorCode[])[]): ErrorCode[] => [...new Set(lists.flat())];

type Infer<S> = S extends Schema<infer T> ? T : never;

export const fieldPath = (parent: string, key: string | number): string =>
  typeof key === 'number' ? `${parent}[${key}]` : parent ? `${parent}.${key}` : key;

function typeName(value: unknown): string {
  if (value === null) {
    return 'null';
  }
  return Array.isArray(value) ? 'array' : typeof value;
}

function invalidType(path: string, expected: string, value: unknown): OverlayError {
  return new OverlayError(ErrorCode.InvalidType, `${path || 'body'} must be ${expected}, got ${typeName(value)}`, {
    field: path || undefined,
  });
}

/** A string holding no forbidden character (INVALID_CHARACTER naming the field otherwise). */
export function checkText(value: unknown, path: string): string {
  if (typeof value !== 'string') {
    throw invalidType(path, 'a string', value);
  }
  const bad = forbiddenCharacter(value);
  if (bad) {
    throw new OverlayError(ErrorCode.InvalidCharacter, `${path || 'body'} holds ${bad.what} at position ${bad.index}; text must be well-formed Unicode without control characters`, {
      field: path || undefined,
    });
  }
  return value;
}

export function string(opts: { min?: number; max?: number; pattern?: RegExp; code?: ErrorCode; description?: string } = {}): Schema<string> {
  const { min = 0, max = 1024, pattern, code = ErrorCode.InvalidValue } = opts;
  return {
    optional: false,
    codes: [...TEXT_CODES, code],
    json: { type: 'string', minLength: min, maxLength: max, ...(pattern ? { pattern: pattern.source } : {}), ...(opts.description ? { description: opts.description } : {}) },
    parse(raw, path) {
      const value = checkText(raw, path);
      if (value.length < min || value.length > max || (pattern && !pattern.test(value))) {
        const shape = pattern ? ` matching ${pattern.source}` : '';
        throw new OverlayError(code, `${path} must be a string of ${min}-${max} characters${shape}`, { field: path });
      }
      return value;
    },
  };
}

export function integer(opts: { min: number; max: number; code?: ErrorCode; description?: string }): Schema<number> {
  const { min, max, code = ErrorCode.InvalidValue } = opts;
  return {
    optional: false,
    codes: [ErrorCode.InvalidType, code],
    json: { type: 'integer', minimum: min, maximum: max, ...(opts.description ? { description: opts.description } : {}) },
    parse(value, path) {
      if (typeof value !== 'number') {
        throw invalidType(path, 'an integer', value);
      }
      if (!Number.isInteger(value)) {
        throw invalidType(path, 'an integer', value);
      }
      if (value < min || value > max) {
        throw new OverlayError(code, `${path} must be between ${min} and ${max}, got ${value}`, { field: path });
      }
      return value;
    },
  };
}

export function boolean(): Schema<boolean> {
  return {
    optional: false,
    codes: [ErrorCode.InvalidType],
    json: { type: 'boolean' },
    parse(value, path) {
      if (typeof value !== 'boolean') {
        throw invalidType(path, 'a boolean', value);
      }
      return value;
    },
  };
}

export function array<T>(item: Schema<T>, opts: { max: number; min?: number; code?: ErrorCode }): Schema<T[]> {
  const { max, min = 0, code = ErrorCode.InvalidValue } = opts;
  return {
    optional: false,
    codes: codesOf([ErrorCode.InvalidType, code], item.codes),
    json: { type: 'array', items: item.json, minItems: min, maxItems: max },
    parse(value, path) {
      if (!Array.isArray(value)) {
        throw invalidType(path, 'an array', value);
      }
      if (value.length < min || value.length > max) {
        throw new OverlayError(code, `${path || 'body'} must hold ${min}-${max} items, got ${value.length}`, {
          field: path || undefined,
        });
      }
      return value.map((v, i) => item.parse(v, fieldPath(path, i)));
    },
  };
}

export function optional<T>(inner: Schema<T>): Schema<T | undefined> {
  return {
    optional: true,
    codes: inner.codes,
    json: inner.json,
    parse(value, path) {
      return value === undefined ? undefined : inner.parse(value, path);
    },
  };
}

/** `null` is accepted and kept (used by PATCH bodies to clear a field). */
export function nullable<T>(inner: Schema<T>): Schema<T | null> {
  return {
    optional: inner.optional,
    codes: inner.codes,
    json: { anyOf: [inner.json, { type: 'null' }] },
    parse(value, path) {
      return value === null ? null : inner.parse(value, path);
    },
  };
}

/**
 * A value parsed by a domain parser (`parseMac`, `parseIp`...), documented as a string; `codes`:
 * those the parser refuses with (`parseMac`: INVALID_MAC, MULTICAST_MAC).
 */
export function custom<T>(parseValue: (raw: string, path: string) => T, json: JsonSchema, codes: readonly ErrorCode[]): Schema<T> {
  return {
    optional: false,
    codes: codesOf(TEXT_CODES, codes),
    json,
    parse(value, path) {
      return parseValue(checkText(value, path), path);
    },
  };
}

type Shape = Record<string, Schema<unknown>>;
type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

/** A JSON object with exactly these fields: unknown fields are refused (a typo must not pass silently). */
export function object<S extends Shape>(shape: S, description?: string): Schema<ObjectOf<S>> {
  const keys = Object.keys(shape);
  const schemas = keys.map((k) => shape[k]);
  const required = keys.filter((k) => !shape[k].optional);
  return {
    optional: false,
    codes: codesOf([ErrorCode.InvalidType, ErrorCode.UnknownField], required.length ? [ErrorCode.MissingField] : [], ...Object.values(shape).map((s) => s.codes)),
    json: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(Object.entries(shape).map(([k, s]) => [k, s.json])),
      ...(required.length ? { required } : {}),
      ...(description ? { description } : {}),
    },
    parse(value, path) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw invalidType(path, 'an object', value);
      }
      const record = value as Record<string, unknown>;
      for (const key in record) {
        if (Object.prototype.hasOwnProperty.call(record, key) && !Object.prototype.hasOwnProperty.call(shape, key)) {
          throw new OverlayError(ErrorCode.UnknownField, `unknown field ${fieldPath(path, key)}`, {
            field: fieldPath(path, key),
          });
        }
      }
      // Allocates only the object it returns and the paths of the fields given (a batch parses
      // 10,000 objects; see docs/benchmarks.md): an optional field left out is not parsed.
      const out: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        const schema = schemas[i];
        const raw = Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
        if (raw === undefined) {
          if (schema.optional) {
            continue;
          }
          throw new OverlayError(ErrorCode.MissingField, `${fieldPath(path, key)} is required`, {
            field: fieldPath(path, key),
          });
        }
        const parsed = schema.parse(raw, fieldPath(path, key));
        if (parsed !== undefined) {
          out[key] = parsed;
        }
      }
      return out as ObjectOf<S>;
    },
  };
}

export type Parsed<S> = Infer<S>;

/** One of a fixed set of strings. */
export function oneOf<T extends string>(values: readonly T[], description?: string): Schema<T> {
  return {
    optional: false,
    codes: [...TEXT_CODES, ErrorCode.InvalidValue],
    json: { type: 'string', enum: values, ...(description ? { description } : {}) },
    parse(raw, path) {
      const value = checkText(raw, path);
      if (!(values as readonly string[]).includes(value)) {
        throw new OverlayError(ErrorCode.InvalidValue, `${path} must be one of ${values.join(', ')}`, { field: path });
      }
      return value as T;
    },
  };
}

/** A value given either as a string or as a number, each with its own schema (a protocol by name or by number). */
export function stringOrNumber<A, B>(ifString: Schema<A>, ifNumber: Schema<B>, description?: string): Schema<A | B> {
  return {
    optional: false,
    codes: codesOf([ErrorCode.InvalidType], ifString.codes, ifNumber.codes),
    json: { anyOf: [ifString.json, ifNumber.json], ...(description ? { description } : {}) },
    parse(value, path) {
      if (typeof value === 'string') {
        return ifString.parse(value, path);
      }
      if (typeof value === 'number') {
        return ifNumber.parse(value, path);
      }
      throw invalidType(path, 'a string or a number', value);
    },
  };
}
