import type { Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { ErrorCode, notFound, OverlayError } from '../errors';
import { type ResourceId } from '../../common/values';
import { newId } from '../model/value-parsers';
import type { Page, PageRequest } from '../store/page';
import { SecurityGroupRepository } from './security-group.repository';
import { defaultEgressRules, type SecurityGroup } from '../model/security-group';
import { normalizeRules } from './security-group.rules';
import type { CreateSecurityGroup, ReplaceSecurityGroup, UpdateSecurityGroup } from './security-group.schemas';

@Injectable()
export class SecurityGroupService {
  constructor(private readonly groups: SecurityGroupRepository) {}

  async create(input: CreateSecurityGroup, actor: Actor): Promise<SecurityGroup> {
    const now = new Date().toISOString();
    return this.groups.create({
      id: newId(),
      tenantId: input.tenantId,
      name: input.name,
      description: input.description ?? null,
      isDefault: false,
      rules: input.rules === undefined ? defaultEgressRules() : normalizeRules(input.rules),
      createdAt: now,
      updatedAt: now,
    }, actor);
  }

  /** PUT: name and rules replaced, description replaced (absent = none). */
  async replace(id: ResourceId, input: ReplaceSecurityGroup, actor: Actor): Promise<SecurityGroup> {
    return this.change(id, { name: input.name, description: input.description ?? null, rules: input.rules }, actor);
  }

  /** PATCH: only the fields given; `rules` replaces every rule. */
  async update(id: ResourceId, input: UpdateSecurityGroup, actor: Actor): Promise<SecurityGroup> {
    return this.change(id, input, actor);
  }

  /** Rules keep their ids where they are kept (see `normalizeRules`). Retries when the group changed concurrently. */
  private async change(id: ResourceId, input: UpdateSecurityGroup, actor: Actor): Promise<SecurityGroup> {
    for (;;) {
      const current = await this.read(id);
      if (current.isDefault && input.name !== undefined && input.name !== current.name) {
        throw new OverlayError(ErrorCode.SecurityGroupIsDefault, `security group ${id} is the default group of its tenant; it cannot be renamed`, { field: 'name' });
      }
      const next: SecurityGroup = {
        ...current,
        name: input.name ?? current.name,
        description: input.description === undefined ? current.description : input.description,
        rules: input.rules === undefined ? current.rules : normalizeRules(input.rules, current.rules),
        updatedAt: new Date().toISOString(),
      };
      if ((await this.groups.replace(current, next, actor)) >= 0) {
        return next;
      }
    }
  }

  async get(id: ResourceId): Promise<SecurityGroup> {
    return this.read(id);
  }

  private async read(id: string): Promise<SecurityGroup> {
    const group = await this.groups.get(id);
    if (!group) {
      throw notFound('securityGroup', id);
    }
    return group;
  }

  list(page: PageRequest, tenantId?: ResourceId): Promise<Page<SecurityGroup>> {
    return this.groups.list(page, tenantId);
  }

  /** Refused while in use (ports, or another group's remote-group rules) and for a live tenant's default group. */
  async delete(id: ResourceId, actor: Actor): Promise<void> {
    await this.groups.delete(id, actor);
  }
}
