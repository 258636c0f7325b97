import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectionKey, isCarriable } from '../../../common/tracked-connection';
import type { InsertedConnections, TrackedConnection } from '../dataplane';
import type { CommandRunner } from './command-runner';
import { insertLine, parseConntrackList } from './conntrack-text';
import type { Logger } from '../../../common/logger';

/**
 * The conntrack driver: lists, inserts and forgets the tracked connections of a VM's addresses
 * in a segment's conntrack zone, through conntrack-tools (`conntrack -L`, `-R`, `-D`; the text
 * both ways in conntrack-text.ts). Owns nothing but the note that the tool is missing, so that
 * it is reported once.
 */
export class ConntrackDriver {
  private conntrackMissing = false;

  constructor(
    private readonly runner: CommandRunner,
    private readonly logger: Logger,
  ) {}

  /** conntrack -D of each address, as source and as destination, in the zone. A missing conntrack tool is reported once. */
  async forget(zone: number, ips: string[]): Promise<void> {
    const runs = ips.flatMap((ip) => ['-s', '-d'].map((side) => this.runner.run('conntrack', ['-D', '-w', String(zone), side, ip]).catch((err: unknown) => err as Error)));
    for (const outcome of await Promise.all(runs)) {
      // Exit status 1 with "0 flow entries have been deleted" is the normal nothing-to-do.
      if (outcome instanceof Error && /ENOENT|not found|spawn/i.test(outcome.message) && !this.conntrackMissing) {
        this.conntrackMissing = true;
        this.logger.warn(`conntrack (conntrack-tools) is not installed: a VM that returns to this host may have its TCP connections stall until they time out (${outcome.message})`);
      }
    }
  }

  /**
   * `conntrack -L -w <zone>` with `-s` and with `-d` for each address (in parallel), parsed; an
   * entry is listed once. Never mutates.
   */
  async list(zone: number, ips: string[], limit: number): Promise<TrackedConnection[]> {
    const texts = await Promise.all(ips.flatMap((ip) => ['-s', '-d'].map((side) => this.runner.run('conntrack', ['-L', '-w', String(zone), side, ip]))));
    const seen = new Map<string, TrackedConnection>();
    for (const c of texts.flatMap(parseConntrackList)) {
      if (seen.size >= limit) {
        break;
      }
      seen.set(connectionKey(c), c);
    }
    return [...seen.values()];
  }

  /**
   * `conntrack -R <file>` of a load file written to a private temporary directory: conntrack opens
   * the file by name, and `/dev/stdin` cannot be opened when stdin is a socket (what Node gives a
   * child for a pipe).
   */
  private async load(text: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'overlay-agent-ct-'));
    try {
      const file = join(dir, 'load');
      await writeFile(file, text, { mode: 0o600 });
      await this.runner.run('conntrack', ['-R', file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Inserts with `conntrack -R` (one process for all of them), skipping those already tracked.
   * The tool stops at the first line the kernel refuses: the entries before it are in, so the
   * first one still missing is the one refused; it is counted failed and the rest loaded again
   * (at most 16 times, then the rest count as failed). Idempotent.
   */
  async insert(zone: number, ips: string[], connections: TrackedConnection[]): Promise<InsertedConnections> {
    const valid = new Map<string, TrackedConnection>();
    for (const c of connections) {
      if (isCarriable(c)) {
        valid.set(connectionKey(c), c);
      }
    }
    const invalid = connections.length - valid.size;
    let error = invalid ? `${invalid} connection(s) not valid` : '';
    let refused = 0;
    let pending = [...valid.values()];
    for (let round = 0; pending.length > 0; round++) {
      const tracked = new Set((await this.list(zone, ips, Number.MAX_SAFE_INTEGER)).map(connectionKey));
      pending = pending.filter((c) => !tracked.has(connectionKey(c)));
      if (pending.length === 0 || round >= 16) {
        break;
      }
      try {
        await this.load(pending.map((c) => insertLine(zone, c)).join('\n') + '\n');
        pending = [];
      } catch (err) {
        // Refused at some line: the lines before it went in, so the first one still missing after
        // them is the one refused. It is dropped; the next round loads the rest.
        error = (err as Error).message;
        const now = new Set((await this.list(zone, ips, Number.MAX_SAFE_INTEGER)).map(connectionKey));
        const first = pending.findIndex((c) => !now.has(connectionKey(c)));
        pending.splice(Math.max(0, first), 1);
        refused++;
      }
    }
    const failed = invalid + refused + pending.length;
    return { installed: valid.size - refused - pending.length, failed, error };
  }
}
