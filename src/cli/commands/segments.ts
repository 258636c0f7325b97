import { Command } from 'commander';
import { addListCommand, contextOf, defined, integer } from '../command-kit';
import { details, printJson, printLine, table } from '../output';
import type { Segment, } from '../../controller/model/segment';
import type { Mapping } from '../../controller/model/port';

export function segmentsCommand(): Command {
  const segments = new Command('segments').description("segments: a tenant's layer-2 networks, each with a VXLAN VNI");

  addListCommand<Segment>(segments, {
    path: '/v1/segments',
    description: 'list segments',
    filters: [
      { flag: '--tenant <id>', param: 'tenantId', description: 'only those of this tenant' },
    ],
    columns: [
      { header: 'ID', value: (s) => s.id },
      { header: 'NAME', value: (s) => s.name },
      { header: 'TENANT', value: (s) => s.tenantId },
      { header: 'VNI', value: (s) => s.vni },
      { header: 'VLAN', value: (s) => s.vlanId },
      { header: 'CIDR', value: (s) => s.cidr },
    ],
  });

  segments
    .command('show')
    .description('show one segment')
    .argument('<id>', 'segment id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      showSegment(ctx.json, await ctx.client.get<Segment>(`/v1/segments/${encodeURIComponent(id)}`));
    });

  segments
    .command('create')
    .description('create a segment (the lowest free VNI unless --vni)')
    .requiredOption('--tenant <id>', 'its tenant')
    .requiredOption('--name <name>', 'its name')
    .option('--cidr <prefix>', 'its subnet, e.g. 10.0.0.0/24 (ports get addresses inside it)')
    .option('--vni <vni>', 'a specific VNI', integer(1, 16_777_215))
    .option('--vlan <id>', 'the VLAN it is also carried as', integer(1, 4094))
    .action(async (opts: { tenant: string; name: string; cidr?: string; vni?: number; vlan?: number }, command: Command) => {
      const ctx = contextOf(command);
      const body = defined({ tenantId: opts.tenant, name: opts.name, cidr: opts.cidr, vni: opts.vni, vlanId: opts.vlan });
      showSegment(ctx.json, (await ctx.client.call<Segment>('POST', '/v1/segments', { body })).body);
    });

  segments
    .command('delete')
    .description('delete a segment (refused while it has ports); its VNI goes into quarantine')
    .argument('<id>', 'segment id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      await ctx.client.call('DELETE', `/v1/segments/${encodeURIComponent(id)}`);
      return ctx.json ? printJson({ id, deleted: true }) : printLine(`deleted segment ${id}`);
    });

  segments
    .command('mappings')
    .description("the segment's forwarding table: each bound port's MAC and IPs -> its host's VTEP")
    .argument('<id>', 'segment id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      const answer = await ctx.client.get<{ segmentId: string; vni: number; items: Mapping[] }>(`/v1/segments/${encodeURIComponent(id)}/mappings`);
      if (ctx.json) {
        return printJson(answer);
      }
      printLine(`segment ${answer.segmentId}, VNI ${answer.vni}`);
      printLine(
        table(answer.items, [
          { header: 'MAC', value: (m) => m.mac },
          { header: 'IPS', value: (m) => m.ips.join(',') },
          { header: 'VTEP', value: (m) => m.vtepIp },
          { header: 'HOST', value: (m) => m.hostId },
          { header: 'PORT', value: (m) => m.portId },
        ]),
      );
    });

  return segments;
}

function showSegment(json: boolean, s: Segment): void {
  if (json) {
    return printJson(s);
  }
  printLine(
    details([
      ['id', s.id],
      ['name', s.name],
      ['tenant', s.tenantId],
      ['vni', s.vni],
      ['vlan', s.vlanId],
      ['cidr', s.cidr],
      ['created', s.createdAt],
    ]),
  );
}
