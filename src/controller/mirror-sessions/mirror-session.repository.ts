import { type Actor } from '../auth/principal';
import { Inject, Injectable } from '@nestjs/common';
import type { Vni } from '../../common/values';
import { ControllerConfig } from '../config';
import type { MirrorSession } from '../model/mirror-session';
import { luaVniAllocator, vniRangesArg } from '../segments/vni-allocator.lua';
import { RedisStore } from '../store/redis-store';
import { readPage, readRecord, type Page, type PageRequest } from '../store/page';

/** The VNI of a session record the store has not allocated yet: `"vni":-1`, replaced by the script. */
export const VNI_PLACEHOLDER = -1;

/*
 * What every write of a session checks against the store, `s` being the decoded record:
 * - each source port exists, is the session tenant's, and is not an analyzer port;
 * - a port sink exists, is the tenant's, and is an analyzer port; an uplink sink's host exists;
 * - no other session copies the same traffic to the same place (MIRROR_SESSION_OVERLAP): another
 *   session overlaps when it has the same sink (the same port; the same host and interface; the
 *   same collector address and UDP port, whatever the VNI; the same ERSPAN collector address and
 *   session ID, whatever the version) and a source port in common whose
 *   directions share one (both shares with each). Filters, snap length and enabled do not count:
 *   a frame both filters keep would arrive twice, and enabling a session must not need a check.
 * Another tenant's port answers PORT_TENANT_MISMATCH at the point where a missing one answers
 * PORT_NOT_FOUND (a tenant caller gets the not-found: see confineError).
 */
const CHECKS = `
local function checkPort(id, tenantId, field)
  local json = redis.call('HGET', K.ports(), id)
  if not json then fail('PORT_NOT_FOUND', field, 'no port ' .. id) end
  local port = cjson.decode(json)
  if port.tenantId ~= tenantId then
    fail('PORT_TENANT_MISMATCH', field, 'port ' .. id .. ' belongs to another tenant than ' .. tenantId)
  end
  return port
end

local function sinkKey(sink)
  if sink.type == 'port' then return 'port ' .. sink.portId end
  if sink.type == 'uplink' then return 'uplink ' .. sink.hostId .. ' ' .. sink.interface end
  if sink.type == 'erspan' then return 'erspan ' .. sink.remoteIp .. ' ' .. sink.erspanId end
  return 'vxlan ' .. sink.remoteIp .. ' ' .. sink.udpPort
end

local function sharesDirection(a, b) return a == 'both' or b == 'both' or a == b end

local function checkSession(s)
  for i, src in ipairs(s.sources) do
    local field = 'sources[' .. (i - 1) .. '].portId'
    local port = checkPort(src.portId, s.tenantId, field)
    if port.role == 'analyzer' then
      fail('MIRROR_SOURCE_IS_ANALYZER', field, 'port ' .. src.portId .. ' is an analyzer port: it receives copies and is never mirrored itself')
    end
  end
  if s.sink.type == 'port' then
    local port = checkPort(s.sink.portId, s.tenantId, 'sink.portId')
    if port.role ~= 'analyzer' then
      fail('MIRROR_SINK_NOT_ANALYZER', 'sink.portId', 'port ' .. s.sink.portId .. ' has role vm; only an analyzer port (role analyzer) may be a mirror sink')
    end
  elseif s.sink.type == 'uplink' then
    if redis.call('HEXISTS', K.hosts(), s.sink.hostId) == 0 then fail('HOST_NOT_FOUND', 'sink.hostId', 'no host ' .. s.sink.hostId) end
  end
  local key, others = sinkKey(s.sink), {}
  for i, src in ipairs(s.sources) do
    for _, otherId in ipairs(redis.call('ZRANGE', K.portMirrorSessions(src.portId), 0, -1)) do
      if otherId ~= s.id then
        local other = others[otherId]
        if other == nil then
          local o = cjson.decode(redis.call('HGET', K.mirrorSessions(), otherId))
          other = { key = sinkKey(o.sink), directions = {} }
          for _, os in ipairs(o.sources) do other.directions[os.portId] = os.direction end
          others[otherId] = other
        end
        local d = other.directions[src.portId]
        if d and other.key == key and sharesDirection(d, src.direction) then
          fail('MIRROR_SESSION_OVERLAP', 'sources[' .. (i - 1) .. ']', 'mirror session ' .. otherId .. ' already copies port ' .. src.portId .. ' (' .. d .. ') to the same sink; change its sources or sink instead')
        end
      end
    end
  end
end

-- The ports a session names (its sources and a port sink) list it in their index; an uplink's host too.
local function indexSession(s, add)
  local cmd = add and 'ZADD' or 'ZREM'
  local function one(key)
    if add then redis.call(cmd, key, 0, s.id) else redis.call(cmd, key, s.id) end
  end
  for _, src in ipairs(s.sources) do one(K.portMirrorSessions(src.portId)) end
  if s.sink.type == 'port' then one(K.portMirrorSessions(s.sink.portId)) end
  if s.sink.type == 'uplink' then one(K.hostMirrorSessions(s.sink.hostId)) end
end
`;

// Idempotent on the id: a retried create returns the stored session.
const CREATE = `
local json, reqVni, ranges, maxPerTenant = ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local s = cjson.decode(json)
local existing = redis.call('HGET', K.mirrorSessions(), s.id)
if existing then return { 0, existing } end
if redis.call('HEXISTS', K.tenants(), s.tenantId) == 0 then fail('TENANT_NOT_FOUND', 'tenantId', 'no tenant ' .. s.tenantId) end
if redis.call('ZCARD', K.tenantMirrorSessions(s.tenantId)) >= maxPerTenant then
  fail('TENANT_QUOTA_EXCEEDED', 'tenantId', 'tenant ' .. s.tenantId .. ' already has its quota of ' .. maxPerTenant .. ' mirror session(s) (OVERLAY_MAX_MIRROR_SESSIONS_PER_TENANT)')
end
local owner = redis.call('HGET', K.tenantMirrorSessionNames(s.tenantId), s.name)
if owner then fail('MIRROR_SESSION_NAME_TAKEN', 'name', 'tenant ' .. s.tenantId .. ' already has a mirror session named ' .. s.name .. ' (' .. owner .. ')') end
checkSession(s)
local reservation = vniReserve(reqVni, ranges, 'sink.vni')
vniTake(reservation, 'mirror:' .. s.id)
local out = string.gsub(json, '"vni":%-1', '"vni":' .. reservation.vni)
redis.call('HSET', K.mirrorSessions(), s.id, out)
redis.call('ZADD', K.mirrorSessionIndex(), 0, s.id)
redis.call('ZADD', K.tenantMirrorSessions(s.tenantId), 0, s.id)
redis.call('HSET', K.tenantMirrorSessionNames(s.tenantId), s.name, s.id)
indexSession(s, true)
return { commit({ op('mirrorSession', s.id, out) }), out }
`;

// Compare-and-set: -1 = the session changed since the caller read it (read again and retry).
// The tenant and the VNI never change.
const UPDATE = `
local id, expected, json = ARGV[3], ARGV[4], ARGV[5]
local current = redis.call('HGET', K.mirrorSessions(), id)
if not current then fail('MIRROR_SESSION_NOT_FOUND', 'id', 'no mirror session ' .. id) end
if current ~= expected then return -1 end
local before, s = cjson.decode(current), cjson.decode(json)
if s.name ~= before.name and redis.call('HEXISTS', K.tenantMirrorSessionNames(s.tenantId), s.name) == 1 then
  fail('MIRROR_SESSION_NAME_TAKEN', 'name', 'tenant ' .. s.tenantId .. ' already has a mirror session named ' .. s.name)
end
checkSession(s)
if s.name ~= before.name then
  redis.call('HDEL', K.tenantMirrorSessionNames(s.tenantId), before.name)
  redis.call('HSET', K.tenantMirrorSessionNames(s.tenantId), s.name, id)
end
indexSession(before, false)
indexSession(s, true)
redis.call('HSET', K.mirrorSessions(), id, json)
return commit({ op('mirrorSession', id, json, current) })
`;

// Its VNI goes into quarantine, as a deleted segment's.
const DELETE = `
local id, quarantine = ARGV[3], tonumber(ARGV[4])
local json = redis.call('HGET', K.mirrorSessions(), id)
if not json then fail('MIRROR_SESSION_NOT_FOUND', 'id', 'no mirror session ' .. id) end
local s = cjson.decode(json)
indexSession(s, false)
vniRelease(s.vni, quarantine)
redis.call('HDEL', K.tenantMirrorSessionNames(s.tenantId), s.name)
redis.call('HDEL', K.mirrorSessions(), id)
redis.call('ZREM', K.mirrorSessionIndex(), id)
redis.call('ZREM', K.tenantMirrorSessions(s.tenantId), id)
local rev = commit({ op('mirrorSession', id, nil, json) })
vniReleasedBy(s.vni, rev)
return rev
`;

/**
 * Mirror sessions in Redis: names unique per tenant, sources and sink checked in the write (see
 * CHECKS), the session VNI from the segments' allocator (owned as `mirror:<id>`), and the indexes
 * that guard deletions: the sessions each port is a source or the sink of, and those whose sink
 * is an uplink of each host.
 */
@Injectable()
export class MirrorSessionRepository {
  private readonly ranges: string;

  constructor(
    private readonly store: RedisStore,
    @Inject(ControllerConfig) private readonly config: ControllerConfig,
  ) {
    this.ranges = vniRangesArg(config.vniRanges);
    const withHelpers = (body: string) => `${luaVniAllocator}\n${CHECKS}\n${body}`;
    store.defineScript('overlayMirrorSessionCreate', withHelpers(CREATE));
    store.defineScript('overlayMirrorSessionUpdate', withHelpers(UPDATE));
    store.defineScript('overlayMirrorSessionDelete', withHelpers(DELETE));
  }

  /**
   * Stores a session whose `vni` (and a vxlan sink's) is VNI_PLACEHOLDER: the store allocates
   * `requestedVni` (it must be free) or the lowest free one. Idempotent on the session id.
   */
  async create(session: MirrorSession, requestedVni: Vni | undefined, actor: Actor): Promise<MirrorSession> {
    const [, json] = (await this.store.mutate('overlayMirrorSessionCreate', [
      JSON.stringify(session),
      requestedVni ?? '',
      this.ranges,
      this.config.maxMirrorSessionsPerTenant,
    ], actor)) as [number, string];
    return JSON.parse(json) as MirrorSession;
  }

  /** Replaces `current` by `next` if unchanged meanwhile: the revision, or -1 = read again and retry. */
  async replace(current: MirrorSession, next: MirrorSession, actor: Actor): Promise<number> {
    return (await this.store.mutate('overlayMirrorSessionUpdate', [current.id, JSON.stringify(current), JSON.stringify(next)], actor)) as number;
  }

  async delete(id: string, actor: Actor): Promise<number> {
    return (await this.store.mutate('overlayMirrorSessionDelete', [id, this.config.vniQuarantineSeconds * 1000], actor)) as number;
  }

  get(id: string): Promise<MirrorSession | undefined> {
    return readRecord<MirrorSession>(this.store, this.store.keys.mirrorSessions(), id);
  }

  list(page: PageRequest, tenantId?: string): Promise<Page<MirrorSession>> {
    const k = this.store.keys;
    return readPage<MirrorSession>(this.store, tenantId ? k.tenantMirrorSessions(tenantId) : k.mirrorSessionIndex(), k.mirrorSessions(), page);
  }
}
