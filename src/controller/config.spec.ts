import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError } from '../common/env';
import { generateToken } from './tokens/token.service';
import { loadConfig, parseVniRanges } from './config';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('parseVniRanges', () => {
  it('reads ranges and single values, sorted low to high', () => {
    expect(parseVniRanges('7000-7999,5000-5999')).toEqual([
      { from: 5000, to: 5999 },
      { from: 7000, to: 7999 },
    ]);
    expect(parseVniRanges('42')).toEqual([{ from: 42, to: 42 }]);
    expect(parseVniRanges(' 1 - 10 , 20 ')).toEqual([
      { from: 1, to: 10 },
      { from: 20, to: 20 },
    ]);
  });

  it('accepts the whole VNI space, 1 to 16777215', () => {
    expect(parseVniRanges('1-16777215')).toEqual([{ from: 1, to: 16_777_215 }]);
  });

  it('accepts ranges that touch without overlapping', () => {
    expect(parseVniRanges('1-10,11-20')).toEqual([
      { from: 1, to: 10 },
      { from: 11, to: 20 },
    ]);
  });

  it.each([
    ['ranges sharing one VNI', '1-10,10-20'],
    ['a range inside another', '1-100,50-60'],
    ['the same single value twice', '5,5'],
    ['overlaps given out of order', '50-60,1-100'],
  ])('refuses %s as overlapping', (_what, raw) => {
    expect(configError(() => parseVniRanges(raw)).message).toMatch(/^OVERLAY_VNI_RANGES: .*overlap/);
  });

  it.each([
    ['VNI 0', '0-10'],
    ['the single value 0', '0'],
    ['16777216', '16777000-16777216'],
    ['a number beyond 2^53', '1-99999999999999999999'],
  ])('refuses %s as outside 1..16777215', (_what, raw) => {
    expect(configError(() => parseVniRanges(raw)).message).toMatch(/^OVERLAY_VNI_RANGES: .* must lie within 1-16777215/);
  });

  it('refuses a reversed range', () => {
    expect(configError(() => parseVniRanges('5999-5000')).message).toMatch(/^OVERLAY_VNI_RANGES: 5999-5000 must lie within 1-16777215, low to high/);
  });

  it.each([
    ['empty text', ''],
    ['a word', 'all'],
    ['a negative number', '-5'],
    ['an open range', '5000-'],
    ['three bounds', '1-2-3'],
    ['an empty item', '1-10,,20-30'],
    ['a trailing comma', '1-10,'],
    ['a fraction', '1.5-10'],
    ['hexadecimal', '0x10-0x20'],
  ])('refuses %s as not a range', (_what, raw) => {
    expect(configError(() => parseVniRanges(raw)).message).toMatch(/^OVERLAY_VNI_RANGES: .* is not a range like 5000-5999/);
  });

  it('names the variable it was given', () => {
    expect(configError(() => parseVniRanges('x', 'MY_RANGES')).message).toMatch(/^MY_RANGES: /);
  });
});

/** The least environment loadConfig accepts: agent TLS is required unless explicitly waived. */
const BASE: NodeJS.ProcessEnv = { OVERLAY_GRPC_INSECURE: 'true' };
const load = (env: NodeJS.ProcessEnv) => loadConfig({ ...BASE, ...env });

describe('loadConfig', () => {
  it('uses the defaults for an otherwise empty environment', () => {
    expect(load({})).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
      redisMinReplicas: 0,
      redisReplicaTimeoutMs: 1_000,
      redisCommandTimeoutMs: 10_000,
      httpPort: 8080,
      grpcPort: 50051,
      httpHost: '0.0.0.0',
      grpcHost: '0.0.0.0',
      keyPrefix: 'overlay',
      vniRanges: [{ from: 1000, to: 16_777_215 }],
      vniQuarantineSeconds: 300,
      changeLogMaxLength: 1_000_000,
      changeLogNonces: true,
      maxBodyBytes: 8 * 1024 * 1024,
      maxBatchSize: 10_000,
      maxMirrorSessionsPerTenant: 100,
      migrationTtlMs: 300_000,
      migrationRetentionSeconds: 604_800,
      migrationMaxConnections: 100_000,
      httpRequestTimeoutMs: 30_000,
      httpHeadersTimeoutMs: 10_000,
      httpKeepAliveTimeoutMs: 5_000,
      httpMaxConnections: 1024,
      shutdownTimeoutMs: 5_000,
      logFormat: 'json',
      logLevel: 'log',
      eventsRetentionSeconds: 30 * 86400,
      deniedEventsMaxLength: 100_000,
      auditIntervalMs: 300_000,
      strictVlanTrunks: false,
      bootstrapTokenFile: resolve('overlayd-bootstrap-token'),
    });
    // toEqual passes over undefined fields: no bootstrap token and no TLS, said outright.
    expect(load({})).toHaveProperty('bootstrapToken', undefined);
    expect(load({})).toHaveProperty('tls', undefined);
  });

  it('reads every variable', () => {
    expect(
      load({
        REDIS_URL: 'rediss://user:secret@redis.example:6380/2',
        OVERLAY_HTTP_PORT: '0',
        OVERLAY_GRPC_PORT: '65535',
        OVERLAY_HTTP_HOST: '::1',
        OVERLAY_GRPC_HOST: 'ctl1.example.net',
        OVERLAY_KEY_PREFIX: 'prod-eu.1:a_b',
        OVERLAY_VNI_RANGES: '5000-5999,7000',
        OVERLAY_VNI_QUARANTINE_SECONDS: '0',
        OVERLAY_CHANGELOG_MAX_LENGTH: '1000',
        OVERLAY_CHANGELOG_NONCES: '0',
        OVERLAY_MAX_BODY_BYTES: '1024',
        OVERLAY_MAX_BATCH_SIZE: '100000',
        OVERLAY_MAX_MIRROR_SESSIONS_PER_TENANT: '0',
        OVERLAY_MIGRATION_TTL_MS: '1000',
        OVERLAY_MIGRATION_RETENTION_SECONDS: '60',
        OVERLAY_MIGRATION_MAX_CONNECTIONS: '0',
        OVERLAY_LOG_FORMAT: 'text',
        OVERLAY_LOG_LEVEL: 'debug',
        OVERLAY_HTTP_REQUEST_TIMEOUT_MS: '60000',
        OVERLAY_HTTP_HEADERS_TIMEOUT_MS: '60000',
        OVERLAY_HTTP_KEEP_ALIVE_TIMEOUT_MS: '100',
        OVERLAY_HTTP_MAX_CONNECTIONS: '1',
        OVERLAY_SHUTDOWN_TIMEOUT_MS: '100',
        OVERLAY_EVENTS_RETENTION_SECONDS: '3600',
        OVERLAY_DENIED_EVENTS_MAX_LENGTH: '1000',
        OVERLAY_AUDIT_INTERVAL_MS: '1000',
        OVERLAY_STRICT_VLAN_TRUNKS: '1',
        OVERLAY_BOOTSTRAP_TOKEN: 'a'.repeat(32),
        OVERLAY_BOOTSTRAP_TOKEN_FILE: '/var/lib/overlayd/first-token',
      }),
    ).toEqual({
      redisUrl: 'rediss://user:secret@redis.example:6380/2',
      redisMinReplicas: 0,
      redisReplicaTimeoutMs: 1_000,
      redisCommandTimeoutMs: 10_000,
      httpPort: 0,
      grpcPort: 65535,
      httpHost: '::1',
      grpcHost: 'ctl1.example.net',
      keyPrefix: 'prod-eu.1:a_b',
      vniRanges: [
        { from: 5000, to: 5999 },
        { from: 7000, to: 7000 },
      ],
      vniQuarantineSeconds: 0,
      changeLogMaxLength: 1000,
      changeLogNonces: false,
      maxBodyBytes: 1024,
      maxBatchSize: 100_000,
      maxMirrorSessionsPerTenant: 0,
      migrationTtlMs: 1000,
      migrationRetentionSeconds: 60,
      migrationMaxConnections: 0,
      httpRequestTimeoutMs: 60_000,
      httpHeadersTimeoutMs: 60_000,
      httpKeepAliveTimeoutMs: 100,
      httpMaxConnections: 1,
      shutdownTimeoutMs: 100,
      logFormat: 'text',
      logLevel: 'debug',
      eventsRetentionSeconds: 3600,
      deniedEventsMaxLength: 1000,
      auditIntervalMs: 1000,
      strictVlanTrunks: true,
      bootstrapToken: 'a'.repeat(32),
      bootstrapTokenFile: '/var/lib/overlayd/first-token',
    });
  });

  it('resolves a relative OVERLAY_BOOTSTRAP_TOKEN_FILE against the working directory', () => {
    expect(load({ OVERLAY_BOOTSTRAP_TOKEN_FILE: 'state/token' }).bootstrapTokenFile).toBe(resolve('state/token'));
  });

  it.each([
    ['32 characters, the least', 'x'.repeat(32)],
    ['256 characters, the most', 'x'.repeat(256)],
    ['openssl rand -hex 32', '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
    ['openssl rand -base64 32', 'n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg='],
    ['a token overlayd makes', generateToken()],
    ['every character allowed', 'AZaz09._~+/=-'.repeat(3)],
  ])('takes OVERLAY_BOOTSTRAP_TOKEN of %s', (_what, token) => {
    expect(load({ OVERLAY_BOOTSTRAP_TOKEN: token }).bootstrapToken).toBe(token);
  });

  it('treats an empty OVERLAY_BOOTSTRAP_TOKEN as unset', () => {
    expect(load({ OVERLAY_BOOTSTRAP_TOKEN: '' })).toHaveProperty('bootstrapToken', undefined);
  });

  it.each([
    ['31 characters, too short', 'x'.repeat(31)],
    ['a short password', 'hunter2'],
    ['257 characters, too long', 'x'.repeat(257)],
    ['a space', `${'x'.repeat(20)} ${'x'.repeat(20)}`],
    ['a trailing newline (from a file read as is)', `${'x'.repeat(40)}\n`],
    ['a colon', `user:${'x'.repeat(40)}`],
    ['a quote', `"${'x'.repeat(40)}"`],
    ['a non-ASCII letter', `${'x'.repeat(40)}é`],
    ['a NUL', `${'x'.repeat(40)}\u0000`],
  ])('refuses OVERLAY_BOOTSTRAP_TOKEN with %s, without repeating it', (_what, token) => {
    const message = configError(() => load({ OVERLAY_BOOTSTRAP_TOKEN: token })).message;
    expect(message).toMatch(/^OVERLAY_BOOTSTRAP_TOKEN must be 32-256 characters of \[A-Za-z0-9._~\+\/=-\]/);
    expect(message).toContain(`got ${token.length} characters`);
    // The token is a secret: a configuration error, which ends up in logs, must not show it.
    expect(message).not.toContain(token.trim().slice(0, 32));
  });

  it.each([
    ['3600, the least', '3600', 3600],
    ['ten years, the most', String(10 * 365 * 86400), 10 * 365 * 86400],
  ])('takes OVERLAY_EVENTS_RETENTION_SECONDS of %s', (_what, raw, seconds) => {
    expect(load({ OVERLAY_EVENTS_RETENTION_SECONDS: raw }).eventsRetentionSeconds).toBe(seconds);
  });

  it('keeps the default headers timeout within a shorter request timeout', () => {
    expect(load({ OVERLAY_HTTP_REQUEST_TIMEOUT_MS: '2000' })).toMatchObject({ httpRequestTimeoutMs: 2000, httpHeadersTimeoutMs: 2000 });
  });

  it('refuses a headers timeout longer than the request timeout', () => {
    expect(configError(() => load({ OVERLAY_HTTP_REQUEST_TIMEOUT_MS: '5000', OVERLAY_HTTP_HEADERS_TIMEOUT_MS: '6000' })).message).toMatch(
      /^OVERLAY_HTTP_HEADERS_TIMEOUT_MS \(6000\) must not exceed OVERLAY_HTTP_REQUEST_TIMEOUT_MS \(5000\)/,
    );
  });

  it.each([['warning'], ['info'], ['DEBUG'], ['fatal']])('refuses OVERLAY_LOG_LEVEL=%j', (value) => {
    expect(configError(() => load({ OVERLAY_LOG_LEVEL: value })).message).toMatch(/^OVERLAY_LOG_LEVEL must be one of error, warn, log, debug, verbose/);
  });

  it('treats an empty numeric variable as unset', () => {
    expect(load({ OVERLAY_HTTP_PORT: '', OVERLAY_MAX_BATCH_SIZE: '' })).toMatchObject({ httpPort: 8080, maxBatchSize: 10_000 });
  });

  it.each([
    ['OVERLAY_HTTP_PORT', 'http'],
    ['OVERLAY_HTTP_PORT', '65536'],
    ['OVERLAY_HTTP_PORT', '-1'],
    ['OVERLAY_HTTP_PORT', '80.5'],
    ['OVERLAY_HTTP_PORT', ' 80'],
    ['OVERLAY_GRPC_PORT', '1e3'],
    ['OVERLAY_VNI_QUARANTINE_SECONDS', String(30 * 86400 + 1)],
    ['OVERLAY_CHANGELOG_MAX_LENGTH', '999'],
    ['OVERLAY_MAX_BODY_BYTES', '1023'],
    ['OVERLAY_MAX_BODY_BYTES', '8MB'],
    ['OVERLAY_MAX_BATCH_SIZE', '0'],
    ['OVERLAY_MAX_BATCH_SIZE', '100001'],
    ['OVERLAY_HTTP_REQUEST_TIMEOUT_MS', '999'],
    ['OVERLAY_HTTP_REQUEST_TIMEOUT_MS', '3600001'],
    ['OVERLAY_HTTP_HEADERS_TIMEOUT_MS', '0'],
    ['OVERLAY_HTTP_KEEP_ALIVE_TIMEOUT_MS', '99'],
    ['OVERLAY_HTTP_MAX_CONNECTIONS', '0'],
    ['OVERLAY_HTTP_MAX_CONNECTIONS', 'many'],
    ['OVERLAY_SHUTDOWN_TIMEOUT_MS', '99'],
    ['OVERLAY_SHUTDOWN_TIMEOUT_MS', '600001'],
    ['OVERLAY_EVENTS_RETENTION_SECONDS', '3599'],
    ['OVERLAY_EVENTS_RETENTION_SECONDS', '0'],
    ['OVERLAY_EVENTS_RETENTION_SECONDS', String(10 * 365 * 86400 + 1)],
    ['OVERLAY_EVENTS_RETENTION_SECONDS', '30d'],
    ['OVERLAY_EVENTS_RETENTION_SECONDS', '-1'],
    ['OVERLAY_DENIED_EVENTS_MAX_LENGTH', '999'],
    ['OVERLAY_DENIED_EVENTS_MAX_LENGTH', '100000001'],
  ])('refuses %s=%j, naming the variable and the value', (name, value) => {
    const message = configError(() => load({ [name]: value })).message;
    expect(message).toMatch(new RegExp(`^${name} must be an integer between \\d+ and \\d+`));
    expect(message).toContain(JSON.stringify(value));
  });

  it.each([
    ['empty', ''],
    ['a space', 'a b'],
    ['braces, which would break the hash tag', '{x}'],
    ['a slash', 'a/b'],
    ['65 characters', 'x'.repeat(65)],
  ])('refuses OVERLAY_KEY_PREFIX with %s', (_what, value) => {
    expect(configError(() => load({ OVERLAY_KEY_PREFIX: value })).message).toMatch(/^OVERLAY_KEY_PREFIX must be 1-64 characters/);
  });

  it.each([['http://127.0.0.1:6379'], ['127.0.0.1:6379'], ['']])('refuses REDIS_URL=%j', (value) => {
    expect(configError(() => load({ REDIS_URL: value })).message).toMatch(/^REDIS_URL must start with redis:\/\/ or rediss:\/\//);
  });

  it.each([['1-10,5-20'], ['0-10'], ['10-1'], ['lots'], ['']])('refuses OVERLAY_VNI_RANGES=%j, naming the variable', (value) => {
    expect(configError(() => load({ OVERLAY_VNI_RANGES: value })).message).toMatch(/^OVERLAY_VNI_RANGES: /);
  });
});

describe('loadConfig: listen addresses', () => {
  it.each([['127.0.0.1'], ['0.0.0.0'], ['::'], ['::1'], ['2001:db8::10'], ['localhost'], ['ctl-1.example.net'], ['CTL1']])('accepts %j for OVERLAY_HTTP_HOST and OVERLAY_GRPC_HOST', (host) => {
    expect(load({ OVERLAY_HTTP_HOST: host, OVERLAY_GRPC_HOST: host })).toMatchObject({ httpHost: host, grpcHost: host });
  });

  it('treats an empty host as unset', () => {
    expect(load({ OVERLAY_HTTP_HOST: '', OVERLAY_GRPC_HOST: '' })).toMatchObject({ httpHost: '0.0.0.0', grpcHost: '0.0.0.0' });
  });

  it.each([
    ['a bracketed IPv6 address', '[::1]'],
    ['an address with a port', '0.0.0.0:8080'],
    ['a URL', 'http://ctl1'],
    ['a space', 'ctl 1'],
    ['an underscore', 'ctl_1'],
    ['an empty label', 'ctl..example'],
    ['a label starting with a hyphen', '-ctl'],
    ['a label of 64 characters', 'x'.repeat(64)],
    ['an IPv4 address with three parts', '1.2.3'],
    ['an IPv4 address with an octet above 255', '256.1.1.1'],
    ['a leading zero in an IPv4 octet', '01.2.3.4'],
  ])('refuses %s', (_what, host) => {
    for (const name of ['OVERLAY_HTTP_HOST', 'OVERLAY_GRPC_HOST']) {
      const message = configError(() => load({ [name]: host })).message;
      expect(message).toMatch(new RegExp(`^${name} must be an IP address \\(IPv4, or IPv6 without brackets\\) or a host name`));
      expect(message).toContain(JSON.stringify(host));
    }
  });
});

describe('loadConfig: HTTPS for the REST API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'overlay-config-ca-'));
  const file = (name: string) => join(dir, name);

  beforeAll(() => {
    execFileSync('bash', [join(__dirname, '../../scripts/dev-ca.sh'), dir, '--', 'hv1']);
    mkdirSync(file('a-directory'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is off unless configured', () => {
    expect(load({}).httpTls).toBeUndefined();
    expect(load({ OVERLAY_HTTP_TLS_CERT: '', OVERLAY_HTTP_TLS_KEY: '' }).httpTls).toBeUndefined();
  });

  it('reads a certificate and its key', () => {
    expect(load({ OVERLAY_HTTP_TLS_CERT: file('controller.pem'), OVERLAY_HTTP_TLS_KEY: file('controller-key.pem') }).httpTls).toEqual({
      cert: file('controller.pem'),
      key: file('controller-key.pem'),
    });
  });

  it("does not need TLS for the agents' gRPC stream", () => {
    const config = load({ OVERLAY_HTTP_TLS_CERT: file('controller.pem'), OVERLAY_HTTP_TLS_KEY: file('controller-key.pem') });
    expect(config.tls).toBeUndefined();
  });

  it('refuses a certificate without its key, and a key without its certificate', () => {
    expect(configError(() => load({ OVERLAY_HTTP_TLS_CERT: file('controller.pem') })).message).toBe(
      'set both OVERLAY_HTTP_TLS_CERT and OVERLAY_HTTP_TLS_KEY or neither (only OVERLAY_HTTP_TLS_CERT given)',
    );
    expect(configError(() => load({ OVERLAY_HTTP_TLS_KEY: file('controller-key.pem') })).message).toBe(
      'set both OVERLAY_HTTP_TLS_CERT and OVERLAY_HTTP_TLS_KEY or neither (only OVERLAY_HTTP_TLS_KEY given)',
    );
  });

  it.each([
    ['a missing certificate', 'OVERLAY_HTTP_TLS_CERT', () => ({ cert: file('nonexistent.pem'), key: file('controller-key.pem') }), /^OVERLAY_HTTP_TLS_CERT: cannot read .*nonexistent\.pem \(ENOENT\)$/],
    ['a missing key', 'OVERLAY_HTTP_TLS_KEY', () => ({ cert: file('controller.pem'), key: file('nonexistent-key.pem') }), /^OVERLAY_HTTP_TLS_KEY: cannot read .*nonexistent-key\.pem \(ENOENT\)$/],
    ['a directory for the certificate', 'OVERLAY_HTTP_TLS_CERT', () => ({ cert: file('a-directory'), key: file('controller-key.pem') }), /^OVERLAY_HTTP_TLS_CERT: cannot read .*a-directory \(EISDIR\)$/],
    ['a key where the certificate belongs', 'OVERLAY_HTTP_TLS_CERT', () => ({ cert: file('controller-key.pem'), key: file('controller-key.pem') }), /^OVERLAY_HTTP_TLS_CERT: .* is not a PEM certificate/],
    ['the key of another certificate', 'OVERLAY_HTTP_TLS_KEY', () => ({ cert: file('controller.pem'), key: file('agent-hv1-key.pem') }), /^OVERLAY_HTTP_TLS_KEY: .* is not the PEM private key of OVERLAY_HTTP_TLS_CERT/],
  ])('refuses %s, naming %s', (_what, _name, files, message) => {
    const { cert, key } = files();
    expect(configError(() => load({ OVERLAY_HTTP_TLS_CERT: cert, OVERLAY_HTTP_TLS_KEY: key })).message).toMatch(message);
  });
});

describe('loadConfig: Redis Sentinel and replicated writes', () => {
  const sentinel = { REDIS_SENTINELS: 'sentinel-a:26379, 10.0.0.2:26380,[fd00::3]:26379', REDIS_SENTINEL_MASTER: 'overlay' };

  it('reads the sentinels, the master name, auth and TLS', () => {
    const dir = mkdtempSync(join(tmpdir(), 'overlay-config-'));
    try {
      const ca = join(dir, 'ca.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca-key.pem'), '-out', ca, '-subj', '/CN=ca', '-days', '1'], { stdio: 'ignore' });
      const config = load({
        ...sentinel,
        REDIS_USERNAME: 'overlayd',
        REDIS_PASSWORD: 'p1',
        REDIS_SENTINEL_USERNAME: 'watcher',
        REDIS_SENTINEL_PASSWORD: 'p2',
        REDIS_TLS: '1',
        REDIS_SENTINEL_TLS: '1',
        REDIS_TLS_CA: ca,
        OVERLAY_REDIS_MIN_REPLICAS: '1',
        OVERLAY_REDIS_REPLICA_TIMEOUT_MS: '500',
        OVERLAY_REDIS_COMMAND_TIMEOUT_MS: '2000',
      });
      expect(config.redisSentinel).toEqual({
        sentinels: [
          { host: 'sentinel-a', port: 26379 },
          { host: '10.0.0.2', port: 26380 },
          { host: 'fd00::3', port: 26379 },
        ],
        masterName: 'overlay',
        username: 'overlayd',
        password: 'p1',
        sentinelUsername: 'watcher',
        sentinelPassword: 'p2',
        tls: true,
        sentinelTls: true,
        tlsCa: ca,
      });
      expect(config).toMatchObject({ redisMinReplicas: 1, redisReplicaTimeoutMs: 500, redisCommandTimeoutMs: 2000 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('needs the master name', () => {
    expect(configError(() => load({ REDIS_SENTINELS: 'a:26379' })).message).toMatch(/^REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS/);
  });

  it('refuses REDIS_URL and REDIS_SENTINELS together', () => {
    expect(configError(() => load({ ...sentinel, REDIS_URL: 'redis://x:6379' })).message).toMatch(/^set REDIS_URL .* or REDIS_SENTINELS .*, not both/);
  });

  it.each([['a'], ['a:'], ['a:0'], ['a:70000'], ['a:1,,b:2'], ['fd00::3:26379'], ['a:1 b:2']])('refuses REDIS_SENTINELS=%j', (value) => {
    expect(configError(() => load({ ...sentinel, REDIS_SENTINELS: value })).message).toMatch(/^REDIS_SENTINELS must be host:port\[,host:port\.\.\.\]/);
  });

  it.each([['REDIS_PASSWORD', 'x'], ['REDIS_SENTINEL_MASTER', 'm'], ['REDIS_TLS', '1']])('refuses %s without REDIS_SENTINELS', (name, value) => {
    expect(configError(() => load({ [name]: value })).message).toMatch(new RegExp(`^${name} is for Redis Sentinel and needs REDIS_SENTINELS`));
  });

  it('refuses a CA that cannot be read, or that nothing uses', () => {
    expect(configError(() => load({ ...sentinel, REDIS_TLS: '1', REDIS_TLS_CA: '/nonexistent/ca.pem' })).message).toMatch(/^REDIS_TLS_CA: cannot read \/nonexistent\/ca.pem/);
    expect(configError(() => load({ ...sentinel, REDIS_TLS_CA: '/nonexistent/ca.pem' })).message).toMatch(/^REDIS_TLS_CA is set but neither REDIS_TLS nor REDIS_SENTINEL_TLS is 1/);
  });

  it('refuses a replica wait as long as the command timeout, and bad numbers', () => {
    expect(configError(() => load({ OVERLAY_REDIS_REPLICA_TIMEOUT_MS: '2000', OVERLAY_REDIS_COMMAND_TIMEOUT_MS: '2000' })).message).toMatch(/^OVERLAY_REDIS_REPLICA_TIMEOUT_MS \(2000\) must be below OVERLAY_REDIS_COMMAND_TIMEOUT_MS \(2000\)/);
    expect(configError(() => load({ OVERLAY_REDIS_MIN_REPLICAS: '-1' })).message).toMatch(/^OVERLAY_REDIS_MIN_REPLICAS must be an integer between 0 and 100/);
    expect(configError(() => load({ OVERLAY_REDIS_COMMAND_TIMEOUT_MS: 'soon' })).message).toMatch(/^OVERLAY_REDIS_COMMAND_TIMEOUT_MS must be an integer/);
  });

  it('keeps the default replica wait below a short command timeout', () => {
    expect(load({ OVERLAY_REDIS_COMMAND_TIMEOUT_MS: '500' })).toMatchObject({ redisReplicaTimeoutMs: 450, redisCommandTimeoutMs: 500 });
  });
});
