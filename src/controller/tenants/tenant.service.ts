import { Injectable } from '@nestjs/common';
import { ErrorCode, OverlayError } from '../../common/errors';
import { newId, parseId } from '../../common/values';
import { parseBody } from '../http/body';
import type { Page, PageRequest } from '../store/page';
import type { Tenant } from './tenant.model';
import { TenantRepository } from './tenant.repository';
import { createTenantSchema } from './tenant.schemas';

@Injectable()
export class TenantService {
  constructor(private readonly tenants: TenantRepository) {}

  async create(body: unknown): Promise<Tenant> {
    const input = parseBody(createTenantSchema, body);
    return this.tenants.create({ id: newId(), name: input.name, maxSegments: input.maxSegments ?? null, createdAt: new Date().toISOString() });
  }

  async get(rawId: string): Promise<Tenant> {
    const id = parseId(rawId);
    const tenant = await this.tenants.get(id);
    if (!tenant) {
      throw new OverlayError(ErrorCode.TenantNotFound, `no tenant ${id}`, { field: 'id' });
    }
    return tenant;
  }

  list(page: PageRequest): Promise<Page<Tenant>> {
    return this.tenants.list(page);
  }

  /** Refused while the tenant still has segments. */
  async delete(rawId: string): Promise<void> {
    await this.tenants.delete(parseId(rawId));
  }
}
