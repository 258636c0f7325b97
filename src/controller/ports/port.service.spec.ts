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

const SEGMENT = parseId('01890a5d-ac96-774b-bcce-b302099a8051');
const GROUP = parseId('01890a5d-ac96-774b-bcce-b302099a8052');
const PORT = parseId('01890a5d-ac96-774b-bcce-b302099a8053');
const segment: Segment = { id: SEGMENT, tenantId: 'tenant-1', name: 'web', vni: 5000, vlanId: null, cidr: '10.0.0.0/24', createdAt: 't0' };
const port = (fields: Partial<Port> = {}): Port => portRecord({ id: PORT, segmentId: SEGMENT, ...fields });

/** A service whose view knows the segment, over the port repository given. */
function serviceWith(ports: PortRepository, realization = mockOf<RealizationService>({})): PortService {
  const view = { current: { segments: new Map([[SEGMENT, segment]]) } } as unknown as MaterializedView;
  return new PortService(ports, mockOf<SegmentRepository>({ getMany: jest.fn(async () => []) }), mockOf<HostRepository>({}), realization, view);
}
const create = (raw: Record<string, unknown>) => createPortSchema.parse({ segmentId: SEGMENT, ...raw }, '');

describe('PortService', () => {
  it('stores a new port with the segment tenant, a generated MAC and the security defaults, in one write', async () => {
    const ports = mockOf<PortRepository>({ createMany: jest.fn(async () => 9) });
    const created = await serviceWith(ports).create(create({ ips: ['10.0.0.5'] }));
    expect(ports.createMany).toHaveBeenCalledWith([created]);
    expect(created).toMatchObject({ segmentId: SEGMENT, tenantId: 'tenant-1', ips: ['10.0.0.5'], hostId: null, vmId: null, securityGroupIds: [], portSecurity: true, allowedAddressPairs: [], migration: null });
    expect(created.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  });

  it('names the field of a single create without the batch path (ips[1], not ports[0].ips[1])', async () => {
    const ports = mockOf<PortRepository>({ createMany: jest.fn() });
    await expectOverlayError(serviceWith(ports).create(create({ ips: ['10.0.0.5', '10.0.0.5'] })), ErrorCode.DuplicateIp, 'ips[1]');
    await expectOverlayError(serviceWith(ports).create(create({ ips: ['10.9.0.5'] })), ErrorCode.IpOutsideCidr, 'ips[0]');
    expect(ports.createMany).not.toHaveBeenCalled();
  });

  it('names the port in a batch: ports[i].field', async () => {
    const ports = mockOf<PortRepository>({ createMany: jest.fn() });
    await expectOverlayError(serviceWith(ports).createBatch([create({}), create({ portSecurity: false, securityGroupIds: [GROUP] })]), ErrorCode.PortSecurityConflict, 'ports[1].securityGroupIds');
  });

  it('draws another MAC when a generated one collides, but reports a collision of a MAC the client chose', async () => {
    const collision = () => new OverlayError(ErrorCode.DuplicateMac, 'taken', { field: 'ports[0].mac' });
    const generated = mockOf<PortRepository>({ createMany: jest.fn().mockRejectedValueOnce(collision()).mockResolvedValueOnce(3) });
    await serviceWith(generated).create(create({}));
    expect(generated.createMany).toHaveBeenCalledTimes(2);
    const chosen = mockOf<PortRepository>({ createMany: jest.fn().mockRejectedValue(collision()) });
    await expectOverlayError(serviceWith(chosen).create(create({ mac: '02:00:00:00:00:09' })), ErrorCode.DuplicateMac, 'mac');
    expect(chosen.createMany).toHaveBeenCalledTimes(1);
  });

  it('names portSecurity when turning it off conflicts with the groups the port already has', async () => {
    const ports = mockOf<PortRepository>({ get: jest.fn(async () => port({ securityGroupIds: [GROUP] })), replace: jest.fn() });
    await expectOverlayError(serviceWith(ports).update(PORT, updatePortSchema.parse({ portSecurity: false }, '')), ErrorCode.PortSecurityConflict, 'portSecurity');
    expect(ports.replace).not.toHaveBeenCalled();
  });

  it('binds by compare-and-set on the record as stored, retrying when it changed meanwhile', async () => {
    const first = port();
    const second = port({ vmId: 'vm-1' });
    const ports = mockOf<PortRepository>({ get: jest.fn().mockResolvedValueOnce(first).mockResolvedValueOnce(second), replace: jest.fn().mockResolvedValueOnce(-1).mockResolvedValueOnce(12) });
    const hostId = parseId('01890a5d-ac96-774b-bcce-b302099a8054');
    const bound = await serviceWith(ports).update(PORT, updatePortSchema.parse({ hostId }, ''));
    expect(ports.replace.mock.calls.map((call) => call[0])).toEqual([first, second]);
    expect(bound).toMatchObject({ hostId, vmId: 'vm-1' });
    expect(bound).not.toHaveProperty('realized');
  });

  it('with a wait, answers with realized as the realization of the write revision says', async () => {
    const realization = mockOf<RealizationService>({ waitForRevision: jest.fn(async () => false) });
    const ports = mockOf<PortRepository>({ delete: jest.fn(async () => 21) });
    expect(await serviceWith(ports, realization).delete(PORT, { timeoutMs: 50 })).toEqual({ id: PORT, realized: false });
    expect(realization.waitForRevision).toHaveBeenCalledWith(21, 50);
  });

  it('answers PORT_NOT_FOUND naming the id', async () => {
    const ports = mockOf<PortRepository>({ get: jest.fn(async () => undefined) });
    await expectOverlayError(serviceWith(ports).update(PORT, updatePortSchema.parse({}, '')), ErrorCode.PortNotFound, 'id');
  });
});
