import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../src/controller/dev/local-redis';
import type { JsonHttpClient } from './http-client';
import { processCpu, processMemory } from './proc-stats';

/**
 * overlayd as a separate process (`node dist/src/controller/main.js`), so the load generator and
 * the server each have their own event loop and their CPU can be told apart (/proc/<pid>/stat).
 */

/**
 * A token of the benchmark's own for its controller: given as OVERLAY_BOOTSTRAP_TOKEN, it is the
 * deployment's first admin token, and the load generator sends it on every call.
 */
export function benchToken(): string {
  return `bench-${randomBytes(32).toString('hex')}`;
}

/**
 * A benchmark controller's environment: the store (`redis`: REDIS_URL, or the Sentinel
 * variables), its own key prefix and HTTP port, an idle gRPC side of its own (plaintext: no agent
 * connects), every VNI, batches up to 10,000; with `token`, that is its first admin token.
 */
export async function controllerEnv(redis: Record<string, string>, prefix: string, httpPort: number, token: string | undefined): Promise<Record<string, string>> {
  return {
    ...redis,
    OVERLAY_HTTP_PORT: String(httpPort),
    OVERLAY_GRPC_PORT: String(await freePort()),
    OVERLAY_GRPC_INSECURE: 'true',
    OVERLAY_KEY_PREFIX: prefix,
    OVERLAY_VNI_RANGES: '1-16777215',
    OVERLAY_MAX_BATCH_SIZE: '10000',
    ...(token === undefined ? {} : { OVERLAY_BOOTSTRAP_TOKEN: token }),
  };
}

/**
 * Waits until the controller behind `client` has applied `revision` to its materialized view (its
 * /metrics `overlay_view_revision`): the work a write leaves behind its answer is then done.
 * Returns how long it took (ms); throws past `timeoutMs`, or when `shouldStop` says so.
 */
export async function viewReached(client: JsonHttpClient, revision: number, timeoutMs: number, shouldStop: () => boolean = () => false): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const text = await client.metrics();
    const applied = Number(/^overlay_view_revision (\S+)/m.exec(text ?? '')?.[1] ?? NaN);
    if (applied >= revision) {
      return performance.now() - t0;
    }
    if (performance.now() - t0 > timeoutMs || shouldStop()) {
      throw new Error(`the controller's view is at revision ${applied}, the store at ${revision}, after ${Math.round(performance.now() - t0)} ms`);
    }
    await sleep(50);
  }
}

/** The controller's environment as the results file shows it: the token is a secret, only its presence is said. */
export function redactedEnv(env: Record<string, string>): Record<string, string> {
  return 'OVERLAY_BOOTSTRAP_TOKEN' in env ? { ...env, OVERLAY_BOOTSTRAP_TOKEN: '(a token of this run)' } : env;
}

/** Resident and peak resident memory (kB) of a process, from /proc/<pid>/status; undefined once gone. */
export { processMemory };

/** User + system CPU seconds a process used so far (from /proc/<pid>/stat), or NaN once gone. */
export function processCpuSeconds(pid: number): number {
  return processCpu(pid)?.self ?? NaN;
}

function get(host: string, port: number, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** How many of the log's last lines an error shows. */
const LOG_TAIL_LINES = 40;

export class ControllerProcess {
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitPromise: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly logDir: string,
  ) {
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve();
      });
    });
  }

  private get logFile(): string {
    return path.join(this.logDir, 'overlayd.log');
  }

  /** Spawns the controller and waits for GET /readyz to answer 200 (or fails at the deadline, killing it). */
  static async start(opts: { script: string; env: Record<string, string>; port: number; readyTimeoutMs: number; nodeArgs?: string[] }): Promise<ControllerProcess> {
    // Its log goes to a file, not to a pipe this process reads: the load generator, busy, would be
    // a slow reader, and the controller's synchronous log writes would wait on it (a request line
    // per call: the single-port figures measured the bench's own reading of the log).
    const logDir = mkdtempSync(path.join(os.tmpdir(), 'overlayd-bench-'));
    const fd = openSync(path.join(logDir, 'overlayd.log'), 'a');
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.script], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const ctl = new ControllerProcess(child, opts.port, logDir);
    const deadline = Date.now() + opts.readyTimeoutMs;
    for (;;) {
      if (ctl.exited) {
        throw new Error(`controller exited during startup (code ${ctl.exited.code}, signal ${ctl.exited.signal}):\n${ctl.logTail()}`);
      }
      try {
        if ((await get('127.0.0.1', opts.port, '/readyz', 1_000)) === 200) {
          return ctl;
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await ctl.stop();
        throw new Error(`controller not ready within ${opts.readyTimeoutMs} ms:\n${ctl.logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exited === undefined;
  }

  /** The log's last lines, indented (an error's detail). */
  logTail(): string {
    try {
      const lines = readFileSync(this.logFile, 'utf8').split('\n').filter((l) => l.trim());
      return lines
        .slice(-LOG_TAIL_LINES)
        .map((l) => `  | ${l}`)
        .join('\n');
    } catch {
      return '  | (no log)';
    }
  }

  /** Resident and peak resident memory (kB) from /proc/<pid>/status. */
  memory(): { rssKb: number; hwmKb: number } | undefined {
    return processMemory(this.pid);
  }

  /** User + system CPU seconds used so far (from /proc/<pid>/stat), or NaN once gone. */
  cpuSeconds(): number {
    return processCpuSeconds(this.pid);
  }

  /** Sends `signal` (e.g. SIGUSR2 for --heapsnapshot-signal). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) {
      this.child.kill(signal);
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    await this.terminate(graceMs);
    rmSync(this.logDir, { recursive: true, force: true });
  }

  private async terminate(graceMs: number): Promise<void> {
    if (!this.running) {
      return;
    }
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([this.exitPromise.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (timedOut && this.running) {
      this.child.kill('SIGKILL');
      await Promise.race([this.exitPromise, new Promise((r) => setTimeout(r, 2_000))]);
    }
  }

  /** Last resort from a synchronous `exit` handler. */
  killNow(): void {
    if (this.running) {
      this.child.kill('SIGKILL');
    }
  }
}

export { freePort };
