import { Command } from 'commander';
import { addListCommand, bodyFrom, contextOf, defined, readJson } from '../command-kit';
import { details, printJson, printLine, table } from '../output';
import type { SecurityGroup, SecurityGroupRule } from '../../controller/model/security-group';

export function securityGroupsCommand(): Command {
  const groups = new Command('security-groups').description('security groups: allow rules compiled per port into each host firewall');

  addListCommand<SecurityGroup>(groups, {
    path: '/v1/security-groups',
    description: 'list security groups',
    filters: [
      { flag: '--tenant <id>', param: 'tenantId', description: 'only those of this tenant' },
    ],
    columns: [
      { header: 'ID', value: (g) => g.id },
      { header: 'NAME', value: (g) => g.name },
      { header: 'TENANT', value: (g) => g.tenantId },
      { header: 'DEFAULT', value: (g) => (g.isDefault ? 'yes' : 'no') },
      { header: 'RULES', value: (g) => g.rules.length },
      { header: 'DESCRIPTION', value: (g) => g.description },
    ],
  });

  groups
    .command('show')
    .description('show one security group and its rules')
    .argument('<id>', 'security group id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      showGroup(ctx.json, await ctx.client.get<SecurityGroup>(`/v1/security-groups/${encodeURIComponent(id)}`));
    });

  groups
    .command('create')
    .description('create a security group (without --rules: all egress allowed, as Neutron)')
    .option('--tenant <id>', 'its tenant (required unless in --file)')
    .option('--name <name>', 'its name (required unless in --file)')
    .option('--description <text>', 'free text')
    .option('--rules <file>', 'its rules as a JSON array (- for stdin); [] allows nothing')
    .option('-f, --file <file>', 'the request body as JSON (- for stdin); flags override its fields')
    .action(async (opts: { tenant?: string; name?: string; description?: string; rules?: string; file?: string }, command: Command) => {
      const ctx = contextOf(command);
      const body = {
        ...bodyFrom(opts.file),
        ...defined({ tenantId: opts.tenant, name: opts.name, description: opts.description, rules: opts.rules === undefined ? undefined : readJson(opts.rules) }),
      };
      showGroup(ctx.json, (await ctx.client.call<SecurityGroup>('POST', '/v1/security-groups', { body })).body);
    });

  groups
    .command('update')
    .description('change the fields given (--rules replaces every rule)')
    .argument('<id>', 'security group id')
    .option('--name <name>', 'new name')
    .option('--description <text>', 'new description')
    .option('--rules <file>', 'new rules as a JSON array (- for stdin)')
    .action(async (id: string, opts: { name?: string; description?: string; rules?: string }, command: Command) => {
      const ctx = contextOf(command);
      const body = defined({ name: opts.name, description: opts.description, rules: opts.rules === undefined ? undefined : readJson(opts.rules) });
      showGroup(ctx.json, (await ctx.client.call<SecurityGroup>('PATCH', `/v1/security-groups/${encodeURIComponent(id)}`, { body })).body);
    });

  groups
    .command('delete')
    .description('delete a security group (refused while ports use it or rules name it)')
    .argument('<id>', 'security group id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      await ctx.client.call('DELETE', `/v1/security-groups/${encodeURIComponent(id)}`);
      return ctx.json ? printJson({ id, deleted: true }) : printLine(`deleted security group ${id}`);
    });

  return groups;
}

function ports(r: SecurityGroupRule): string | null {
  if (r.portRangeMin !== null) {
    return r.portRangeMax !== null && r.portRangeMax !== r.portRangeMin ? `${r.portRangeMin}-${r.portRangeMax}` : String(r.portRangeMin);
  }
  if (r.icmpType !== null) {
    return `type ${r.icmpType}${r.icmpCode !== null ? ` code ${r.icmpCode}` : ''}`;
  }
  return null;
}

function showGroup(json: boolean, g: SecurityGroup): void {
  if (json) {
    return printJson(g);
  }
  printLine(
    details([
      ['id', g.id],
      ['name', g.name],
      ['tenant', g.tenantId],
      ['default', g.isDefault ? 'yes' : 'no'],
      ['description', g.description],
      ['updated', g.updatedAt],
    ]),
  );
  printLine();
  printLine(
    g.rules.length
      ? table(g.rules, [
          { header: 'DIRECTION', value: (r) => r.direction },
          { header: 'ETHERTYPE', value: (r) => r.ethertype },
          { header: 'PROTOCOL', value: (r) => r.protocol },
          { header: 'PORTS', value: (r) => ports(r) ?? 'any' },
          { header: 'PEER', value: (r) => r.remoteCidr ?? (r.remoteGroupId ? `group ${r.remoteGroupId}` : 'any') },
          { header: 'DESCRIPTION', value: (r) => r.description },
        ])
      : 'no rules: nothing allowed',
  );
}
