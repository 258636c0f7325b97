import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { processCpuSeconds, processMemory } from './controller-process';
import { OvsdbClient } from './ovsdb-client';

/*
 * A private OVN central for the OVN peer benchmark (bench/ovn.ts), from Debian's ovn-central:
 * the northbound and southbound ovsdb-servers (standalone databases created with ovsdb-tool from
 * the package's schemas) on Unix sockets in a temp dir of its own, and ovn-northd between them;
 * optionally an ovn-nbctl daemon. None of the package's services is used, stopped or touched:
 * every path (databases, sockets, control sockets, pid and log files) is in the temp dir, every
 * tool is given its database explicitly, and the OVN/OVS run, log and database directories point
 * there too, so a default path can never reach the system's.
 */

const SCHEMAS = { nb: '/usr/share/ovn/ovn-nb.ovsschema', sb: '/usr/share/ovn/ovn-sb.ovsschema' };
const TOOLS = ['ovsdb-tool', 'ovsdb-server', 'ovn-northd', 'ovn-nbctl'];
/** PATH and the sbin directories: Debian puts ovsdb-server in /usr/sbin, which a user's PATH may lack. */
const TOOL_ENV = { ...process.env, PATH: [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].filter(Boolean).join(':') };

/** What is missing to run a private OVN central (tools on PATH, the package's schemas), or an empty list. */
export function ovnCentralMissing(): string[] {
  const missing = TOOLS.filter((tool) => spawnSync(tool, ['--version'], { env: TOOL_ENV, stdio: 'ignore', timeout: 5_000 }).status !== 0);
  return [...missing, ...Object.values(SCHEMAS).filter((schema) => !existsSync(schema))];
}

/** The first line of `tool --version`. */
export function ovnToolVersion(tool: string): string {
  return spawnSync(tool, ['--version'], { env: TOOL_ENV, encoding: 'utf8', timeout: 5_000 }).stdout?.split('\n')[0]?.trim() ?? 'unknown';
}

interface Daemon {
  name: string;
  logFile: string;
  child: ChildProcess;
  exited: boolean;
  exit: Promise<void>;
}

export class OvnCentral {
  private readonly daemons: Daemon[] = [];
  /** Tool invocations running (an `ovn-nbctl --wait=sb sync` would otherwise outlive a stop, waiting for the NB database again). */
  private readonly running = new Set<ChildProcess>();
  /** The ovn-nbctl daemon's pid: it detaches (the tool's only way to run as a daemon), so it is no child of ours. */
  private nbctlDaemonPid: number | undefined;
  private readonly env: NodeJS.ProcessEnv;

  readonly dir: string;

  /** Makes the temp dir; `start` starts the processes (apart, so that a caller can register it for its cleanup first). */
  constructor() {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ovn-bench-'));
    this.dir = dir;
    const env: NodeJS.ProcessEnv = { ...TOOL_ENV };
    // A caller's settings for the system's OVN must not redirect the tools.
    for (const name of ['OVN_NB_DAEMON', 'OVN_NB_DB', 'OVN_SB_DB', 'OVN_SB_DAEMON']) {
      delete env[name];
    }
    for (const name of ['OVN_RUNDIR', 'OVN_LOGDIR', 'OVN_DBDIR', 'OVS_RUNDIR', 'OVS_LOGDIR', 'OVS_DBDIR']) {
      env[name] = dir;
    }
    this.env = env;
  }

  get nbSocket(): string {
    return path.join(this.dir, 'nb.sock');
  }

  get sbSocket(): string {
    return path.join(this.dir, 'sb.sock');
  }

  private get nbctlControl(): string {
    return path.join(this.dir, 'nbctl.ctl');
  }

  /** Creates the databases, starts NB and SB ovsdb-server and ovn-northd, and waits until `--wait=sb sync` goes through them. */
  async start(opts: { readyTimeoutMs: number }): Promise<void> {
    try {
      for (const db of ['nb', 'sb'] as const) {
        await this.exec('ovsdb-tool', ['create', path.join(this.dir, `${db}.db`), SCHEMAS[db]], 10_000);
        this.spawnDaemon(`${db.toUpperCase()} ovsdb-server`, 'ovsdb-server', db, [
          path.join(this.dir, `${db}.db`),
          `--remote=punix:${path.join(this.dir, `${db}.sock`)}`,
          `--unixctl=${path.join(this.dir, `${db}.ctl`)}`,
        ]);
      }
      this.spawnDaemon('ovn-northd', 'ovn-northd', 'northd', [`--ovnnb-db=unix:${this.nbSocket}`, `--ovnsb-db=unix:${this.sbSocket}`, `--unixctl=${path.join(this.dir, 'northd.ctl')}`]);
      const deadline = performance.now() + opts.readyTimeoutMs;
      for (const socket of [this.nbSocket, this.sbSocket]) {
        for (;;) {
          this.checkRunning();
          try {
            (await OvsdbClient.connect(socket, 1_000)).close();
            break;
          } catch (err) {
            if (performance.now() > deadline) {
              throw new Error(`${socket} not accepting connections within ${opts.readyTimeoutMs} ms: ${(err as Error).message}`);
            }
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }
      await this.syncSb(Math.max(1_000, deadline - performance.now()));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Starts `command` as a child (in the foreground: its pid is ours to stop), logging to <dir>/<file>.log. */
  private spawnDaemon(name: string, command: string, file: string, args: string[]): void {
    const logFile = path.join(this.dir, `${file}.log`);
    const child = spawn(command, [...args, `--log-file=${logFile}`, '--no-chdir'], { env: this.env, stdio: 'ignore' });
    const daemon: Daemon = { name, logFile, child, exited: false, exit: Promise.resolve() };
    daemon.exit = new Promise((resolve) => {
      child.once('exit', () => {
        daemon.exited = true;
        resolve();
      });
      child.once('error', () => {
        daemon.exited = true;
        resolve();
      });
    });
    this.daemons.push(daemon);
  }

  /** Throws if a daemon has exited (with the end of its log). */
  checkRunning(): void {
    const gone = this.daemons.find((d) => d.exited);
    if (gone) {
      throw new Error(`${gone.name} exited; its log ends:\n${this.logTail(gone.logFile)}`);
    }
  }

  private logTail(file: string): string {
    try {
      return readFileSync(file, 'utf8').trim().split('\n').slice(-10).map((l) => `  | ${l}`).join('\n');
    } catch {
      return '  | (no log)';
    }
  }

  /** Runs an OVN tool with this central's environment; resolves with its stdout, rejects with its stderr (also when that matches `failOn`). */
  exec(command: string, args: string[], timeoutMs: number, opts: { env?: Record<string, string>; failOn?: RegExp } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile(command, args, { env: { ...this.env, ...opts.env }, timeout: Math.ceil(timeoutMs), maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        this.running.delete(child);
        if (err || opts.failOn?.test(stderr)) {
          reject(new Error(`${command} ${args.slice(0, 6).join(' ')}${args.length > 6 ? ' ...' : ''}: ${(stderr || err?.message || '').trim().slice(0, 400)}`));
        } else {
          resolve(stdout);
        }
      });
      this.running.add(child);
    });
  }

  /** ovn-nbctl on this central's NB database; through the daemon once it is started (`startNbctlDaemon`). */
  async nbctl(args: string[], timeoutMs = 60_000): Promise<string> {
    const timeout = `--timeout=${Math.ceil(timeoutMs / 1000)}`;
    if (this.nbctlDaemonPid === undefined) {
      return this.exec('ovn-nbctl', [`--db=unix:${this.nbSocket}`, timeout, ...args], timeoutMs + 5_000);
    }
    // No --db: with one, ovn-nbctl bypasses the daemon, saying so on stderr (a measurement of something else: refused).
    return this.exec('ovn-nbctl', [timeout, ...args], timeoutMs + 5_000, { env: { OVN_NB_DAEMON: this.nbctlControl }, failOn: /not using ovn-nbctl daemon/ });
  }

  /**
   * Starts an ovn-nbctl daemon (its "daemon mode": it keeps a replica of the NB database, so a
   * command no longer downloads it first); every later `nbctl` call goes through it.
   */
  async startNbctlDaemon(): Promise<void> {
    const pidFile = path.join(this.dir, 'nbctl.pid');
    await this.exec('ovn-nbctl', [`--db=unix:${this.nbSocket}`, '--detach', '--no-chdir', `--pidfile=${pidFile}`, `-u`, this.nbctlControl, `--log-file=${path.join(this.dir, 'nbctl.log')}`], 30_000);
    this.nbctlDaemonPid = Number(readFileSync(pidFile, 'utf8').trim());
  }

  /** `ovn-nbctl --wait=sb sync`: returns once ovn-northd has brought the SB database up to every NB change made so far; the ms it took. */
  async syncSb(timeoutMs: number): Promise<number> {
    const t0 = performance.now();
    await this.exec('ovn-nbctl', [`--db=unix:${this.nbSocket}`, '--wait=sb', `--timeout=${Math.ceil(timeoutMs / 1000)}`, 'sync'], timeoutMs + 5_000);
    return performance.now() - t0;
  }

  /** The processes of the central (NB and SB ovsdb-server, ovn-northd) and the ovn-nbctl daemon if started. */
  processes(): { name: string; pid: number; central: boolean }[] {
    const own = this.daemons.map((d) => ({ name: d.name, pid: d.child.pid ?? -1, central: true }));
    return this.nbctlDaemonPid === undefined ? own : [...own, { name: 'ovn-nbctl daemon', pid: this.nbctlDaemonPid, central: false }];
  }

  /** RSS (kB) of each process. */
  memory(): { name: string; rssKb: number; central: boolean }[] {
    return this.processes().map((p) => ({ name: p.name, central: p.central, rssKb: processMemory(p.pid)?.rssKb ?? NaN }));
  }

  /** CPU seconds each process used so far. */
  cpuSeconds(): Map<string, number> {
    return new Map(this.processes().map((p) => [p.name, processCpuSeconds(p.pid)]));
  }

  /** The ovn-nbctl daemon's pid, if it is still that process (a pid can be reused once it is gone). */
  private liveNbctlDaemon(): number | undefined {
    const pid = this.nbctlDaemonPid;
    try {
      return pid !== undefined && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'ovn-nbctl' ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private signalNbctlDaemon(signal: NodeJS.Signals): void {
    const pid = this.liveNbctlDaemon();
    try {
      if (pid !== undefined) {
        process.kill(pid, signal);
      }
    } catch {
      // gone meanwhile
    }
  }

  /** SIGTERM to every process, SIGKILL to those still there after `graceMs`, then the temp dir removed. */
  async stop(graceMs = 5_000): Promise<void> {
    for (const child of this.running) {
      child.kill('SIGTERM');
    }
    this.signalNbctlDaemon('SIGTERM');
    const running = this.daemons.filter((d) => !d.exited);
    for (const d of running) {
      d.child.kill('SIGTERM');
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running.map((d) => d.exit)), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    this.killNow();
    await Promise.race([Promise.all(running.map((d) => d.exit)), new Promise((r) => setTimeout(r, 2_000))]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Last resort from a synchronous `exit` handler: SIGKILL to whatever is left, the temp dir removed. */
  killNow(): void {
    for (const child of this.running) {
      child.kill('SIGKILL');
    }
    this.signalNbctlDaemon('SIGKILL');
    for (const d of this.daemons) {
      if (!d.exited) {
        d.child.kill('SIGKILL');
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
