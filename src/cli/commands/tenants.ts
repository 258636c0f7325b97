import { Command } from 'commander';
import { addListCommand, contextOf, integer, defined } from '../command-kit';
import { details, printJson, printLine } from '../output';
import type { Tenant } from '../../controller/model/tenant';

export function tenantsCommand(): Command {
  const tenants = new Command('tenants').description('tenants: the unit of isolation');

  addListCommand<Tenant>(tenants, {
    path: '/v1/tenants',
    description: 'list tenants',
    columns: [
      { header: 'ID', value: (t) => t.id },
      { header: 'NAME', value: (t) => t.name },
      { header: 'MAX SEGMENTS', value: (t) => t.maxSegments ?? 'none' },
      { header: 'CREATED', value: (t) => t.createdAt },
    ],
  });

  tenants
    .command('show')
    .description('show one tenant')
    .argument('<id>', 'tenant id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      showTenant(ctx.json, await ctx.client.get<Tenant>(`/v1/tenants/${encodeURIComponent(id)}`));
    });

  tenants
    .command('create')
    .description('create a tenant (it gets a default security group)')
    .requiredOption('--name <name>', 'unique name: letters, digits, . _ -')
    .option('--max-segments <n>', 'segment quota (none by default)', integer(0, 1_000_000))
    .action(async (opts: { name: string; maxSegments?: number }, command: Command) => {
      const ctx = contextOf(command);
      const { body } = await ctx.client.call<Tenant>('POST', '/v1/tenants', { body: defined({ name: opts.name, maxSegments: opts.maxSegments }) });
      showTenant(ctx.json, body);
    });

  tenants
    .command('delete')
    .description('delete a tenant (refused while it has segments, security groups or mirror sessions)')
    .argument('<id>', 'tenant id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      await ctx.client.call('DELETE', `/v1/tenants/${encodeURIComponent(id)}`);
      return ctx.json ? printJson({ id, deleted: true }) : printLine(`deleted tenant ${id}`);
    });

  return tenants;
}

function showTenant(json: boolean, t: Tenant): void {
  if (json) {
    return printJson(t);
  }
  printLine(
    details([
      ['id', t.id],
      ['name', t.name],
      ['max segments', t.maxSegments ?? 'none'],
      ['default security group', t.defaultSecurityGroupId],
      ['created', t.createdAt],
    ]),
  );
}
