import { type Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import type { SecurityGroup } from '../model/security-group';
import { RedisStore } from '../store/redis-store';
import { LUA_DROP_TOKEN } from '../tokens/token.repository';
import { readPage, readRecord, type Page, type PageRequest } from '../store/page';
import type { Tenant } from '../model/tenant';

// The tenant and its default security group are written in one step: no tenant is ever seen without it.
const CREATE = `
local id, name, json, groupId, groupJson = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local existing = redis.call('HGET', K.tenants(), id)
if existing then return { 0, existing } end
if redis.call('HEXISTS', K.tenantNames(), name) == 1 then
  fail('TENANT_NAME_TAKEN', 'name', 'a tenant named ' .. name .. ' already exists')
end
redis.call('HSET', K.tenantNames(), name, id)
redis.call('HSET', K.tenants(), id, json)
redis.call('ZADD', K.tenantIndex(), 0, id)
redis.call('HSET', K.securityGroups(), groupId, groupJson)
redis.call('ZADD', K.securityGroupIndex(), 0, groupId)
redis.call('ZADD', K.tenantSecurityGroups(id), 0, groupId)
redis.call('HSET', K.tenantSecurityGroupNames(id), cjson.decode(groupJson).name, groupId)
return { commit({ op('tenant', id, json), op('securityGroup', groupId, groupJson) }), json }
`;

// Refused while the tenant has segments (hence ports), mirror sessions, or security groups other than its default,
// which then has no member and no referrer left: it is deleted in the same step, and so are the
// tenant's tokens (a scan of the tokens: there are few).
const DELETE = `${LUA_DROP_TOKEN}
local id = ARGV[3]
local json = redis.call('HGET', K.tenants(), id)
if not json then fail('TENANT_NOT_FOUND', 'id', 'no tenant ' .. id) end
local n = redis.call('ZCARD', K.tenantSegments(id))
if n > 0 then
  fail('TENANT_HAS_SEGMENTS', 'id', 'tenant ' .. id .. ' still has ' .. n .. ' segment(s); delete them first')
end
-- (A session's sources are ports, so a tenant without segments has none: checked all the same.)
local sessions = redis.call('ZCARD', K.tenantMirrorSessions(id))
if sessions > 0 then
  fail('TENANT_HAS_MIRROR_SESSIONS', 'id', 'tenant ' .. id .. ' still has ' .. sessions .. ' mirror session(s); delete them first')
end
local tenant = cjson.decode(json)
local groupId = tenant.defaultSecurityGroupId
if type(groupId) ~= 'string' then groupId = nil end
local groups = redis.call('ZCARD', K.tenantSecurityGroups(id))
local others = groups - ((groupId and redis.call('ZSCORE', K.tenantSecurityGroups(id), groupId)) and 1 or 0)
if others > 0 then
  fail('TENANT_HAS_SECURITY_GROUPS', 'id', 'tenant ' .. id .. ' still has ' .. others .. ' security group(s) besides its default; delete them first')
end
local ops = {}
if groupId then
  local groupJson = redis.call('HGET', K.securityGroups(), groupId)
  if groupJson then
    redis.call('HDEL', K.securityGroups(), groupId)
    redis.call('ZREM', K.securityGroupIndex(), groupId)
    ops[#ops + 1] = op('securityGroup', groupId, nil, groupJson)
  end
  redis.call('DEL', K.securityGroupPorts(groupId), K.securityGroupReferrers(groupId))
end
redis.call('DEL', K.tenantSecurityGroups(id), K.tenantSecurityGroupNames(id))
redis.call('HDEL', K.tenantNames(), tenant.name)
redis.call('HDEL', K.tenants(), id)
redis.call('ZREM', K.tenantIndex(), id)
ops[#ops + 1] = op('tenant', id, nil, json)
-- Its tokens go with it: a credential for a tenant that is gone must not linger.
local revoked = {}
local tokens = redis.call('HGETALL', K.tokens())
for i = 1, #tokens, 2 do
  local token = cjson.decode(tokens[i + 1])
  if token.tenantId == id then
    dropToken(token)
    revoked[#revoked + 1] = 'token:' .. token.id
  end
end
return commit(ops, revoked)
`;

/**
 * Tenants in Redis, each with its default security group. Creating with an id that exists
 * returns the stored tenant (a retried call is applied once).
 */
@Injectable()
export class TenantRepository {
  constructor(private readonly store: RedisStore) {
    store.defineScript('overlayTenantCreate', CREATE);
    store.defineScript('overlayTenantDelete', DELETE);
  }

  /** Stores the tenant and its default group (whose id the tenant names) in one step. */
  async create(tenant: Tenant, defaultGroup: SecurityGroup, actor: Actor): Promise<Tenant> {
    const [, json] = (await this.store.mutate('overlayTenantCreate', [tenant.id, tenant.name, JSON.stringify(tenant), defaultGroup.id, JSON.stringify(defaultGroup)], actor)) as [number, string];
    return JSON.parse(json) as Tenant;
  }

  async delete(id: string, actor: Actor): Promise<number> {
    return (await this.store.mutate('overlayTenantDelete', [id], actor)) as number;
  }

  get(id: string): Promise<Tenant | undefined> {
    return readRecord<Tenant>(this.store, this.store.keys.tenants(), id);
  }

  list(page: PageRequest): Promise<Page<Tenant>> {
    return readPage<Tenant>(this.store, this.store.keys.tenantIndex(), this.store.keys.tenants(), page);
  }
}
