import { crudPaths, str, type ApiDescription } from '../http/openapi';
import { PAGE_QUERY } from '../store/page';
import { createTenantSchema } from './tenant.schemas';

/** The routes of TenantController. */
export const tenantApi: ApiDescription = {
  paths: crudPaths('tenant', 'tenants', createTenantSchema.json, PAGE_QUERY),
  schemas: {
    tenant: { type: 'object', properties: { id: str, name: str, maxSegments: { type: 'integer', nullable: true }, defaultSecurityGroupId: str, createdAt: str } },
  },
};
