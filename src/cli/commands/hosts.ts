import { Command } from 'commander';
import { addListCommand, contextOf, defined, readJson } from '../command-kit';
import { cut, details, printJson, printLine } from '../output';
import type { HostStatus } from '../realization';

/** A host as the API answers: a write's answer is the host alone; reads add its agent's state. */
type HostAnswer = Partial<HostStatus> & Pick<HostStatus, 'id' | 'name' | 'vtepIp'> & { inventory?: { uplinks: unknown[]; trunkedVlans: number[] }; createdAt?: string };

export function hostsCommand(): Command {
  const hosts = new Command('hosts').description("hypervisor hosts and their agents' state: connected, lag, last error");

  addListCommand<HostStatus>(hosts, {
    path: '/v1/hosts',
    description: 'list hosts with their agent: connected, applied revision, lag, last error',
    columns: [
      { header: 'ID', value: (h) => h.id },
      { header: 'NAME', value: (h) => h.name },
      { header: 'VTEP', value: (h) => h.vtepIp },
      { header: 'CONNECTED', value: (h) => (h.connected ? 'yes' : 'no') },
      { header: 'APPLIED', value: (h) => h.appliedRevision },
      { header: 'LAG', value: (h) => h.lag },
      { header: 'LAST ERROR', value: (h) => (h.lastError ? `${h.lastError.at} rev ${h.lastError.revision}: ${cut(h.lastError.error, 100)}` : null) },
    ],
  });

  hosts
    .command('show')
    .description('show one host, its agent and its inventory')
    .argument('<id>', 'host id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      showHost(ctx.json, await ctx.client.get<HostAnswer>(`/v1/hosts/${encodeURIComponent(id)}`));
    });

  hosts
    .command('create')
    .description('register a host')
    .requiredOption('--name <name>', 'its name (the agent connects with it as OVERLAY_HOST)')
    .requiredOption('--vtep-ip <ip>', 'its VTEP address')
    .option('--inventory <file>', 'its inventory (uplinks, trunkedVlans) as JSON; - for stdin')
    .action(async (opts: { name: string; vtepIp: string; inventory?: string }, command: Command) => {
      const ctx = contextOf(command);
      const body = defined({ name: opts.name, vtepIp: opts.vtepIp, inventory: opts.inventory === undefined ? undefined : readJson(opts.inventory) });
      showHost(ctx.json, (await ctx.client.call<HostAnswer>('POST', '/v1/hosts', { body })).body);
    });

  hosts
    .command('update')
    .description("change a host's name, VTEP or inventory")
    .argument('<id>', 'host id')
    .option('--name <name>', 'new name')
    .option('--vtep-ip <ip>', 'new VTEP address')
    .option('--inventory <file>', 'new inventory as JSON; - for stdin')
    .action(async (id: string, opts: { name?: string; vtepIp?: string; inventory?: string }, command: Command) => {
      const ctx = contextOf(command);
      const body = defined({ name: opts.name, vtepIp: opts.vtepIp, inventory: opts.inventory === undefined ? undefined : readJson(opts.inventory) });
      showHost(ctx.json, (await ctx.client.call<HostAnswer>('PATCH', `/v1/hosts/${encodeURIComponent(id)}`, { body })).body);
    });

  hosts
    .command('delete')
    .description('delete a host (refused while ports are bound to it)')
    .argument('<id>', 'host id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      await ctx.client.call('DELETE', `/v1/hosts/${encodeURIComponent(id)}`);
      return ctx.json ? printJson({ id, deleted: true }) : printLine(`deleted host ${id}`);
    });

  return hosts;
}

function showHost(json: boolean, h: HostAnswer): void {
  if (json) {
    return printJson(h);
  }
  const agent: [string, unknown][] =
    h.connected === undefined
      ? []
      : [
          ['connected', h.connected ? 'yes' : 'no'],
          ['applied revision', h.appliedRevision],
          ['lag', h.lag],
          ['last error', h.lastError ? `${h.lastError.at} revision ${h.lastError.revision}: ${h.lastError.error}` : 'none'],
        ];
  printLine(
    details([
      ['id', h.id],
      ['name', h.name],
      ['vtep', h.vtepIp],
      ...agent,
      ['uplinks', h.inventory?.uplinks.length ?? 0],
      ['trunked vlans', h.inventory?.trunkedVlans.join(',')],
      ['created', h.createdAt],
    ]),
  );
}
