import { spawn } from 'node:child_process';
import type Redis from 'ioredis';

/** Redis-side counters read before and after a phase: CPU seconds and the time spent in scripts. */
export interface RedisSnapshot {
  cpuSeconds: number;
  /** Every command executed, including those run inside scripts. */
  commandCalls: number;
  scriptCalls: number;
  /** Wall time inside scripts (includes time Redis was descheduled by the OS). */
  scriptUsec: number;
}

function infoFields(info: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) {
      out.set(line.slice(0, colon), line.slice(colon + 1));
    }
  }
  return out;
}

export async function redisSnapshot(redis: Redis): Promise<RedisSnapshot> {
  const cpu = infoFields(await redis.info('cpu'));
  const stats = infoFields(await redis.info('commandstats'));
  let scriptCalls = 0;
  let scriptUsec = 0;
  let commandCalls = 0;
  for (const [name, raw] of stats) {
    if (name.startsWith('cmdstat_')) {
      commandCalls += Number(/calls=(\d+)/.exec(raw)?.[1] ?? 0);
    }
  }
  for (const name of ['cmdstat_evalsha', 'cmdstat_eval']) {
    const raw = stats.get(name);
    if (raw) {
      scriptCalls += Number(/calls=(\d+)/.exec(raw)?.[1] ?? 0);
      scriptUsec += Number(/usec=(\d+)/.exec(raw)?.[1] ?? 0);
    }
  }
  return { cpuSeconds: Number(cpu.get('used_cpu_user') ?? 0) + Number(cpu.get('used_cpu_sys') ?? 0), commandCalls, scriptCalls, scriptUsec };
}

export async function redisInfoField(redis: Redis, section: string, field: string): Promise<string | undefined> {
  return infoFields(await redis.info(section)).get(field);
}

/** Deletes every key matching `{prefix}:*` (SCAN + UNLINK: never KEYS or FLUSH on a shared Redis). Returns how many. */
export async function dropPrefix(redis: Redis, prefix: string, maxMs = 30_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let cursor = '0';
  let deleted = 0;
  do {
    const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = nextCursor;
    const own = keys.filter((k) => k.startsWith(`{${prefix}}:`));
    if (own.length) {
      deleted += await redis.unlink(...own);
    }
    if (Date.now() > deadline) {
      throw new Error(`dropping keys {${prefix}}:* took longer than ${maxMs} ms`);
    }
  } while (cursor !== '0');
  return deleted;
}

export interface RedisBenchmarkLine {
  test: string;
  rps: number;
  p50Ms?: number;
}

export interface RedisBenchmarkRun {
  args: string[];
  lines: RedisBenchmarkLine[];
  error?: string;
}

/** Parses `redis-benchmark -q` output ("SET: 123.45 requests per second, p50=0.1 msec", progress lines separated by \r). */
export function parseRedisBenchmark(output: string): RedisBenchmarkLine[] {
  const lines: RedisBenchmarkLine[] = [];
  for (const part of output.split(/[\r\n]+/)) {
    const m = /^\s*(.+?):\s+([\d.]+) requests per second(?:, p50=([\d.]+) msec)?/.exec(part);
    if (m) {
      lines.push({ test: m[1], rps: Number(m[2]), p50Ms: m[3] === undefined ? undefined : Number(m[3]) });
    }
  }
  return lines;
}

/** Runs redis-benchmark with `args`, bounded by `timeoutMs`. */
export function runRedisBenchmark(args: string[], timeoutMs: number): Promise<RedisBenchmarkRun> {
  return new Promise((resolve) => {
    let out = '';
    let err = '';
    let child;
    try {
      child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ args, lines: [], error: (e as Error).message });
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ args, lines: [], error: e.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = parseRedisBenchmark(out);
      const error = code === 0 && lines.length ? undefined : `redis-benchmark exited with ${signal ?? code}: ${err.trim().slice(0, 200) || 'no result line'}`;
      resolve({ args, lines, error });
    });
  });
}
