import { TEST_ACTOR } from '../../../test/support/records';
import { ErrorCode } from '../errors';
import { parseId } from '../model/value-parsers';
import { expectOverlayError, mockOf } from '../../../test/support/mocks';
import { SegmentRepository } from './segment.repository';
import { parseCreateSegment } from './segment.schemas';
import { SegmentService } from './segment.service';

const TENANT = parseId('01890a5d-ac96-774b-bcce-b302099a8057');

describe('SegmentService', () => {
  const segments = () => mockOf<SegmentRepository>({ create: jest.fn(async (segment, vni?: number) => ({ ...segment, vni: vni ?? 5000 })), get: jest.fn(async () => undefined) });

  it('passes a requested VNI beside the record, which the store completes', async () => {
    const repo = segments();
    await new SegmentService(repo).create(parseCreateSegment({ tenantId: TENANT, name: 'web', vni: 7001, vlanId: 12, cidr: '10.0.0.0/24' }), TEST_ACTOR);
    expect(repo.create).toHaveBeenCalledWith({ id: expect.any(String), tenantId: TENANT, name: 'web', vlanId: 12, cidr: '10.0.0.0/24', createdAt: expect.any(String) }, 7001, TEST_ACTOR);
  });

  it('stores absent VLAN and CIDR as null and asks the store for a VNI from the pool', async () => {
    const repo = segments();
    await new SegmentService(repo).create(parseCreateSegment({ tenantId: TENANT, name: 'web' }), TEST_ACTOR);
    expect(repo.create).toHaveBeenCalledWith(expect.objectContaining({ vlanId: null, cidr: null }), undefined, TEST_ACTOR);
  });

  it('answers SEGMENT_NOT_FOUND naming the id when there is no such segment', async () => {
    await expectOverlayError(new SegmentService(segments()).get(TENANT), ErrorCode.SegmentNotFound, 'id');
  });
});
