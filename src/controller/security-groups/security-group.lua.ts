/**
 * Lua helpers for scripts that touch security groups: the group scripts themselves, and the port
 * and tenant scripts that keep the member index `sg:<id>:ports` and the default group. Prepended
 * to a script body after `luaPrelude` (they use `K` and `fail`). Caches live for one script run.
 *
 * A port's *effective* groups: none when its port security is off; else the groups it lists;
 * else (it lists none) its tenant's default group. The member index holds effective membership.
 */
export const luaSecurityGroupHelpers = `
local sgTenantCache, defaultGroupCache = {}, {}

-- The tenant owning a security group; nil when there is no such group.
local function sgTenant(id)
  local t = sgTenantCache[id]
  if t == nil then
    local json = redis.call('HGET', K.securityGroups(), id)
    t = json and cjson.decode(json).tenantId or false
    sgTenantCache[id] = t
  end
  return t or nil
end

-- Refuses a group that does not exist or belongs to another tenant.
local function checkGroup(id, tenantId, field)
  local owner = sgTenant(id)
  if not owner then fail('SECURITY_GROUP_NOT_FOUND', field, 'no security group ' .. id) end
  if owner ~= tenantId then
    fail('SECURITY_GROUP_TENANT_MISMATCH', field, 'security group ' .. id .. ' belongs to another tenant than ' .. tenantId)
  end
end

-- The tenant's default group id; nil for a tenant without one.
local function defaultGroupOf(tenantId)
  local d = defaultGroupCache[tenantId]
  if d == nil then
    local json = redis.call('HGET', K.tenants(), tenantId)
    d = false
    if json then
      local v = cjson.decode(json).defaultSecurityGroupId
      if type(v) == 'string' then d = v end
    end
    defaultGroupCache[tenantId] = d
  end
  return d or nil
end

local function splitIds(csv)
  local out = {}
  for id in string.gmatch(csv or '', '[^,]+') do out[#out + 1] = id end
  return out
end

-- listed: array of group ids; portSecurity: boolean (nil = true, for records written before it existed).
local function effectiveGroups(tenantId, listed, portSecurity)
  if portSecurity == false then return {} end
  if listed and #listed > 0 then return listed end
  local d = defaultGroupOf(tenantId)
  if d then return { d } end
  return {}
end

-- The same, from a port record as stored.
local function effectiveGroupsOfPort(port)
  local listed = port.securityGroupIds
  if type(listed) ~= 'table' then listed = {} end
  return effectiveGroups(port.tenantId, listed, port.portSecurity)
end
`;
