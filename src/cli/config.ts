import { readFileSync, statSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError, ExitCode } from './exit-codes';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Where overlayctl talks to and with what token. The token is never printed. */
export interface Connection {
  url: string;
  token: string | null;
  /** Where the token came from, for a hint when the API refuses it (never the token). */
  tokenSource: string | null;
}

/** What a config file may hold: `{"url": "...", "token": "..."}`, both optional. */
interface ConfigFile {
  url?: string;
  token?: string;
}

/** `~/.config/overlayctl/config.json`, under `XDG_CONFIG_HOME` when set. */
export function defaultConfigPath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'overlayctl', 'config.json');
}

/**
 * Refuses a config file others may read or change, as ssh refuses a private key: it holds a
 * token, and one that others could rewrite could point overlayctl at a server of theirs.
 */
export function checkPrivate(path: string, stats: Pick<Stats, 'mode' | 'uid'>, uid: number | undefined): void {
  const mode = stats.mode & 0o777;
  if (mode & 0o077) {
    throw new CliError(
      ExitCode.Usage,
      `config file ${path} is accessible by others (mode 0${mode.toString(8)}); it holds a token, so it must be readable by you alone: chmod 600 ${path}`,
    );
  }
  if (uid !== undefined && stats.uid !== uid && uid !== 0) {
    throw new CliError(ExitCode.Usage, `config file ${path} belongs to another user (uid ${stats.uid}); use a file of your own`);
  }
}

function parseConfigFile(path: string, text: string): ConfigFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(ExitCode.Usage, `config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(ExitCode.Usage, `config file ${path} must hold a JSON object such as {"url": "${DEFAULT_URL}", "token": "ovl_..."}`);
  }
  const out: ConfigFile = {};
  for (const [key, v] of Object.entries(value)) {
    if (key !== 'url' && key !== 'token') {
      throw new CliError(ExitCode.Usage, `config file ${path}: unknown key ${JSON.stringify(key)}; it takes url and token`);
    }
    if (typeof v !== 'string' || v === '') {
      throw new CliError(ExitCode.Usage, `config file ${path}: ${key} must be a non-empty string`);
    }
    out[key] = v;
  }
  return out;
}

/** Reads a config file; a missing one is `undefined` unless it was asked for by name (then an error). */
function readConfigFile(path: string, named: boolean): ConfigFile | undefined {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !named) {
      return undefined;
    }
    throw new CliError(ExitCode.Usage, `cannot read config file ${path}: ${(err as Error).message}`);
  }
  checkPrivate(path, stats, process.getuid?.());
  return parseConfigFile(path, readFileSync(path, 'utf8'));
}

function checkUrl(url: string, from: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(ExitCode.Usage, `${from}: ${JSON.stringify(url)} is not a URL (e.g. ${DEFAULT_URL})`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliError(ExitCode.Usage, `${from}: the URL must start with http:// or https://`);
  }
  if (parsed.username || parsed.password) {
    throw new CliError(ExitCode.Usage, `${from}: put the token in OVERLAY_TOKEN or the config file, not in the URL`);
  }
  return url.replace(/\/+$/, '');
}

/**
 * The connection, first found wins: URL from `--url`, `OVERLAY_URL`, the config file, the
 * default; token from `OVERLAY_TOKEN`, then the config file. The config file is `--config`,
 * else `OVERLAY_CONFIG`, else the default path (which may be absent).
 */
export function resolveConnection(opts: { url?: string; config?: string }, env: NodeJS.ProcessEnv): Connection {
  const named = opts.config ?? (env.OVERLAY_CONFIG || undefined);
  const path = named ?? defaultConfigPath(env);
  const file = readConfigFile(path, named !== undefined);
  const url = opts.url
    ? checkUrl(opts.url, '--url')
    : env.OVERLAY_URL
      ? checkUrl(env.OVERLAY_URL, 'OVERLAY_URL')
      : file?.url
        ? checkUrl(file.url, `config file ${path}`)
        : DEFAULT_URL;
  if (env.OVERLAY_TOKEN) {
    return { url, token: env.OVERLAY_TOKEN, tokenSource: 'OVERLAY_TOKEN' };
  }
  return file?.token ? { url, token: file.token, tokenSource: `config file ${path}` } : { url, token: null, tokenSource: null };
}
