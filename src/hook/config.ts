import { readFileSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { ConfigError, EnvReader } from '../common/env';

/**
 * The hook's settings, from a `KEY=value` file (libvirt runs hooks with an empty environment):
 * /etc/overlay/hook.env, or the file OVERLAY_HOOK_CONFIG names. It holds a token, so it must be
 * readable by its owner only (0600), as ssh insists for a private key.
 */
export const DEFAULT_CONFIG_FILE = '/etc/overlay/hook.env';

export const REFUSED_PREPARE = ['fail', 'proceed'] as const;

export interface HookConfig {
  /** The controller's REST base URL. */
  url: string;
  /** A `migration-hook` token (host-scoped to this host, ideally). */
  token: string;
  /** This hypervisor's host id in the controller. */
  hostId: string;
  /** Bound on each API call (ms). */
  callTimeoutMs: number;
  /** Bound on the whole hook run, stdin included (ms): past it the hook exits 0 whatever it was doing. */
  totalTimeoutMs: number;
  /** `fail`: a prepare the controller refuses (4xx) fails the incoming migration; `proceed`: it only logs. */
  refusedPrepare: (typeof REFUSED_PREPARE)[number];
  /** The prepared migration's time to live, sent with the prepare; undefined: the controller's default. */
  migrationTtlMs: number | undefined;
  /** Where the migration prepared for an incoming domain is kept between hook runs. */
  stateDir: string;
  /** `syslog` (through logger(1)) or an absolute file path. */
  log: string;
}

const KEYS = [
  'OVERLAY_URL',
  'OVERLAY_TOKEN',
  'OVERLAY_HOOK_HOST_ID',
  'OVERLAY_HOOK_CALL_TIMEOUT_MS',
  'OVERLAY_HOOK_TIMEOUT_MS',
  'OVERLAY_HOOK_REFUSED_PREPARE',
  'OVERLAY_HOOK_MIGRATION_TTL_MS',
  'OVERLAY_HOOK_STATE_DIR',
  'OVERLAY_HOOK_LOG',
] as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `KEY=value` lines (value optionally in single or double quotes), `#` comments; nothing is expanded. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) {
      return;
    }
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) {
      throw new ConfigError(`line ${i + 1} is not KEY=value`);
    }
    if (!(KEYS as readonly string[]).includes(m[1])) {
      throw new ConfigError(`line ${i + 1}: unknown setting ${m[1]} (known: ${KEYS.join(', ')})`);
    }
    const quoted = /^"([^"]*)"$|^'([^']*)'$/.exec(m[2]);
    out[m[1]] = quoted ? (quoted[1] ?? quoted[2]) : m[2];
  });
  return out;
}

/** The settings of `values` (a parsed file); throws ConfigError naming the setting at fault. */
export function hookConfigOf(values: Record<string, string>): HookConfig {
  const env = new EnvReader(values);
  const url = env.required('OVERLAY_URL');
  if (!/^https?:\/\/[^/\s]+/.test(url)) {
    throw new ConfigError(`OVERLAY_URL must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  }
  const token = env.required('OVERLAY_TOKEN');
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new ConfigError('OVERLAY_TOKEN must be printable ASCII without spaces');
  }
  const hostId = env.required('OVERLAY_HOOK_HOST_ID').toLowerCase();
  if (!UUID.test(hostId)) {
    throw new ConfigError(`OVERLAY_HOOK_HOST_ID must be the host's id (a UUID), got ${JSON.stringify(hostId)}`);
  }
  const totalTimeoutMs = env.int('OVERLAY_HOOK_TIMEOUT_MS', 10_000, 1_000, 120_000);
  const callTimeoutMs = env.int('OVERLAY_HOOK_CALL_TIMEOUT_MS', 4_000, 200, totalTimeoutMs);
  const ttl = env.get('OVERLAY_HOOK_MIGRATION_TTL_MS');
  const stateDir = env.get('OVERLAY_HOOK_STATE_DIR') ?? '/run/overlay-libvirt-hook';
  const log = env.get('OVERLAY_HOOK_LOG') ?? 'syslog';
  for (const [name, path] of [
    ['OVERLAY_HOOK_STATE_DIR', stateDir],
    ['OVERLAY_HOOK_LOG', log],
  ] as const) {
    if (!(name === 'OVERLAY_HOOK_LOG' && path === 'syslog') && !isAbsolute(path)) {
      throw new ConfigError(`${name} must be an absolute path${name === 'OVERLAY_HOOK_LOG' ? ' or syslog' : ''}, got ${JSON.stringify(path)}`);
    }
  }
  return {
    url: url.replace(/\/+$/, ''),
    token,
    hostId,
    callTimeoutMs,
    totalTimeoutMs,
    refusedPrepare: env.oneOf('OVERLAY_HOOK_REFUSED_PREPARE', REFUSED_PREPARE, 'fail'),
    migrationTtlMs: ttl === undefined ? undefined : env.int('OVERLAY_HOOK_MIGRATION_TTL_MS', 0, 1_000, 24 * 3600_000),
    stateDir,
    log,
  };
}

/** Reads and checks the file: owner-only permissions, then its settings. */
export function loadHookConfig(path: string): HookConfig {
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`);
  }
  if (mode & 0o077) {
    throw new ConfigError(`${path} is readable by others (mode ${(mode & 0o777).toString(8)}); it holds a token: chmod 600 ${path}`);
  }
  try {
    return hookConfigOf(parseEnvFile(text));
  } catch (err) {
    throw err instanceof ConfigError ? new ConfigError(`${path}: ${err.message}`) : err;
  }
}
