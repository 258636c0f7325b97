import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { isAbsolute, join, relative } from 'node:path';
import { redisProblem } from '../store/redis-probe';

/**
 * A Redis of its own for a machine that has none, for `npm start` (dev/start.ts), the demo and
 * the test runs: a `redis-server` child bound to 127.0.0.1 on a free port, data in a directory
 * of the caller's. Never used by overlayd itself (main.ts): in a deployment Redis is the
 * operator's, at REDIS_URL.
 */
export class LocalRedisError extends Error {}

/** How to get redis-server, in one line. */
export const REDIS_SERVER_MISSING =
  'redis-server is not installed: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) or set REDIS_URL to a Redis of yours';

/** Where the tools look for a Redis when REDIS_URL is not set. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Where to look for a running Redis when REDIS_URL is not set: DEFAULT_REDIS_URL, unless
 * OVERLAY_DEV_REDIS_PROBE_URL (tests only) names another address, e.g. a closed port, so that a
 * test can play a machine without Redis while the shared one runs on 6379.
 */
export function redisProbeUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.OVERLAY_DEV_REDIS_PROBE_URL ?? DEFAULT_REDIS_URL;
}

export interface LocalRedis {
  url: string;
  port: number;
  pid: number;
  dir: string;
  /** SIGTERM, without waiting (for a process 'exit' handler): Redis flushes its AOF and exits by itself. */
  stopNow(): void;
  /** SIGTERM, then waits until it has exited. */
  stop(): Promise<void>;
}

/** A TCP port free on 127.0.0.1 now (the kernel's choice), for a server started next. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `dir` as the user would type it: relative to the working directory when inside it. */
export function shownPath(dir: string): string {
  const rel = relative(process.cwd(), dir);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? dir : rel;
}

function lastLine(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').pop() ?? '';
  } catch {
    return '';
  }
}

/**
 * Starts redis-server with its data in `dir` (created if needed) and resolves once it answers
 * PING. `appendonly`: AOF on (fsync on every write, as README's Durability recommends) for data
 * that should survive a restart; off for a throwaway one. It runs in a process group of its own,
 * so that a Ctrl-C on the terminal reaches the caller, which stops it when done. Throws a
 * LocalRedisError (one line) when redis-server is not installed, when an earlier one still runs
 * on the same directory, or when it does not come up.
 */
export async function startLocalRedis(opts: { dir: string; appendonly: boolean; readyTimeoutMs?: number }): Promise<LocalRedis> {
  const { dir } = opts;
  mkdirSync(dir, { recursive: true });
  const pidFile = join(dir, 'redis.pid');
  // Two servers appending to one AOF would corrupt it. Redis removes its pid file when it stops.
  const earlier = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
  if (earlier > 0 && alive(earlier)) {
    throw new LocalRedisError(`a redis-server started earlier still runs on ${shownPath(dir)} (pid ${earlier}): stop it (kill ${earlier}) or set REDIS_URL`);
  }
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const logFile = join(dir, 'redis.log');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--pidfile', pidFile, '--logfile', logFile, '--daemonize', 'no', '--save', ''];
  args.push(...(opts.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
  // Not overlayd's allocator settings (deploy/overlayd-runtime.conf): redis-server brings its own jemalloc.
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.MALLOC_CONF;
  const child = spawn('redis-server', args, { stdio: 'ignore', detached: true, env });
  child.unref();
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new LocalRedisError(REDIS_SERVER_MISSING) : new LocalRedisError(`redis-server: ${err.message}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const handle: LocalRedis = {
    url,
    port,
    pid: child.pid!,
    dir,
    stopNow() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
      }
    },
    async stop() {
      // Unreferenced, it would not keep this process alive while it waits for the exit.
      child.ref();
      handle.stopNow();
      await exited;
    },
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 15_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new LocalRedisError(`redis-server exited at start (${child.exitCode ?? child.signalCode}): ${lastLine(logFile) || `see ${logFile}`}`);
    }
    // PING answers LOADING while the AOF replays (ioredis waits for it): a real answer means ready.
    const problem = await redisProblem(url, 1_000);
    if (problem === undefined) {
      return handle;
    }
    if (Date.now() > deadline) {
      await handle.stop();
      throw new LocalRedisError(`redis-server on ${url} did not answer within ${opts.readyTimeoutMs ?? 15_000} ms (${problem}): see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
