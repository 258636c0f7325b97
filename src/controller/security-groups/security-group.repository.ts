import { type Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { RedisStore } from '../store/redis-store';
import { readPage, readRecord, type Page, type PageRequest } from '../store/page';
import { luaSecurityGroupHelpers } from './security-group.lua';
import type { SecurityGroup } from '../model/security-group';
import { remoteGroupsOf } from './security-group.rules';

/*
 * Remote groups are passed as `<rule index>=<group id>` pairs joined by ',', one per rule that
 * names a remote group, so a refusal can name the rule (`rules[3].remoteGroupId`). A group
 * naming itself is allowed and not checked (it exists once the script writes it).
 */
const CHECK_REMOTES = `
local function checkRemotes(tenantId, selfId, spec)
  local targets, seen = {}, {}
  for i, g in string.gmatch(spec, '(%d+)=([^,]+)') do
    if g ~= selfId then
      checkGroup(g, tenantId, 'rules[' .. i .. '].remoteGroupId')
      if not seen[g] then
        seen[g] = true
        targets[#targets + 1] = g
      end
    end
  end
  return targets
end
`;

const CREATE = `
local id, tenantId, name, json, remotes = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local existing = redis.call('HGET', K.securityGroups(), id)
if existing then return { 0, existing } end
if redis.call('HEXISTS', K.tenants(), tenantId) == 0 then fail('TENANT_NOT_FOUND', 'tenantId', 'no tenant ' .. tenantId) end
local owner = redis.call('HGET', K.tenantSecurityGroupNames(tenantId), name)
if owner then fail('SECURITY_GROUP_NAME_TAKEN', 'name', 'tenant ' .. tenantId .. ' already has a security group named ' .. name .. ' (' .. owner .. ')') end
local targets = checkRemotes(tenantId, id, remotes)
redis.call('HSET', K.tenantSecurityGroupNames(tenantId), name, id)
redis.call('HSET', K.securityGroups(), id, json)
redis.call('ZADD', K.securityGroupIndex(), 0, id)
redis.call('ZADD', K.tenantSecurityGroups(tenantId), 0, id)
for _, g in ipairs(targets) do redis.call('ZADD', K.securityGroupReferrers(g), 0, id) end
return { commit({ op('securityGroup', id, json) }), json }
`;

// Compare-and-set: -1 = the group changed since the caller read it (read again and retry).
const UPDATE = `
local id, expected, json, tenantId, oldName, newName, remotes, oldTargets = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local current = redis.call('HGET', K.securityGroups(), id)
if not current then fail('SECURITY_GROUP_NOT_FOUND', 'id', 'no security group ' .. id) end
if current ~= expected then return -1 end
if newName ~= oldName and redis.call('HEXISTS', K.tenantSecurityGroupNames(tenantId), newName) == 1 then
  fail('SECURITY_GROUP_NAME_TAKEN', 'name', 'tenant ' .. tenantId .. ' already has a security group named ' .. newName)
end
local targets = checkRemotes(tenantId, id, remotes)
if newName ~= oldName then
  redis.call('HDEL', K.tenantSecurityGroupNames(tenantId), oldName)
  redis.call('HSET', K.tenantSecurityGroupNames(tenantId), newName, id)
end
for _, g in ipairs(splitIds(oldTargets)) do redis.call('ZREM', K.securityGroupReferrers(g), id) end
for _, g in ipairs(targets) do redis.call('ZADD', K.securityGroupReferrers(g), 0, id) end
redis.call('HSET', K.securityGroups(), id, json)
return commit({ op('securityGroup', id, json, current) })
`;

const DELETE = `
local id = ARGV[3]
local json = redis.call('HGET', K.securityGroups(), id)
if not json then fail('SECURITY_GROUP_NOT_FOUND', 'id', 'no security group ' .. id) end
local group = cjson.decode(json)
if group.isDefault == true and redis.call('HEXISTS', K.tenants(), group.tenantId) == 1 then
  fail('SECURITY_GROUP_IS_DEFAULT', 'id', 'security group ' .. id .. ' is the default group of tenant ' .. group.tenantId .. '; it goes with the tenant')
end
local members = redis.call('ZCARD', K.securityGroupPorts(id))
if members > 0 then
  fail('SECURITY_GROUP_IN_USE', 'id', 'security group ' .. id .. ' is used by ' .. members .. ' port(s); move them to other groups first')
end
local referrer = redis.call('ZRANGE', K.securityGroupReferrers(id), 0, 0)[1]
if referrer then
  local n = redis.call('ZCARD', K.securityGroupReferrers(id))
  fail('SECURITY_GROUP_IN_USE', 'id', 'security group ' .. id .. ' is the remote group of rules in ' .. n .. ' other group(s), e.g. ' .. referrer .. '; change those rules first')
end
for _, rule in ipairs(group.rules) do
  local g = rule.remoteGroupId
  if type(g) == 'string' and g ~= id then redis.call('ZREM', K.securityGroupReferrers(g), id) end
end
redis.call('HDEL', K.tenantSecurityGroupNames(group.tenantId), group.name)
redis.call('HDEL', K.securityGroups(), id)
redis.call('ZREM', K.securityGroupIndex(), id)
redis.call('ZREM', K.tenantSecurityGroups(group.tenantId), id)
redis.call('DEL', K.securityGroupPorts(id), K.securityGroupReferrers(id))
return commit({ op('securityGroup', id, nil, json) })
`;

const remoteSpec = (group: SecurityGroup): string =>
  group.rules
    .map((r, i) => (r.remoteGroupId === null ? '' : `${i}=${r.remoteGroupId}`))
    .filter(Boolean)
    .join(',');

/**
 * Security groups in Redis: names unique per tenant, remote groups of the same tenant only, and
 * two indexes that make deletion checks O(1): the group's member ports (maintained by the port
 * scripts) and the other groups whose rules name it as remote group (maintained here).
 */
@Injectable()
export class SecurityGroupRepository {
  constructor(private readonly store: RedisStore) {
    const withHelpers = (body: string) => `${luaSecurityGroupHelpers}\n${CHECK_REMOTES}\n${body}`;
    store.defineScript('overlaySecurityGroupCreate', withHelpers(CREATE));
    store.defineScript('overlaySecurityGroupUpdate', withHelpers(UPDATE));
    store.defineScript('overlaySecurityGroupDelete', withHelpers(DELETE));
  }

  /** Idempotent on the group id: a retried create returns the stored group. */
  async create(group: SecurityGroup, actor: Actor): Promise<SecurityGroup> {
    const [, json] = (await this.store.mutate('overlaySecurityGroupCreate', [group.id, group.tenantId, group.name, JSON.stringify(group), remoteSpec(group)], actor)) as [number, string];
    return JSON.parse(json) as SecurityGroup;
  }

  /** Replaces `current` by `next` if unchanged meanwhile: the revision, or -1 = read again and retry. */
  async replace(current: SecurityGroup, next: SecurityGroup, actor: Actor): Promise<number> {
    return (await this.store.mutate('overlaySecurityGroupUpdate', [
      current.id,
      JSON.stringify(current),
      JSON.stringify(next),
      current.tenantId,
      current.name,
      next.name,
      remoteSpec(next),
      remoteGroupsOf(current.rules, current.id).join(','),
    ], actor)) as number;
  }

  /** Refused while ports use the group, another group's rules name it, or it is a live tenant's default. */
  async delete(id: string, actor: Actor): Promise<number> {
    return (await this.store.mutate('overlaySecurityGroupDelete', [id], actor)) as number;
  }

  get(id: string): Promise<SecurityGroup | undefined> {
    return readRecord<SecurityGroup>(this.store, this.store.keys.securityGroups(), id);
  }

  list(page: PageRequest, tenantId?: string): Promise<Page<SecurityGroup>> {
    const k = this.store.keys;
    return readPage<SecurityGroup>(this.store, tenantId ? k.tenantSecurityGroups(tenantId) : k.securityGroupIndex(), k.securityGroups(), page);
  }
}
