import { Command } from 'commander';
import type { Answer } from '../client';
import { REQUEST_TIMEOUT_MS } from '../client';
import { addListCommand, bodyFrom, collect, contextOf, defined, integer, type Context } from '../command-kit';
import { CliError, ExitCode } from '../exit-codes';
import { details, printJson, printLine } from '../output';
import { hostsOnSegment, RealizationTimeout, waitedWrite } from '../realization';
import type { Port } from '../../controller/model/port';

type PortAnswer = Port & { realized?: boolean; realizationError?: { hostId: string; reason: string; since: string } | null };

/** `--wait [--timeout <ms>]` on a port write: the API's `?wait=realized&timeout=`. */
interface WaitOptions {
  wait?: boolean;
  timeout?: number;
}

const DEFAULT_WAIT_MS = 10_000;

function withWait(command: Command): Command {
  return command
    .option('--wait', 'wait until every host it changes has applied it, showing hosts acked out of hosts affected')
    .option('--timeout <ms>', `with --wait: how long (default ${DEFAULT_WAIT_MS}, at most 120000)`, integer(1, 120_000));
}

/**
 * Sends a port write, with `--wait` through `waitedWrite` (progress, exit 6 if not realized in
 * time), and shows the answer; a write not realized in time is shown too before it fails.
 */
async function write<B extends { realized?: boolean } | undefined>(
  ctx: Context,
  opts: WaitOptions,
  affected: () => Promise<string[]>,
  send: (query: Record<string, string | number | undefined>, timeoutMs?: number) => Promise<Answer<B>>,
  show: (body: B) => void,
): Promise<void> {
  if (opts.timeout !== undefined && !opts.wait) {
    throw new CliError(ExitCode.Usage, '--timeout applies only with --wait');
  }
  try {
    const answer = opts.wait
      ? await waitedWrite(
          ctx,
          await affected(),
          () => {
            const timeout = opts.timeout ?? DEFAULT_WAIT_MS;
            return send({ wait: 'realized', timeout }, timeout + REQUEST_TIMEOUT_MS);
          },
          (a) => a.body?.realized !== false,
        )
      : await send({});
    show(answer.body);
  } catch (err) {
    if (err instanceof RealizationTimeout) {
      show(err.answer.body as B);
    }
    throw err;
  }
}

export function portsCommand(): Command {
  const ports = new Command('ports').description("ports: VMs' vNICs, bound to hosts");

  addListCommand<Port>(ports, {
    path: '/v1/ports',
    description: 'list ports; the filters combine',
    filters: [
      { flag: '--segment <id>', param: 'segmentId', description: 'only those of this segment' },
      { flag: '--host <id>', param: 'hostId', description: 'only those bound to this host' },
      { flag: '--vm <id>', param: 'vmId', description: 'only those of this VM' },
      { flag: '--tenant <id>', param: 'tenantId', description: 'only those of this tenant' },
    ],
    columns: [
      { header: 'ID', value: (p) => p.id },
      { header: 'MAC', value: (p) => p.mac },
      { header: 'IPS', value: (p) => p.ips.join(',') },
      { header: 'SEGMENT', value: (p) => p.segmentId },
      { header: 'HOST', value: (p) => p.hostId },
      { header: 'VM', value: (p) => p.vmId },
      { header: 'MIGRATING', value: (p) => p.migration?.id },
    ],
  });

  ports
    .command('show')
    .description('show one port, with whether every host that holds it has applied it (realized)')
    .argument('<id>', 'port id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const ctx = contextOf(command);
      showPort(ctx.json)(await ctx.client.get<PortAnswer>(`/v1/ports/${encodeURIComponent(id)}`));
    });

  withWait(
    ports
      .command('create')
      .description('create a port (MAC generated unless --mac), bound to --host if given')
      .option('--segment <id>', 'its segment (required unless in --file)')
      .option('--host <id>', 'bind it to this host')
      .option('--vm <id>', 'the VM it belongs to')
      .option('--mac <mac>', 'its MAC (unicast)')
      .option('--ip <ip>', 'an address inside the segment CIDR (repeat for more)', collect)
      .option('--security-group <id>', "a security group (repeat; none: the tenant's default group)", collect)
      .option('--no-port-security', 'no filtering and no anti-spoofing')
      .option('--role <role>', 'vm (default) or analyzer (a mirror sink)')
      .option('-f, --file <file>', 'the request body as JSON (- for stdin); flags override its fields'),
  ).action(async (opts: WaitOptions & { segment?: string; host?: string; vm?: string; mac?: string; ip?: string[]; securityGroup?: string[]; portSecurity: boolean; role?: string; file?: string }, command: Command) => {
    const ctx = contextOf(command);
    const body = {
      ...bodyFrom(opts.file),
      ...defined({
        segmentId: opts.segment,
        hostId: opts.host,
        vmId: opts.vm,
        mac: opts.mac,
        ips: opts.ip,
        securityGroupIds: opts.securityGroup,
        portSecurity: command.getOptionValueSource('portSecurity') === 'cli' ? opts.portSecurity : undefined,
        role: opts.role,
      }),
    };
    if (typeof body.segmentId !== 'string') {
      throw new CliError(ExitCode.Usage, 'give the port a segment: --segment <id>');
    }
    const segmentId = body.segmentId;
    const hostId = typeof body.hostId === 'string' ? body.hostId : null;
    await write(
      ctx,
      opts,
      async () => (hostId ? [hostId, ...(await hostsOnSegment(ctx, segmentId))] : []),
      (query, timeoutMs) => ctx.client.call<PortAnswer>('POST', '/v1/ports', { query, body, timeoutMs }),
      showPort(ctx.json),
    );
  });

  withWait(
    ports
      .command('update')
      .description('bind, unbind or relabel a port; replace its security groups')
      .argument('<id>', 'port id')
      .option('--host <id>', 'bind it to this host')
      .option('--unbind', 'unbind it from its host')
      .option('--vm <id>', 'the VM it belongs to')
      .option('--security-group <id>', "replace its security groups (repeat)", collect)
      .option('-f, --file <file>', 'the request body as JSON (- for stdin); flags override its fields'),
  ).action(async (id: string, opts: WaitOptions & { host?: string; unbind?: boolean; vm?: string; securityGroup?: string[]; file?: string }, command: Command) => {
    const ctx = contextOf(command);
    if (opts.host && opts.unbind) {
      throw new CliError(ExitCode.Usage, 'give --host or --unbind, not both');
    }
    const body = { ...bodyFrom(opts.file), ...defined({ hostId: opts.unbind ? null : opts.host, vmId: opts.vm, securityGroupIds: opts.securityGroup }) };
    const path = `/v1/ports/${encodeURIComponent(id)}`;
    await write(
      ctx,
      opts,
      async () => {
        const port = await ctx.client.get<Port>(path);
        const hosts = [port.hostId, typeof body.hostId === 'string' ? body.hostId : null].filter((h): h is string => h !== null);
        return hosts.length ? [...hosts, ...(await hostsOnSegment(ctx, port.segmentId))] : [];
      },
      (query, timeoutMs) => ctx.client.call<PortAnswer>('PATCH', path, { query, body, timeoutMs }),
      showPort(ctx.json),
    );
  });

  withWait(ports.command('delete').description('delete a port').argument('<id>', 'port id')).action(async (id: string, opts: WaitOptions, command: Command) => {
    const ctx = contextOf(command);
    const path = `/v1/ports/${encodeURIComponent(id)}`;
    await write(
      ctx,
      opts,
      async () => {
        const port = await ctx.client.get<Port>(path);
        return port.hostId ? [port.hostId, ...(await hostsOnSegment(ctx, port.segmentId))] : [];
      },
      (query, timeoutMs) => ctx.client.call<{ id: string; realized?: boolean } | undefined>('DELETE', path, { query, timeoutMs }),
      (body?: { realized?: boolean }) => (ctx.json ? printJson({ id, deleted: true, ...(body?.realized === false ? { realized: false } : {}) }) : printLine(`deleted port ${id}`)),
    );
  });

  return ports;
}

function showPort(json: boolean): (p: PortAnswer) => void {
  return (p) => {
    if (json) {
      return printJson(p);
    }
    printLine(
      details([
        ['id', p.id],
        ['segment', p.segmentId],
        ['tenant', p.tenantId],
        ['host', p.hostId ?? 'unbound'],
        ['vm', p.vmId],
        ['mac', p.mac],
        ['ips', p.ips.join(', ')],
        ['role', p.role ?? 'vm'],
        ['port security', p.portSecurity ? 'on' : 'off'],
        ['security groups', p.securityGroupIds.length ? p.securityGroupIds.join(', ') : "the tenant's default"],
        ['address pairs', p.allowedAddressPairs.map((a) => (a.mac ? `${a.ip} (${a.mac})` : a.ip)).join(', ')],
        ['migration', p.migration ? `${p.migration.id} to ${p.migration.destinationHostId}` : null],
        ['tap', p.tapName],
        ...(p.realized === undefined ? [] : ([['realized', p.realized ? 'yes' : 'no']] as [string, unknown][])),
        // Why its host could not program it (a per-port NACK), since when.
        ...(p.realizationError ? ([['not programmed', `on host ${p.realizationError.hostId} since ${p.realizationError.since}: ${p.realizationError.reason}`]] as [string, unknown][]) : []),
        ['created', p.createdAt],
      ]),
    );
  };
}
