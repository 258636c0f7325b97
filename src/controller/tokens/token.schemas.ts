import { ErrorCode, OverlayError } from '../errors';
import { array, boolean, custom, nullable, object, oneOf, optional, type Parsed } from '../http/schema';
import { enumParam, idParam, type QuerySpec } from '../http/query';
import { ROLES } from '../auth/principal';
import { parseId, parseIsoTime } from '../model/value-parsers';
import { PAGE_QUERY } from '../store/page';
import { nameSchema } from '../tenants/tenant.schemas';

const idSchema = custom((raw, path) => parseId(raw, path), { type: 'string', format: 'uuid' }, [ErrorCode.InvalidId]);

/** An ISO 8601 time in the future (with its zone: `Z` or `+hh:mm`). */
const expirySchema = custom(
  (raw, path) => {
    const ms = parseIsoTime(raw, path);
    if (ms <= Date.now()) {
      throw new OverlayError(ErrorCode.InvalidValue, `${path} must be in the future`, { field: path });
    }
    return new Date(ms).toISOString();
  },
  { type: 'string', format: 'date-time', description: 'after this the token authenticates nothing; absent or null = never' },
  [ErrorCode.InvalidValue],
);

export const createTokenSchema = object(
  {
    name: nameSchema,
    role: oneOf(ROLES, 'what the token may do (see docs/api.md, Tokens and roles)'),
    tenantId: optional(nullable(idSchema)),
    hostIds: optional(nullable(array(idSchema, { min: 1, max: 1000 }))),
    allowVniPinning: optional(boolean()),
    expiresAt: optional(nullable(expirySchema)),
  },
  'A token: a `tenant` token needs `tenantId` (and only it takes `allowVniPinning`); only a `migration-hook` token takes `hostIds`.',
);
export type CreateToken = Parsed<typeof createTokenSchema>;

export const TOKEN_LIST_QUERY = {
  ...PAGE_QUERY,
  role: enumParam(ROLES, 'only tokens of this role'),
  tenantId: idParam('only tokens confined to this tenant'),
} satisfies QuerySpec;
