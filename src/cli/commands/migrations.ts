import { Command } from 'commander';
import { REQUEST_TIMEOUT_MS } from '../client';
import { addListCommand, collect, contextOf, defined, integer, type Context } from '../command-kit';
import { CliError, ExitCode } from '../exit-codes';
import { details, printJson, printLine, table } from '../output';
import type { Migration, MigrationState, TimelineEntry } from '../../controller/model/migration';

/** States a migration does not leave. */
const FINAL_STATES: readonly MigrationState[] = ['completed', 'aborted', 'expired'];

const DEFAULT_WAIT_MS = 10_000;

export function migrationsCommand(): Command {
  const migrations = new Command('migrations').description("live migrations of a VM's ports between hosts: prepare, commit, abort, watch");

  migrations
    .command('create')
    .description("prepare a migration (the destination gets the ports first); waits for the destination's ack")
    .option('--vm <id>', 'the VM whose ports (bound to --source) move')
    .option('--port <id>', 'a port that moves (repeat; instead of --vm)', collect)
    .requiredOption('--source <host-id>', 'the host the VM runs on now')
    .requiredOption('--destination <host-id>', 'the host it moves to')
    .option('--ttl <ms>', 'how long the prepared migration waits for a commit', integer(1_000, 86_400_000))
    .option('--timeout <ms>', `how long to wait for the destination's ack (0: not at all; default ${DEFAULT_WAIT_MS})`, integer(0, 120_000))
    .option('--watch', 'then watch it until it ends (as `migrations watch`)')
    .action(async (opts: { vm?: string; port?: string[]; source: string; destination: string; ttl?: number; timeout?: number; watch?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      if ((opts.vm === undefined) === (opts.port === undefined)) {
        throw new CliError(ExitCode.Usage, 'give --vm or --port, one of them');
      }
      const body = defined({ vmId: opts.vm, portIds: opts.port, sourceHostId: opts.source, destinationHostId: opts.destination, ttlMs: opts.ttl });
      const timeout = opts.timeout ?? DEFAULT_WAIT_MS;
      const { body: migration } = await ctx.client.call<Migration>('POST', '/v1/migrations', { query: { timeout: opts.timeout }, body, timeoutMs: timeout + REQUEST_TIMEOUT_MS });
      if (opts.watch) {
        return watch(ctx, migration.id, { intervalMs: 500 });
      }
      showMigration(ctx.json, migration);
    });

  addListCommand<Migration>(migrations, {
    path: '/v1/migrations',
    description: 'list migrations, newest first (open and finished ones still kept)',
    filters: [
      { flag: '--state <state>', param: 'state', description: 'only in this state (preparing, prepared, committed, completed, aborted, expired)' },
      { flag: '--vm <id>', param: 'vmId', description: 'only of this VM' },
      { flag: '--host <id>', param: 'hostId', description: 'only from or to this host' },
    ],
    columns: [
      { header: 'ID', value: (m) => m.id },
      { header: 'STATE', value: (m) => m.state },
      { header: 'VM', value: (m) => m.vmId },
      { header: 'PORTS', value: (m) => m.portIds.length },
      { header: 'SOURCE', value: (m) => m.sourceHostId },
      { header: 'DESTINATION', value: (m) => m.destinationHostId },
      { header: 'CREATED', value: (m) => m.createdAt },
      { header: 'LAST EVENT', value: (m) => m.timeline[m.timeline.length - 1]?.event ?? null },
    ],
  });

  migrations
    .command('show')
    .description('show a migration: its state and timeline')
    .argument('<id>', 'migration id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      showMigration(ctx.json, await ctx.client.get<Migration>(`/v1/migrations/${encodeURIComponent(id)}`));
    });

  migrations
    .command('commit')
    .description('commit a prepared migration: the bindings move to the destination in one step')
    .argument('<id>', 'migration id')
    .option('--wait', 'wait until every peer and the source have applied it (completed)')
    .option('--timeout <ms>', `with --wait: how long (default ${DEFAULT_WAIT_MS}, at most 120000)`, integer(1, 120_000))
    .action(async (id: string, opts: { wait?: boolean; timeout?: number }, command: Command) => {
      const ctx = contextOf(command);
      if (opts.timeout !== undefined && !opts.wait) {
        throw new CliError(ExitCode.Usage, '--timeout applies only with --wait');
      }
      const timeout = opts.timeout ?? DEFAULT_WAIT_MS;
      const query = opts.wait ? { wait: 'realized', timeout } : {};
      const answer = await ctx.client.call<Migration>('POST', `/v1/migrations/${encodeURIComponent(id)}/commit`, { query, timeoutMs: timeout + REQUEST_TIMEOUT_MS });
      showMigration(ctx.json, answer.body);
      if (opts.wait && answer.status === 202) {
        throw new CliError(ExitCode.NotRealized, `committed, but not every peer and the source acknowledged it within ${timeout} ms (state ${answer.body.state})`);
      }
    });

  migrations
    .command('abort')
    .description('abort a migration not committed yet (the destination withdraws the ports)')
    .argument('<id>', 'migration id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      showMigration(ctx.json, (await ctx.client.call<Migration>('POST', `/v1/migrations/${encodeURIComponent(id)}/abort`)).body);
    });

  migrations
    .command('watch')
    .description('draw the timeline as it happens, until the migration completes, aborts or expires (exit 0 completed, 7 aborted or expired)')
    .argument('<id>', 'migration id')
    .option('--interval <ms>', 'how often to look (default 500)', integer(50, 60_000))
    .option('--timeout <ms>', 'give up after this long (exit 5; default: no limit)', integer(1, 2_147_483_647))
    .action(async (id: string, opts: { interval?: number; timeout?: number }, command: Command) => {
      await watch(contextOf(command), id, { intervalMs: opts.interval ?? 500, timeoutMs: opts.timeout });
    });

  return migrations;
}

function seconds(fromIso: string, toIso: string): string {
  const ms = Date.parse(toIso) - Date.parse(fromIso);
  return `+${(ms / 1000).toFixed(3)}s`;
}

function by(entry: TimelineEntry): string | undefined {
  if (!entry.by) {
    return undefined;
  }
  return 'system' in entry.by ? `by ${entry.by.system}` : `by ${entry.by.name} (${entry.by.role})`;
}

/** One timeline entry as a line: offset from the migration's creation, the event, what it carries. */
export function timelineLine(m: Pick<Migration, 'createdAt'>, e: TimelineEntry): string {
  const parts = [
    e.at,
    seconds(m.createdAt, e.at).padStart(9),
    e.event.padEnd(21),
    e.revision !== undefined ? `revision ${e.revision}` : undefined,
    e.connections !== undefined ? `${e.connections} connections` : undefined,
    e.failed ? `${e.failed} failed` : undefined,
    by(e),
  ];
  return parts.filter((p) => p !== undefined).join('  ').trimEnd();
}

function headline(m: Migration): string {
  const what = m.vmId ? `VM ${m.vmId} (${m.portIds.length} port${m.portIds.length === 1 ? '' : 's'})` : `${m.portIds.length} port${m.portIds.length === 1 ? '' : 's'}`;
  return `migration ${m.id}: ${what}, host ${m.sourceHostId} -> ${m.destinationHostId}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls the migration until it reaches a final state, printing each timeline event once as it
 * appears (`--json`: one JSON object per line). Exit 0 when it completed, 7 when it aborted or
 * expired, 5 past `timeoutMs`.
 */
async function watch(ctx: Context, id: string, opts: { intervalMs: number; timeoutMs?: number }): Promise<void> {
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const printed = new Set<string>();
  let first = true;
  for (;;) {
    const m = await ctx.client.get<Migration>(`/v1/migrations/${encodeURIComponent(id)}`);
    if (first && !ctx.json) {
      printLine(headline(m));
    }
    first = false;
    for (const entry of m.timeline) {
      const key = `${entry.event}|${entry.at}|${entry.revision ?? ''}`;
      if (!printed.has(key)) {
        printed.add(key);
        printLine(ctx.json ? JSON.stringify(entry) : timelineLine(m, entry));
      }
    }
    if (FINAL_STATES.includes(m.state)) {
      if (!ctx.json) {
        printLine(`${m.state}`);
      }
      if (m.state !== 'completed') {
        throw new CliError(ExitCode.MigrationFailed, `migration ${m.id} ${m.state}`);
      }
      return;
    }
    if (Date.now() + opts.intervalMs > deadline) {
      throw new CliError(ExitCode.Unavailable, `migration ${m.id} is still ${m.state} after ${opts.timeoutMs} ms`);
    }
    await sleep(opts.intervalMs);
  }
}

function showMigration(json: boolean, m: Migration): void {
  if (json) {
    return printJson(m);
  }
  printLine(
    details([
      ['id', m.id],
      ['state', m.state],
      ['vm', m.vmId],
      ['ports', m.portIds.join(', ')],
      ['source', m.sourceHostId],
      ['destination', m.destinationHostId],
      ['created', m.createdAt],
      ['expires', m.expiresAt],
    ]),
  );
  printLine();
  printLine(
    table(m.timeline, [
      { header: 'AT', value: (e) => e.at },
      { header: 'AFTER', value: (e) => seconds(m.createdAt, e.at) },
      { header: 'EVENT', value: (e) => e.event },
      { header: 'REVISION', value: (e) => e.revision },
      { header: 'BY', value: (e) => by(e)?.replace(/^by /, '') },
    ]),
  );
}
