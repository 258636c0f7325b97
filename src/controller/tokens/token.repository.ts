import { type Actor, CONTROLLER } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import type { StoredToken } from '../model/token';
import { RedisStore } from '../store/redis-store';
import { readPage, readRecord, type Page, type PageRequest } from '../store/page';

/** The admin tokens that still authenticate: their score is their expiry (ms), or +inf. */
const LIVE_ADMINS = `
local function liveAdmins() return redis.call('ZCOUNT', K.tokenAdmins(), '(' .. NOW, '+inf') end
`;

/**
 * ARGV: id, sha256, record JSON, role, expiry (ms, '' = never), first-admin-only ('1': store it
 * only when no admin token lives: the bootstrap, which two replicas may run at once). Returns 1
 * when stored, 0 when the bootstrap found an admin.
 */
const CREATE = `${LIVE_ADMINS}
local id, hash, json, role, expiry, firstAdminOnly = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if firstAdminOnly == '1' and liveAdmins() > 0 then return 0 end
if redis.call('HEXISTS', K.tokenHashes(), hash) == 1 then fail('INVALID_VALUE', 'token', 'this token is already in use') end
redis.call('HSET', K.tokens(), id, json)
redis.call('ZADD', K.tokenIndex(), 0, id)
redis.call('HSET', K.tokenHashes(), hash, id)
if role == 'admin' then redis.call('ZADD', K.tokenAdmins(), expiry == '' and '+inf' or expiry, id) end
audit(nil, { 'token:' .. id })
return 1
`;

/**
 * Lua: removes a token (its decoded record) and everything that names it; its hash no longer
 * authenticates. Also used by the tenant's deletion, which takes the tenant's tokens with it.
 */
export const LUA_DROP_TOKEN = `
local function dropToken(token)
  redis.call('HDEL', K.tokenHashes(), token.sha256)
  redis.call('HDEL', K.tokens(), token.id)
  redis.call('ZREM', K.tokenIndex(), token.id)
  redis.call('ZREM', K.tokenAdmins(), token.id)
  redis.call('HDEL', K.tokenLastUsed(), token.id)
end
`;

/** ARGV: id. Revokes the token at once (its hash no longer authenticates); never the last live admin token. Returns its hash. */
const DELETE = `${LIVE_ADMINS}${LUA_DROP_TOKEN}
local id = ARGV[3]
local json = redis.call('HGET', K.tokens(), id)
if not json then fail('TOKEN_NOT_FOUND', 'id', 'no token ' .. id) end
local token = cjson.decode(json)
local expiry = redis.call('ZSCORE', K.tokenAdmins(), id)
if expiry and tonumber(expiry) > NOW and liveAdmins() <= 1 then
  fail('LAST_ADMIN_TOKEN', 'id', 'token ' .. id .. ' is the last admin token that works; create another admin token first')
end
dropToken(token)
audit(nil, { 'token:' .. id })
return token.sha256
`;

/** ARGV: id. Records a use, unless the token was deleted meanwhile. */
const TOUCH = `
if redis.call('HEXISTS', K.tokens(), ARGV[3]) == 1 then redis.call('HSET', K.tokenLastUsed(), ARGV[3], ARGV[1]) end
return 1
`;

/** API tokens in Redis: records by id, ids by hash, the live admins; writes go to the audit trail, not the change log (agents never see tokens). */
@Injectable()
export class TokenRepository {
  private readonly revoked: ((sha256: string) => void)[] = [];

  constructor(private readonly store: RedisStore) {
    store.defineScript('overlayTokenCreate', CREATE);
    store.defineScript('overlayTokenDelete', DELETE);
    store.defineScript('overlayTokenTouch', TOUCH);
  }

  /** Stores a token; with `firstAdminOnly`, only when no admin token lives (false: one did, nothing stored). */
  async create(token: StoredToken, actor: Actor, firstAdminOnly = false): Promise<boolean> {
    const expiry = token.expiresAt === null ? '' : String(Date.parse(token.expiresAt));
    const stored = await this.store.mutate('overlayTokenCreate', [token.id, token.sha256, JSON.stringify(token), token.role, expiry, firstAdminOnly ? '1' : '0'], actor);
    return stored === 1;
  }

  /** Deletes (revokes) a token, and tells this replica's listeners (onRevoked) its hash. */
  async delete(id: string, actor: Actor): Promise<void> {
    const sha256 = (await this.store.mutate('overlayTokenDelete', [id], actor)) as string;
    this.revoked.forEach((listener) => listener(sha256));
  }

  /** Calls `listener` with the hash of every token this replica deletes: its cache forgets it at once (others within their cache time). */
  onRevoked(listener: (sha256: string) => void): void {
    this.revoked.push(listener);
  }

  get(id: string): Promise<StoredToken | undefined> {
    return readRecord<StoredToken>(this.store, this.store.keys.tokens(), id);
  }

  /** The record a token's hash names, if any: the only lookup authentication makes. */
  async byHash(sha256: string): Promise<StoredToken | undefined> {
    const id = await this.store.read((r) => r.hget(this.store.keys.tokenHashes(), sha256));
    return id === null ? undefined : this.get(id);
  }

  list(page: PageRequest): Promise<Page<StoredToken>> {
    return readPage<StoredToken>(this.store, this.store.keys.tokenIndex(), this.store.keys.tokens(), page);
  }

  /** How many admin tokens authenticate at `nowMs` (not expired). */
  async liveAdmins(nowMs: number): Promise<number> {
    return this.store.read((r) => r.zcount(this.store.keys.tokenAdmins(), `(${nowMs}`, '+inf'));
  }

  /** Every token (there are few: people and hooks, not VMs), in creation order. */
  async all(): Promise<StoredToken[]> {
    const rows = await this.store.read((r) => r.hvals(this.store.keys.tokens()));
    return rows.map((json) => JSON.parse(json) as StoredToken).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async lastUsed(ids: string[]): Promise<(number | null)[]> {
    if (!ids.length) {
      return [];
    }
    const rows = await this.store.read((r) => r.hmget(this.store.keys.tokenLastUsed(), ...ids));
    return rows.map((v) => (v === null ? null : Number(v)));
  }

  /** Records a use (coarse: the caller writes at most once a minute per token). Not audited: not a change. */
  async touch(id: string, atMs: number): Promise<void> {
    await this.store.mutate('overlayTokenTouch', [id], CONTROLLER, atMs);
  }
}
