import { Command } from 'commander';
import { addListCommand, bodyFrom, collect, contextOf, defined, integer } from '../command-kit';
import { CliError, ExitCode } from '../exit-codes';
import { details, printJson, printLine, table } from '../output';
import type { MirrorSession } from '../../controller/model/mirror-session';

/** A session as the API reads it: with each source's state (MirrorSourceStatus in the controller; only what is shown here). */
type MirrorSessionWithStatus = MirrorSession & {
  status: { portId: string; hostId: string | null; state: string; packets: number; bytes: number; lastError: string | null }[];
};

const SINK_FORMS = 'port=<analyzer-port-id>, vxlan=<collector-ip>, uplink=<host-id>/<interface> or erspan=<collector-ip>/<erspan-id>';

/** `--sink` in one word; the rarer fields (a vxlan sink's vni and udpPort, an erspan version) come from --file. */
export function parseSink(spec: string): Record<string, unknown> {
  const eq = spec.indexOf('=');
  const type = eq < 0 ? spec : spec.slice(0, eq);
  const value = eq < 0 ? '' : spec.slice(eq + 1);
  const [first, second] = value.split('/');
  switch (type) {
    case 'port':
      if (value) {
        return { type, portId: value };
      }
      break;
    case 'vxlan':
      if (value) {
        return { type, remoteIp: value };
      }
      break;
    case 'uplink':
      if (second !== undefined) {
        return { type, hostId: first, interface: second };
      }
      break;
    case 'erspan':
      if (second !== undefined && /^\d{1,4}$/.test(second)) {
        return { type, remoteIp: first, erspanId: Number(second) };
      }
      break;
  }
  throw new CliError(ExitCode.Usage, `--sink ${JSON.stringify(spec)}: give ${SINK_FORMS}`);
}

/** `--source <port-id>[:ingress|egress|both]`. */
export function parseSource(spec: string): Record<string, unknown> {
  const [portId, direction, extra] = spec.split(':');
  if (extra !== undefined || (direction !== undefined && !['ingress', 'egress', 'both'].includes(direction))) {
    throw new CliError(ExitCode.Usage, `--source ${JSON.stringify(spec)}: give <port-id> or <port-id>:ingress|egress|both`);
  }
  return defined({ portId, direction });
}

export function mirrorSessionsCommand(): Command {
  const sessions = new Command('mirror-sessions').description("mirror sessions: copies of ports' traffic to an analyzer");

  addListCommand<MirrorSessionWithStatus>(sessions, {
    path: '/v1/mirror-sessions',
    description: 'list mirror sessions',
    filters: [
      { flag: '--tenant <id>', param: 'tenantId', description: 'only those of this tenant' },
    ],
    columns: [
      { header: 'ID', value: (s) => s.id },
      { header: 'NAME', value: (s) => s.name },
      { header: 'TENANT', value: (s) => s.tenantId },
      { header: 'ENABLED', value: (s) => (s.enabled ? 'yes' : 'no') },
      { header: 'SOURCES', value: (s) => s.sources.length },
      { header: 'ACTIVE', value: (s) => s.status.filter((x) => x.state === 'active').length },
      { header: 'SINK', value: (s) => sinkText(s.sink) },
    ],
  });

  sessions
    .command('show')
    .description('show a mirror session with the state of each source')
    .argument('<id>', 'mirror session id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      showSession(ctx.json, await ctx.client.get<MirrorSessionWithStatus>(`/v1/mirror-sessions/${encodeURIComponent(id)}`));
    });

  sessions
    .command('create')
    .description('create a mirror session')
    .option('--tenant <id>', 'its tenant (required unless in --file)')
    .option('--name <name>', 'its name (required unless in --file)')
    .option('--source <port-id[:direction]>', 'a source port, direction ingress, egress or both (default); repeat', collect)
    .option('--sink <type=value>', `where the copies go: ${SINK_FORMS}`)
    .option('--snap-length <bytes>', 'bytes kept of each copy', integer(64, 65535))
    .option('--disabled', 'create it disabled (programmed nowhere)')
    .option('-f, --file <file>', 'the request body as JSON (- for stdin); flags override its fields')
    .action(async (opts: { tenant?: string; name?: string; source?: string[]; sink?: string; snapLength?: number; disabled?: boolean; file?: string }, command: Command) => {
      const ctx = contextOf(command);
      const body = {
        ...bodyFrom(opts.file),
        ...defined({
          tenantId: opts.tenant,
          name: opts.name,
          sources: opts.source?.map(parseSource),
          sink: opts.sink === undefined ? undefined : parseSink(opts.sink),
          snapLength: opts.snapLength,
          enabled: opts.disabled ? false : undefined,
        }),
      };
      showSession(ctx.json, (await ctx.client.call<MirrorSessionWithStatus>('POST', '/v1/mirror-sessions', { body })).body);
    });

  sessions
    .command('update')
    .description('change the fields given; --source and --sink replace the current ones')
    .argument('<id>', 'mirror session id')
    .option('--name <name>', 'new name')
    .option('--enable', 'enable it')
    .option('--disable', 'disable it (kept, programmed nowhere)')
    .option('--source <port-id[:direction]>', 'the new sources (repeat)', collect)
    .option('--sink <type=value>', `the new sink: ${SINK_FORMS}`)
    .option('-f, --file <file>', 'the request body as JSON (- for stdin); flags override its fields')
    .action(async (id: string, opts: { name?: string; enable?: boolean; disable?: boolean; source?: string[]; sink?: string; file?: string }, command: Command) => {
      const ctx = contextOf(command);
      if (opts.enable && opts.disable) {
        throw new CliError(ExitCode.Usage, 'give --enable or --disable, not both');
      }
      const body = {
        ...bodyFrom(opts.file),
        ...defined({
          name: opts.name,
          enabled: opts.enable ? true : opts.disable ? false : undefined,
          sources: opts.source?.map(parseSource),
          sink: opts.sink === undefined ? undefined : parseSink(opts.sink),
        }),
      };
      showSession(ctx.json, (await ctx.client.call<MirrorSessionWithStatus>('PATCH', `/v1/mirror-sessions/${encodeURIComponent(id)}`, { body })).body);
    });

  sessions
    .command('delete')
    .description('delete a mirror session')
    .argument('<id>', 'mirror session id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      await ctx.client.call('DELETE', `/v1/mirror-sessions/${encodeURIComponent(id)}`);
      return ctx.json ? printJson({ id, deleted: true }) : printLine(`deleted mirror session ${id}`);
    });

  return sessions;
}

function sinkText(sink: MirrorSession['sink']): string {
  switch (sink.type) {
    case 'port':
      return `port ${sink.portId}`;
    case 'vxlan':
      return `vxlan ${sink.remoteIp}:${sink.udpPort} vni ${sink.vni}`;
    case 'uplink':
      return `uplink ${sink.interface} on ${sink.hostId}`;
    case 'erspan':
      return `erspan v${sink.version} ${sink.remoteIp} id ${sink.erspanId}`;
  }
}

function showSession(json: boolean, s: MirrorSessionWithStatus): void {
  if (json) {
    return printJson(s);
  }
  printLine(
    details([
      ['id', s.id],
      ['name', s.name],
      ['tenant', s.tenantId],
      ['enabled', s.enabled ? 'yes' : 'no'],
      ['sink', sinkText(s.sink)],
      ['vni', s.vni],
      ['filter', s.filter],
      ['snap length', s.snapLength ?? 'whole frames'],
    ]),
  );
  printLine();
  const direction = new Map(s.sources.map((src) => [src.portId, src.direction]));
  printLine(
    table(s.status, [
      { header: 'SOURCE PORT', value: (x) => x.portId },
      { header: 'DIRECTION', value: (x) => direction.get(x.portId) },
      { header: 'HOST', value: (x) => x.hostId },
      { header: 'STATE', value: (x) => x.state },
      { header: 'PACKETS', value: (x) => x.packets },
      { header: 'BYTES', value: (x) => x.bytes },
      { header: 'LAST ERROR', value: (x) => x.lastError },
    ]),
  );
}
