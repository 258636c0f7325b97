import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWhenStale, ROOT } from './build-when-stale';

export const CLI_MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** Builds dist/src/cli/main.js (tsconfig.cli.json) when it is older than any of its sources. Returns whether it built. */
export function ensureCliBuilt(): boolean {
  return buildWhenStale(CLI_MAIN, ['src/cli', 'src/controller', 'src/common'], { tsconfig: 'test/support/tsconfig.cli.json' });
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for `--json`). */
  json<T = any>(): T;
}

/** A home of its own, so that no user's ~/.config/overlayctl is read. */
const HOME = mkdtempSync(join(tmpdir(), 'overlayctl-home-'));

/** Runs overlayctl to its end (see `startOverlayctl`). */
export function overlayctl(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<CliRun> {
  return startOverlayctl(args, env, timeoutMs).done;
}

/**
 * Starts the built overlayctl as a process of its own, with `env` (OVERLAY_URL, OVERLAY_TOKEN...)
 * over a clean environment: no variable of the test's own shell reaches it but PATH. `stdout()`
 * is what it printed so far, for commands that print as things happen.
 */
export function startOverlayctl(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): { stdout(): string; done: Promise<CliRun> } {
  const clean: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME };
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined) {
      clean[k] = v;
    }
  }
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const done = new Promise<CliRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`overlayctl ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout,
        stderr,
        json() {
          try {
            return JSON.parse(stdout);
          } catch {
            throw new Error(`overlayctl ${args.join(' ')} printed no JSON (exit ${code})\nstdout: ${stdout}\nstderr: ${stderr}`);
          }
        },
      });
    });
  });
  return { stdout: () => stdout, done };
}
