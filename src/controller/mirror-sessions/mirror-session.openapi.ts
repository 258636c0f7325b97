import { ErrorCode } from '../errors';
import { bool, crudPaths, idParam, int, json, nullableInt, nullableStr, orNull, record, ref, str, type ApiDescription } from '../http/openapi';
import { createMirrorSessionSchema, MIRROR_SESSION_LIST_QUERY, updateMirrorSessionSchema } from './mirror-session.schemas';

/**
 * The checks of a session's sources, sink and filter (mirror-session.rules.ts, and the store's:
 * ports of the tenant, roles, overlaps). A tenant token gets another tenant's port as missing.
 */
const SESSION_ERRORS = [
  ErrorCode.InvalidValue,
  ErrorCode.MissingField,
  ErrorCode.ProtocolFamilyMismatch,
  ErrorCode.CidrFamilyMismatch,
  ErrorCode.MirrorSinkIsSource,
  ErrorCode.PortNotFound,
  ErrorCode.PortTenantMismatch,
  ErrorCode.MirrorSourceIsAnalyzer,
  ErrorCode.MirrorSinkNotAnalyzer,
  ErrorCode.HostNotFound,
  ErrorCode.MirrorSessionOverlap,
];

const paths = crudPaths({
  kind: 'mirrorSession',
  plural: 'mirror-sessions',
  label: 'mirror session',
  create: createMirrorSessionSchema,
  listQuery: MIRROR_SESSION_LIST_QUERY,
  errors: {
    create: [ErrorCode.TenantNotFound, ErrorCode.TenantQuotaExceeded, ErrorCode.MirrorSessionNameTaken, ...SESSION_ERRORS, ErrorCode.VniTaken, ErrorCode.VniQuarantined, ErrorCode.VniRangeExhausted],
    get: [ErrorCode.MirrorSessionNotFound],
    delete: [ErrorCode.MirrorSessionNotFound],
  },
});
// Reads add each source's status.
paths['/v1/mirror-sessions'].get!.responses = { '200': { description: 'a page', ...json(record({ items: { type: 'array', items: ref('mirrorSessionWithStatus') }, nextCursor: nullableStr })) } };
const sessionPath = paths['/v1/mirror-sessions/{id}'];
sessionPath.get!.responses = { '200': { description: 'the mirror session and where each source stands', ...json(ref('mirrorSessionWithStatus')) } };
sessionPath.patch = {
  operationId: 'updateMirrorSession',
  tags: ['mirror-sessions'],
  summary: 'Change a mirror session (sources and sink, when given, replace the current ones)',
  parameters: [idParam],
  body: updateMirrorSessionSchema,
  responses: { '200': { description: 'mirror session', ...json(ref('mirrorSession')) } },
  errors: [ErrorCode.MirrorSessionNotFound, ErrorCode.MirrorSessionNameTaken, ...SESSION_ERRORS],
};
sessionPath.delete = { ...sessionPath.delete!, description: 'Its VNI goes into quarantine, as a deleted segment\'s.' };
paths['/v1/mirror-sessions'].post!.description =
  'Refused when a source or the sink is not a port of the tenant (PORT_NOT_FOUND, or PORT_TENANT_MISMATCH for operators), a source is an analyzer port (MIRROR_SOURCE_IS_ANALYZER), a port sink is not one (MIRROR_SINK_NOT_ANALYZER) or is a source (MIRROR_SINK_IS_SOURCE), ' +
  "another session already copies a source's traffic in a shared direction to the same sink (MIRROR_SESSION_OVERLAP), or the tenant has OVERLAY_MAX_MIRROR_SESSIONS_PER_TENANT sessions (TENANT_QUOTA_EXCEEDED).";

const sinkOf = (type: string, properties: Record<string, object>, description: string) => record({ type: { type: 'string', enum: [type] }, ...properties }, { description });
const sink = {
  description: 'where the copies go, by `type`',
  oneOf: [
    sinkOf('port', { portId: str }, 'an analyzer port'),
    sinkOf('vxlan', { remoteIp: str, vni: { type: 'integer', description: 'the session VNI' }, udpPort: int }, 'a remote collector over VXLAN'),
    sinkOf('uplink', { hostId: str, interface: str }, 'a physical NIC of a host'),
    sinkOf('erspan', { remoteIp: str, erspanId: { type: 'integer', description: 'the ERSPAN session ID (1-1023)' }, version: { type: 'integer', enum: [1, 2], description: 'ERSPAN version: 1 (type II) or 2 (type III)' } }, 'a remote collector over ERSPAN'),
  ],
};

/** The routes of MirrorSessionController. */
export const mirrorSessionApi: ApiDescription = {
  paths,
  schemas: {
    mirrorSession: record(
      {
        id: str,
        tenantId: str,
        name: str,
        enabled: bool,
        sources: { type: 'array', items: record({ portId: str, direction: { type: 'string', enum: ['ingress', 'egress', 'both'] } }) },
        sink,
        filter: { ...orNull(record({ ethertype: orNull({ type: 'string', enum: ['IPv4', 'IPv6'] }), protocol: nullableInt, remoteCidr: nullableStr })), description: 'null = every frame' },
        snapLength: { ...nullableInt, description: 'bytes kept of each copy; null = whole frames' },
        vni: { type: 'integer', description: "the mirror VNI, from the segments' allocator (an erspan sink's session has one too, unused on the wire)" },
        createdAt: str,
        updatedAt: str,
      },
      {
        example: {
          id: '01a21ab0-7a01-7b2c-8d3e-4f5a6b7c8d9e',
          tenantId: '01a21ab0-1e44-7c3e-9d2a-5b8e2f0c1d4e',
          name: 'watch-web',
          enabled: true,
          sources: [{ portId: '01a21ab0-58f1-7c3e-9d2a-5b8e2f0c1d4e', direction: 'both' }],
          sink: { type: 'port', portId: '01a21ab0-58f2-7c3e-9d2a-5b8e2f0c1d4e' },
          filter: null,
          snapLength: null,
          vni: 1001,
          createdAt: '2026-12-05T01:25:22.462Z',
          updatedAt: '2026-12-05T01:25:22.462Z',
        },
      },
    ),
    mirrorSessionWithStatus: {
      description: 'A mirror session as reads show it: with where each source stands.',
      allOf: [
        ref('mirrorSession'),
        record({
          status: {
            type: 'array',
            description: 'one entry per source',
            items: record({
              portId: str,
              hostId: { ...nullableStr, description: 'the host the port is bound to; null when unbound' },
              state: { type: 'string', enum: ['active', 're-homing', 'broken', 'disabled'] },
              realizedRevision: { ...nullableInt, description: "the last revision the host's agent acknowledged" },
              packets: int,
              bytes: int,
              lastError: nullableStr,
            }),
          },
        }),
      ],
    },
  },
};
