import { crudPaths, errors, idParam, json, nullableStr, ref, str, type ApiDescription } from '../http/openapi';
import { openApiParameters } from '../http/query';
import { createPortBatchSchema, createPortSchema, PORT_LIST_QUERY, updatePortSchema, WAIT_QUERY } from './port.schemas';

// Writes to ports may wait until every host whose span the write changed has acknowledged it.
const waitParams = openApiParameters(WAIT_QUERY);
const notYet = { '202': { description: 'written, but not realized everywhere within the timeout (`realized: false`, `pendingHostIds` the hosts whose ack is missing)' } };

/** The routes of PortController, the segment's mapping table among them; the batch's size limit is the configured one. */
export function portApi(maxBatchSize: number): ApiDescription {
  const paths = crudPaths('port', 'ports', createPortSchema.json, PORT_LIST_QUERY);
  paths['/v1/ports/{id}'].delete = {
    tags: ['ports'],
    summary: 'Delete a port',
    description: 'With wait=realized, answers once every host whose span the deletion changed (the port\'s host, which withdraws it, and its segment\'s other hosts) has applied it (202 if not within the timeout).',
    parameters: [idParam, ...waitParams],
    responses: {
      '204': { description: 'deleted (and, with wait=realized, withdrawn everywhere)' },
      '202': { description: 'deleted, but not withdrawn everywhere within the timeout', ...json({ type: 'object', properties: { id: { type: 'string' }, realized: { type: 'boolean', enum: [false] }, pendingHostIds: { type: 'array', items: { type: 'string' }, description: 'the hosts that had not acknowledged the deletion' } } }) },
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
  return {
    paths,
    schemas: {
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
          role: { type: 'string', enum: ['vm', 'analyzer'], description: 'analyzer: receives mirrored copies only (a mirror session sink); fixed at creation' },
          allowedAddressPairs: { type: 'array', items: { type: 'object', properties: { ip: str, mac: { ...nullableStr, description: 'null = the port MAC' } } } },
          migration: { type: 'object', nullable: true, properties: { id: str, destinationHostId: str }, description: 'the open live migration of this port, if any' },
          createdAt: str,
          updatedAt: str,
          realized: { type: 'boolean', description: 'GET: every host whose span holds this port is in sync. A write with wait=realized: every host whose span the write changed (hosts that lost the port included) has applied it' },
          pendingHostIds: { type: 'array', items: { type: 'string' }, description: 'a write with wait=realized that timed out: the hosts whose acknowledgement was missing (empty when this replica had not yet applied the write itself)' },
        },
      },
      mappings: { type: 'object', properties: { segmentId: str, vni: { type: 'integer' }, items: { type: 'array', items: { type: 'object', properties: { portId: str, mac: str, ips: { type: 'array', items: str }, hostId: str, vtepIp: str } } } } },
    },
  };
}
