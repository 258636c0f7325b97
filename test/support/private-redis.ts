import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { REDIS_SERVER_MISSING } from '../../src/controller/dev/local-redis';
import { freePort } from '../../src/controller/dev/local-redis';

/**
 * A Redis of a test's own (redis-server on a free port, data in a temp directory), for tests
 * that stop, kill or restart Redis without touching the shared one. AOF with `appendfsync
 * always`, the durability setting docs/operations.md recommends, unless told otherwise.
 */
export interface PrivateRedis {
  url: string;
  port: number;
  dir: string;
  /** SIGKILL: no chance to flush anything beyond what is already fsynced. */
  kill(): Promise<void>;
  /** SIGSTOP: connections stay open, nothing answers (a hung or partitioned Redis). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** Starts it again on the same port and directory (it replays its AOF). */
  start(): Promise<void>;
  /** SIGKILL, its data removed (`from`: replaced by a copy made with `copyData`), started again: a Redis that lost its data. */
  restartWith(from: string | null): Promise<void>;
  /** A copy of its data directory as it is on disk now (stop it first for a consistent copy); the caller removes it. */
  copyData(): string;
  /** Stops it for good and removes its directory. */
  destroy(): Promise<void>;
}


async function waitUntilUp(url: string, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      // PING answers LOADING while the AOF replays; wait for a real answer.
      if ((await client.ping()) === 'PONG') {
        client.disconnect();
        return;
      }
    } catch {
      // not up yet
    }
    client.disconnect();
    if (Date.now() > deadline) {
      throw new Error(`private redis at ${url} did not come up within ${deadlineMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `args`: more redis-server options, e.g. `['--replicaof', '127.0.0.1', '6379']`. */
export async function startPrivateRedis(opts: { appendfsync?: 'always' | 'everysec' | 'no'; args?: string[] } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'overlay-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', opts.appendfsync ?? 'always', '--save', '', '--daemonize', 'no', '--logfile', join(dir, 'redis.log'), ...(opts.args ?? [])];
  const handle: PrivateRedis = {
    url,
    port,
    dir,
    async start() {
      child = spawn('redis-server', args, { stdio: 'ignore' });
      // Not installed: say so at once, rather than an unhandled 'error' and a 15 s wait.
      await new Promise<void>((resolve, reject) => {
        child!.once('spawn', resolve);
        child!.once('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'ENOENT' ? REDIS_SERVER_MISSING : `redis-server: ${err.message}`)));
      });
      await waitUntilUp(url, 15_000);
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async kill() {
      // Already gone: a killed process has a signalCode, not an exitCode.
      if (!child || child.exitCode !== null || child.signalCode !== null) {
        return;
      }
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    async restartWith(from) {
      await handle.kill();
      for (const entry of readdirSync(dir)) {
        if (entry !== 'redis.log') {
          rmSync(join(dir, entry), { recursive: true, force: true });
        }
      }
      if (from) {
        cpSync(from, dir, { recursive: true });
      }
      await handle.start();
    },
    copyData() {
      const copy = mkdtempSync(join(tmpdir(), 'overlay-redis-copy-'));
      for (const entry of readdirSync(dir)) {
        if (entry !== 'redis.log') {
          cpSync(join(dir, entry), join(copy, entry), { recursive: true });
        }
      }
      return copy;
    },
    async destroy() {
      await handle.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await handle.start();
  return handle;
}

export { freePort };
