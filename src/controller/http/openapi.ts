import { MIGRATION_EVENTS, MIGRATION_STATES } from '../model/migration';
import { PREPARE_QUERY, prepareMigrationSchema } from '../migrations/migration.schemas';
import { ErrorCode } from '../../common/errors';
import type { JsonSchema } from '../../common/schema';
import { createHostSchema, updateHostSchema } from '../hosts/host.schemas';
import { createPortBatchSchema, createPortSchema, PORT_LIST_QUERY, updatePortSchema, WAIT_QUERY } from '../ports/port.schemas';
import { DIRECTIONS, ETHERTYPES, PROTOCOL_NAMES } from '../model/security-group';
import { createSecurityGroupSchema, replaceSecurityGroupSchema, SECURITY_GROUP_LIST_QUERY, updateSecurityGroupSchema } from '../security-groups/security-group.schemas';
import { createSegmentSchema, SEGMENT_LIST_QUERY } from '../segments/segment.schemas';
import { PAGE_QUERY } from '../store/page';
import { openApiParameters, type QuerySpec } from './query';
import { createTenantSchema } from '../tenants/tenant.schemas';

/**
 * The OpenAPI document served at /docs. Request bodies come from the same schema objects that
 * validate them; responses are described by hand beside them.
 */
const error: JsonSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', enum: Object.values(ErrorCode), example: 'VNI_RANGE_EXHAUSTED', description: 'stable; the README lists each with its HTTP status' },
    message: { type: 'string' },
    field: { type: 'string', example: 'vni', description: 'the input at fault: a JSON path into the body, a path or a query parameter name' },
  },
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonSchema) => ({ content: { 'application/json': { schema } } });
const errors = { '4XX': { description: 'refused; nothing changed', ...json(ref('Error')) }, '503': { description: 'Redis unreachable', ...json(ref('Error')) } };
const page = (item: string) => ({ type: 'object', properties: { items: { type: 'array', items: ref(item) }, nextCursor: { type: 'string', nullable: true } } });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

/** Query parameters come from the same declarations the routes check them with (`http/query.ts`); a route that takes none refuses any. */
function crud(kind: string, plural: string, create: JsonSchema, listQuery: QuerySpec, label = kind) {
  return {
    [`/v1/${plural}`]: {
      post: { tags: [plural], summary: `Create a ${label}`, requestBody: { required: true, ...json(create) }, responses: { '201': { description: 'created', ...json(ref(kind)) }, ...errors } },
      get: { tags: [plural], summary: `List ${plural}`, parameters: openApiParameters(listQuery), responses: { '200': { description: 'a page', ...json(page(kind)) }, ...errors } },
    },
    [`/v1/${plural}/{id}`]: {
      get: { tags: [plural], summary: `Get a ${label}`, parameters: [idParam], responses: { '200': { description: label, ...json(ref(kind)) }, ...errors } },
      delete: { tags: [plural], summary: `Delete a ${label}`, parameters: [idParam], responses: { '204': { description: 'deleted' }, ...errors } },
    },
  };
}

export function buildOpenApiDocument(maxBatchSize: number): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {
    ...crud('tenant', 'tenants', createTenantSchema.json, PAGE_QUERY),
    ...crud('segment', 'segments', createSegmentSchema.json, SEGMENT_LIST_QUERY),
    ...crud('host', 'hosts', createHostSchema.json, PAGE_QUERY),
    ...crud('port', 'ports', createPortSchema.json, PORT_LIST_QUERY),
    ...crud('securityGroup', 'security-groups', createSecurityGroupSchema.json, SECURITY_GROUP_LIST_QUERY, 'security group'),
  };
  const groupPath = paths['/v1/security-groups/{id}'];
  groupPath.put = { tags: ['security-groups'], summary: 'Replace a security group (name and every rule)', parameters: [idParam], requestBody: { required: true, ...json(replaceSecurityGroupSchema.json) }, responses: { '200': { description: 'security group', ...json(ref('securityGroup')) }, ...errors } };
  groupPath.patch = { tags: ['security-groups'], summary: 'Change a security group (rules, when given, replace every rule)', parameters: [idParam], requestBody: { required: true, ...json(updateSecurityGroupSchema.json) }, responses: { '200': { description: 'security group', ...json(ref('securityGroup')) }, ...errors } };
  groupPath.delete = { ...(groupPath.delete as object), description: "Refused (409 SECURITY_GROUP_IN_USE) while ports use the group or another group's rules name it as remote group, and (409 SECURITY_GROUP_IS_DEFAULT) for a tenant's default group, which goes with its tenant." };
  paths['/v1/hosts/{id}'].patch = { tags: ['hosts'], summary: 'Change a host', parameters: [idParam], requestBody: { required: true, ...json(updateHostSchema.json) }, responses: { '200': { description: 'host', ...json(ref('host')) }, ...errors } };
  // Writes to ports may wait until every host whose span the write changed has acknowledged it.
  const waitParams = openApiParameters(WAIT_QUERY);
  const notYet = { '202': { description: 'written, but not realized everywhere within the timeout (`realized: false`)' } };
  paths['/v1/ports/{id}'].delete = {
    tags: ['ports'],
    summary: 'Delete a port',
    description: 'With wait=realized, answers once every host whose span the deletion changed (the port\'s host, which withdraws it, and its segment\'s other hosts) has applied it (202 if not within the timeout).',
    parameters: [idParam, ...waitParams],
    responses: {
      '204': { description: 'deleted (and, with wait=realized, withdrawn everywhere)' },
      '202': { description: 'deleted, but not withdrawn everywhere within the timeout', ...json({ type: 'object', properties: { id: { type: 'string' }, realized: { type: 'boolean', enum: [false] } } }) },
      ...errors,
    },
  };
  paths['/v1/ports/{id}'].patch = { tags: ['ports'], summary: 'Bind, unbind or relabel a port; change its security groups, address pairs or port security', parameters: [idParam, ...waitParams], requestBody: { required: true, ...json(updatePortSchema.json) }, responses: { '200': { description: 'port', ...json(ref('port')) }, ...notYet, ...errors } };
  const createPort = paths['/v1/ports'].post as Record<string, unknown>;
  createPort.parameters = waitParams;
  createPort.responses = { ...(createPort.responses as object), ...notYet };
  paths['/v1/ports/batch'] = {
    post: { tags: ['ports'], summary: 'Create many ports, all or none', parameters: waitParams, requestBody: { required: true, ...json(createPortBatchSchema(maxBatchSize).json) }, responses: { '201': { description: 'created', ...json({ type: 'object', properties: { items: { type: 'array', items: ref('port') } } }) }, ...notYet, ...errors } },
  };
  paths['/v1/segments/{id}/mappings'] = {
    get: { tags: ['segments'], summary: "The segment's MAC -> VTEP table", parameters: [idParam], responses: { '200': { description: 'mappings', ...json(ref('mappings')) }, ...errors } },
  };
  const migrationId = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
  const migration = (description: string) => ({ description, ...json(ref('migration')) });
  paths['/v1/migrations'] = {
    post: {
      tags: ['migrations'],
      summary: 'Prepare a live migration: the destination gets the ports, their rules and segments before the VM moves',
      description:
        'Idempotent: a retry with the same ports, source and destination returns the open migration (200). A second migration of a VM or port while one is open is refused (409 MIGRATION_IN_PROGRESS).',
      parameters: openApiParameters(PREPARE_QUERY),
      requestBody: { required: true, ...json(prepareMigrationSchema.json) },
      responses: { '201': migration('prepared: the destination acknowledged'), '200': migration('a retry: the open migration'), '202': migration('preparing: the destination has not acknowledged within the timeout'), ...errors },
    },
  };
  paths['/v1/migrations/{id}'] = { get: { tags: ['migrations'], summary: 'A migration, its state and timeline', parameters: [migrationId], responses: { '200': migration('migration'), ...errors } } };
  paths['/v1/migrations/{id}/commit'] = {
    post: {
      tags: ['migrations'],
      summary: 'Commit: move the bindings to the destination in one step; peers switch, the source withdraws',
      description: 'Needs the destination acknowledged (409 MIGRATION_NOT_READY before). Idempotent. With wait=realized, answers once every host whose span the commit changed (the segments\' peers, the destination, the source) acknowledged it (202 if not within the timeout).',
      parameters: [migrationId, ...waitParams],
      responses: { '200': migration('committed (completed once every ack is in)'), '202': migration('committed, acks still missing after the timeout'), ...errors },
    },
  };
  paths['/v1/migrations/{id}/abort'] = {
    post: { tags: ['migrations'], summary: "Abort: the destination's prepared state is withdrawn; peers never changed. Idempotent", parameters: [migrationId], responses: { '200': migration('aborted'), ...errors } },
  };
  paths['/healthz'] = { get: { tags: ['health'], summary: 'Liveness', responses: { '200': { description: 'alive' } } } };
  paths['/readyz'] = { get: { tags: ['health'], summary: 'Readiness: Redis reachable', responses: { '200': { description: 'ready' }, '503': { description: 'Redis unreachable' } } } };

  const str = { type: 'string' };
  const nullableStr = { type: 'string', nullable: true };
  const nullableInt = { type: 'integer', nullable: true };
  return {
    openapi: '3.0.3',
    info: { title: 'overlayd', version: '0.1.0', description: 'SDN overlay controller: tenants, VXLAN segments, hosts, VM ports, their security groups, and live migrations.' },
    paths,
    components: {
      schemas: {
        Error: error,
        tenant: { type: 'object', properties: { id: str, name: str, maxSegments: { type: 'integer', nullable: true }, defaultSecurityGroupId: str, createdAt: str } },
        segment: { type: 'object', properties: { id: str, tenantId: str, name: str, vni: { type: 'integer' }, vlanId: { type: 'integer', nullable: true }, cidr: nullableStr, createdAt: str } },
        host: {
          type: 'object',
          properties: {
            id: str,
            name: str,
            vtepIp: str,
            inventory: createHostSchema.json.properties && (createHostSchema.json.properties as Record<string, unknown>).inventory,
            createdAt: str,
            updatedAt: str,
            connected: { type: 'boolean', description: 'an agent holds a sync stream for this host (GET only)' },
            appliedRevision: { type: 'integer', description: 'the last revision its agent acknowledged (GET only)' },
            lag: { type: 'integer', description: 'revisions behind; 0 when it holds everything its span needs (GET only)' },
            lastError: {
              type: 'object',
              nullable: true,
              description: "the agent's last NACK, null when none or once it applied that revision or a later one (GET only)",
              properties: {
                revision: { type: 'integer', description: 'the revision it could not apply' },
                error: { type: 'string', description: "the agent's reason: at most 1024 characters (longer text is cut and says so), no control characters" },
                at: { type: 'string', format: 'date-time', description: 'when the controller received the NACK' },
              },
            },
          },
        },
        port: {
          type: 'object',
          properties: {
            id: str,
            segmentId: str,
            tenantId: str,
            vmId: nullableStr,
            mac: str,
            ips: { type: 'array', items: str },
            hostId: nullableStr,
            securityGroupIds: { type: 'array', items: str, description: "empty = the tenant's default group" },
            portSecurity: { type: 'boolean' },
            allowedAddressPairs: { type: 'array', items: { type: 'object', properties: { ip: str, mac: { ...nullableStr, description: 'null = the port MAC' } } } },
            migration: { type: 'object', nullable: true, properties: { id: str, destinationHostId: str }, description: 'the open live migration of this port, if any' },
            createdAt: str,
            updatedAt: str,
            realized: { type: 'boolean', description: 'GET: every host whose span holds this port is in sync. A write with wait=realized: every host whose span the write changed (hosts that lost the port included) has applied it' },
          },
        },
        securityGroupRule: {
          type: 'object',
          properties: {
            id: str,
            direction: { type: 'string', enum: DIRECTIONS },
            ethertype: { type: 'string', enum: ETHERTYPES },
            protocol: { anyOf: [{ type: 'string', enum: PROTOCOL_NAMES }, { type: 'integer' }] },
            portRangeMin: nullableInt,
            portRangeMax: nullableInt,
            icmpType: nullableInt,
            icmpCode: nullableInt,
            remoteCidr: nullableStr,
            remoteGroupId: nullableStr,
            description: nullableStr,
          },
        },
        securityGroup: {
          type: 'object',
          properties: { id: str, tenantId: str, name: str, description: nullableStr, isDefault: { type: 'boolean' }, rules: { type: 'array', items: ref('securityGroupRule') }, createdAt: str, updatedAt: str },
        },
        migration: {
          type: 'object',
          properties: {
            id: str,
            vmId: nullableStr,
            portIds: { type: 'array', items: str },
            sourceHostId: str,
            destinationHostId: str,
            state: { type: 'string', enum: MIGRATION_STATES },
            createdAt: str,
            expiresAt: str,
            timeline: {
              type: 'array',
              items: { type: 'object', properties: { event: { type: 'string', enum: MIGRATION_EVENTS }, at: str, revision: { type: 'integer', description: 'the revision the event wrote, if any' } } },
            },
          },
        },
        mappings: { type: 'object', properties: { segmentId: str, vni: { type: 'integer' }, items: { type: 'array', items: { type: 'object', properties: { portId: str, mac: str, ips: { type: 'array', items: str }, hostId: str, vtepIp: str } } } } },
      },
    },
  };
}
