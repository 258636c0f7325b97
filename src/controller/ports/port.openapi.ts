import { ErrorCode } from '../errors';
import { bool, crudPaths, idParam, int, json, nullableStr, orNull, record, ref, str, strings, type ApiDescription } from '../http/openapi';
import { openApiParameters } from '../http/query';
import { createPortBatchSchema, createPortSchema, PORT_LIST_QUERY, updatePortSchema, WAIT_QUERY } from './port.schemas';

// Writes to ports may wait until every host whose span the write changed has acknowledged it.
const waitParams = openApiParameters(WAIT_QUERY);
const notYet = {
  '202': {
    description:
      'written, but not realized: not everywhere within the timeout (`realized: false`, `pendingHostIds` the hosts whose ack is missing), or a host the port is local to acknowledged the write without it (`realizationError`: it could not program the port; answered as soon as it said so, not at the timeout)',
    ...json(ref('port')),
  },
};

/** The checks of a new port: its segment (and the IPs against its CIDR), host, security groups and addresses. */
const CREATE_ERRORS = [
  ErrorCode.SegmentNotFound,
  ErrorCode.HostNotFound,
  ErrorCode.SecurityGroupNotFound,
  ErrorCode.SecurityGroupTenantMismatch,
  ErrorCode.DuplicateMac,
  ErrorCode.DuplicateIp,
  ErrorCode.IpOutsideCidr,
  ErrorCode.IpFamilyMismatch,
  ErrorCode.ReservedIp,
  ErrorCode.InvalidValue,
  ErrorCode.DuplicateAddressPair,
  ErrorCode.PortSecurityConflict,
  ErrorCode.VlanNotTrunked,
];

/** The routes of PortController, the segment's mapping table among them; the batch's size limit is the configured one. */
export function portApi(maxBatchSize: number): ApiDescription {
  const paths = crudPaths({
    kind: 'port',
    plural: 'ports',
    create: createPortSchema,
    listQuery: PORT_LIST_QUERY,
    errors: {
      create: CREATE_ERRORS,
      list: [ErrorCode.Timeout],
      get: [ErrorCode.PortNotFound],
      delete: [ErrorCode.PortNotFound, ErrorCode.MigrationInProgress, ErrorCode.PortInMirrorSession],
    },
  });
  paths['/v1/ports'].get!.description = 'A filter by vmId or tenantId, a tenant token’s list, and segmentId with hostId are answered from this replica’s view once it has caught up with Redis (504 TIMEOUT past 5 s).';
  paths['/v1/ports/{id}'].delete = {
    ...paths['/v1/ports/{id}'].delete!,
    description: 'With wait=realized, answers once every host whose span the deletion changed (the port\'s host, which withdraws it, and its segment\'s other hosts) has applied it (202 if not within the timeout).',
    parameters: [idParam, ...waitParams],
    responses: {
      '204': { description: 'deleted (and, with wait=realized, withdrawn everywhere)' },
      '202': { description: 'deleted, but not withdrawn everywhere within the timeout', ...json(record({ id: str, realized: { type: 'boolean', enum: [false] }, pendingHostIds: { ...strings, description: 'the hosts that had not acknowledged the deletion' } })) },
    },
  };
  paths['/v1/ports/{id}'].patch = {
    operationId: 'updatePort',
    tags: ['ports'],
    summary: 'Bind, unbind or relabel a port; change its security groups, address pairs or port security',
    parameters: [idParam, ...waitParams],
    body: updatePortSchema,
    responses: { '200': { description: 'port', ...json(ref('port')) }, ...notYet },
    errors: [
      ErrorCode.PortNotFound,
      ErrorCode.MigrationInProgress,
      ErrorCode.HostNotFound,
      ErrorCode.SecurityGroupNotFound,
      ErrorCode.SecurityGroupTenantMismatch,
      ErrorCode.InvalidValue,
      ErrorCode.DuplicateAddressPair,
      ErrorCode.PortSecurityConflict,
      ErrorCode.VlanNotTrunked,
    ],
  };
  const createPort = paths['/v1/ports'].post!;
  createPort.parameters = waitParams;
  createPort.responses = { ...createPort.responses, ...notYet };
  paths['/v1/ports/batch'] = {
    post: {
      operationId: 'createPortBatch',
      tags: ['ports'],
      summary: 'Create many ports, all or none',
      parameters: waitParams,
      body: createPortBatchSchema(maxBatchSize),
      responses: { '201': { description: 'created', ...json(record({ items: { type: 'array', items: ref('port') } })) }, '202': { ...notYet['202'], ...json(record({ items: { type: 'array', items: ref('port') } })) } },
      errors: [...CREATE_ERRORS, ErrorCode.BatchTooLarge],
    },
  };
  paths['/v1/segments/{id}/mappings'] = {
    get: { operationId: 'getSegmentMappings', tags: ['segments'], summary: "The segment's MAC -> VTEP table", parameters: [idParam], responses: { '200': { description: 'mappings', ...json(ref('mappings')) } }, errors: [ErrorCode.SegmentNotFound] },
  };
  return {
    paths,
    schemas: {
      port: record(
        {
          id: str,
          segmentId: str,
          tenantId: str,
          vmId: nullableStr,
          mac: { type: 'string', example: '02:00:00:00:00:0a' },
          ips: strings,
          hostId: nullableStr,
          securityGroupIds: { ...strings, description: "empty = the tenant's default group" },
          portSecurity: bool,
          role: { type: 'string', enum: ['vm', 'analyzer'], description: 'analyzer: receives mirrored copies only (a mirror session sink); fixed at creation' },
          tapName: { ...nullableStr, description: "the name of the port's tap on its host as the hypervisor named it; null = the agent finds the tap by its port-id name, else by MAC (the port MAC with the first octet fe)" },
          allowedAddressPairs: { type: 'array', items: record({ ip: str, mac: { ...nullableStr, description: 'null = the port MAC' } }) },
          migration: { ...orNull(record({ id: str, destinationHostId: str })), description: 'the open live migration of this port, if any' },
          createdAt: str,
          updatedAt: str,
          realized: {
            type: 'boolean',
            description:
              'GET of one port (always there): every host whose span holds this port is in sync, and the port\'s own host programmed it (no realizationError). A write with wait=realized (only then): every host whose span the write changed (hosts that lost the port included) has applied it, and the port\'s own host programmed it. Lists leave it out',
          },
          realizationError: {
            ...orNull(
              record({
                hostId: { ...str, description: "the host that could not program the port: its host, or its migration's destination" },
                reason: { ...str, description: "the agent's reason (cleaned: no control characters; at most 256 characters, then a note of the length)" },
                since: { ...str, description: 'when the controller first heard of it failing (ISO 8601); it has failed at every acknowledgement since' },
              }),
            ),
            description:
              "GET of one port and lists (always there, null when none): a host the port is local to said at its last acknowledgement that it could not program it (its tap missing, or its gate or attachment refused); the port is closed there, its agent retries, and the next acknowledgement without it clears this. A write with wait=realized: present (with realized false) when that host acknowledged the write without the port",
          },
          pendingHostIds: {
            ...strings,
            description: 'a write with wait=realized that was not realized (it timed out, or a host acknowledged it without the port: see realizationError): the hosts whose acknowledgement was missing then (empty when this replica had not yet applied the write itself, or when every host had acknowledged it)',
          },
        },
        {
          optional: ['realized', 'pendingHostIds', 'realizationError'],
          example: {
            id: '01a21ab0-58f1-7c3e-9d2a-5b8e2f0c1d4e',
            segmentId: '01a21ab0-1e93-7a10-b2c4-7d9e0f1a2b3c',
            tenantId: '01a21ab0-1e44-7c3e-9d2a-5b8e2f0c1d4e',
            vmId: 'vm-42',
            mac: '02:00:00:00:00:0a',
            ips: ['10.0.0.10'],
            hostId: '01a21ab0-2b10-7d4e-8f00-1a2b3c4d5e6f',
            securityGroupIds: [],
            portSecurity: true,
            role: 'vm',
            tapName: null,
            allowedAddressPairs: [],
            migration: null,
            createdAt: '2026-12-05T01:25:22.462Z',
            updatedAt: '2026-12-05T01:25:22.462Z',
            realized: true,
          },
        },
      ),
      mappings: record({
        segmentId: str,
        vni: int,
        items: { type: 'array', items: record({ portId: str, mac: str, ips: strings, hostId: str, vtepIp: str }) },
      }),
    },
  };
}
