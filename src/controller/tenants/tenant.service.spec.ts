import { TEST_ACTOR } from '../../../test/support/records';
import { ErrorCode } from '../errors';
import { parseId } from '../model/value-parsers';
import { expectOverlayError, mockOf } from '../../../test/support/mocks';
import { TenantRepository } from './tenant.repository';
import { createTenantSchema } from './tenant.schemas';
import { TenantService } from './tenant.service';

const ID = parseId('01890a5d-ac96-774b-bcce-b302099a8057');

describe('TenantService', () => {
  it('stores a tenant with its default security group, whose id the tenant names', async () => {
    const tenants = mockOf<TenantRepository>({ create: jest.fn(async (tenant) => tenant) });
    const tenant = await new TenantService(tenants).create(createTenantSchema.parse({ name: 'acme' }, ''), TEST_ACTOR);
    const [stored, group] = tenants.create.mock.calls[0];
    expect(stored).toEqual({ id: tenant.id, name: 'acme', maxSegments: null, defaultSecurityGroupId: group.id, createdAt: expect.any(String) });
    expect(group).toMatchObject({ tenantId: tenant.id, name: 'default', isDefault: true, createdAt: stored.createdAt });
    expect(group.rules.filter((r: { remoteGroupId: string | null }) => r.remoteGroupId === group.id)).toHaveLength(2);
  });

  it('keeps a quota it is given', async () => {
    const tenants = mockOf<TenantRepository>({ create: jest.fn(async (tenant) => tenant) });
    expect((await new TenantService(tenants).create(createTenantSchema.parse({ name: 'acme', maxSegments: 3 }, ''), TEST_ACTOR)).maxSegments).toBe(3);
  });

  it('answers TENANT_NOT_FOUND naming the id when there is no such tenant', async () => {
    const tenants = mockOf<TenantRepository>({ get: jest.fn(async () => undefined) });
    await expectOverlayError(new TenantService(tenants).get(ID), ErrorCode.TenantNotFound, 'id');
    expect(tenants.get).toHaveBeenCalledWith(ID);
  });

  it("lists a tenant caller's own tenant alone, as one page, honouring the cursor", async () => {
    const acme = { id: ID, name: 'acme', maxSegments: null, defaultSecurityGroupId: 'g', createdAt: 't0' };
    const tenants = mockOf<TenantRepository>({ get: jest.fn(async () => acme), list: jest.fn() });
    const service = new TenantService(tenants);
    expect(await service.list({ limit: 1 }, ID)).toEqual({ items: [acme], nextCursor: null });
    expect(await service.list({ limit: 5, cursor: ID }, ID)).toEqual({ items: [], nextCursor: null });
    expect(tenants.list).not.toHaveBeenCalled();
    tenants.get.mockResolvedValueOnce(undefined);
    expect(await service.list({ limit: 5 }, ID)).toEqual({ items: [], nextCursor: null });
  });

  it('leaves the deletion guards to the store', async () => {
    const tenants = mockOf<TenantRepository>({ delete: jest.fn(async () => 7) });
    await new TenantService(tenants).delete(ID, TEST_ACTOR);
    expect(tenants.delete).toHaveBeenCalledWith(ID, TEST_ACTOR);
  });
});
