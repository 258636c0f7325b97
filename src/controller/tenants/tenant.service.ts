import type { Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { notFound } from '../errors';
import { type ResourceId } from '../../common/values';
import { newId } from '../model/value-parsers';
import { defaultSecurityGroup } from '../model/security-group';
import type { Page, PageRequest } from '../store/page';
import type { Tenant } from '../model/tenant';
import { TenantRepository } from './tenant.repository';
import type { CreateTenant } from './tenant.schemas';

@Injectable()
export class TenantService {
  constructor(private readonly tenants: TenantRepository) {}

  async create(input: CreateTenant, actor: Actor): Promise<Tenant> {
    const now = new Date().toISOString();
    const id = newId();
    const group = defaultSecurityGroup(newId(), id, now);
    return this.tenants.create({ id, name: input.name, maxSegments: input.maxSegments ?? null, defaultSecurityGroupId: group.id, createdAt: now }, group, actor);
  }

  async get(id: ResourceId): Promise<Tenant> {
    const tenant = await this.tenants.get(id);
    if (!tenant) {
      throw notFound('tenant', id);
    }
    return tenant;
  }

  /** Every tenant, or (`only`: a tenant caller's) that one alone: a page of at most one. */
  async list(page: PageRequest, only: ResourceId | null = null): Promise<Page<Tenant>> {
    if (only === null) {
      return this.tenants.list(page);
    }
    const tenant = page.cursor === undefined || only > page.cursor ? await this.tenants.get(only) : undefined;
    return { items: tenant ? [tenant] : [], nextCursor: null };
  }

  /** Refused while the tenant still has segments or security groups besides its default, which goes with it. */
  async delete(id: ResourceId, actor: Actor): Promise<void> {
    await this.tenants.delete(id, actor);
  }
}
