import { TEST_ACTOR } from '../../../test/support/records';
import { ErrorCode } from '../errors';
import { parseId } from '../model/value-parsers';
import type { SecurityGroup } from '../model/security-group';
import { expectOverlayError, mockOf } from '../../../test/support/mocks';
import { SecurityGroupRepository } from './security-group.repository';
import { createSecurityGroupSchema, replaceSecurityGroupSchema, updateSecurityGroupSchema } from './security-group.schemas';
import { SecurityGroupService } from './security-group.service';

const TENANT = parseId('01890a5d-ac96-774b-bcce-b302099a8057');
const ID = parseId('01890a5d-ac96-774b-bcce-b302099a8058');

const group = (fields: Partial<SecurityGroup> = {}): SecurityGroup => ({
  id: ID,
  tenantId: TENANT,
  name: 'web',
  description: 'old',
  isDefault: false,
  rules: [],
  createdAt: 't0',
  updatedAt: 't0',
  ...fields,
});

describe('SecurityGroupService', () => {
  it('gives a group created without rules the two egress rules allowing everything out', async () => {
    const groups = mockOf<SecurityGroupRepository>({ create: jest.fn(async (g) => g) });
    const created = await new SecurityGroupService(groups).create(createSecurityGroupSchema.parse({ tenantId: TENANT, name: 'web' }, ''), TEST_ACTOR);
    expect(created.rules.map((r) => [r.direction, r.ethertype, r.remoteCidr])).toEqual([
      ['egress', 'IPv4', '0.0.0.0/0'],
      ['egress', 'IPv6', '::/0'],
    ]);
    expect(created).toMatchObject({ description: null, isDefault: false });
  });

  it('keeps `rules: []` empty: nothing allowed', async () => {
    const groups = mockOf<SecurityGroupRepository>({ create: jest.fn(async (g) => g) });
    expect((await new SecurityGroupService(groups).create(createSecurityGroupSchema.parse({ tenantId: TENANT, name: 'web', rules: [] }, ''), TEST_ACTOR)).rules).toEqual([]);
  });

  it('refuses to rename a default group, naming the field, before writing', async () => {
    const groups = mockOf<SecurityGroupRepository>({ get: jest.fn(async () => group({ isDefault: true, name: 'default' })), replace: jest.fn() });
    await expectOverlayError(new SecurityGroupService(groups).update(ID, updateSecurityGroupSchema.parse({ name: 'other' }, ''), TEST_ACTOR), ErrorCode.SecurityGroupIsDefault, 'name');
    expect(groups.replace).not.toHaveBeenCalled();
  });

  it('replaces (PUT) the description with none when absent, and PATCH keeps it', async () => {
    const groups = mockOf<SecurityGroupRepository>({ get: jest.fn(async () => group()), replace: jest.fn(async () => 3) });
    const service = new SecurityGroupService(groups);
    expect((await service.replace(ID, replaceSecurityGroupSchema.parse({ name: 'web', rules: [] }, ''), TEST_ACTOR)).description).toBeNull();
    expect((await service.update(ID, updateSecurityGroupSchema.parse({ name: 'web2' }, ''), TEST_ACTOR)).description).toBe('old');
  });

  it('reads the group again and retries when it changed between the read and the write', async () => {
    const groups = mockOf<SecurityGroupRepository>({
      get: jest.fn().mockResolvedValueOnce(group()).mockResolvedValueOnce(group({ description: 'changed meanwhile' })),
      replace: jest.fn().mockResolvedValueOnce(-1).mockResolvedValueOnce(4),
    });
    const updated = await new SecurityGroupService(groups).update(ID, updateSecurityGroupSchema.parse({ name: 'web2' }, ''), TEST_ACTOR);
    expect(groups.replace).toHaveBeenCalledTimes(2);
    expect(updated).toMatchObject({ name: 'web2', description: 'changed meanwhile' });
  });

  it('answers SECURITY_GROUP_NOT_FOUND naming the id', async () => {
    const groups = mockOf<SecurityGroupRepository>({ get: jest.fn(async () => undefined) });
    await expectOverlayError(new SecurityGroupService(groups).get(ID), ErrorCode.SecurityGroupNotFound, 'id');
  });
});
