import { type Actor } from '../auth/principal';
import { Inject, Injectable } from '@nestjs/common';
import type { Vni } from '../../common/values';
import { ControllerConfig } from '../config';
import { RedisStore } from '../store/redis-store';
import { readPage, readRecord, type Page, type PageRequest } from '../store/page';
import type { Segment } from '../model/segment';

/*
 * VNI allocation lives in Redis so that replicas racing cannot issue one VNI twice: a bitmap
 * with bit v set while VNI v is in use or in quarantine, searched with BITPOS (lowest free
 * first), and a sorted set of quarantined VNIs scored by the time they may return (beside it,
 * the revision that released each). Releasing the VNIs whose quarantine has ended is
 * allocator bookkeeping, not desired state, so it is not a change record.
 */
const CREATE = `
local json, tenantId, reqVni, vlanId, ranges, quarantine = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local seg = cjson.decode(json)
local existing = redis.call('HGET', K.segments(), seg.id)
if existing then return { 0, existing } end
local tenantJson = redis.call('HGET', K.tenants(), tenantId)
if not tenantJson then fail('TENANT_NOT_FOUND', 'tenantId', 'no tenant ' .. tenantId) end
local quota = cjson.decode(tenantJson).maxSegments
if quota ~= cjson.null and redis.call('ZCARD', K.tenantSegments(tenantId)) >= quota then
  fail('TENANT_QUOTA_EXCEEDED', 'tenantId', 'tenant ' .. tenantId .. ' already has its quota of ' .. quota .. ' segment(s)')
end
if vlanId then
  local owner = redis.call('HGET', K.vlanOwners(), vlanId)
  if owner then fail('VLAN_TAKEN', 'vlanId', 'VLAN ' .. vlanId .. ' is in use by segment ' .. owner) end
end

-- A quarantined VNI returns once its time is up and every host that ever connected has
-- acknowledged the revision that removed it, so no stale forwarding entry can carry it. Such
-- VNIs count as free, but are released only once nothing can fail any more: a refused create
-- must write nothing.
-- (agents:applied holds exactly the registered hosts that ever connected: a deleted host's entry
-- goes with it. Read only when some VNI's time is up.)
local timeUp = redis.call('ZRANGEBYSCORE', K.vniQuarantine(), '-inf', NOW)
local minApplied = math.huge
if #timeUp > 0 then
  for _, v in ipairs(redis.call('HVALS', K.agentApplied())) do
    minApplied = math.min(minApplied, tonumber(v))
  end
end
local due, isDue = {}, {}
for _, v in ipairs(timeUp) do
  if tonumber(redis.call('HGET', K.vniReleasedAt(), v) or '0') <= minApplied then
    due[#due + 1] = v
    isDue[tonumber(v)] = true
  end
end

local bits = K.vniBits()
local function firstFree(from, to)
  local len = redis.call('STRLEN', bits) * 8
  if from >= len then return from end
  local pos = redis.call('BITPOS', bits, 0, from, math.min(to, len - 1), 'BIT')
  if pos >= from and pos <= to then return pos end
  if to >= len then return len end
  return nil
end

local vni
if reqVni then
  if redis.call('GETBIT', bits, reqVni) == 1 and not isDue[reqVni] then
    local releaseAt = redis.call('ZSCORE', K.vniQuarantine(), reqVni)
    if releaseAt then
      fail('VNI_QUARANTINED', 'vni', 'VNI ' .. reqVni .. ' was released recently; it is quarantined until ' .. releaseAt .. ' ms')
    end
    fail('VNI_TAKEN', 'vni', 'VNI ' .. reqVni .. ' is in use by segment ' .. (redis.call('HGET', K.vniOwners(), reqVni) or '?'))
  end
  vni = reqVni
else
  for from, to in string.gmatch(ranges, '(%d+)-(%d+)') do
    from, to = tonumber(from), tonumber(to)
    vni = firstFree(from, to)
    for v in pairs(isDue) do
      if v >= from and v <= to and (not vni or v < vni) then vni = v end
    end
    if vni then break end
  end
  if not vni then fail('VNI_RANGE_EXHAUSTED', 'vni', 'no free VNI in ' .. ranges) end
end

for _, v in ipairs(due) do
  redis.call('SETBIT', bits, v, 0)
  redis.call('ZREM', K.vniQuarantine(), v)
  redis.call('HDEL', K.vniReleasedAt(), v)
end

seg.vni = vni
local out = cjson.encode(seg)
redis.call('SETBIT', bits, vni, 1)
redis.call('HSET', K.vniOwners(), vni, seg.id)
if vlanId then redis.call('HSET', K.vlanOwners(), vlanId, seg.id) end
redis.call('HSET', K.segments(), seg.id, out)
redis.call('ZADD', K.segmentIndex(), 0, seg.id)
redis.call('ZADD', K.tenantSegments(tenantId), 0, seg.id)
return { commit({ op('segment', seg.id, out) }), out }
`;

const DELETE = `
local id, quarantine = ARGV[3], tonumber(ARGV[4])
local json = redis.call('HGET', K.segments(), id)
if not json then fail('SEGMENT_NOT_FOUND', 'id', 'no segment ' .. id) end
local n = redis.call('ZCARD', K.segmentPorts(id))
if n > 0 then fail('SEGMENT_HAS_PORTS', 'id', 'segment ' .. id .. ' still has ' .. n .. ' port(s); delete them first') end
local seg = cjson.decode(json)
redis.call('ZADD', K.vniQuarantine(), NOW + quarantine, seg.vni)
redis.call('HDEL', K.vniOwners(), seg.vni)
if seg.vlanId ~= cjson.null then redis.call('HDEL', K.vlanOwners(), seg.vlanId) end
redis.call('HDEL', K.segments(), id)
redis.call('ZREM', K.segmentIndex(), id)
redis.call('ZREM', K.tenantSegments(seg.tenantId), id)
redis.call('DEL', K.segmentPorts(id), K.segmentMacs(id), K.segmentIps(id))
local rev = commit({ op('segment', id, nil, json) })
redis.call('HSET', K.vniReleasedAt(), seg.vni, rev)
return rev
`;

/**
 * Segments and their VNI/VLAN allocation in Redis. Creating with an id that exists returns
 * the stored segment, so a retried create allocates once.
 */
@Injectable()
export class SegmentRepository {
  private readonly ranges: string;

  constructor(
    private readonly store: RedisStore,
    @Inject(ControllerConfig) private readonly config: ControllerConfig,
  ) {
    this.ranges = config.vniRanges.map((r) => `${r.from}-${r.to}`).join(',');
    store.defineScript('overlaySegmentCreate', CREATE);
    store.defineScript('overlaySegmentDelete', DELETE);
  }

  /** Allocates the requested VNI, or the lowest free one of the configured ranges, and stores the segment. */
  async create(segment: Omit<Segment, 'vni'>, requestedVni: Vni | undefined, actor: Actor): Promise<Segment> {
    const [, json] = (await this.store.mutate('overlaySegmentCreate', [
      JSON.stringify({ ...segment, vni: 0 }),
      segment.tenantId,
      requestedVni ?? '',
      segment.vlanId ?? '',
      this.ranges,
      this.config.vniQuarantineSeconds * 1000,
    ], actor)) as [number, string];
    return JSON.parse(json) as Segment;
  }

  /** Deletes the segment; its VNI enters quarantine. */
  async delete(id: string, actor: Actor): Promise<number> {
    return (await this.store.mutate('overlaySegmentDelete', [id, this.config.vniQuarantineSeconds * 1000], actor)) as number;
  }

  get(id: string): Promise<Segment | undefined> {
    return readRecord<Segment>(this.store, this.store.keys.segments(), id);
  }

  async getMany(ids: string[]): Promise<(Segment | undefined)[]> {
    if (!ids.length) {
      return [];
    }
    const rows = await this.store.read((r) => r.hmget(this.store.keys.segments(), ...ids));
    return rows.map((json) => (json === null ? undefined : (JSON.parse(json) as Segment)));
  }

  list(page: PageRequest, tenantId?: string): Promise<Page<Segment>> {
    const k = this.store.keys;
    return readPage<Segment>(this.store, tenantId ? k.tenantSegments(tenantId) : k.segmentIndex(), k.segments(), page);
  }
}
