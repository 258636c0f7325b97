import { ROLES } from '../auth/principal';
import { crudPaths, json, nullableStr, ref, str, type ApiDescription } from '../http/openapi';
import { createTokenSchema, TOKEN_LIST_QUERY } from './token.schemas';

const tokenRecord = {
  type: 'object',
  properties: {
    id: str,
    name: str,
    role: { type: 'string', enum: [...ROLES] },
    tenantId: nullableStr,
    hostIds: { type: 'array', items: str, nullable: true },
    allowVniPinning: { type: 'boolean' },
    createdAt: str,
    expiresAt: nullableStr,
    createdBy: { type: 'object', properties: { tokenId: nullableStr, name: str } },
    lastUsedAt: { ...nullableStr, description: 'to the minute; null = never' },
  },
};

/** The routes of TokenController. */
export function tokenApi(): ApiDescription {
  const paths = crudPaths('token', 'tokens', createTokenSchema.json, TOKEN_LIST_QUERY);
  const create = paths['/v1/tokens'].post as Record<string, unknown>;
  create.description = 'The answer holds the token itself (`token`): it is shown this once; the controller keeps only its SHA-256.';
  create.responses = { ...(create.responses as object), '201': { description: 'created', ...json(ref('newToken')) } };
  return {
    paths,
    schemas: {
      token: tokenRecord,
      newToken: { ...tokenRecord, properties: { ...tokenRecord.properties, token: { type: 'string', description: 'the bearer token; shown once' } } },
    },
  };
}
