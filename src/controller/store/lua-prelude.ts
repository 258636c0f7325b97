import { luaKeyFunctions } from './keys';

/**
 * Shared head of every mutation script. Conventions: KEYS[1] is the deployment's key base,
 * ARGV[1] the caller's clock (ms, for records and quarantine), ARGV[2] the change log's
 * approximate max length, ARGV[3] the actor (JSON, see auth/principal.ts), ARGV[4] how long
 * the audit trail keeps events (ms) and ARGV[5] the nonce of the change record the script may
 * make (change-log.ts, RecordNonces). The prelude takes those three out of ARGV, so a script's own
 * arguments start at ARGV[3].
 *
 * A script validates everything first and writes after: Redis does not roll a script back, so
 * a refusal must come before the first write. `fail` aborts with an error the repository turns
 * into an `OverlayError`. `commit` bumps the revision and appends the change record in the same
 * script, so no write can skip the log. Records are JSON built by TypeScript and stored verbatim
 * (Lua's cjson would turn `[]` into `{}`); change records are assembled by concatenation.
 *
 * Audit: `commit` also appends the write to the audit trail (`audit`) with the actor and every
 * resource an `op` named, so no accepted write escapes it either; a write that makes no revision
 * (a token's) calls `audit` itself. The change record carries the actor too.
 */
const luaPrelude = `
local NOW = tonumber(ARGV[1])
local LOG_MAXLEN = ARGV[2]
local ACTOR = ARGV[3]
local EVENTS_KEEP_MS = tonumber(ARGV[4])
local RECORD_NONCE = ARGV[5]
-- The script's own arguments move down to ARGV[3], in one pass (a table.remove per value taken
-- out would move them all each time: 60,000 of them for a 10,000-port batch).
do
  local n = #ARGV
  for i = 6, n do ARGV[i - 3] = ARGV[i] end
  ARGV[n], ARGV[n - 1], ARGV[n - 2] = nil, nil, nil
end
local TOUCHED = {}

local function fail(code, field, message)
  error({ err = 'OVERLAY\\t' .. code .. '\\t' .. field .. '\\t' .. message })
end

-- One op of the change record, appended to parts as pieces: a script making thousands (a batch)
-- joins them all once (commitJson) rather than making a string of each and then of them all.
local function opInto(parts, kind, id, json, old)
  TOUCHED[#TOUCHED + 1] = kind .. ':' .. id
  local n = #parts
  parts[n + 1] = '{"k":"'
  parts[n + 2] = kind
  parts[n + 3] = '","id":"'
  parts[n + 4] = id
  parts[n + 5] = '","v":'
  parts[n + 6] = json or 'null'
  parts[n + 7] = ',"o":'
  parts[n + 8] = old or 'null'
  parts[n + 9] = '}'
end

local function op(kind, id, json, old)
  local parts = {}
  opInto(parts, kind, id, json, old)
  return table.concat(parts)
end

-- extra: resources the ops do not name (a migration, a token), as 'kind:id'.
local function audit(revision, extra)
  for _, r in ipairs(extra or {}) do TOUCHED[#TOUCHED + 1] = r end
  redis.call('XADD', K.events(), 'MINID', '~', NOW - EVENTS_KEEP_MS, '*', 'type', 'write', 'actor', ACTOR, 'rev', revision or '', 'res', table.concat(TOUCHED, ','))
end

-- Lua's unpack puts every value on the C stack, which holds at most 8,000 (LUAI_MAXCSTACK): longer
-- argument lists go in chunks of this many values (even, so that pairs are never split).
local CALL_CHUNK = 4000

-- One variadic command (HSET, ZADD...) for a whole list of values instead of one call each: a
-- call from Lua costs more than the work of one field. Nothing for an empty list.
local function callMany(command, key, values)
  for from = 1, #values, CALL_CHUNK do
    redis.call(command, key, unpack(values, from, math.min(from + CALL_CHUNK - 1, #values)))
  end
end

-- The same for a read (HMGET...): the replies of every chunk, in order.
local function readMany(command, key, values)
  local out = {}
  for from = 1, #values, CALL_CHUNK do
    for _, v in ipairs(redis.call(command, key, unpack(values, from, math.min(from + CALL_CHUNK - 1, #values)))) do out[#out + 1] = v end
  end
  return out
end

-- opsJson: the change record's ops, a JSON array. Its entry id is <revision>-<nonce>: unique to
-- this write, so a reader can tell it from a record of the same revision a failover lost.
local function commitJson(opsJson, extra)
  local rev = redis.call('INCR', K.revision())
  redis.call('XADD', K.changeLog(), 'MAXLEN', '~', LOG_MAXLEN, rev .. '-' .. RECORD_NONCE, 'at', ARGV[1], 'actor', ACTOR, 'ops', opsJson)
  audit(rev, extra)
  return rev
end

-- ops: the strings of op().
local function commit(ops, extra)
  return commitJson('[' .. table.concat(ops, ',') .. ']', extra)
end
`;

/**
 * Head of every script that can make a revision (its body calls `commit`): no revision is made
 * while the store is in recovery, nor into a store without an epoch (it lost its data, and no
 * replica has decided yet). Checked before the script's first write, atomically with it, so a
 * replica that has not noticed the loss yet cannot write into the emptied store either.
 */
export const luaRecoveryGuard = `
-- One call for both: EXISTS counts a key as often as it is named, so 2 means the epoch is there
-- (counted twice) and the recovery mark is not.
if redis.call('EXISTS', K.epoch(), K.epoch(), K.recovery()) ~= 2 then
  fail('STORE_RECOVERY', '', 'the store is in recovery (it came back empty or older than what was seen): writes are refused until an admin accepts its state (POST /v1/admin/recovery/accept) or restores it; see GET /v1/admin/recovery')
end
`;

/** Whether a script body can make a revision (then it runs behind `luaRecoveryGuard`). */
export const makesRevisions = (body: string): boolean => /\bcommit(Json)?\(/.test(body);

/**
 * A mutation script's whole source: the key functions it calls, `luaPrelude`, the recovery
 * guard when it can make a revision, then its body.
 */
export function scriptSource(body: string): string {
  const code = `${luaPrelude}\n${makesRevisions(body) ? luaRecoveryGuard : ''}\n${body}`;
  return `${luaKeyFunctions(code)}\n${code}`;
}
