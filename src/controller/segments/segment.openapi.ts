import { crudPaths, nullableStr, str, type ApiDescription } from '../http/openapi';
import { createSegmentSchema, SEGMENT_LIST_QUERY } from './segment.schemas';

/** The routes of SegmentController (a segment's mappings are the ports': see port.openapi.ts). */
export const segmentApi: ApiDescription = {
  paths: crudPaths('segment', 'segments', createSegmentSchema.json, SEGMENT_LIST_QUERY),
  schemas: {
    segment: { type: 'object', properties: { id: str, tenantId: str, name: str, vni: { type: 'integer' }, vlanId: { type: 'integer', nullable: true }, cidr: nullableStr, createdAt: str } },
  },
};
