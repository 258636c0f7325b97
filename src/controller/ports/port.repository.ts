import { type Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { luaSecurityGroupHelpers } from '../security-groups/security-group.lua';
import { opJsonLength, opsJsonLength, type ChangeOp } from '../store/change-log';
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
 *
 * Redis runs nothing else while this script runs (thousands of ports at a time), so its work is
 * grouped by key rather than done port by port: a call from Lua into Redis, and every string Lua
 * makes, cost more than the work of one field. Each segment's MAC and IP indexes are read with one HMGET for
 * the batch (the k-th owner read is the k-th MAC or IP the batch puts on the segment), the writes
 * are gathered per key while checking and made at the end with one variadic HSET or ZADD each
 * (callMany), and the change record is joined once from its pieces (opInto). The checks still go
 * port by port, in order: a refusal names the same port and field as checking each in turn would.
 */
const CREATE_BATCH = `
local n = tonumber(ARGV[3])
local last = 4 + (n - 1) * ${ARGS_PER_PORT}
-- The segments this batch touches, in order: what it puts on each, and then the writes to their indexes.
local segments, segmentOrder = {}, {}
for b = 4, last, ${ARGS_PER_PORT} do
  local id = ARGV[b + 1]
  local s = segments[id]
  if s == nil then
    s = { macs = {}, ips = {}, m = 0, i = 0, takenMacs = {}, takenIps = {}, ports = {}, macPairs = {}, ipPairs = {} }
    segments[id] = s
    segmentOrder[#segmentOrder + 1] = id
  end
  s.macs[#s.macs + 1] = ARGV[b + 3]
  for ip in string.gmatch(ARGV[b + 4], '[^,]+') do s.ips[#s.ips + 1] = ip end
end
for _, id in ipairs(segmentOrder) do
  local s = segments[id]
  s.exists = redis.call('HEXISTS', K.segments(), id) == 1
  s.macOwners = readMany('HMGET', K.segmentMacs(id), s.macs)
  s.ipOwners = readMany('HMGET', K.segmentIps(id), s.ips)
end
local hosts, hostOrder, groups, groupOrder = {}, {}, {}, {}
local listed, checked, noGroups = {}, {}, {}
local records, index, ops = {}, {}, { '[' }
-- The path of a field of the port whose arguments start at b (built only for a refusal).
local function field(b, name) return 'ports[' .. ((b - 4) / ${ARGS_PER_PORT}) .. '].' .. name end
for b = 4, last, ${ARGS_PER_PORT} do
  local id, seg, host, mac, ips, json = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local tenantId, csv = ARGV[b + 6], ARGV[b + 7]
  local s = segments[seg]
  if not s.exists then fail('SEGMENT_NOT_FOUND', field(b, 'segmentId'), 'no segment ' .. seg) end
  if host ~= '' then
    local h = hosts[host]
    if h == nil then
      h = { exists = redis.call('HEXISTS', K.hosts(), host) == 1, ports = {} }
      hosts[host] = h
      hostOrder[#hostOrder + 1] = host
    end
    if not h.exists then fail('HOST_NOT_FOUND', field(b, 'hostId'), 'no host ' .. host) end
    h.ports[#h.ports + 1] = 0
    h.ports[#h.ports + 1] = id
  end
  s.m = s.m + 1
  local owner = s.takenMacs[mac] or s.macOwners[s.m]
  if owner then fail('DUPLICATE_MAC', field(b, 'mac'), 'MAC ' .. mac .. ' is already used on this segment by port ' .. owner) end
  s.takenMacs[mac] = id
  s.macPairs[#s.macPairs + 1] = mac
  s.macPairs[#s.macPairs + 1] = id
  local j = 0
  for ip in string.gmatch(ips, '[^,]+') do
    s.i = s.i + 1
    owner = s.takenIps[ip] or s.ipOwners[s.i]
    if owner then fail('DUPLICATE_IP', field(b, 'ips[' .. j .. ']'), 'IP ' .. ip .. ' is already used on this segment by port ' .. owner) end
    s.takenIps[ip] = id
    s.ipPairs[#s.ipPairs + 1] = ip
    s.ipPairs[#s.ipPairs + 1] = id
    j = j + 1
  end
  -- A list of groups passes for every port of its tenant once it passed for one.
  local groupIds = noGroups
  if csv ~= '' then
    groupIds = listed[csv]
    if groupIds == nil then
      groupIds = splitIds(csv)
      listed[csv] = groupIds
    end
    local ok = checked[tenantId]
    if ok == nil then
      ok = {}
      checked[tenantId] = ok
    end
    if not ok[csv] then
      for g, group in ipairs(groupIds) do checkGroup(group, tenantId, field(b, 'securityGroupIds[' .. (g - 1) .. ']')) end
      ok[csv] = true
    end
  end
  for _, g in ipairs(effectiveGroups(tenantId, groupIds, ARGV[b + 8] == '1')) do
    local members = groups[g]
    if members == nil then
      members = {}
      groups[g] = members
      groupOrder[#groupOrder + 1] = g
    end
    members[#members + 1] = 0
    members[#members + 1] = id
  end
  s.ports[#s.ports + 1] = 0
  s.ports[#s.ports + 1] = id
  records[#records + 1] = id
  records[#records + 1] = json
  index[#index + 1] = 0
  index[#index + 1] = id
  if #ops > 1 then ops[#ops + 1] = ',' end
  opInto(ops, 'port', id, json)
end
callMany('HSET', K.ports(), records)
callMany('ZADD', K.portIndex(), index)
for _, id in ipairs(segmentOrder) do
  local s = segments[id]
  callMany('ZADD', K.segmentPorts(id), s.ports)
  callMany('HSET', K.segmentMacs(id), s.macPairs)
  callMany('HSET', K.segmentIps(id), s.ipPairs)
end
for _, id in ipairs(hostOrder) do callMany('ZADD', K.hostPorts(id), hosts[id].ports) end
for _, id in ipairs(groupOrder) do callMany('ZADD', K.securityGroupPorts(id), groups[id]) end
ops[#ops + 1] = ']'
return commitJson(table.concat(ops))
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

  /**
   * All or nothing: one revision for the whole batch. Not async: the arguments (9 a port) are
   * encoded before it returns, and not held while Redis runs the script (RedisStore.mutate).
   */
  createMany(ports: Port[], actor: Actor): Promise<number> {
    const args: (string | number)[] = [ports.length];
    // The record's ops are these ports as they are (the view's tail takes them rather than parse them back).
    const ops: ChangeOp[] = [];
    let opLengths = 0;
    for (const p of ports) {
      const json = JSON.stringify(p);
      args.push(p.id, p.segmentId, p.hostId ?? '', p.mac, p.ips.join(','), json, p.tenantId, p.securityGroupIds.join(','), p.portSecurity ? '1' : '0');
      ops.push({ k: 'port', id: p.id, v: p, o: null });
      opLengths += opJsonLength('port', p.id, json);
    }
    return this.store.mutate('overlayPortCreateBatch', args, actor, Date.now(), { ops, opsLength: opsJsonLength(opLengths, ports.length) }) as Promise<number>;
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
