import type { LoggerService } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { createApp } from '../../src/controller/app';
import { loadConfig, type ControllerConfig } from '../../src/controller/config';
import { SyncServer } from '../../src/controller/distribution/sync.server';
import { beginHttpShutdown } from '../../src/controller/http/server';
import { silentLog, type ProcessLog } from '../../src/common/logger';
import { createRedisClient } from '../../src/controller/store/redis-connection';
import { contractViolation } from './api-contract';

/**
 * A real overlayd (Nest + Fastify) on an ephemeral port, against a real Redis, under a key
 * prefix of its own so test files never touch each other's (or anyone's) data. `cleanup`
 * deletes exactly the keys under that prefix.
 */
export interface Harness {
  app: NestFastifyApplication;
  url: string;
  /** host:port of the gRPC sync server. */
  grpcTarget: string;
  config: ControllerConfig;
  redis: Redis;
  /**
   * The deployment's state, for "nothing changed" assertions: every key under its prefix with its
   * value, hash fields sorted (HGETALL follows the hash table's order, which Redis changes while it
   * rehashes, even on reads), less the keys the controller rewrites on its own (agent sessions
   * and acknowledgements, when a token was last used), which are not effects of requests.
   */
  dump(): Promise<Record<string, string>>;
  /**
   * The same state as one SHA-1, computed in Redis: for the same assertion over thousands of
   * requests, one round trip each instead of two per key.
   */
  digest(): Promise<string>;
  close(): Promise<void>;
}

/**
 * SHA-1 of the keys given and their values as `dump()` reads them (a hash's fields sorted; a
 * stream by its length and end entries), in order. Not DUMP: its bytes follow a hash table's
 * internal order, which Redis changes as it rehashes, even on reads.
 */
const DIGEST_SCRIPT = `local parts = {}
local function add(v) parts[#parts + 1] = tostring(v) end
for _, key in ipairs(KEYS) do
  add(key)
  local t = redis.call('TYPE', key).ok
  add(t)
  if t == 'hash' then
    local flat, pairs_ = redis.call('HGETALL', key), {}
    for i = 1, #flat, 2 do pairs_[#pairs_ + 1] = flat[i] .. '\\0' .. flat[i + 1] end
    table.sort(pairs_)
    for _, p in ipairs(pairs_) do add(p) end
  elseif t == 'zset' then
    for _, v in ipairs(redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')) do add(v) end
  elseif t == 'stream' then
    -- Entries never change: a write adds or deletes some, which moves the length or an end.
    add(redis.call('XLEN', key))
    for _, entry in ipairs(redis.call('XRANGE', key, '-', '+', 'COUNT', 1)) do add(entry[1]) end
    for _, entry in ipairs(redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)) do add(entry[1]) end
  elseif t == 'set' then
    local members = redis.call('SMEMBERS', key)
    table.sort(members)
    for _, v in ipairs(members) do add(v) end
  elseif t == 'list' then
    for _, v in ipairs(redis.call('LRANGE', key, 0, -1)) do add(v) end
  else
    add(redis.call('GET', key))
  end
end
return redis.sha1hex(table.concat(parts, '\\0'))`;

/** Keys the controller writes on its own timers, whatever the requests: agents' sessions and acks, tokens' last use, the audit's findings history. */
const BACKGROUND_KEY = /^\{[^}]*\}:(agents:|tokens:last-used$|audit:)/;

/**
 * The admin token of every controller the tests start (OVERLAY_BOOTSTRAP_TOKEN, unless a test
 * gives its own): each test file works under a key prefix of its own, so each deployment gets it
 * as its first admin token. `api()` sends it unless told otherwise.
 */
export const TEST_ADMIN_TOKEN = process.env.OVERLAY_TEST_ADMIN_TOKEN ?? `test-admin-${randomBytes(24).toString('hex')}`;
process.env.OVERLAY_TEST_ADMIN_TOKEN = TEST_ADMIN_TOKEN;

export function uniquePrefix(name: string): string {
  return `test-${name}-${randomBytes(4).toString('hex')}`;
}

/**
 * A controller in this process on ports of its own. `logger`: a LoggerService that gets what its
 * parts say (Nest's Logger); `log`: the process's pino log, which gets the request lines too (and
 * the parts' lines when no `logger` is given). Neither: silent.
 */
export async function startController(opts: { prefix: string; env?: Record<string, string>; redisUrl?: string; logger?: LoggerService; log?: ProcessLog }): Promise<Harness> {
  const config = loadConfig({
    // Under Sentinel (REDIS_SENTINELS in `env`) there is no one URL.
    ...(opts.env?.REDIS_SENTINELS ? {} : { REDIS_URL: opts.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }),
    OVERLAY_KEY_PREFIX: opts.prefix,
    OVERLAY_HTTP_PORT: '0',
    OVERLAY_GRPC_PORT: '0',
    OVERLAY_GRPC_INSECURE: 'true',
    OVERLAY_BOOTSTRAP_TOKEN: TEST_ADMIN_TOKEN,
    ...opts.env,
  });
  const app = await createApp(config, { logger: opts.logger ?? (opts.log ? undefined : false), log: opts.log ?? silentLog() });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  const redis = createRedisClient(config, {});
  const pattern = `{${opts.prefix}}:*`;
  return {
    app,
    url: `${config.httpTls ? 'https' : 'http'}://127.0.0.1:${address.port}`,
    grpcTarget: `127.0.0.1:${app.get(SyncServer).boundPort}`,
    config,
    redis,
    async dump() {
      const out: Record<string, string> = {};
      for (const key of (await redis.keys(pattern)).sort()) {
        if (BACKGROUND_KEY.test(key)) {
          continue;
        }
        const type = await redis.type(key);
        const value =
          type === 'hash'
            ? Object.fromEntries(Object.entries(await redis.hgetall(key)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
            : type === 'zset'
              ? await redis.zrange(key, 0, -1, 'WITHSCORES')
              : type === 'stream'
                ? await redis.xrange(key, '-', '+')
                : await redis.get(key);
        out[key] = JSON.stringify(value);
      }
      return out;
    },
    async digest() {
      const keys = (await redis.keys(pattern)).filter((key) => !BACKGROUND_KEY.test(key)).sort();
      return (await redis.eval(DIGEST_SCRIPT, keys.length, ...keys)) as string;
    },
    async close() {
      // As main.ts does on SIGTERM: responses close their connections from now on, and those with
      // nothing to answer close now, so that a browser polling the status page (its keep-alive
      // and spare connections) does not hold the server's close.
      beginHttpShutdown(app.getHttpAdapter().getInstance());
      await app.close();
      redis.disconnect();
    },
  };
}

/** Deletes every key under the prefix (only those). */
export async function dropPrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`{${prefix}}:*`);
  if (keys.length) {
    await redis.del(...keys);
  }
  redis.disconnect();
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
}

/**
 * A tiny JSON client over fetch, sending `token` (the tests' admin token by default; null: none).
 * Every JSON answer is held to the OpenAPI document (api-contract.ts): one it does not describe
 * fails the call, naming the operation, the status and the code. A text/plain answer (GET
 * /metrics) is its text, left to its own tests.
 */
export function api(base: string, token: string | null = TEST_ADMIN_TOKEN) {
  const auth: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
  const call = async <T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> => {
    const res = await fetch(base + path, {
      method,
      headers: body === undefined ? { ...auth, ...headers } : { 'content-type': 'application/json', ...auth, ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    const plain = res.headers.get('content-type')?.startsWith('text/plain') ?? false;
    const parsed = text ? (plain ? text : JSON.parse(text)) : undefined;
    const violation = plain ? undefined : contractViolation(method, path, res.status, parsed);
    if (violation) {
      throw new Error(`the answer breaks the OpenAPI document: ${violation}`);
    }
    return { status: res.status, body: parsed };
  };
  return {
    get: <T = any>(path: string) => call<T>('GET', path),
    post: <T = any>(path: string, body?: unknown, headers?: Record<string, string>) => call<T>('POST', path, body, headers),
    patch: <T = any>(path: string, body?: unknown) => call<T>('PATCH', path, body),
    delete: <T = any>(path: string) => call<T>('DELETE', path),
    raw: call,
  };
}
