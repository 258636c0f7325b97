import { ErrorCode, OverlayError } from '../errors';
import { array, boolean, custom, nullable, object, oneOf, optional, string, type Parsed } from '../http/schema';
import { parseHostIp, parseId, parseIpOrCidr, parseMac, parseTapName } from '../model/value-parsers';
import { parseBody } from '../http/body';
import { enumParam, idParam, integerParam, stringParam, type QueryParam, type QuerySpec, type QueryValues } from '../http/query';
import { PAGE_QUERY } from '../store/page';

const idSchema = custom(parseId, { type: 'string', format: 'uuid' }, [ErrorCode.InvalidId]);

export const MAX_IPS_PER_PORT = 16;
export const MAX_SECURITY_GROUPS_PER_PORT = 16;
export const MAX_ADDRESS_PAIRS_PER_PORT = 10;

export const PORT_ROLES = ['vm', 'analyzer'] as const;

export const VM_ID = { min: 1, max: 128, pattern: /^[\x21-\x7e]+$/ };

export const vmIdSchema = string({ ...VM_ID, description: 'the VM this vNIC belongs to (printable ASCII, no spaces)' });

const macSchema = (description: string) => custom(parseMac, { type: 'string', example: '02:00:00:00:00:01', description }, [ErrorCode.InvalidMac, ErrorCode.MulticastMac]);

export const addressPairSchema = object(
  {
    ip: custom(parseIpOrCidr, { type: 'string', example: '10.0.0.100', description: 'an IPv4/IPv6 address or prefix the port may also send from' }, [ErrorCode.InvalidIp, ErrorCode.InvalidCidr, ErrorCode.ReservedIp]),
    mac: optional(nullable(macSchema('the MAC it sends that address from; absent = the port MAC'))),
  },
  'An address the port may send from besides its own (a VIP, a routed prefix...).',
);

/** `tapName`: null (on update) forgets it. */
export const tapNameSchema = custom(
  parseTapName,
  {
    type: 'string',
    minLength: 1,
    maxLength: 15,
    pattern: '^[A-Za-z0-9_.-]{1,15}$',
    example: 'vnet3',
    description:
      "the name of the port's tap on its host, as the hypervisor named it (a Linux interface name, not vx<n>, br<n>, mx<n> or ms<n>); absent = the agent finds the tap by its port-id name (tap + the last 11 hex digits of the id), else by MAC (the port MAC with the first octet fe, as libvirt sets it)",
  },
  [ErrorCode.InvalidValue],
);

const securityFields = {
  securityGroupIds: optional(
    array(custom(parseId, { type: 'string', format: 'uuid', description: 'a security group of the port tenant' }, [ErrorCode.InvalidId]), {
      max: MAX_SECURITY_GROUPS_PER_PORT,
    }),
  ),
  portSecurity: optional(boolean()),
  allowedAddressPairs: optional(array(addressPairSchema, { max: MAX_ADDRESS_PAIRS_PER_PORT })),
};

export const createPortSchema = object(
  {
    segmentId: idSchema,
    vmId: optional(nullable(vmIdSchema)),
    mac: optional(macSchema('unicast MAC; absent = a locally administered one is generated')),
    ips: optional(array(custom(parseHostIp, { type: 'string', description: 'unicast IPv4 or IPv6 address a VM can hold, inside the segment CIDR if it has one' }, [ErrorCode.InvalidIp, ErrorCode.ReservedIp]), { max: MAX_IPS_PER_PORT })),
    hostId: optional(nullable(idSchema)),
    tapName: optional(nullable(tapNameSchema)),
    role: optional(oneOf(PORT_ROLES, 'vm (default), or analyzer: a mirror sessions\' sink that only receives copies (never attached to its segment, never sends; no port security); fixed at creation')),
    ...securityFields,
  },
  'A VM port (vNIC). securityGroupIds absent or [] = the tenant default group; portSecurity (default true; false, and only false, for an analyzer port) false = no filtering and no anti-spoofing, which needs no security groups and no address pairs.',
);

export const updatePortSchema = object(
  {
    hostId: optional(nullable(idSchema)),
    vmId: optional(nullable(vmIdSchema)),
    tapName: optional(nullable(tapNameSchema)),
    ...securityFields,
  },
  'Bind (hostId), unbind (hostId: null) or relabel (vmId) a port; name its tap (tapName; null = found by port-id name or MAC); replace its security groups, address pairs, or turn port security on or off.',
);

export type CreatePort = Parsed<typeof createPortSchema>;
export type UpdatePort = Parsed<typeof updatePortSchema>;

export function createPortBatchSchema(maxBatchSize: number) {
  return object({ ports: array(createPortSchema, { min: 1, max: maxBatchSize }) }, 'Ports created all together or not at all.');
}

/** The parser of `POST /v1/ports/batch` at the configured limit: a batch over it is refused by its length before any port is parsed. */
export function portBatchParser(maxBatchSize: number): (body: unknown) => CreatePort[] {
  const schema = createPortBatchSchema(maxBatchSize);
  return (body) => {
    const ports = (body as { ports?: unknown } | null)?.ports;
    if (Array.isArray(ports) && ports.length > maxBatchSize) {
      throw new OverlayError(ErrorCode.BatchTooLarge, `at most ${maxBatchSize} ports per batch (OVERLAY_MAX_BATCH_SIZE), got ${ports.length}`, { field: 'ports' });
    }
    return parseBody(schema, body).ports;
  };
}

/** `?mac=`: a port's MAC in any case, as a port holds it (a multicast MAC is refused as no port has one). */
const macParam: QueryParam<string> = {
  code: ErrorCode.InvalidMac,
  schema: { type: 'string', example: '02:00:00:00:00:0a' },
  description: 'only ports with this MAC (unique within a segment, so several segments may each hold one): how a hypervisor hook finds the port of a VM interface',
  parse(raw, name) {
    try {
      return parseMac(raw, name);
    } catch {
      throw new OverlayError(ErrorCode.InvalidMac, `${name} must be a unicast MAC address like 02:00:00:00:00:01`, { field: name });
    }
  },
};

/** `GET /v1/ports`: filters combine (all must hold). */
export const PORT_LIST_QUERY = {
  ...PAGE_QUERY,
  segmentId: idParam('only ports of this segment'),
  hostId: idParam('only ports bound to this host'),
  vmId: stringParam({ ...VM_ID, description: 'only ports of this VM' }),
  mac: macParam,
  tenantId: idParam("only ports of this tenant (a tenant token sees only its own tenant's)"),
} satisfies QuerySpec;

export const DEFAULT_WAIT_TIMEOUT_MS = 10_000;
export const MAX_WAIT_TIMEOUT_MS = 120_000;

/** `?wait=realized&timeout=<ms>` on a write to ports (create, batch, update, delete) and a migration commit. */
export const WAIT_QUERY = {
  wait: enumParam(['realized'] as const, 'answer only once every host whose span this write changed (those that lose the port included) has applied it'),
  timeout: integerParam({ min: 1, max: MAX_WAIT_TIMEOUT_MS, default: DEFAULT_WAIT_TIMEOUT_MS, unit: 'milliseconds', description: 'ms to wait, with wait=realized only' }),
} satisfies QuerySpec;

/** `?wait=realized&timeout=<ms>` on a write. */
export interface RealizationWait {
  timeoutMs: number;
}

/** The wait a write asked for; undefined when the caller does not wait. A timeout without `wait` is refused, not ignored. */
export function waitOf(query: QueryValues<typeof WAIT_QUERY>): RealizationWait | undefined {
  if (query.wait === undefined) {
    if (query.timeout !== undefined) {
      throw new OverlayError(ErrorCode.InvalidValue, 'timeout applies only with wait=realized', { field: 'timeout' });
    }
    return undefined;
  }
  return { timeoutMs: query.timeout ?? DEFAULT_WAIT_TIMEOUT_MS };
}
