import { ErrorCode } from '../errors';
import { custom, integer, object, optional, nullable, type Parsed } from '../http/schema';
import { VLAN_MAX, VLAN_MIN, VNI_MAX, VNI_MIN, type VlanId, type Vni } from '../../common/values';
import { asVlanId, asVni, parseId, parseSegmentCidr } from '../model/value-parsers';
import { parseBody } from '../http/body';
import { idParam, type QuerySpec } from '../http/query';
import { PAGE_QUERY } from '../store/page';
import { nameSchema } from '../tenants/tenant.schemas';

export const idSchema = custom(parseId, { type: 'string', format: 'uuid' }, [ErrorCode.InvalidId]);

export const createSegmentSchema = object(
  {
    tenantId: idSchema,
    name: nameSchema,
    vni: optional(integer({ min: VNI_MIN, max: VNI_MAX, code: ErrorCode.VniOutOfRange, description: 'a specific VNI; absent = lowest free of OVERLAY_VNI_RANGES' })),
    vlanId: optional(nullable(integer({ min: VLAN_MIN, max: VLAN_MAX, code: ErrorCode.VlanOutOfRange, description: 'VLAN id when the segment is also carried as a VLAN; unique per deployment' }))),
    cidr: optional(nullable(custom(parseSegmentCidr, { type: 'string', description: 'IPv4 or IPv6 subnet of unicast host addresses, e.g. 10.0.0.0/24 (not a default route, loopback or multicast)' }, [ErrorCode.InvalidCidr]))),
  },
  'A tenant segment. Always gets a VXLAN VNI.',
);

/** `POST /v1/segments` as the service takes it: the schema's numbers branded (they are in range). */
export type CreateSegment = Omit<Parsed<typeof createSegmentSchema>, 'vni' | 'vlanId'> & { vni?: Vni; vlanId?: VlanId | null };

export function parseCreateSegment(body: unknown): CreateSegment {
  const { vni, vlanId, ...rest } = parseBody(createSegmentSchema, body);
  return { ...rest, vni: vni === undefined ? undefined : asVni(vni), vlanId: vlanId === undefined || vlanId === null ? vlanId : asVlanId(vlanId) };
}

/** `GET /v1/segments`. */
export const SEGMENT_LIST_QUERY = { ...PAGE_QUERY, tenantId: idParam('only segments of this tenant') } satisfies QuerySpec;
