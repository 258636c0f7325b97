import { ErrorCode, OverlayError } from '../errors';
import { array, boolean, codesOf, custom, fieldPath, integer, nullable, object, oneOf, optional, stringOrNumber, type Parsed, type Schema } from '../http/schema';
import { idParam, type QuerySpec } from '../http/query';
import { VNI_MAX, VNI_MIN } from '../../common/values';
import { parseCidr, parseId, parseVtepIp } from '../model/value-parsers';
import { ETHERTYPES } from '../model/security-group';
import { ERSPAN_ID_MAX, ERSPAN_ID_MIN, MIRROR_UDP_PORT } from '../model/mirror-session';
import { idSchema } from '../segments/segment.schemas';
import { PAGE_QUERY } from '../store/page';
import { nameSchema } from '../tenants/tenant.schemas';

/** Most source ports of one session. */
export const MAX_MIRROR_SOURCES = 1000;
export const MIN_SNAP_LENGTH = 64;
export const MAX_SNAP_LENGTH = 65535;

export const MIRROR_DIRECTIONS = ['ingress', 'egress', 'both'] as const;
export const MIRROR_PROTOCOL_NAMES = ['tcp', 'udp', 'icmp', 'icmpv6'] as const;
export const SINK_TYPES = ['port', 'vxlan', 'uplink', 'erspan'] as const;

/*
 * A Linux interface name as the kernel takes it (dev_valid_name: 1-15 bytes, not `.` or `..`, no
 * `/`, `:` or white space), kept to printable ASCII. The agent's own devices (`vx<n>`, `br<n>`,
 * `mx<n>`, `ms<n>`, VM taps `tap...`) and loopback are refused: an uplink is a physical NIC.
 */
const IFNAME = /^[A-Za-z0-9_.@+-]{1,15}$/;
const AGENT_OWNED_IFNAME = /^((vx|br|mx|ms)[0-9]+|tap.*|lo)$/;

export function parseInterfaceName(raw: string, field = 'interface'): string {
  if (!IFNAME.test(raw) || raw === '.' || raw === '..') {
    throw new OverlayError(ErrorCode.InvalidValue, `${field} must be a Linux interface name: 1-15 characters of [A-Za-z0-9_.@+-], not . or ..`, { field });
  }
  if (AGENT_OWNED_IFNAME.test(raw)) {
    throw new OverlayError(ErrorCode.InvalidValue, `${field} ${raw} is a device the agent or a VM owns (vx<n>, br<n>, mx<n>, ms<n>, tap..., lo); an uplink sink is a physical NIC`, { field });
  }
  return raw;
}

const sourceSchema = object(
  {
    portId: custom(parseId, { type: 'string', format: 'uuid', description: "a port of the session's tenant, role vm" }, [ErrorCode.InvalidId]),
    direction: optional(oneOf(MIRROR_DIRECTIONS, "the VM's: ingress = what it receives, egress = what it sends; default both")),
  },
  'A source port and what of its traffic is copied.',
);

const portSinkSchema = object(
  {
    type: oneOf(['port'] as const),
    portId: custom(parseId, { type: 'string', format: 'uuid', description: "an analyzer port (role analyzer) of the session's tenant, on any host" }, [ErrorCode.InvalidId]),
  },
  'An analyzer port.',
);

const vxlanSinkSchema = object(
  {
    type: oneOf(['vxlan'] as const),
    remoteIp: custom(parseVtepIp, { type: 'string', description: 'the collector: a unicast address the hosts can reach' }, [ErrorCode.InvalidIp]),
    vni: optional(integer({ min: VNI_MIN, max: VNI_MAX, code: ErrorCode.VniOutOfRange, description: 'a specific VNI (must be free, as a segment pinning one); absent = lowest free of OVERLAY_VNI_RANGES' })),
    udpPort: optional(integer({ min: 1, max: 65535, description: `the collector's UDP port; default ${MIRROR_UDP_PORT}` })),
  },
  'A remote collector, over VXLAN under the session VNI.',
);

const uplinkSinkSchema = object(
  {
    type: oneOf(['uplink'] as const),
    hostId: custom(parseId, { type: 'string', format: 'uuid', description: 'the host whose NIC it is' }, [ErrorCode.InvalidId]),
    interface: custom(parseInterfaceName, { type: 'string', description: "the NIC's Linux name (1-15 characters), cabled to a physical analyzer" }, [ErrorCode.InvalidValue]),
  },
  "A physical NIC of a host (operators only).",
);

const erspanSinkSchema = object(
  {
    type: oneOf(['erspan'] as const),
    remoteIp: custom(parseVtepIp, { type: 'string', description: 'the collector: a unicast address the hosts can reach' }, [ErrorCode.InvalidIp]),
    erspanId: integer({ min: ERSPAN_ID_MIN, max: ERSPAN_ID_MAX, description: 'the ERSPAN session ID the collector tells the copies by (10 bits)' }),
    version: optional(integer({ min: 1, max: 2, description: 'ERSPAN version: 1 (type II) or 2 (type III); default 2' })),
  },
  "A remote collector over ERSPAN (GRE), where the hosts' kernels have it (an agent on a kernel without reports the session broken).",
);

const SINK_SCHEMAS = { port: portSinkSchema, vxlan: vxlanSinkSchema, uplink: uplinkSinkSchema, erspan: erspanSinkSchema } as const;

export type SinkInput = Parsed<typeof portSinkSchema> | Parsed<typeof vxlanSinkSchema> | Parsed<typeof uplinkSinkSchema> | Parsed<typeof erspanSinkSchema>;

/** A sink: the object of its `type` (a union the object combinator cannot say on its own). */
export const sinkSchema: Schema<SinkInput> = {
  optional: false,
  codes: codesOf([ErrorCode.MissingField, ErrorCode.InvalidValue], ...Object.values(SINK_SCHEMAS).map((s) => s.codes)),
  // Each sink's `type` enum tells them apart (a discriminator needs named schemas to select).
  json: { oneOf: Object.values(SINK_SCHEMAS).map((s) => s.json), description: 'Where the copies go.' },
  parse(value, path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      // The object schemas word the type error.
      return portSinkSchema.parse(value, path);
    }
    const type = (value as Record<string, unknown>).type;
    if (type === undefined) {
      throw new OverlayError(ErrorCode.MissingField, `${fieldPath(path, 'type')} is required`, { field: fieldPath(path, 'type') });
    }
    const schema = typeof type === 'string' && Object.prototype.hasOwnProperty.call(SINK_SCHEMAS, type) ? SINK_SCHEMAS[type as keyof typeof SINK_SCHEMAS] : undefined;
    if (!schema) {
      throw new OverlayError(ErrorCode.InvalidValue, `${fieldPath(path, 'type')} must be one of ${SINK_TYPES.join(', ')}`, { field: fieldPath(path, 'type') });
    }
    return schema.parse(value, path);
  },
};

const filterSchema = object(
  {
    ethertype: optional(nullable(oneOf(ETHERTYPES))),
    protocol: optional(
      nullable(
        stringOrNumber(
          oneOf(MIRROR_PROTOCOL_NAMES),
          // 0 is not a protocol here: the dataplane reads protocol 0 as "any".
          integer({ min: 1, max: 255, description: 'IP protocol number' }),
          'tcp, udp, icmp (IPv4), icmpv6 (IPv6) or an IP protocol number 1-255; needs ethertype; stored as a number',
        ),
      ),
    ),
    remoteCidr: optional(nullable(custom(parseCidr, { type: 'string', description: "the peer's prefix (destination of what the VM sends, source of what it receives), of the ethertype's family; needs ethertype" }, [ErrorCode.InvalidCidr]))),
  },
  'Which copies are kept; absent fields (or null) = any.',
);

const sourcesSchema = array(sourceSchema, { min: 1, max: MAX_MIRROR_SOURCES });
const snapLengthSchema = nullable(integer({ min: MIN_SNAP_LENGTH, max: MAX_SNAP_LENGTH, description: 'bytes kept of each copy; null or absent = whole frames' }));

export const createMirrorSessionSchema = object(
  {
    tenantId: idSchema,
    name: nameSchema,
    enabled: optional(boolean()),
    sources: sourcesSchema,
    sink: sinkSchema,
    filter: optional(nullable(filterSchema)),
    snapLength: optional(snapLengthSchema),
  },
  'A mirror session: copies of what its source ports send and/or receive go to its sink. enabled defaults to true; a source direction to both.',
);

export const updateMirrorSessionSchema = object(
  {
    name: optional(nameSchema),
    enabled: optional(boolean()),
    sources: optional(sourcesSchema),
    sink: optional(sinkSchema),
    filter: optional(nullable(filterSchema)),
    snapLength: optional(snapLengthSchema),
  },
  'Fields to change (the tenant cannot change); sources and sink, when given, replace the current ones; filter or snapLength null = none. The session VNI never changes.',
);

export type CreateMirrorSession = Parsed<typeof createMirrorSessionSchema>;
export type UpdateMirrorSession = Parsed<typeof updateMirrorSessionSchema>;
export type FilterInput = Parsed<typeof filterSchema>;
export type SourceInput = Parsed<typeof sourceSchema>;

/** `GET /v1/mirror-sessions`. */
export const MIRROR_SESSION_LIST_QUERY = { ...PAGE_QUERY, tenantId: idParam('only mirror sessions of this tenant') } satisfies QuerySpec;
