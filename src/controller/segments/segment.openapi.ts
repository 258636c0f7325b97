import { ErrorCode } from '../errors';
import { crudPaths, int, nullableStr, orNull, record, str, type ApiDescription } from '../http/openapi';
import { createSegmentSchema, SEGMENT_LIST_QUERY } from './segment.schemas';

/** The routes of SegmentController (a segment's mappings are the ports': see port.openapi.ts). */
export const segmentApi: ApiDescription = {
  paths: crudPaths({
    kind: 'segment',
    plural: 'segments',
    create: createSegmentSchema,
    listQuery: SEGMENT_LIST_QUERY,
    errors: {
      create: [ErrorCode.TenantNotFound, ErrorCode.TenantQuotaExceeded, ErrorCode.VlanTaken, ErrorCode.VniTaken, ErrorCode.VniQuarantined, ErrorCode.VniRangeExhausted],
      get: [ErrorCode.SegmentNotFound],
      delete: [ErrorCode.SegmentNotFound, ErrorCode.SegmentHasPorts],
    },
  }),
  schemas: {
    segment: record(
      { id: str, tenantId: str, name: str, vni: int, vlanId: orNull(int), cidr: nullableStr, createdAt: str },
      { example: { id: '01a21ab0-1e93-7a10-b2c4-7d9e0f1a2b3c', tenantId: '01a21ab0-1e44-7c3e-9d2a-5b8e2f0c1d4e', name: 'web', vni: 1000, vlanId: null, cidr: '10.0.0.0/24', createdAt: '2026-12-05T01:25:22.462Z' } },
    ),
  },
};
