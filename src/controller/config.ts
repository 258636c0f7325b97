import { resolve } from 'node:path';
import { ConfigError, EnvReader } from '../common/env';
import { readLogSettings, type LogSettings } from '../common/logger';
import { VNI_MAX, VNI_MIN } from '../common/values';
import { readRedisSettings, type RedisSettings } from './store/redis-connection';

/**
 * overlayd's configuration, read from the environment once at boot. A bad value stops the
 * process with a message naming the variable, rather than surfacing later as odd behaviour.
 */
export interface VniRange {
  from: number;
  to: number;
}

/** Where Redis is (REDIS_URL, or REDIS_SENTINELS and the rest) and how writes are acknowledged: store/redis-connection.ts. */
export interface ControllerConfig extends RedisSettings {
  httpPort: number;
  grpcPort: number;
  /** Where the REST API listens: an IP address or a host name (OVERLAY_HTTP_HOST). */
  httpHost: string;
  /** Where the agents' gRPC server listens: an IP address or a host name (OVERLAY_GRPC_HOST). */
  grpcHost: string;
  /** Every Redis key of this deployment starts with `{<keyPrefix>}:` (one hash tag: Cluster-safe scripts). */
  keyPrefix: string;
  vniRanges: VniRange[];
  /** How long a released VNI stays out of circulation. */
  vniQuarantineSeconds: number;
  /** Approximate number of change records kept in the stream (older ones are trimmed). */
  changeLogMaxLength: number;
  /**
   * Whether change records get a nonce in their entry id (`<revision>-<nonce>`, change-log.ts);
   * off: `<revision>-0`, as before it, for as long as replicas of an earlier version read the log.
   */
  changeLogNonces: boolean;
  /** Largest accepted request body. */
  maxBodyBytes: number;
  /** Most ports in one batch create. */
  maxBatchSize: number;
  /** Most mirror sessions one tenant may have (TENANT_QUOTA_EXCEEDED past it). */
  maxMirrorSessionsPerTenant: number;
  /** How long a prepared migration waits for its commit before it expires (a request may ask for another). */
  migrationTtlMs: number;
  /** How long a finished migration (completed, aborted, expired) stays readable. */
  migrationRetentionSeconds: number;
  /** The most tracked connections of one migration handed from its source to its destination; 0: none are. */
  migrationMaxConnections: number;
  /** How long a client has to send a whole request, headers and body (408 REQUEST_TIMEOUT past it). */
  httpRequestTimeoutMs: number;
  /** How long a client has to send the headers of a request; at most the request timeout. */
  httpHeadersTimeoutMs: number;
  /** How long an idle keep-alive connection is kept open. */
  httpKeepAliveTimeoutMs: number;
  /** Most HTTP connections open at once; past it new ones are closed at once. */
  httpMaxConnections: number;
  /** The longest a shutdown (SIGTERM) may take before the process exits anyway. */
  shutdownTimeoutMs: number;
  /** OVERLAY_LOG_FORMAT and OVERLAY_LOG_LEVEL (common/logger.ts). */
  logFormat: LogSettings['logFormat'];
  logLevel: LogSettings['logLevel'];
  /** How long the audit trail keeps an event. */
  eventsRetentionSeconds: number;
  /** The most refused calls the audit trail keeps (approximately; the oldest go first). */
  deniedEventsMaxLength: number;
  /** How often the audit is evaluated into the findings' history (by whichever replica is due first). */
  auditIntervalMs: number;
  /**
   * Strict VLAN trunks: refuse to bind a port of a VLAN segment, or to prepare its migration, onto
   * a host whose switch ports (observed by LLDP, else declared) do not carry the segment's VLAN
   * (409 VLAN_NOT_TRUNKED): the audit's VM-VN-R1 as a pre-flight check.
   */
  strictVlanTrunks: boolean;
  /** The first admin token, when no admin token exists yet (at least 32 characters); absent: one is generated into `bootstrapTokenFile`. */
  bootstrapToken?: string;
  /** Where a generated first admin token is written (mode 0600). */
  bootstrapTokenFile: string;
  /** TLS files for the agents' gRPC stream; absent = insecure (development only, needs OVERLAY_GRPC_INSECURE=true). */
  tls?: { ca: string; cert: string; key: string };
  /** The REST API's certificate and key (PEM files); absent = plain HTTP. */
  httpTls?: { cert: string; key: string };
}

export const ControllerConfig = Symbol('ControllerConfig');

/** Parses `5000-5999,7000-7999` (single values allowed). Ranges must not overlap. */
export function parseVniRanges(raw: string, name = 'OVERLAY_VNI_RANGES'): VniRange[] {
  const ranges = raw.split(',').map((part) => {
    const m = /^\s*(\d+)(?:\s*-\s*(\d+))?\s*$/.exec(part);
    if (!m) {
      throw new ConfigError(`${name}: ${JSON.stringify(part)} is not a range like 5000-5999`);
    }
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < VNI_MIN || to > VNI_MAX || from > to) {
      throw new ConfigError(`${name}: ${part.trim()} must lie within ${VNI_MIN}-${VNI_MAX}, low to high`);
    }
    return { from, to };
  });
  ranges.sort((a, b) => a.from - b.from);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i].from <= ranges[i - 1].to) {
      throw new ConfigError(`${name}: ranges ${ranges[i - 1].from}-${ranges[i - 1].to} and ${ranges[i].from}-${ranges[i].to} overlap`);
    }
  }
  return ranges;
}

/** A token fits in an Authorization header as it is: 32-256 characters of base64url, base64 or `.~-`. */
export const TOKEN_TEXT = /^[A-Za-z0-9._~+/=-]{32,256}$/;

function parseBootstrapToken(raw: string | undefined): string | undefined {
  if (raw !== undefined && !TOKEN_TEXT.test(raw)) {
    throw new ConfigError(`OVERLAY_BOOTSTRAP_TOKEN must be 32-256 characters of [A-Za-z0-9._~+/=-] (e.g. openssl rand -hex 32); got ${raw.length} characters`);
  }
  return raw;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const read = new EnvReader(env);
  const keyPrefix = env.OVERLAY_KEY_PREFIX ?? 'overlay';
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(keyPrefix)) {
    throw new ConfigError(`OVERLAY_KEY_PREFIX must be 1-64 characters of [A-Za-z0-9._:-], got ${JSON.stringify(keyPrefix)}`);
  }
  const redis = readRedisSettings(read, env);
  const tls = read.tlsFiles('agents are authenticated by TLS client certificates: set OVERLAY_TLS_CA, OVERLAY_TLS_CERT and OVERLAY_TLS_KEY, or OVERLAY_GRPC_INSECURE=true for development');
  const { logLevel, logFormat } = readLogSettings(read);
  const httpRequestTimeoutMs = read.int('OVERLAY_HTTP_REQUEST_TIMEOUT_MS', 30_000, 1_000, 3_600_000);
  const httpHeadersTimeoutMs = read.int('OVERLAY_HTTP_HEADERS_TIMEOUT_MS', Math.min(10_000, httpRequestTimeoutMs), 1_000, 3_600_000);
  if (httpHeadersTimeoutMs > httpRequestTimeoutMs) {
    throw new ConfigError(`OVERLAY_HTTP_HEADERS_TIMEOUT_MS (${httpHeadersTimeoutMs}) must not exceed OVERLAY_HTTP_REQUEST_TIMEOUT_MS (${httpRequestTimeoutMs}): the headers are part of the request`);
  }
  return {
    logFormat,
    logLevel,
    httpRequestTimeoutMs,
    httpHeadersTimeoutMs,
    httpKeepAliveTimeoutMs: read.int('OVERLAY_HTTP_KEEP_ALIVE_TIMEOUT_MS', 5_000, 100, 600_000),
    httpMaxConnections: read.int('OVERLAY_HTTP_MAX_CONNECTIONS', 1024, 1, 1_000_000),
    shutdownTimeoutMs: read.int('OVERLAY_SHUTDOWN_TIMEOUT_MS', 5_000, 100, 600_000),
    tls,
    ...redis,
    httpPort: read.int('OVERLAY_HTTP_PORT', 8080, 0, 65535),
    grpcPort: read.int('OVERLAY_GRPC_PORT', 50051, 0, 65535),
    httpHost: read.listenHost('OVERLAY_HTTP_HOST', '0.0.0.0'),
    grpcHost: read.listenHost('OVERLAY_GRPC_HOST', '0.0.0.0'),
    httpTls: read.tlsKeyPair('OVERLAY_HTTP_TLS_CERT', 'OVERLAY_HTTP_TLS_KEY'),
    keyPrefix,
    vniRanges: parseVniRanges(env.OVERLAY_VNI_RANGES ?? '1000-16777215'),
    vniQuarantineSeconds: read.int('OVERLAY_VNI_QUARANTINE_SECONDS', 300, 0, 30 * 86400),
    changeLogMaxLength: read.int('OVERLAY_CHANGELOG_MAX_LENGTH', 1_000_000, 1000, 1_000_000_000),
    changeLogNonces: read.bool('OVERLAY_CHANGELOG_NONCES', true),
    maxBodyBytes: read.int('OVERLAY_MAX_BODY_BYTES', 8 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxBatchSize: read.int('OVERLAY_MAX_BATCH_SIZE', 10_000, 1, 100_000),
    maxMirrorSessionsPerTenant: read.int('OVERLAY_MAX_MIRROR_SESSIONS_PER_TENANT', 100, 0, 100_000),
    migrationTtlMs: read.int('OVERLAY_MIGRATION_TTL_MS', 300_000, 1_000, 86_400_000),
    migrationRetentionSeconds: read.int('OVERLAY_MIGRATION_RETENTION_SECONDS', 7 * 86400, 60, 365 * 86400),
    migrationMaxConnections: read.int('OVERLAY_MIGRATION_MAX_CONNECTIONS', 100_000, 0, 1_000_000),
    eventsRetentionSeconds: read.int('OVERLAY_EVENTS_RETENTION_SECONDS', 30 * 86400, 3600, 10 * 365 * 86400),
    deniedEventsMaxLength: read.int('OVERLAY_DENIED_EVENTS_MAX_LENGTH', 100_000, 1000, 100_000_000),
    auditIntervalMs: read.int('OVERLAY_AUDIT_INTERVAL_MS', 300_000, 1_000, 86_400_000),
    strictVlanTrunks: read.bool('OVERLAY_STRICT_VLAN_TRUNKS', false),
    bootstrapToken: parseBootstrapToken(read.get('OVERLAY_BOOTSTRAP_TOKEN')),
    bootstrapTokenFile: resolve(read.get('OVERLAY_BOOTSTRAP_TOKEN_FILE') ?? 'overlayd-bootstrap-token'),
  };
}
