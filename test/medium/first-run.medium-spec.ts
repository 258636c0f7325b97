import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_REDIS_URL, LocalRedisError, REDIS_SERVER_MISSING, startLocalRedis } from '../../src/controller/dev/local-redis';
import { redisProblem } from '../../src/controller/store/redis-probe';
import { waitUntil } from '../support/agents';
import { dropPrefix, uniquePrefix } from '../support/controller-harness';
import { CONTROLLER_MAIN, DEV_START, ensureControllerBuilt, probe } from '../support/controller-process';
import { freePort } from '../support/private-redis';

/** A process of the built controller, its output kept line by line. */
class Run {
  readonly output: string[] = [];
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;

  constructor(script: string, env: NodeJS.ProcessEnv, cwd: string) {
    this.child = spawn(process.execPath, [script], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => this.output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve(void (this.exit = { code, signal }))));
  }

  signal(signal: NodeJS.Signals): void {
    if (this.exit === undefined) {
      this.child.kill(signal);
    }
  }

  async exitWithin(ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await waitUntil(() => this.exit !== undefined, ms, () => `the controller did not exit:\n${this.output.join('\n')}`);
    return this.exit!;
  }
}

/** Whether `pid` is a process that runs (a zombie left for a parent that does not reap it has stopped). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * The environment of a fresh machine (no REDIS_URL, no admin token given) plus `extra`. The key
 * prefix is this file's: should a run reach the shared Redis by mistake, afterAll removes it.
 */
function freshEnv(prefix: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.REDIS_URL;
  delete env.OVERLAY_BOOTSTRAP_TOKEN;
  return { ...env, OVERLAY_KEY_PREFIX: prefix, OVERLAY_GRPC_INSECURE: 'true', OVERLAY_LOG_FORMAT: 'text', OVERLAY_HTTP_HOST: '127.0.0.1', OVERLAY_GRPC_PORT: '0', ...extra };
}

/**
 * `npm start`'s first run (dev/start.ts) on a machine without Redis, played by pointing its look
 * for a running Redis (OVERLAY_DEV_REDIS_PROBE_URL) at a closed port: it starts a redis-server
 * of its own with an AOF in ./.overlay/redis, overlayd becomes ready on it, keeps its state
 * across a restart, and stopping overlayd stops it. Without redis-server, or with a Redis that
 * cannot be reached, one line and exit 1.
 */
describe('first run', () => {
  const prefix = uniquePrefix('first-run');
  const runs: Run[] = [];
  const dirs: string[] = [];
  let closedUrl: string;

  beforeAll(async () => {
    ensureControllerBuilt();
    // A port nothing listens on: bound once, then closed.
    closedUrl = `redis://127.0.0.1:${await freePort()}`;
  }, 120_000);

  afterAll(async () => {
    runs.forEach((run) => run.signal('SIGKILL'));
    dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
    await dropPrefix(process.env.REDIS_URL ?? DEFAULT_REDIS_URL, prefix);
  });

  const workDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'overlay-first-run-'));
    dirs.push(dir);
    return dir;
  };

  it('starts a private redis-server with an AOF when none runs, keeps the state across a restart, and stops it with overlayd', async () => {
    expect(await redisProblem(closedUrl, 1_000)).toMatch(/ECONNREFUSED/);
    const cwd = workDir();
    const start = async () => {
      const httpPort = await freePort();
      const run = new Run(DEV_START, freshEnv(prefix, { OVERLAY_DEV_REDIS_PROBE_URL: closedUrl, OVERLAY_HTTP_PORT: String(httpPort) }), cwd);
      runs.push(run);
      await waitUntil(async () => run.exit !== undefined || (await probe(httpPort, '/readyz', 1_000)) === 200, 30_000, () => `not ready:\n${run.output.join('\n')}`);
      expect(run.exit).toBeUndefined();
      const said = run.output.filter((line) => line.includes('started redis-server'));
      expect(said).toHaveLength(1);
      const m = /^overlayd: no Redis at redis:\/\/127\.0\.0\.1:\d+ and REDIS_URL is not set: started redis-server on 127\.0\.0\.1:(\d+) \(pid (\d+), data in \.overlay\/redis, AOF on\); it stops with overlayd$/.exec(said[0]);
      expect(m).not.toBeNull();
      const [redisPort, redisPid] = [Number(m![1]), Number(m![2])];
      expect(running(redisPid)).toBe(true);
      expect(await redisProblem(`redis://127.0.0.1:${redisPort}`, 1_000)).toBeUndefined();
      expect(run.output.some((line) => line.includes(`Redis redis://127.0.0.1:${redisPort}, keys {${prefix}}:*`))).toBe(true);
      return { run, redisPort, redisPid };
    };

    const first = await start();
    // The first admin token was made, written to Redis (the AOF) and to ./overlayd-bootstrap-token.
    expect(first.run.output.some((line) => line.includes("made admin token 'bootstrap'"))).toBe(true);
    const aofDir = join(cwd, '.overlay', 'redis', 'appendonlydir');
    const appended = readdirSync(aofDir).filter((name) => name.endsWith('.incr.aof'));
    expect(appended).toHaveLength(1);
    expect(statSync(join(aofDir, appended[0])).size).toBeGreaterThan(0);
    first.run.signal('SIGTERM');
    expect(await first.run.exitWithin(15_000)).toEqual({ code: 0, signal: null });
    await waitUntil(() => !running(first.redisPid), 15_000, () => `redis-server ${first.redisPid} still runs after overlayd stopped`);
    expect(await redisProblem(`redis://127.0.0.1:${first.redisPort}`, 1_000)).toMatch(/ECONNREFUSED/);
    // Redis removes its pid file when it shuts down cleanly (a SIGKILL would leave it).
    expect(existsSync(join(cwd, '.overlay', 'redis', 'redis.pid'))).toBe(false);

    // Again in the same directory: the AOF is replayed, the admin token is there already.
    const second = await start();
    expect(second.redisPid).not.toBe(first.redisPid);
    expect(second.run.output.some((line) => line.includes('made admin token'))).toBe(false);
    second.run.signal('SIGINT');
    expect(await second.run.exitWithin(15_000)).toEqual({ code: 0, signal: null });
    await waitUntil(() => !running(second.redisPid), 15_000, () => `redis-server ${second.redisPid} still runs after overlayd stopped`);
  }, 120_000);

  it('says in one line how to get redis-server when it is not installed, and exits 1', async () => {
    // PATH without redis-server (node itself is started by its full path).
    const emptyBin = workDir();
    const run = new Run(DEV_START, freshEnv(prefix, { OVERLAY_DEV_REDIS_PROBE_URL: closedUrl, OVERLAY_HTTP_PORT: String(await freePort()), PATH: emptyBin }), workDir());
    runs.push(run);
    expect(await run.exitWithin(30_000)).toEqual({ code: 1, signal: null });
    expect(run.output).toEqual([`overlayd: ${REDIS_SERVER_MISSING}`]);
    expect(REDIS_SERVER_MISSING).toMatch(/apt-get install redis-server/);
  }, 60_000);

  it('says in one line, without the password, that the Redis at REDIS_URL cannot be reached, and exits 1', async () => {
    const url = closedUrl.replace('//', '//admin:hunter2-secret@');
    const run = new Run(CONTROLLER_MAIN, freshEnv(prefix, { REDIS_URL: url, OVERLAY_HTTP_PORT: String(await freePort()) }), workDir());
    runs.push(run);
    expect(await run.exitWithin(30_000)).toEqual({ code: 1, signal: null });
    expect(run.output).toEqual([
      `overlayd: Redis at ${closedUrl.replace('//', '//***@')} cannot be used (connect ECONNREFUSED ${closedUrl.slice('redis://'.length)}): start it or set REDIS_URL to a Redis that answers; exiting`,
    ]);
  }, 60_000);

  it('refuses to start a second redis-server on the data of one that still runs', async () => {
    const dir = workDir();
    const redis = await startLocalRedis({ dir, appendonly: true });
    try {
      const second = startLocalRedis({ dir, appendonly: true });
      await expect(second).rejects.toThrow(LocalRedisError);
      await expect(second).rejects.toThrow(`still runs on ${dir} (pid ${redis.pid}): stop it (kill ${redis.pid}) or set REDIS_URL`);
      expect(await redisProblem(redis.url, 1_000)).toBeUndefined();
    } finally {
      await redis.stop();
    }
    expect(running(redis.pid)).toBe(false);
  }, 60_000);
});
