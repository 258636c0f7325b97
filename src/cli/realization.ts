import type { Answer } from './client';
import type { Context } from './command-kit';
import { CliError, ExitCode } from './exit-codes';
import { cut, Progress } from './output';

/** A host as `GET /v1/hosts` shows it (the fields overlayctl reads). */
export interface HostStatus {
  id: string;
  name: string;
  vtepIp: string;
  connected: boolean;
  appliedRevision: number;
  lag: number;
  lastError: { revision: number; error: string; at: string } | null;
}

const POLL_MS = 250;

/** Every host with a port bound to the segment: the hosts whose span holds the segment's ports. */
export async function hostsOnSegment(ctx: Context, segmentId: string): Promise<string[]> {
  const ports = await ctx.client.list<{ hostId: string | null }>('/v1/ports', { segmentId });
  return [...new Set(ports.map((p) => p.hostId).filter((h): h is string => h !== null))];
}

async function statuses(ctx: Context, ids: ReadonlySet<string>): Promise<Map<string, HostStatus>> {
  const hosts = await ctx.client.list<HostStatus>('/v1/hosts');
  return new Map(hosts.filter((h) => ids.has(h.id)).map((h) => [h.id, h]));
}

function describe(h: HostStatus): string {
  return `${h.name} (${h.connected ? 'connected' : 'disconnected'}, lag ${h.lag}${h.lastError ? `, last error: ${cut(h.lastError.error, 80)}` : ''})`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A port write sent with `?wait=realized`, with progress while the server holds the answer.
 *
 * The verdict is the server's: it answers once every host whose span the write changed has
 * acknowledged the write's revision (or says 202 `realized: false` at its timeout). Meanwhile
 * `affected` (the hosts that hold the port: its host(s) and every host with a bound port on its
 * segment) are polled through `GET /v1/hosts`; a host counts as acked once its `lag` is 0 and
 * its `appliedRevision` has moved past what it was before the write (it has applied a revision
 * at least as new as this write and nothing of its span is outstanding). The server may wait for
 * more hosts than these (hosts holding the port's security-group members); those are not counted.
 */
export async function waitedWrite<T>(
  ctx: Context,
  affectedIds: readonly string[],
  write: () => Promise<Answer<T>>,
  realizedOf: (answer: Answer<T>) => boolean,
): Promise<Answer<T>> {
  const affected = new Set(affectedIds);
  const progress = new Progress();
  let baseline: Map<string, HostStatus> | undefined;
  try {
    baseline = affected.size ? await statuses(ctx, affected) : new Map<string, HostStatus>();
  } catch (err) {
    if (!(err instanceof CliError) || err.exitCode !== ExitCode.Auth) {
      throw err;
    }
    progress.update('waiting for the hosts to apply it (this token cannot read hosts: no per-host progress)');
  }
  let settled = false;
  const answer = write().finally(() => (settled = true));
  answer.catch(() => undefined); // observed below; not an unhandled rejection while polling

  const report = async (final: boolean): Promise<HostStatus[]> => {
    const before = baseline;
    if (!before) {
      return [];
    }
    const now = await statuses(ctx, affected);
    const hosts = [...before.keys()].filter((id) => now.has(id)).map((id) => now.get(id)!);
    const pending = hosts.filter((h) => !(h.lag === 0 && h.appliedRevision > before.get(h.id)!.appliedRevision));
    const acked = hosts.length - pending.length;
    const waiting = pending.length ? `; waiting for ${pending.map((h) => h.name).join(', ')}` : '';
    progress.update(hosts.length ? `hosts acked: ${acked}/${hosts.length}${final ? '' : waiting}` : 'no host holds it: nothing to wait for');
    return pending;
  };

  while (!settled && baseline) {
    await report(false).catch(() => undefined); // progress only; the write's answer decides
    await Promise.race([answer, sleep(POLL_MS)]).catch(() => undefined);
  }
  const result = await answer.catch((err) => {
    progress.done();
    throw err;
  });
  if (realizedOf(result)) {
    if (baseline && baseline.size) {
      progress.update(`hosts acked: ${baseline.size}/${baseline.size}`);
    }
    progress.done();
    return result;
  }
  const pending = await report(true).catch(() => []);
  progress.done();
  const which = pending.length ? `; not acked: ${pending.map(describe).join('; ')}` : '';
  throw new RealizationTimeout(`written, but not realized on every host it changes within the wait${which}`, result);
}

/** The write is done (its answer kept, for `--json`) but not realized in time: exit 6. */
export class RealizationTimeout extends CliError {
  constructor(
    message: string,
    readonly answer: Answer<unknown>,
  ) {
    super(ExitCode.NotRealized, message);
  }
}
