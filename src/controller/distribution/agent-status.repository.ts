import { CONTROLLER } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { RedisStore } from '../store/redis-store';
import { parsePortFailures, type HostPortFailures } from './port-failures';

/** Agent instances a claim remembers as evicted (the oldest are forgotten first). */
const MAX_EVICTED = 8;

// Acknowledged revisions only move forward, whichever replica reports them. A host is entered
// (at the revision its Hello claimed) as soon as it connects: from then on it holds forwarding
// state, and the VNI quarantine must wait for it. A host no longer registered is not entered
// again (its stream lives until the next housekeeping, and an ack in between would make the
// quarantine wait for a host that will never connect again).
// ARGV[3] is the number of (host, revision) pairs that follow; after them come (host, op, value)
// triples for the hosts' last errors: op 'set' stores value (the error's JSON) if the host is
// still registered; op 'clear' deletes the stored error if its revision is at most value (an ack
// at or above the nacked revision is a successful apply); and for their failed ports: op 'ports'
// replaces the host's record with value (JSON {revision, ports}), deleted when it names no port,
// unless the stored one is of a later revision (a replica flushing late).
const RECORD_REPORTS = `
local count = tonumber(ARGV[3])
local i = 4
for _ = 1, count do
  local current = redis.call('HGET', K.agentApplied(), ARGV[i])
  if (current and tonumber(ARGV[i + 1]) > tonumber(current)) or (not current and redis.call('HEXISTS', K.hosts(), ARGV[i]) == 1) then
    redis.call('HSET', K.agentApplied(), ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
while i <= #ARGV do
  local host, op, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'set' then
    if redis.call('HEXISTS', K.hosts(), host) == 1 then redis.call('HSET', K.agentLastErrors(), host, value) end
  elseif op == 'ports' then
    local record = cjson.decode(value)
    local stored = redis.call('HGET', K.agentPortFailures(), host)
    local ok, old = false, nil
    if stored then ok, old = pcall(cjson.decode, stored) end
    if not (ok and type(old) == 'table' and tonumber(old.revision) ~= nil and tonumber(old.revision) > tonumber(record.revision)) then
      if next(record.ports) == nil then
        redis.call('HDEL', K.agentPortFailures(), host)
      elseif redis.call('HEXISTS', K.hosts(), host) == 1 then
        redis.call('HSET', K.agentPortFailures(), host, value)
      end
    end
  else
    local stored = redis.call('HGET', K.agentLastErrors(), host)
    if stored then
      local ok, record = pcall(cjson.decode, stored)
      if not ok or type(record) ~= 'table' or tonumber(record.revision) == nil or tonumber(record.revision) <= tonumber(value) then
        redis.call('HDEL', K.agentLastErrors(), host)
      end
    end
  end
  i = i + 3
end
return 0
`;

// A claim is JSON (see keys.ts, agentSessions). Claims written by an older overlayd,
// "<replica> <expiry>", read as a live or lapsed claim without instance and token: a Hello that
// finds one replaces it, as overlayd did before, and that replica's stream ends at its next
// refresh.
const CLAIM_HELPERS = `
local function readClaim(host)
  local raw = redis.call('HGET', K.agentSessions(), host)
  if not raw then return nil end
  local ok, claim = pcall(cjson.decode, raw)
  if ok and type(claim) == 'table' then
    if type(claim.evicted) ~= 'table' then claim.evicted = {} end
    if type(claim.reported) ~= 'table' then claim.reported = {} end
    claim.token = claim.token or ''
    claim.instance = claim.instance or ''
    claim.replica = claim.replica or ''
    claim.expires = tonumber(claim.expires) or 0
    return claim
  end
  local replica, expires = string.match(raw, '^(%S+) (%d+)$')
  return { replica = replica or '', token = '', instance = '', expires = tonumber(expires) or 0, evicted = {}, reported = {} }
end
local function listed(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end
`;

// ARGV[3] host, [4] replica, [5] token (this stream's), [6] instance ('' = none), [7] ttl (ms),
// [8] the agent's known features, comma-separated.
// Returns {'claimed', 1 if it replaced another stream's live claim, that claim's instance, its
// replica}, or {'refused', 1 the first time this claim refuses this instance, the holder's instance, ''}.
// Without an instance id on either side nothing tells two agents apart: the Hello replaces.
const CLAIM = `${CLAIM_HELPERS}
local host, replica, token, instance, ttl, features = ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8]
local claim = readClaim(host)
local live = claim ~= nil and claim.expires > NOW
if live and instance ~= '' and claim.instance ~= instance and listed(claim.evicted, instance) then
  local first = not listed(claim.reported, instance)
  if first then
    table.insert(claim.reported, instance)
    redis.call('HSET', K.agentSessions(), host, cjson.encode(claim))
  end
  return { 'refused', first and 1 or 0, claim.instance, '' }
end
local evicted = {}
local replaced = 0
if live then
  for _, v in ipairs(claim.evicted) do
    if v ~= instance then table.insert(evicted, v) end
  end
  if instance == '' or claim.instance ~= instance then
    replaced = 1
    if claim.instance ~= '' and claim.instance ~= instance then table.insert(evicted, claim.instance) end
  end
  while #evicted > ${MAX_EVICTED} do table.remove(evicted, 1) end
end
redis.call('HSET', K.agentSessions(), host, cjson.encode({ replica = replica, token = token, instance = instance, expires = NOW + ttl, evicted = evicted, reported = {}, features = features }))
return { 'claimed', replaced, live and claim.instance or '', live and claim.replica or '' }
`;

// ARGV[3] replica, [4] ttl (ms), then (host, token, instance) triples: the streams this replica
// holds. A claim that is still the stream's is extended; a missing one (released by a stream
// that never started, or lost with Redis' data) is made again if the host is still registered;
// one taken by another stream is left alone. Returns the hosts whose claim another stream took.
const REFRESH = `${CLAIM_HELPERS}
local replica, ttl = ARGV[3], tonumber(ARGV[4])
local superseded = {}
for i = 5, #ARGV, 3 do
  local host, token, instance = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local claim = readClaim(host)
  if claim and claim.token == token then
    claim.expires = NOW + ttl
    redis.call('HSET', K.agentSessions(), host, cjson.encode(claim))
  elseif not claim then
    if redis.call('HEXISTS', K.hosts(), host) == 1 then
      redis.call('HSET', K.agentSessions(), host, cjson.encode({ replica = replica, token = token, instance = instance, expires = NOW + ttl, evicted = {}, reported = {} }))
    end
  else
    table.insert(superseded, host)
  end
end
return superseded
`;

// ARGV[3] host, [4] token: deletes the claim if it is still that stream's.
const RELEASE = `${CLAIM_HELPERS}
local claim = readClaim(ARGV[3])
if claim and claim.token == ARGV[4] then redis.call('HDEL', K.agentSessions(), ARGV[3]) end
return 0
`;

export interface AgentStatus {
  connected: boolean;
  appliedRevision: number;
  /** The features (Hello.features) of the agent holding the stream; empty when none holds it. */
  features: AgentFeature[];
}

/** Agent features the controller relies on where an agent announces them (see Hello.features). */
export const AGENT_FEATURES = ['connection-handover'] as const;
export type AgentFeature = (typeof AGENT_FEATURES)[number];

/** The known features among those an agent announced (the rest, and any past 16, are ignored). */
export const knownFeatures = (announced: string[]): AgentFeature[] => AGENT_FEATURES.filter((f) => announced.slice(0, 16).includes(f));

/** The last NACK of a host's agent: what failed, why (cleaned: see agent-text.ts), and when the controller heard it. */
export interface AgentLastError {
  revision: number;
  error: string;
  /** ISO 8601 time the NACK reached the controller. */
  at: string;
}

/** A change to a host's last error: a new NACK, or an ack that clears an error at or below `clearUpTo`. */
export type LastErrorUpdate = { set: AgentLastError } | { clearUpTo: number };

/** One stream's claim on its host: `token` names the stream, `instance` the agent process (or ''), `features` what it announced. */
export interface StreamClaim {
  hostId: string;
  token: string;
  instance: string;
  features: AgentFeature[];
}

export type ClaimResult =
  /** The stream holds the host. `replaced`: the live claim it took over was another instance's (or had none). */
  | { claimed: true; replaced?: { instance: string; replica: string } }
  /** An instance the live claim evicted: refused. `firstRefusal`: the first time by this claim (log it). */
  | { claimed: false; holder: string; firstRefusal: boolean };

/**
 * What agents did, in Redis, so every replica sees it: the revision each host acknowledged, its
 * last NACK, which stream holds each host (a claim with an expiry, refreshed while the stream
 * lives, and the agent instances it evicted). Every claim change is one script, so replicas racing for a host agree.
 */
@Injectable()
export class AgentStatusRepository {
  constructor(private readonly store: RedisStore) {
    store.defineScript('overlayAgentReports', RECORD_REPORTS);
    store.defineScript('overlayAgentClaim', CLAIM);
    store.defineScript('overlayAgentRefresh', REFRESH);
    store.defineScript('overlayAgentRelease', RELEASE);
  }

  /**
   * Records acknowledged revisions (they only move forward) and last-error changes, in one script
   * (one round trip per batch). Idempotent: the same batch again changes nothing more.
   */
  async recordReports(applied: Map<string, number>, errors: Map<string, LastErrorUpdate> = new Map(), portFailures: Map<string, HostPortFailures> = new Map()): Promise<void> {
    if (applied.size === 0 && errors.size === 0 && portFailures.size === 0) {
      return;
    }
    const args: (string | number)[] = [applied.size];
    for (const [host, revision] of applied) {
      args.push(host, revision);
    }
    for (const [host, update] of errors) {
      args.push(host, ...('set' in update ? ['set', JSON.stringify(update.set)] : ['clear', update.clearUpTo]));
    }
    for (const [host, record] of portFailures) {
      // An empty object, not cjson's empty array, so the script's next() test reads it alike.
      args.push(host, 'ports', JSON.stringify(record));
    }
    await this.store.mutate('overlayAgentReports', args, CONTROLLER);
  }

  /**
   * Claims the host's stream for `claim` (see Hello.instance_id in proto/overlay/v1/sync.proto for
   * the rules). Not idempotent: a second call with another token takes the host from the first.
   */
  async claimSession(claim: StreamClaim, replicaId: string, ttlMs: number): Promise<ClaimResult> {
    const [outcome, flag, instance, replica] = (await this.store.mutate('overlayAgentClaim', [claim.hostId, replicaId, claim.token, claim.instance, ttlMs, claim.features.join(',')], CONTROLLER)) as [string, number, string, string];
    if (outcome === 'refused') {
      return { claimed: false, holder: instance, firstRefusal: flag === 1 };
    }
    return flag === 1 ? { claimed: true, replaced: { instance, replica } } : { claimed: true };
  }

  /** Extends this replica's claims; returns the hosts whose claim another stream has taken (end those streams). */
  async refreshSessions(claims: StreamClaim[], replicaId: string, ttlMs: number): Promise<string[]> {
    if (!claims.length) {
      return [];
    }
    const args: (string | number)[] = [replicaId, ttlMs];
    for (const c of claims) {
      args.push(c.hostId, c.token, c.instance);
    }
    return (await this.store.mutate('overlayAgentRefresh', args, CONTROLLER)) as string[];
  }

  /** Deletes the claim if it is still this stream's (a newer stream keeps its own). Idempotent. */
  async releaseSession(claim: StreamClaim): Promise<void> {
    await this.store.mutate('overlayAgentRelease', [claim.hostId, claim.token], CONTROLLER);
  }

  async status(hostIds: string[]): Promise<Map<string, AgentStatus>> {
    const out = new Map<string, AgentStatus>();
    if (!hostIds.length) {
      return out;
    }
    const k = this.store.keys;
    const [applied, sessions] = await Promise.all([
      this.store.read((r) => r.hmget(k.agentApplied(), ...hostIds)),
      this.store.read((r) => r.hmget(k.agentSessions(), ...hostIds)),
    ]);
    const now = Date.now();
    hostIds.forEach((id, i) => {
      const claim = readClaim(sessions[i]);
      const connected = claim.expires > now;
      out.set(id, { connected, appliedRevision: Number(applied[i] ?? 0), features: connected ? claim.features : [] });
    });
    return out;
  }

  /** Each host's failed ports as its agent last acknowledged them (absent: none). */
  async portFailures(hostIds: string[]): Promise<Map<string, HostPortFailures>> {
    if (!hostIds.length) {
      return new Map();
    }
    const rows = await this.store.read((r) => r.hmget(this.store.keys.agentPortFailures(), ...hostIds));
    return new Map(hostIds.flatMap((id, i) => {
      const record = parsePortFailures(rows[i]);
      return record && Object.keys(record.ports).length ? [[id, record] as const] : [];
    }));
  }

  /** Each host's last NACK, or null when none (or cleared by a later successful apply). */
  async lastErrors(hostIds: string[]): Promise<Map<string, AgentLastError | null>> {
    if (!hostIds.length) {
      return new Map();
    }
    const rows = await this.store.read((r) => r.hmget(this.store.keys.agentLastErrors(), ...hostIds));
    return new Map(hostIds.map((id, i) => [id, parseLastError(rows[i])]));
  }
}

/**
 * A claim's expiry (ms; 0 when there is none) and features, from one parse (a scrape reads every
 * host's); reads claims of older overlayd too ("<replica> <expiry>", no features).
 */
function readClaim(raw: string | null): { expires: number; features: AgentFeature[] } {
  if (!raw) {
    return { expires: 0, features: [] };
  }
  if (raw.startsWith('{')) {
    const { expires, features } = JSON.parse(raw) as { expires?: unknown; features?: unknown };
    return { expires: typeof expires === 'number' ? expires : 0, features: typeof features === 'string' ? knownFeatures(features.split(',')) : [] };
  }
  return { expires: Number(raw.split(' ')[1]) || 0, features: [] };
}

function parseLastError(raw: string | null): AgentLastError | null {
  if (!raw) {
    return null;
  }
  const { revision, error, at } = JSON.parse(raw) as AgentLastError;
  return { revision, error, at };
}
