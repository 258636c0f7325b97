import { TEST_ACTOR } from '../../../test/support/records';
import type { ResourceId } from '../../common/values';
import { ErrorCode, OverlayError } from '../errors';
import { parseId } from '../model/value-parsers';
import type { RealizationService } from '../distribution/realization.service';
import type { HostRepository } from '../hosts/host.repository';
import type { Port } from '../model/port';
import type { Segment } from '../model/segment';
import type { SegmentRepository } from '../segments/segment.repository';
import type { MaterializedView } from '../store/materialized-view';
import { expectOverlayError, mockOf } from '../../../test/support/mocks';
import { portRecord } from '../../../test/support/records';
import { PortRepository } from './port.repository';
import { createPortSchema, updatePortSchema } from './port.schemas';
import { PortService } from './port.service';
import type { StrictTrunks } from '../audit/strict-trunks';

/** The tenant of `segment`, as a tenant caller's scope. */
const TENANT_1 = 'tenant-1' as ResourceId;
const SEGMENT = parseId('01890a5d-ac96-774b-bcce-b302099a8051');
const GROUP = parseId('01890a5d-ac96-774b-bcce-b302099a8052');
const PORT = parseId('01890a5d-ac96-774b-bcce-b302099a8053');
const segment: Segment = { id: SEGMENT, tenantId: 'tenant-1', name: 'web', vni: 5000, vlanId: null, cidr: '10.0.0.0/24', createdAt: 't0' };
const port = (fields: Partial<Port> = {}): Port => portRecord({ id: PORT, segmentId: SEGMENT, ...fields });

/** Strict VLAN trunks off, as by default. */
const OFF = { check: async () => undefined } as unknown as StrictTrunks;

/** A service whose view knows the segment, over the port repository given. */
function serviceWith(ports: PortRepository, realization = mockOf<RealizationService>({ realizationErrors: jest.fn(async () => new Map()) })): PortService {
  const view = { current: { segments: new Map([[SEGMENT, segment]]) } } as unknown as MaterializedView;
  return new PortService(ports, mockOf<SegmentRepository>({ getMany: jest.fn(async () => []) }), mockOf<HostRepository>({}), realization, view, OFF);
}
const create = (raw: Record<string, unknown>) => createPortSchema.parse({ segmentId: SEGMENT, ...raw }, '');

describe('PortService', () => {
  it('stores a new port with the segment tenant, a generated MAC and the security defaults, in one write', async () => {
    const ports = mockOf<PortRepository>({ createMany: jest.fn(async () => 9) });
    const created = await serviceWith(ports).create(create({ ips: ['10.0.0.5'] }), TEST_ACTOR);
    // A vm port's role is shown, not stored (absent = vm); so is a tap name not given (null).
    const { role, tapName, ...stored } = created;
    expect(role).toBe('vm');
    expect(tapName).toBeNull();
    expect(ports.createMany).toHaveBeenCalledWith([stored], TEST_ACTOR);
    expect(created).toMatchObject({ segmentId: SEGMENT, tenantId: 'tenant-1', ips: ['10.0.0.5'], hostId: null, vmId: null, securityGroupIds: [], portSecurity: true, allowedAddressPairs: [], migration: null });
    expect(created.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  });

  it('stores an analyzer port with its role and without port security, and refuses port security on one', async () => {
    const ports = mockOf<PortRepository>({ createMany: jest.fn(async () => 9) });
    const created = await serviceWith(ports).create(create({ role: 'analyzer', tapName: 'vnet4' }), TEST_ACTOR);
    expect(ports.createMany).toHaveBeenCalledWith([created], TEST_ACTOR);
    expect(created.tapName).toBe('vnet4');
    expect(created).toMatchObject({ role: 'analyzer', portSecurity: false, securityGroupIds: [], allowedAddressPairs: [] });
    await expectOverlayError(serviceWith(ports).create(create({ role: 'analyzer', portSecurity: true }), TEST_ACTOR), ErrorCode.PortSecurityConflict, 'portSecurity');
    await expectOverlayError(serviceWith(ports).create(create({ role: 'analyzer', securityGroupIds: [GROUP] }), TEST_ACTOR), ErrorCode.PortSecurityConflict, 'securityGroupIds');
    const replace = jest.fn(async () => 10);
    const analyzer = mockOf<PortRepository>({ get: jest.fn(async () => port({ role: 'analyzer', portSecurity: false })), replace });
    await expectOverlayError(serviceWith(analyzer).update(PORT, updatePortSchema.parse({ portSecurity: true }, ''), TEST_ACTOR), ErrorCode.PortSecurityConflict, 'portSecurity');
    expect(await serviceWith(analyzer).update(PORT, updatePortSchema.parse({ vmId: 'probe' }, ''), TEST_ACTOR)).toMatchObject({ role: 'analyzer', portSecurity: false, vmId: 'probe' });
    expect(() => updatePortSchema.parse({ role: 'vm' }, '')).toThrow('unknown field role');
  });

  it('names the field of a single create without the batch path (ips[1], not ports[0].ips[1])', async () => {
    const ports = mockOf<PortRepository>({ createMany: jest.fn() });
    await expectOverlayError(serviceWith(ports).create(create({ ips: ['10.0.0.5', '10.0.0.5'] }), TEST_ACTOR), ErrorCode.DuplicateIp, 'ips[1]');
    await expectOverlayError(serviceWith(ports).create(create({ ips: ['10.9.0.5'] }), TEST_ACTOR), ErrorCode.IpOutsideCidr, 'ips[0]');
    expect(ports.createMany).not.toHaveBeenCalled();
  });

  it('names the port in a batch: ports[i].field', async () => {
    const ports = mockOf<PortRepository>({ createMany: jest.fn() });
    await expectOverlayError(serviceWith(ports).createBatch([create({}), create({ portSecurity: false, securityGroupIds: [GROUP] })], TEST_ACTOR), ErrorCode.PortSecurityConflict, 'ports[1].securityGroupIds');
  });

  it('draws another MAC when a generated one collides, but reports a collision of a MAC the client chose', async () => {
    const collision = () => new OverlayError(ErrorCode.DuplicateMac, 'taken', { field: 'ports[0].mac' });
    const generated = mockOf<PortRepository>({ createMany: jest.fn().mockRejectedValueOnce(collision()).mockResolvedValueOnce(3) });
    await serviceWith(generated).create(create({}), TEST_ACTOR);
    expect(generated.createMany).toHaveBeenCalledTimes(2);
    const chosen = mockOf<PortRepository>({ createMany: jest.fn().mockRejectedValue(collision()) });
    await expectOverlayError(serviceWith(chosen).create(create({ mac: '02:00:00:00:00:09' }), TEST_ACTOR), ErrorCode.DuplicateMac, 'mac');
    expect(chosen.createMany).toHaveBeenCalledTimes(1);
  });

  it('names portSecurity when turning it off conflicts with the groups the port already has', async () => {
    const ports = mockOf<PortRepository>({ get: jest.fn(async () => port({ securityGroupIds: [GROUP] })), replace: jest.fn() });
    await expectOverlayError(serviceWith(ports).update(PORT, updatePortSchema.parse({ portSecurity: false }, ''), TEST_ACTOR), ErrorCode.PortSecurityConflict, 'portSecurity');
    expect(ports.replace).not.toHaveBeenCalled();
  });

  it('binds by compare-and-set on the record as stored, retrying when it changed meanwhile', async () => {
    const first = port();
    const second = port({ vmId: 'vm-1' });
    const ports = mockOf<PortRepository>({ get: jest.fn().mockResolvedValueOnce(first).mockResolvedValueOnce(second), replace: jest.fn().mockResolvedValueOnce(-1).mockResolvedValueOnce(12) });
    const hostId = parseId('01890a5d-ac96-774b-bcce-b302099a8054');
    const bound = await serviceWith(ports).update(PORT, updatePortSchema.parse({ hostId }, ''), TEST_ACTOR);
    expect(ports.replace.mock.calls.map((call) => call[0])).toEqual([first, second]);
    expect(bound).toMatchObject({ hostId, vmId: 'vm-1' });
    expect(bound).not.toHaveProperty('realized');
  });

  it('with a wait, answers with realized as the realization of the write revision says', async () => {
    const realization = mockOf<RealizationService>({ waitForRevision: jest.fn(async () => false) });
    const ports = mockOf<PortRepository>({ delete: jest.fn(async () => 21) });
    expect(await serviceWith(ports, realization).delete(PORT, TEST_ACTOR, { timeoutMs: 50 })).toEqual({ id: PORT, realized: false });
    expect(realization.waitForRevision).toHaveBeenCalledWith(21, 50);
  });

  it("answers a tenant's port on another tenant's segment as on a missing segment, at the same point of the checks", async () => {
    const foreign = parseId('01890a5d-ac96-774b-bcce-b302099a8055');
    const missing = parseId('01890a5d-ac96-774b-bcce-b302099a8056');
    const ports = mockOf<PortRepository>({ createMany: jest.fn(async () => 4) });
    const view = { current: { segments: new Map([[SEGMENT, segment], [foreign, { ...segment, id: foreign, tenantId: 'tenant-2' }]]) } } as unknown as MaterializedView;
    const service = new PortService(ports, mockOf<SegmentRepository>({ getMany: jest.fn(async (ids: string[]) => ids.map(() => undefined)) }), mockOf<HostRepository>({}), mockOf<RealizationService>({ realizationErrors: jest.fn(async () => new Map()) }), view, OFF);
    const answer = async (work: Promise<unknown>) => work.then(() => 'created', (err: OverlayError) => err.toJSON());
    for (const other of [foreign, missing]) {
      const named = (text: string) => text.replace(other, '<id>');
      const single = await answer(service.create(create({ segmentId: other }), TEST_ACTOR, undefined, TENANT_1));
      expect(single).toEqual({ code: ErrorCode.SegmentNotFound, message: `no segment ${other}`, field: 'segmentId' });
      const second = (await answer(service.createBatch([create({}), create({ segmentId: other })], TEST_ACTOR, undefined, TENANT_1))) as { message: string };
      expect({ ...second, message: named(second.message) }).toEqual({ code: ErrorCode.SegmentNotFound, message: 'no segment <id>', field: 'ports[1].segmentId' });
      // An earlier port's own mistake is reported first, whichever the later segment is.
      expect(await answer(service.createBatch([create({ ips: ['10.9.0.1'] }), create({ segmentId: other })], TEST_ACTOR, undefined, TENANT_1))).toMatchObject({ code: ErrorCode.IpOutsideCidr, field: 'ports[0].ips[0]' });
    }
    // Unconfined (an operator), the segment is any tenant's.
    await service.create(create({ segmentId: foreign }), TEST_ACTOR);
    expect(ports.createMany).toHaveBeenCalledTimes(1);
  });

  it("lists a tenant's ports from the view, filtered with the other filters, paged over its own ports only", async () => {
    const other = parseId('01890a5d-ac96-774b-bcce-b302099a8057');
    const records = [
      port({ id: parseId('01890a5d-ac96-774b-bcce-b302099a8061'), tenantId: 'tenant-1' }),
      port({ id: parseId('01890a5d-ac96-774b-bcce-b302099a8062'), tenantId: 'tenant-2', segmentId: other }),
      port({ id: parseId('01890a5d-ac96-774b-bcce-b302099a8063'), tenantId: 'tenant-1' }),
      port({ id: parseId('01890a5d-ac96-774b-bcce-b302099a8064'), tenantId: 'tenant-2', segmentId: other }),
    ];
    const view = { current: { ports: new Map(records.map((p) => [p.id, p])) }, catchUp: jest.fn(async () => undefined) } as unknown as MaterializedView;
    const ports = mockOf<PortRepository>({ list: jest.fn(), getMany: jest.fn(async (ids: string[]) => records.filter((p) => ids.includes(p.id))) });
    const service = new PortService(ports, mockOf<SegmentRepository>({}), mockOf<HostRepository>({}), mockOf<RealizationService>({ realizationErrors: jest.fn(async () => new Map()) }), view, OFF);
    const first = await service.list({ limit: 1 }, { tenantId: TENANT_1 });
    expect(first.items.map((p) => p.id)).toEqual([records[0].id]);
    expect(first.nextCursor).toBe(records[0].id);
    const rest = await service.list({ limit: 1, cursor: first.nextCursor! }, { tenantId: TENANT_1 });
    expect(rest).toEqual({ items: [expect.objectContaining({ id: records[2].id })], nextCursor: null });
    expect(await service.list({ limit: 10 }, { tenantId: TENANT_1, segmentId: other })).toEqual({ items: [], nextCursor: null });
    expect(ports.list).not.toHaveBeenCalled();
  });

  it('answers PORT_NOT_FOUND naming the id', async () => {
    const ports = mockOf<PortRepository>({ get: jest.fn(async () => undefined) });
    await expectOverlayError(serviceWith(ports).update(PORT, updatePortSchema.parse({}, ''), TEST_ACTOR), ErrorCode.PortNotFound, 'id');
  });
});
