import { readFileSync } from 'node:fs';
import Redis, { type RedisOptions } from 'ioredis';
import { ConfigError, type EnvReader } from '../../common/env';

/** A Redis run by Sentinel: the controller asks the sentinels where the master is, and asks again after a failover. */
export interface SentinelSettings {
  /** The sentinels (REDIS_SENTINELS); any one that answers names the master. */
  sentinels: { host: string; port: number }[];
  /** The master's name in the sentinels' configuration (REDIS_SENTINEL_MASTER). */
  masterName: string;
  /** ACL user and password of the master and replicas (REDIS_USERNAME, REDIS_PASSWORD). */
  username?: string;
  password?: string;
  /** ACL user and password of the sentinels (REDIS_SENTINEL_USERNAME, REDIS_SENTINEL_PASSWORD). */
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** TLS to the master (REDIS_TLS=1) and to the sentinels (REDIS_SENTINEL_TLS=1), checked against REDIS_TLS_CA (else the system's CAs). */
  tls: boolean;
  sentinelTls: boolean;
  tlsCa?: string;
}

/** Where the store is and how writes are acknowledged: read by `readRedisSettings`, part of the controller's configuration. */
export interface RedisSettings {
  /** A single Redis (REDIS_URL); not used when `redisSentinel` is set. */
  redisUrl: string;
  redisSentinel?: SentinelSettings;
  /** Replicas that must have a write before it is acknowledged (OVERLAY_REDIS_MIN_REPLICAS; 0: Redis's answer is enough). */
  redisMinReplicas: number;
  /** How long a write waits for those replicas before it answers 503 STORE_UNAVAILABLE (OVERLAY_REDIS_REPLICA_TIMEOUT_MS). */
  redisReplicaTimeoutMs: number;
  /** The longest any Redis command may take before it fails with STORE_UNAVAILABLE (OVERLAY_REDIS_COMMAND_TIMEOUT_MS). */
  redisCommandTimeoutMs: number;
}

const HOST_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:,[\]]+)):(\d{1,5})$/;

/** `host:port[,host:port...]` (IPv6 as `[addr]:port`). */
export function parseSentinels(raw: string, name = 'REDIS_SENTINELS'): { host: string; port: number }[] {
  return raw.split(',').map((part) => {
    const m = HOST_PORT.exec(part.trim());
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) {
      throw new ConfigError(`${name} must be host:port[,host:port...] (IPv6 as [addr]:port), got ${JSON.stringify(part)}`);
    }
    return { host: m[1] ?? m[2], port };
  });
}

export function readRedisSettings(read: EnvReader, env: NodeJS.ProcessEnv): RedisSettings {
  const redisCommandTimeoutMs = read.int('OVERLAY_REDIS_COMMAND_TIMEOUT_MS', 10_000, 100, 600_000);
  const redisMinReplicas = read.int('OVERLAY_REDIS_MIN_REPLICAS', 0, 0, 100);
  const redisReplicaTimeoutMs = read.int('OVERLAY_REDIS_REPLICA_TIMEOUT_MS', Math.min(1_000, redisCommandTimeoutMs - 50), 10, 600_000);
  if (redisReplicaTimeoutMs >= redisCommandTimeoutMs) {
    throw new ConfigError(
      `OVERLAY_REDIS_REPLICA_TIMEOUT_MS (${redisReplicaTimeoutMs}) must be below OVERLAY_REDIS_COMMAND_TIMEOUT_MS (${redisCommandTimeoutMs}): the wait for replicas is a Redis command`,
    );
  }
  const common = { redisMinReplicas, redisReplicaTimeoutMs, redisCommandTimeoutMs };
  const sentinelOnly = ['REDIS_SENTINEL_MASTER', 'REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_SENTINEL_USERNAME', 'REDIS_SENTINEL_PASSWORD', 'REDIS_TLS', 'REDIS_SENTINEL_TLS', 'REDIS_TLS_CA'];
  const sentinelsRaw = read.get('REDIS_SENTINELS');
  if (sentinelsRaw === undefined) {
    const stray = sentinelOnly.find((name) => read.get(name) !== undefined);
    if (stray) {
      throw new ConfigError(`${stray} is for Redis Sentinel and needs REDIS_SENTINELS; a single Redis takes its user, password and TLS in REDIS_URL (rediss://user:password@host:port)`);
    }
    // An empty REDIS_URL is a mistake (a variable meant to be filled), not a request for the default.
    const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    if (!/^rediss?:\/\//.test(redisUrl)) {
      throw new ConfigError(`REDIS_URL must start with redis:// or rediss://, got ${JSON.stringify(redisUrl)}`);
    }
    return { redisUrl, ...common };
  }
  if (read.get('REDIS_URL') !== undefined) {
    throw new ConfigError('set REDIS_URL (a single Redis) or REDIS_SENTINELS (Redis Sentinel), not both');
  }
  const masterName = read.get('REDIS_SENTINEL_MASTER');
  if (masterName === undefined) {
    throw new ConfigError('REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS: the master name the sentinels monitor (sentinel monitor <name> ...)');
  }
  const tlsCa = read.get('REDIS_TLS_CA');
  const tls = read.bool('REDIS_TLS', false);
  const sentinelTls = read.bool('REDIS_SENTINEL_TLS', false);
  if (tlsCa !== undefined) {
    if (!tls && !sentinelTls) {
      throw new ConfigError('REDIS_TLS_CA is set but neither REDIS_TLS nor REDIS_SENTINEL_TLS is 1');
    }
    try {
      readFileSync(tlsCa);
    } catch (err) {
      throw new ConfigError(`REDIS_TLS_CA: cannot read ${tlsCa} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  return {
    redisUrl: 'redis://127.0.0.1:6379',
    redisSentinel: {
      sentinels: parseSentinels(sentinelsRaw),
      masterName,
      username: read.get('REDIS_USERNAME'),
      password: read.get('REDIS_PASSWORD'),
      sentinelUsername: read.get('REDIS_SENTINEL_USERNAME'),
      sentinelPassword: read.get('REDIS_SENTINEL_PASSWORD'),
      tls,
      sentinelTls,
      tlsCa,
    },
    ...common,
  };
}

/** Where the store is, for the log: the URL without its credentials, or the sentinels and the master's name; and the write acknowledgement. */
export function describeRedis(settings: RedisSettings): string {
  const where = settings.redisSentinel
    ? `Sentinel master ${settings.redisSentinel.masterName} via ${settings.redisSentinel.sentinels.map((s) => (s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`)).join(',')}`
    : settings.redisUrl.replace(/\/\/[^@]*@/, '//***@');
  return settings.redisMinReplicas > 0 ? `${where} (writes acknowledged once on ${settings.redisMinReplicas} replica(s))` : where;
}

/**
 * A Redis reply that says "not now" rather than "no": the command did not run (or, for READONLY
 * after a demotion, could not write), and the store is elsewhere or not ready. Such a refusal
 * answers 503 STORE_UNAVAILABLE, never 500.
 */
export const UNAVAILABLE_REPLY = /^(?:READONLY|LOADING|MASTERDOWN|NOREPLICAS|TRYAGAIN)\b|\bREADONLY You can't write/;

/**
 * A client of the store, a single Redis or the master Sentinel names, with the given reconnect
 * policy. Under Sentinel, ioredis asks the sentinels for the master at every (re)connection,
 * checks the role of what it reached (ready check), drops the connection when a sentinel
 * announces a new master (failover detector), and when a command meets a demoted master
 * (READONLY): every connection follows a failover without a restart.
 */
export function createRedisClient(settings: Pick<RedisSettings, 'redisUrl' | 'redisSentinel'>, options: RedisOptions): Redis {
  const s = settings.redisSentinel;
  if (!s) {
    return new Redis(settings.redisUrl, options);
  }
  const ca = s.tlsCa === undefined ? undefined : readFileSync(s.tlsCa);
  return new Redis({
    ...options,
    sentinels: s.sentinels,
    name: s.masterName,
    role: 'master',
    username: s.username,
    password: s.password,
    sentinelUsername: s.sentinelUsername,
    sentinelPassword: s.sentinelPassword,
    tls: s.tls ? { ca } : undefined,
    enableTLSForSentinelMode: s.tls,
    sentinelTLS: s.sentinelTls ? { ca } : undefined,
    failoverDetector: true,
    // Reconnect every 200 ms at most: a failover is over within seconds, and every reconnect
    // asks the sentinels anew, so the first attempt after the promotion reaches the new master.
    // (Commands waiting meanwhile fail after two attempts, or at their command timeout.)
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 2), 200),
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1_000),
    // 1: reconnect (to whatever the sentinels now name), and fail the command: never resend it.
    reconnectOnError: (err) => (UNAVAILABLE_REPLY.test(err.message) ? 1 : false),
  });
}
