import { ErrorCode, OverlayError } from '../../common/errors';
import type { Schema } from '../../common/schema';

/** Parses a request body with its schema; a missing body is reported as such, not as a type error. */
export function parseBody<T>(schema: Schema<T>, body: unknown): T {
  if (body === undefined || body === null) {
    throw new OverlayError(ErrorCode.InvalidJson, 'a JSON body is required');
  }
  return schema.parse(body, '');
}
