/**
 * Domain errors. Services and repositories throw `OverlayError` with a stable code; the HTTP
 * edge maps codes to their status with one exhaustive switch (http/http-status.ts), so a new
 * code that is not mapped does not compile. (The gRPC stream refuses agents' messages with
 * INVALID_ARGUMENT and a reason of its own: agents never see these codes.)
 */
export enum ErrorCode {
  // The HTTP request itself (answered by the server before any route runs).
  MalformedRequest = 'MALFORMED_REQUEST',
  RequestTimeout = 'REQUEST_TIMEOUT',
  HeadersTooLarge = 'HEADERS_TOO_LARGE',
  // Request shape.
  InvalidJson = 'INVALID_JSON',
  UnsupportedMediaType = 'UNSUPPORTED_MEDIA_TYPE',
  BodyTooLarge = 'BODY_TOO_LARGE',
  MissingField = 'MISSING_FIELD',
  UnknownField = 'UNKNOWN_FIELD',
  InvalidType = 'INVALID_TYPE',
  InvalidCharacter = 'INVALID_CHARACTER',
  InvalidValue = 'INVALID_VALUE',
  InvalidName = 'INVALID_NAME',
  InvalidId = 'INVALID_ID',
  InvalidMac = 'INVALID_MAC',
  MulticastMac = 'MULTICAST_MAC',
  InvalidIp = 'INVALID_IP',
  InvalidCidr = 'INVALID_CIDR',
  IpOutsideCidr = 'IP_OUTSIDE_CIDR',
  IpFamilyMismatch = 'IP_FAMILY_MISMATCH',
  ReservedIp = 'RESERVED_IP',
  VniOutOfRange = 'VNI_OUT_OF_RANGE',
  VlanOutOfRange = 'VLAN_OUT_OF_RANGE',
  BatchTooLarge = 'BATCH_TOO_LARGE',
  InvalidCursor = 'INVALID_CURSOR',
  UnknownParameter = 'UNKNOWN_PARAMETER',
  // Security group rules and port security.
  PortRangeNotAllowed = 'PORT_RANGE_NOT_ALLOWED',
  InvalidPortRange = 'INVALID_PORT_RANGE',
  IcmpNotAllowed = 'ICMP_NOT_ALLOWED',
  ProtocolFamilyMismatch = 'PROTOCOL_FAMILY_MISMATCH',
  CidrFamilyMismatch = 'CIDR_FAMILY_MISMATCH',
  ConflictingRemotes = 'CONFLICTING_REMOTES',
  SecurityGroupTenantMismatch = 'SECURITY_GROUP_TENANT_MISMATCH',
  PortSecurityConflict = 'PORT_SECURITY_CONFLICT',
  // Mirror sessions.
  PortTenantMismatch = 'PORT_TENANT_MISMATCH',
  MirrorSinkNotAnalyzer = 'MIRROR_SINK_NOT_ANALYZER',
  MirrorSourceIsAnalyzer = 'MIRROR_SOURCE_IS_ANALYZER',
  MirrorSinkIsSource = 'MIRROR_SINK_IS_SOURCE',
  // Who may call (auth/).
  Unauthenticated = 'UNAUTHENTICATED',
  Forbidden = 'FORBIDDEN',
  // Missing things.
  NotFound = 'NOT_FOUND',
  TenantNotFound = 'TENANT_NOT_FOUND',
  SegmentNotFound = 'SEGMENT_NOT_FOUND',
  HostNotFound = 'HOST_NOT_FOUND',
  PortNotFound = 'PORT_NOT_FOUND',
  SecurityGroupNotFound = 'SECURITY_GROUP_NOT_FOUND',
  MigrationNotFound = 'MIGRATION_NOT_FOUND',
  TokenNotFound = 'TOKEN_NOT_FOUND',
  MirrorSessionNotFound = 'MIRROR_SESSION_NOT_FOUND',
  // Conflicts with existing state.
  TenantNameTaken = 'TENANT_NAME_TAKEN',
  TenantHasSegments = 'TENANT_HAS_SEGMENTS',
  TenantQuotaExceeded = 'TENANT_QUOTA_EXCEEDED',
  VniTaken = 'VNI_TAKEN',
  VniQuarantined = 'VNI_QUARANTINED',
  VniRangeExhausted = 'VNI_RANGE_EXHAUSTED',
  VlanTaken = 'VLAN_TAKEN',
  SegmentHasPorts = 'SEGMENT_HAS_PORTS',
  HostNameTaken = 'HOST_NAME_TAKEN',
  VtepIpTaken = 'VTEP_IP_TAKEN',
  HostHasPorts = 'HOST_HAS_PORTS',
  DuplicateMac = 'DUPLICATE_MAC',
  DuplicateIp = 'DUPLICATE_IP',
  MacSpaceExhausted = 'MAC_SPACE_EXHAUSTED',
  TenantHasSecurityGroups = 'TENANT_HAS_SECURITY_GROUPS',
  SecurityGroupNameTaken = 'SECURITY_GROUP_NAME_TAKEN',
  SecurityGroupInUse = 'SECURITY_GROUP_IN_USE',
  SecurityGroupIsDefault = 'SECURITY_GROUP_IS_DEFAULT',
  DuplicateRule = 'DUPLICATE_RULE',
  DuplicateAddressPair = 'DUPLICATE_ADDRESS_PAIR',
  MirrorSessionNameTaken = 'MIRROR_SESSION_NAME_TAKEN',
  MirrorSessionOverlap = 'MIRROR_SESSION_OVERLAP',
  TenantHasMirrorSessions = 'TENANT_HAS_MIRROR_SESSIONS',
  PortInMirrorSession = 'PORT_IN_MIRROR_SESSION',
  HostHasMirrorSessions = 'HOST_HAS_MIRROR_SESSIONS',
  // Live migrations.
  MigrationInProgress = 'MIGRATION_IN_PROGRESS',
  MigrationNotReady = 'MIGRATION_NOT_READY',
  MigrationClosed = 'MIGRATION_CLOSED',
  MigrationCommitted = 'MIGRATION_COMMITTED',
  PortNotOnSource = 'PORT_NOT_ON_SOURCE',
  HostHasMigrations = 'HOST_HAS_MIGRATIONS',
  // Strict VLAN trunks (OVERLAY_STRICT_VLAN_TRUNKS).
  VlanNotTrunked = 'VLAN_NOT_TRUNKED',
  // Tokens.
  LastAdminToken = 'LAST_ADMIN_TOKEN',
  // The store and the server.
  StoreUnavailable = 'STORE_UNAVAILABLE',
  /** The store came back empty or older than what was seen: writes wait for an operator (store/store-recovery.ts). */
  StoreRecovery = 'STORE_RECOVERY',
  /** POST /v1/admin/recovery/accept with no recovery to accept. */
  NotInRecovery = 'NOT_IN_RECOVERY',
  Timeout = 'TIMEOUT',
  Internal = 'INTERNAL',
}

export interface OverlayErrorDetails {
  /** The offending input field, as a JSON path (`ips[1]`, `ports[3].mac`). */
  field?: string;
}

/** The longest message and field an error carries: both may quote input (a 70 KB MAC), which an answer must not echo whole. */
export const MAX_ERROR_MESSAGE = 1024;
export const MAX_ERROR_FIELD = 256;

/** `text` cut to `max` characters, saying how much was cut. */
function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length - max} more characters)`;
}

export class OverlayError extends Error {
  readonly field?: string;

  constructor(
    readonly code: ErrorCode,
    message: string,
    details: OverlayErrorDetails = {},
  ) {
    super(bounded(message, MAX_ERROR_MESSAGE));
    this.name = 'OverlayError';
    this.field = details.field === undefined ? undefined : bounded(details.field, MAX_ERROR_FIELD);
  }

  toJSON(): { code: ErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}

const knownCodes = new Set<string>(Object.values(ErrorCode));

export function isErrorCode(value: string): value is ErrorCode {
  return knownCodes.has(value);
}

/** Things that can be missing, each with its code and noun. */
const MISSING = {
  tenant: [ErrorCode.TenantNotFound, 'tenant'],
  segment: [ErrorCode.SegmentNotFound, 'segment'],
  host: [ErrorCode.HostNotFound, 'host'],
  port: [ErrorCode.PortNotFound, 'port'],
  securityGroup: [ErrorCode.SecurityGroupNotFound, 'security group'],
  migration: [ErrorCode.MigrationNotFound, 'migration'],
  token: [ErrorCode.TokenNotFound, 'token'],
  mirrorSession: [ErrorCode.MirrorSessionNotFound, 'mirror session'],
} as const satisfies Record<string, readonly [ErrorCode, string]>;

export type MissingKind = keyof typeof MISSING;

/**
 * The one answer for "no such thing": `no segment <id>`. Services use it, and so does the tenant
 * scope for another tenant's objects, which must answer exactly as ones that do not exist; the
 * scripts write the same words (errors.spec.ts checks them).
 */
export function notFound(kind: MissingKind, id: string, field = 'id'): OverlayError {
  const [code, noun] = MISSING[kind];
  return new OverlayError(code, `no ${noun} ${id}`, { field });
}

/** The code and the message prefix (`no security group `) of a kind's not-found, for checks. */
export function notFoundWording(kind: MissingKind): { code: ErrorCode; prefix: string } {
  const [code, noun] = MISSING[kind];
  return { code, prefix: `no ${noun} ` };
}
