import { ErrorCode } from '../errors';
import { integer, nullable, object, optional, string, type Parsed } from '../http/schema';
import { NAME_PATTERN } from '../model/value-parsers';

export const nameSchema = string({ min: 1, max: 63, pattern: NAME_PATTERN, code: ErrorCode.InvalidName, description: 'letters, digits, `.`, `_`, `-`; 1-63 characters' });

export const createTenantSchema = object(
  {
    name: nameSchema,
    maxSegments: optional(nullable(integer({ min: 0, max: 1_000_000, description: 'segment quota; null or absent = none' }))),
  },
  'A tenant; names are unique per deployment.',
);
export type CreateTenant = Parsed<typeof createTenantSchema>;
