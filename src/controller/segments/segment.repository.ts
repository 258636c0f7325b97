import { type Actor } from '../auth/principal';
import { Inject, Injectable } from '@nestjs/common';
import type { Vni } from '../../common/values';
import { ControllerConfig } from '../config';
import { RedisStore } from '../store/redis-store';
import { readPage, readRecord, type Page, type PageRequest } from '../store/page';
import type { Segment } from '../model/segment';
import { luaVniAllocator, vniRangesArg } from './vni-allocator.lua';

// The VNI comes from the shared allocator (vni-allocator.lua.ts); the segment owns it by its id.
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
local reservation = vniReserve(reqVni, ranges, 'vni')
vniTake(reservation, seg.id)
seg.vni = reservation.vni
local out = cjson.encode(seg)
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
vniRelease(seg.vni, quarantine)
if seg.vlanId ~= cjson.null then redis.call('HDEL', K.vlanOwners(), seg.vlanId) end
redis.call('HDEL', K.segments(), id)
redis.call('ZREM', K.segmentIndex(), id)
redis.call('ZREM', K.tenantSegments(seg.tenantId), id)
redis.call('DEL', K.segmentPorts(id), K.segmentMacs(id), K.segmentIps(id))
local rev = commit({ op('segment', id, nil, json) })
vniReleasedBy(seg.vni, rev)
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
    this.ranges = vniRangesArg(config.vniRanges);
    store.defineScript('overlaySegmentCreate', `${luaVniAllocator}\n${CREATE}`);
    store.defineScript('overlaySegmentDelete', `${luaVniAllocator}\n${DELETE}`);
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

  /** The VNIs in quarantine (segments' and mirror sessions': they share the allocator). */
  async quarantinedVnis(): Promise<number[]> {
    return (await this.store.read((r) => r.zrange(this.store.keys.vniQuarantine(), 0, -1))).map(Number);
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
