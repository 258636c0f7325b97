/**
 * The VNI allocator, in Lua, for every script that takes or releases a VNI: a segment's and a
 * mirror session's (mirror VNIs come from the same pool, so they never equal a segment's, and
 * are quarantined alike). Prepended to a script body after `luaPrelude` (uses `K`, `fail`, `NOW`).
 *
 * Allocation lives in Redis so that replicas racing cannot issue one VNI twice: a bitmap with
 * bit v set while VNI v is in use or in quarantine, searched with BITPOS (lowest free first), and
 * a sorted set of quarantined VNIs scored by the time they may return (beside it, the revision
 * that released each). Releasing the VNIs whose quarantine has ended is allocator bookkeeping,
 * not desired state, so it is not a change record.
 *
 * `vniOwners` holds the owner of each VNI in use: a segment's id as it is, a mirror session's as
 * `mirror:<id>`, so a refusal names the right kind of owner.
 */
import type { VniRange } from '../config';

/** The configured ranges as `vniReserve` takes them: `from-to,...`. */
export const vniRangesArg = (ranges: VniRange[]): string => ranges.map((r) => `${r.from}-${r.to}`).join(',');

export const luaVniAllocator = `
-- Who holds a VNI, in words ('segment <id>', 'mirror session <id>', '?').
local function vniOwnerText(v)
  local owner = redis.call('HGET', K.vniOwners(), v)
  if not owner then return '?' end
  local session = string.match(owner, '^mirror:(.+)$')
  if session then return 'mirror session ' .. session end
  return 'segment ' .. owner
end

-- Picks a VNI without writing anything (a refused write must write nothing): reqVni (a number,
-- or nil for the lowest free of ranges, 'from-to,...'); field names it in refusals. Returns the
-- reservation that vniTake writes.
--
-- A quarantined VNI returns once its time is up and every host that ever connected has
-- acknowledged the revision that removed it, so no stale forwarding entry can carry it. Such
-- VNIs count as free, but are released only by vniTake, once nothing can fail any more.
-- (agents:applied holds exactly the registered hosts that ever connected: a deleted host's entry
-- goes with it. Read only when some VNI's time is up.)
local function vniReserve(reqVni, ranges, field)
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
        fail('VNI_QUARANTINED', field, 'VNI ' .. reqVni .. ' was released recently; it is quarantined until ' .. releaseAt .. ' ms')
      end
      fail('VNI_TAKEN', field, 'VNI ' .. reqVni .. ' is in use by ' .. vniOwnerText(reqVni))
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
    if not vni then fail('VNI_RANGE_EXHAUSTED', field, 'no free VNI in ' .. ranges) end
  end
  return { vni = vni, due = due }
end

-- Writes a reservation: the quarantined VNIs it found due return to the pool, its VNI is taken for owner.
local function vniTake(reservation, owner)
  local bits = K.vniBits()
  for _, v in ipairs(reservation.due) do
    redis.call('SETBIT', bits, v, 0)
    redis.call('ZREM', K.vniQuarantine(), v)
    redis.call('HDEL', K.vniReleasedAt(), v)
  end
  redis.call('SETBIT', bits, reservation.vni, 1)
  redis.call('HSET', K.vniOwners(), reservation.vni, owner)
end

-- Puts a VNI into quarantine for quarantineMs; call vniReleasedBy with the revision of the write.
local function vniRelease(vni, quarantineMs)
  redis.call('ZADD', K.vniQuarantine(), NOW + quarantineMs, vni)
  redis.call('HDEL', K.vniOwners(), vni)
end

local function vniReleasedBy(vni, revision)
  redis.call('HSET', K.vniReleasedAt(), vni, revision)
end
`;
