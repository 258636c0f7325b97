import { ErrorCode } from '../errors';
import { crudPaths, int, orNull, record, str, type ApiDescription } from '../http/openapi';
import { PAGE_QUERY } from '../store/page';
import { createTenantSchema } from './tenant.schemas';

/** The routes of TenantController. */
export const tenantApi: ApiDescription = {
  paths: crudPaths({
    kind: 'tenant',
    plural: 'tenants',
    create: createTenantSchema,
    listQuery: PAGE_QUERY,
    errors: {
      create: [ErrorCode.TenantNameTaken],
      get: [ErrorCode.TenantNotFound],
      delete: [ErrorCode.TenantNotFound, ErrorCode.TenantHasSegments, ErrorCode.TenantHasMirrorSessions, ErrorCode.TenantHasSecurityGroups],
    },
  }),
  schemas: {
    tenant: record(
      { id: str, name: str, maxSegments: { ...orNull(int), description: 'segment quota; null = none' }, defaultSecurityGroupId: str, createdAt: str },
      { example: { id: '01a21ab0-1e44-7c3e-9d2a-5b8e2f0c1d4e', name: 'acme', maxSegments: null, defaultSecurityGroupId: '01a21ab0-1e45-7f00-8a11-0c2d3e4f5a6b', createdAt: '2026-12-05T01:25:22.462Z' } },
    ),
  },
};
