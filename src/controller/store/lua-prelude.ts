import { luaKeyFunctions } from './keys';

/**
 * Shared head of every mutation script. Conventions: KEYS[1] is the deployment's key base,
 * ARGV[1] the caller's clock (ms, for records and quarantine), ARGV[2] the change log's
 * approximate max length; script arguments start at ARGV[3].
 *
 * A script validates everything first and writes after: Redis does not roll a script back, so
 * a refusal must come before the first write. `fail` aborts with an error the repository turns
 * into an `OverlayError`. `commit` bumps the revision and appends the change record in the same
 * script, so no write can skip the log. Records are JSON built by TypeScript and stored verbatim
 * (Lua's cjson would turn `[]` into `{}`); change records are assembled by concatenation.
 */
export const luaPrelude = `
${luaKeyFunctions}
local NOW = tonumber(ARGV[1])
local LOG_MAXLEN = ARGV[2]

local function fail(code, field, message)
  error({ err = 'OVERLAY\\t' .. code .. '\\t' .. field .. '\\t' .. message })
end

local function op(kind, id, json, old)
  return '{"k":"' .. kind .. '","id":"' .. id .. '","v":' .. (json or 'null') .. ',"o":' .. (old or 'null') .. '}'
end

local function commit(ops)
  local rev = redis.call('INCR', K.revision())
  redis.call('XADD', K.changeLog(), 'MAXLEN', '~', LOG_MAXLEN, rev .. '-0', 'at', ARGV[1], 'ops', '[' .. table.concat(ops, ',') .. ']')
  return rev
end
`;
