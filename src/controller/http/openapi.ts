import type { JsonSchema } from '../../common/schema';
import { createHostSchema, updateHostSchema } from '../hosts/host.schemas';
import { createPortBatchSchema, createPortSchema, updatePortSchema } from '../ports/port.schemas';
import { createSegmentSchema } from '../segments/segment.schemas';
import { createTenantSchema } from '../tenants/tenant.schemas';

/**
 * The OpenAPI document served at /docs. Request bodies come from the same schema objects that
 * validate them; responses are described by hand beside them.
 */
const error: JsonSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string', example: 'VNI_RANGE_EXHAUSTED' }, message: { type: 'string' }, field: { type: 'string', example: 'vni' } },
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema) => ({ content: { 'application/json': { schema } } });
const errors = { '4XX': { description: 'refused; nothing changed', ...json(ref('Error')) }, '503': { description: 'Redis unreachable', ...json(ref('Error')) } };
const page = (item: string) => ({ type: 'object', properties: { items: { type: 'array', items: ref(item) }, nextCursor: { type: 'string', nullable: true } } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const pageParams = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
  { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'nextCursor of the previous page' },
];

function crud(kind: string, plural: string, create: JsonSchema, extraListParams: object[] = []) {
  return {
    [`/v1/${plural}`]: {
      post: { tags: [plural], summary: `Create a ${kind}`, requestBody: { required: true, ...json(create) }, responses: { '201': { description: 'created', ...json(ref(kind)) }, ...errors } },
      get: { tags: [plural], summary: `List ${plural}`, parameters: [...pageParams, ...extraListParams], responses: { '200': { description: 'a page', ...json(page(kind)) }, ...errors } },
    },
    [`/v1/${plural}/{id}`]: {
      get: { tags: [plural], summary: `Get a ${kind}`, parameters: [idParam], responses: { '200': { description: kind, ...json(ref(kind)) }, ...errors } },
      delete: { tags: [plural], summary: `Delete a ${kind}`, parameters: [idParam], responses: { '204': { description: 'deleted' }, ...errors } },
    },
  };
}

const filter = (name: string) => ({ name, in: 'query', schema: { type: 'string', format: 'uuid' } });

export function buildOpenApiDocument(maxBatchSize: number): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {
    ...crud('tenant', 'tenants', createTenantSchema.json),
    ...crud('segment', 'segments', createSegmentSchema.json, [filter('tenantId')]),
    ...crud('host', 'hosts', createHostSchema.json),
    ...crud('port', 'ports', createPortSchema.json, [filter('segmentId'), filter('hostId')]),
  };
  paths['/v1/hosts/{id}'].patch = { tags: ['hosts'], summary: 'Change a host', parameters: [idParam], requestBody: { required: true, ...json(updateHostSchema.json) }, responses: { '200': { description: 'host', ...json(ref('host')) }, ...errors } };
  paths['/v1/ports/{id}'].patch = { tags: ['ports'], summary: 'Bind, unbind or relabel a port', parameters: [idParam], requestBody: { required: true, ...json(updatePortSchema.json) }, responses: { '200': { description: 'port', ...json(ref('port')) }, ...errors } };
  paths['/v1/ports/batch'] = {
    post: { tags: ['ports'], summary: 'Create many ports, all or none', requestBody: { required: true, ...json(createPortBatchSchema(maxBatchSize).json) }, responses: { '201': { description: 'created', ...json({ type: 'object', properties: { items: { type: 'array', items: ref('port') } } }) }, ...errors } },
  };
  paths['/v1/segments/{id}/mappings'] = {
    get: { tags: ['segments'], summary: "The segment's MAC -> VTEP table", parameters: [idParam], responses: { '200': { description: 'mappings', ...json(ref('mappings')) }, ...errors } },
  };
  paths['/healthz'] = { get: { tags: ['health'], summary: 'Liveness', responses: { '200': { description: 'alive' } } } };
  paths['/readyz'] = { get: { tags: ['health'], summary: 'Readiness: Redis reachable', responses: { '200': { description: 'ready' }, '503': { description: 'Redis unreachable' } } } };

  const str = { type: 'string' };
  const nullableStr = { type: 'string', nullable: true };
  return {
    openapi: '3.0.3',
    info: { title: 'overlayd', version: '0.1.0', description: 'SDN overlay controller: tenants, VXLAN segments, hosts and VM ports.' },
    paths,
    components: {
      schemas: {
        Error: error,
        tenant: { type: 'object', properties: { id: str, name: str, maxSegments: { type: 'integer', nullable: true }, createdAt: str } },
        segment: { type: 'object', properties: { id: str, tenantId: str, name: str, vni: { type: 'integer' }, vlanId: { type: 'integer', nullable: true }, cidr: nullableStr, createdAt: str } },
        host: { type: 'object', properties: { id: str, name: str, vtepIp: str, inventory: createHostSchema.json.properties && (createHostSchema.json.properties as Record<string, unknown>).inventory, createdAt: str, updatedAt: str } },
        port: { type: 'object', properties: { id: str, segmentId: str, tenantId: str, vmId: nullableStr, mac: str, ips: { type: 'array', items: str }, hostId: nullableStr, createdAt: str, updatedAt: str } },
        mappings: { type: 'object', properties: { segmentId: str, vni: { type: 'integer' }, items: { type: 'array', items: { type: 'object', properties: { portId: str, mac: str, ips: { type: 'array', items: str }, hostId: str, vtepIp: str } } } } },
      },
    },
  };
}
