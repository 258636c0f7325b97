import { TEST_ADMIN_TOKEN } from './controller-harness';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { buildWhenStale, ROOT } from './build-when-stale';

export const CONTROLLER_MAIN = join(ROOT, 'dist', 'src', 'controller', 'main.js');
/** What `npm start` runs: main.js behind a Redis of its own when the machine has none. */
export const DEV_START = join(ROOT, 'dist', 'src', 'controller', 'dev', 'start.js');

/** Builds dist/src/controller/main.js and dev/start.js (tsconfig.controller.json) when older than any of their sources. Returns whether it built. */
export function ensureControllerBuilt(): boolean {
  const sources = ['src/controller', 'src/common', 'src/generated', 'proto'];
  const build = { tsconfig: 'test/support/tsconfig.controller.json' };
  // One program builds both: when the first is rebuilt, the second is fresh.
  return buildWhenStale(CONTROLLER_MAIN, sources, build) || buildWhenStale(DEV_START, sources, build);
}

/** GET on the controller; the status, or undefined when no answer came within `timeoutMs`. */
export function probe(port: number, path: string, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      resolve(undefined);
    });
    req.on('error', () => resolve(undefined));
  });
}

/**
 * overlayd as a process of its own (the built dist/src/controller/main.js), for what only a real
 * process shows: how it answers signals and how long it takes to exit. Its output is kept.
 */
export class ControllerChild {
  readonly output: string[] = [];
  private exitInfo?: { code: number | null; signal: NodeJS.Signals | null; at: number };
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly httpPort: number,
  ) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal, at: Date.now() };
        resolve();
      }),
    );
    const keep = (chunk: Buffer) => this.output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** Spawns it and waits until GET /readyz answers 200. */
  static async start(env: Record<string, string>, httpPort: number, readyTimeoutMs = 20_000): Promise<ControllerChild> {
    const child = spawn(process.execPath, [CONTROLLER_MAIN], { env: { ...process.env, OVERLAY_BOOTSTRAP_TOKEN: TEST_ADMIN_TOKEN, ...env, OVERLAY_HTTP_PORT: String(httpPort) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const ctl = new ControllerChild(child, httpPort);
    const deadline = Date.now() + readyTimeoutMs;
    while ((await probe(httpPort, '/readyz', 1_000)) !== 200) {
      if (ctl.exitInfo || Date.now() > deadline) {
        ctl.kill();
        throw new Error(`overlayd did not become ready within ${readyTimeoutMs} ms:\n${ctl.output.slice(-20).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return ctl;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends `signal` and resolves with the exit and the time from the signal to it; fails past `deadlineMs`. */
  async signalAndWait(signal: NodeJS.Signals, deadlineMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const sent = Date.now();
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([this.exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), deadlineMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      this.kill();
      throw new Error(`overlayd did not exit within ${deadlineMs} ms of ${signal}:\n${this.output.slice(-20).join('\n')}`);
    }
    return { code: this.exitInfo!.code, signal: this.exitInfo!.signal, ms: this.exitInfo!.at - sent };
  }

  /** SIGKILL if still running (cleanup). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
    }
  }
}
