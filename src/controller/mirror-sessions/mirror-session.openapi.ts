import { crudPaths, errors, idParam, json, nullableInt, nullableStr, ref, str, type ApiDescription } from '../http/openapi';
import { createMirrorSessionSchema, MIRROR_SESSION_LIST_QUERY, updateMirrorSessionSchema } from './mirror-session.schemas';

const paths = crudPaths('mirrorSession', 'mirror-sessions', createMirrorSessionSchema.json, MIRROR_SESSION_LIST_QUERY, 'mirror session');
const sessionPath = paths['/v1/mirror-sessions/{id}'];
sessionPath.patch = {
  tags: ['mirror-sessions'],
  summary: 'Change a mirror session (sources and sink, when given, replace the current ones)',
  parameters: [idParam],
  requestBody: { required: true, ...json(updateMirrorSessionSchema.json) },
  responses: { '200': { description: 'mirror session', ...json(ref('mirrorSession')) }, ...errors },
};
sessionPath.delete = { ...(sessionPath.delete as object), description: 'Its VNI goes into quarantine, as a deleted segment\'s.' };
(paths['/v1/mirror-sessions'].post as Record<string, unknown>).description =
  'Refused when a source or the sink is not a port of the tenant (PORT_NOT_FOUND, or PORT_TENANT_MISMATCH for operators), a source is an analyzer port (MIRROR_SOURCE_IS_ANALYZER), a port sink is not one (MIRROR_SINK_NOT_ANALYZER) or is a source (MIRROR_SINK_IS_SOURCE), ' +
  "another session already copies a source's traffic in a shared direction to the same sink (MIRROR_SESSION_OVERLAP), or the tenant has OVERLAY_MAX_MIRROR_SESSIONS_PER_TENANT sessions (TENANT_QUOTA_EXCEEDED).";

const sink = {
  type: 'object',
  description: 'port: {portId}; vxlan: {remoteIp, vni (the session VNI), udpPort}; uplink: {hostId, interface}; erspan: {remoteIp, erspanId, version}',
  properties: {
    type: { type: 'string', enum: ['port', 'vxlan', 'uplink', 'erspan'] },
    portId: str,
    remoteIp: str,
    vni: { type: 'integer' },
    udpPort: { type: 'integer' },
    hostId: str,
    interface: str,
    erspanId: { type: 'integer', description: 'the ERSPAN session ID (1-1023)' },
    version: { type: 'integer', enum: [1, 2], description: 'ERSPAN version: 1 (type II) or 2 (type III)' },
  },
};

/** The routes of MirrorSessionController. */
export const mirrorSessionApi: ApiDescription = {
  paths,
  schemas: {
    mirrorSession: {
      type: 'object',
      properties: {
        id: str,
        tenantId: str,
        name: str,
        enabled: { type: 'boolean' },
        sources: { type: 'array', items: { type: 'object', properties: { portId: str, direction: { type: 'string', enum: ['ingress', 'egress', 'both'] } } } },
        sink,
        filter: { type: 'object', nullable: true, properties: { ethertype: nullableStr, protocol: nullableInt, remoteCidr: nullableStr } },
        snapLength: nullableInt,
        vni: { type: 'integer', description: "the mirror VNI, from the segments' allocator (an erspan sink's session has one too, unused on the wire)" },
        createdAt: str,
        updatedAt: str,
        status: {
          type: 'array',
          description: 'GET only: one entry per source',
          items: {
            type: 'object',
            properties: {
              portId: str,
              hostId: nullableStr,
              state: { type: 'string', enum: ['active', 're-homing', 'broken', 'disabled'] },
              realizedRevision: { ...nullableInt, description: "the last revision the host's agent acknowledged" },
              packets: { type: 'integer' },
              bytes: { type: 'integer' },
              lastError: nullableStr,
            },
          },
        },
      },
    },
  },
};
