import { ROLES } from '../auth/principal';
import { ErrorCode } from '../errors';
import { bool, crudPaths, json, nullableStr, orNull, record, ref, str, strings, type ApiDescription } from '../http/openapi';
import { createTokenSchema, TOKEN_LIST_QUERY } from './token.schemas';

const tokenProperties = {
  id: str,
  name: str,
  role: { type: 'string', enum: [...ROLES] },
  tenantId: { ...nullableStr, description: 'the tenant a tenant token is confined to' },
  hostIds: { ...orNull(strings), description: 'the hosts a migration-hook token may migrate from or to; null = any' },
  allowVniPinning: bool,
  createdAt: str,
  expiresAt: { ...nullableStr, description: 'null = never' },
  createdBy: record({ tokenId: { ...nullableStr, description: 'null for the bootstrap token' }, name: str }),
  lastUsedAt: { ...nullableStr, description: 'to the minute; null = never' },
};

/** The routes of TokenController. */
export function tokenApi(): ApiDescription {
  const paths = crudPaths({
    kind: 'token',
    plural: 'tokens',
    create: createTokenSchema,
    listQuery: TOKEN_LIST_QUERY,
    errors: {
      create: [ErrorCode.MissingField, ErrorCode.InvalidValue, ErrorCode.TenantNotFound, ErrorCode.HostNotFound],
      get: [ErrorCode.TokenNotFound],
      delete: [ErrorCode.TokenNotFound, ErrorCode.LastAdminToken],
    },
  });
  const create = paths['/v1/tokens'].post!;
  create.description = 'The answer holds the token itself (`token`): it is shown this once; the controller keeps only its SHA-256.';
  create.responses = { '201': { description: 'created', ...json(ref('newToken')) } };
  return {
    paths,
    schemas: {
      token: record(tokenProperties),
      newToken: record({ ...tokenProperties, token: { type: 'string', description: 'the bearer token; shown once' } }),
    },
  };
}
