import { InvalidArgumentError, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ApiClient } from './client';
import { resolveConnection } from './config';
import { CliError, ExitCode } from './exit-codes';
import { printJson, printLine, table, type Column } from './output';

/** What every command's action gets: the API client and the output mode. */
export interface Context {
  client: ApiClient;
  json: boolean;
}

/** The context of the running command, from the global options (`--url`, `--config`, `--json`) and the environment. */
export function contextOf(command: Command): Context {
  const opts = command.optsWithGlobals<{ url?: string; config?: string; json?: boolean }>();
  return { client: new ApiClient(resolveConnection(opts, process.env)), json: opts.json === true };
}

/** For a repeatable option: `--ip a --ip b` -> ['a', 'b']. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A decimal integer option within bounds (commander reports a refusal as a usage error). */
export function integer(min: number, max: number): (raw: string) => number {
  return (raw) => {
    if (!/^\d{1,10}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new InvalidArgumentError(`must be an integer between ${min} and ${max}`);
    }
    return Number(raw);
  };
}

/** A JSON document from a file, or from stdin for `-`: a body too rich for flags (rules, inventories). */
export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new CliError(ExitCode.Usage, `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CliError(ExitCode.Usage, `${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A JSON object from `--file`, or an empty one; flags given besides override its fields. */
export function bodyFrom(file: string | undefined): Record<string, unknown> {
  if (file === undefined) {
    return {};
  }
  const value = readJson(file);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError(ExitCode.Usage, `${file} must hold a JSON object (the request body)`);
  }
  return value as Record<string, unknown>;
}

/** Drops undefined fields, so that a flag not given leaves the body's (or the API's default) alone. */
export function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/**
 * The flag an API `field` (a JSON path of the body, or a query parameter) came from, for the
 * error line: `ips[0]` -> `--ip`. Fields not listed came from `--file`.
 */
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  name: '--name',
  tenantId: '--tenant',
  segmentId: '--segment',
  hostId: '--host',
  vmId: '--vm',
  mac: '--mac',
  ips: '--ip',
  securityGroupIds: '--security-group',
  portSecurity: '--no-port-security',
  role: '--role',
  maxSegments: '--max-segments',
  vni: '--vni',
  vlanId: '--vlan',
  cidr: '--cidr',
  vtepIp: '--vtep-ip',
  description: '--description',
  portIds: '--port',
  sourceHostId: '--source',
  destinationHostId: '--destination',
  ttlMs: '--ttl',
  sources: '--source',
  sink: '--sink',
  enabled: '--disabled',
  snapLength: '--snap-length',
  timeout: '--timeout',
  since: '--since',
  until: '--until',
  state: '--state',
  recommendation: '--recommendation',
  severity: '--severity',
  limit: '--limit',
};

export function flagOfField(field: string): string | undefined {
  const head = field.replace(/[[.].*$/, '');
  return Object.prototype.hasOwnProperty.call(FLAG_OF_FIELD, head) ? FLAG_OF_FIELD[head] : undefined;
}

/** A list's filter: its flag (`--tenant <id>`), the query parameter it fills (`tenantId`), its help. */
export interface ListFilter {
  flag: string;
  param: string;
  description: string;
}

/**
 * Adds `list` (the resource's default subcommand): its filters as flags, every page of `path`
 * (`--limit` caps them), a table of `columns` for people or the API's objects with `--json`.
 */
export function addListCommand<T>(parent: Command, spec: { path: string; description: string; filters?: readonly ListFilter[]; columns: readonly Column<T>[] }): void {
  const filters = spec.filters ?? [];
  const list = parent.command('list', { isDefault: true }).description(spec.description);
  for (const f of filters) {
    list.option(f.flag, f.description);
  }
  list.option('--limit <n>', 'at most this many', integer(1, 1_000_000)).action(async (opts: Record<string, string | number | undefined>, command: Command) => {
    const ctx = contextOf(command);
    // commander keys an option by its long name in camelCase: `--segment <id>` -> `segment`.
    const key = (flag: string): string => /^--([a-z][a-z-]*)/.exec(flag)![1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const query = Object.fromEntries(filters.map((f) => [f.param, opts[key(f.flag)] as string | undefined]));
    const items = await ctx.client.list<T>(spec.path, query, opts.limit as number | undefined);
    if (ctx.json) {
      return printJson(items);
    }
    printLine(table(items, spec.columns));
  });
}
