import { type Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { luaSecurityGroupHelpers } from '../security-groups/security-group.lua';
import { RedisStore } from '../store/redis-store';
import { readPage, readRecord, type Page, type PageRequest } from '../store/page';
import type { Port } from '../model/port';

const ARGS_PER_PORT = 9;

/*
 * Creates n ports in one step (one revision, one change record). Every check runs for every
 * port before the first write, so a refused batch changes nothing. Per port, 9 arguments
 * (ARGS_PER_PORT): id, segment id, host id ('' = unbound), MAC, IPs joined by ',', the record's JSON, tenant id,
 * security group ids joined by ',' ('' = the tenant's default), port security ('1' or '0').
 * Each port joins the member index of its effective groups.
 */
const CREATE_BATCH = `
local n = tonumber(ARGV[3])
local segmentSeen, hostSeen, macSeen, ipSeen = {}, {}, {}, {}
for i = 0, n - 1 do
  local b = 4 + i * ${ARGS_PER_PORT}
  local id, seg, host, mac, ips = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local tenantId, groups = ARGV[b + 6], splitIds(ARGV[b + 7])
  local f = 'ports[' .. i .. '].'
  if segmentSeen[seg] == nil then segmentSeen[seg] = redis.call('HEXISTS', K.segments(), seg) == 1 end
  if not segmentSeen[seg] then fail('SEGMENT_NOT_FOUND', f .. 'segmentId', 'no segment ' .. seg) end
  if host ~= '' then
    if hostSeen[host] == nil then hostSeen[host] = redis.call('HEXISTS', K.hosts(), host) == 1 end
    if not hostSeen[host] then fail('HOST_NOT_FOUND', f .. 'hostId', 'no host ' .. host) end
  end
  local mk = seg .. ' ' .. mac
  local owner = macSeen[mk] or redis.call('HGET', K.segmentMacs(seg), mac)
  if owner then fail('DUPLICATE_MAC', f .. 'mac', 'MAC ' .. mac .. ' is already used on this segment by port ' .. owner) end
  macSeen[mk] = id
  local j = 0
  for ip in string.gmatch(ips, '[^,]+') do
    local ik = seg .. ' ' .. ip
    owner = ipSeen[ik] or redis.call('HGET', K.segmentIps(seg), ip)
    if owner then fail('DUPLICATE_IP', f .. 'ips[' .. j .. ']', 'IP ' .. ip .. ' is already used on this segment by port ' .. owner) end
    ipSeen[ik] = id
    j = j + 1
  end
  for g, group in ipairs(groups) do checkGroup(group, tenantId, f .. 'securityGroupIds[' .. (g - 1) .. ']') end
end
local ops = {}
for i = 0, n - 1 do
  local b = 4 + i * ${ARGS_PER_PORT}
  local id, seg, host, mac, ips, json = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  for _, g in ipairs(effectiveGroups(ARGV[b + 6], splitIds(ARGV[b + 7]), ARGV[b + 8] == '1')) do
    redis.call('ZADD', K.securityGroupPorts(g), 0, id)
  end
  redis.call('HSET', K.ports(), id, json)
  redis.call('ZADD', K.portIndex(), 0, id)
  redis.call('ZADD', K.segmentPorts(seg), 0, id)
  redis.call('HSET', K.segmentMacs(seg), mac, id)
  for ip in string.gmatch(ips, '[^,]+') do redis.call('HSET', K.segmentIps(seg), ip, id) end
  if host ~= '' then redis.call('ZADD', K.hostPorts(host), 0, id) end
  ops[i + 1] = op('port', id, json)
end
return commit(ops)
`;

// Compare-and-set of one port's binding, VM id and security; -1 = the port changed since the caller read it.
const UPDATE = `
local id, expected, json, oldHost, newHost = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local current = redis.call('HGET', K.ports(), id)
if not current then fail('PORT_NOT_FOUND', 'id', 'no port ' .. id) end
if current ~= expected then return -1 end
local migrating = cjson.decode(current).migration
if migrating and migrating ~= cjson.null and newHost ~= oldHost then
  fail('MIGRATION_IN_PROGRESS', 'hostId', 'port ' .. id .. ' is being migrated (migration ' .. migrating.id .. '); commit or abort it first')
end
if newHost ~= '' and redis.call('HEXISTS', K.hosts(), newHost) == 0 then fail('HOST_NOT_FOUND', 'hostId', 'no host ' .. newHost) end
local before, after = cjson.decode(current), cjson.decode(json)
for g, group in ipairs(after.securityGroupIds) do checkGroup(group, after.tenantId, 'securityGroupIds[' .. (g - 1) .. ']') end
for _, g in ipairs(effectiveGroupsOfPort(before)) do redis.call('ZREM', K.securityGroupPorts(g), id) end
for _, g in ipairs(effectiveGroupsOfPort(after)) do redis.call('ZADD', K.securityGroupPorts(g), 0, id) end
if oldHost ~= '' then redis.call('ZREM', K.hostPorts(oldHost), id) end
if newHost ~= '' then redis.call('ZADD', K.hostPorts(newHost), 0, id) end
redis.call('HSET', K.ports(), id, json)
return commit({ op('port', id, json, current) })
`;

const DELETE = `
local id = ARGV[3]
local json = redis.call('HGET', K.ports(), id)
if not json then fail('PORT_NOT_FOUND', 'id', 'no port ' .. id) end
local port = cjson.decode(json)
if port.migration and port.migration ~= cjson.null then
  fail('MIGRATION_IN_PROGRESS', 'id', 'port ' .. id .. ' is being migrated (migration ' .. port.migration.id .. '); commit or abort it first')
end
local mirror = redis.call('ZRANGE', K.portMirrorSessions(id), 0, 0)[1]
if mirror then
  local others = redis.call('ZCARD', K.portMirrorSessions(id)) - 1
  fail('PORT_IN_MIRROR_SESSION', 'id', 'port ' .. id .. ' is a source or the sink of mirror session ' .. mirror .. (others > 0 and (' and ' .. others .. ' other(s)') or '') .. '; take it out of them or delete them first')
end
local seg = port.segmentId
redis.call('HDEL', K.segmentMacs(seg), port.mac)
for _, ip in ipairs(port.ips) do redis.call('HDEL', K.segmentIps(seg), ip) end
redis.call('ZREM', K.segmentPorts(seg), id)
if port.hostId ~= cjson.null then redis.call('ZREM', K.hostPorts(port.hostId), id) end
for _, g in ipairs(effectiveGroupsOfPort(port)) do redis.call('ZREM', K.securityGroupPorts(g), id) end
redis.call('HDEL', K.ports(), id)
redis.call('ZREM', K.portIndex(), id)
return commit({ op('port', id, nil, json) })
`;

/**
 * VM ports in Redis. MACs and IPs are unique per segment; the indexes by segment and host live
 * beside them, and each security group's member index (`sg:<id>:ports`, effective membership).
 * A port's security groups are checked in the same step that writes it: they exist and belong
 * to the port's tenant, so a group cannot vanish under a port (its deletion checks the index).
 */
@Injectable()
export class PortRepository {
  constructor(private readonly store: RedisStore) {
    store.defineScript('overlayPortCreateBatch', `${luaSecurityGroupHelpers}\n${CREATE_BATCH}`);
    store.defineScript('overlayPortUpdate', `${luaSecurityGroupHelpers}\n${UPDATE}`);
    store.defineScript('overlayPortDelete', `${luaSecurityGroupHelpers}\n${DELETE}`);
  }

  /** All or nothing: one revision for the whole batch. */
  async createMany(ports: Port[], actor: Actor): Promise<number> {
    const args: (string | number)[] = [ports.length];
    for (const p of ports) {
      args.push(p.id, p.segmentId, p.hostId ?? '', p.mac, p.ips.join(','), JSON.stringify(p), p.tenantId, p.securityGroupIds.join(','), p.portSecurity ? '1' : '0');
    }
    return (await this.store.mutate('overlayPortCreateBatch', args, actor)) as number;
  }

  /** Replaces `current` by `next` if unchanged meanwhile: the revision, or -1 = read again and retry. */
  async replace(current: Port, next: Port, actor: Actor): Promise<number> {
    const rev = (await this.store.mutate('overlayPortUpdate', [
      current.id,
      JSON.stringify(current),
      JSON.stringify(next),
      current.hostId ?? '',
      next.hostId ?? '',
    ], actor)) as number;
    return rev;
  }

  async delete(id: string, actor: Actor): Promise<number> {
    return (await this.store.mutate('overlayPortDelete', [id], actor)) as number;
  }

  get(id: string): Promise<Port | undefined> {
    return readRecord<Port>(this.store, this.store.keys.ports(), id);
  }

  /** A page of every port, or of one segment's, or of one host's (one index: the segment's wins). */
  list(page: PageRequest, filter: { segmentId?: string; hostId?: string }): Promise<Page<Port>> {
    const k = this.store.keys;
    const index = filter.segmentId ? k.segmentPorts(filter.segmentId) : filter.hostId ? k.hostPorts(filter.hostId) : k.portIndex();
    return readPage<Port>(this.store, index, k.ports(), page);
  }

  /** The records of these ports, in this order; ports that no longer exist are left out. */
  async getMany(ids: string[]): Promise<Port[]> {
    if (!ids.length) {
      return [];
    }
    const rows = await this.store.read((r) => r.hmget(this.store.keys.ports(), ...ids));
    return rows.filter((json): json is string => json !== null).map((json) => JSON.parse(json) as Port);
  }

  /** Every port of a segment (a segment's forwarding table is read whole). */
  async listBySegment(segmentId: string): Promise<Port[]> {
    const k = this.store.keys;
    const ids = await this.store.read((r) => r.zrange(k.segmentPorts(segmentId), 0, -1));
    if (!ids.length) {
      return [];
    }
    const rows = await this.store.read((r) => r.hmget(k.ports(), ...ids));
    return rows.filter((json): json is string => json !== null).map((json) => JSON.parse(json) as Port);
  }
}
