import { type Actor, CONTROLLER } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import type { Port } from '../model/port';
import { isResourceId } from '../model/value-parsers';
import { RedisStore } from '../store/redis-store';
import { MAX_MIGRATION_TTL_MS } from './migration.schemas';
import { MIGRATION_EVENTS, type Migration, type MigrationRecord, type MigrationState, type TimelineEntry } from '../model/migration';

/** One port's compare-and-set in a migration step: the record as read, and what replaces it. */
/** Timeline events recorded as they are observed (MARK), not written by a hook. */
export type MarkedEvent = 'destination-acked' | 'vm-arrived' | 'peers-acked' | 'source-cleaned';

export interface PortSwap {
  id: string;
  current: Port;
  next: Port;
}

const PORT_ARGS = 3;

/** The most index entries one list request reads before answering with what it found and a cursor. */
export const MIGRATION_SCAN_LIMIT = 10_000;
const SCAN_CHUNK = 200;

/*
 * Every step below that changes ports is one script: it checks, compares each port with the
 * record the caller read (-1 = a port changed meanwhile: read again and retry), writes the ports,
 * the migration's state and indexes, and commits one change record, so agents see the step as one
 * revision. Timeline events are hash fields written once (HSETNX/HSET in the step that makes
 * them), so a retried step or two replicas observing the same ack write them once.
 *
 * Migration records and their indexes are not desired state: they are kept beside it and do not
 * go through the change log; the ports they change do.
 */

/** ARGV: id, key, vmId ('' = none), source, destination, expiresAt (ms), record JSON, n, then n x (port id, current JSON, next JSON). */
const PREPARE = `
local id, key, vmId, source, dest, expiresAt, record = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local n = tonumber(ARGV[10])
-- A retried prepare finds its own migration open: the same answer, nothing written twice.
local holder = redis.call('HGET', K.migrationsByPort(), ARGV[11])
if holder and redis.call('HGET', K.migration(holder), 'key') == key then return { 0, holder } end
if vmId ~= '' then
  local byVm = redis.call('HGET', K.migrationsByVm(), vmId)
  if byVm then
    if redis.call('HGET', K.migration(byVm), 'key') == key then return { 0, byVm } end
    fail('MIGRATION_IN_PROGRESS', 'vmId', 'VM ' .. vmId .. ' is already being migrated (migration ' .. byVm .. '); commit or abort it first')
  end
end
if redis.call('HEXISTS', K.hosts(), source) == 0 then fail('HOST_NOT_FOUND', 'sourceHostId', 'no host ' .. source) end
if redis.call('HEXISTS', K.hosts(), dest) == 0 then fail('HOST_NOT_FOUND', 'destinationHostId', 'no host ' .. dest) end
for i = 0, n - 1 do
  local b = 11 + i * ${PORT_ARGS}
  local f = 'portIds[' .. i .. ']'
  local current = redis.call('HGET', K.ports(), ARGV[b])
  if not current then fail('PORT_NOT_FOUND', f, 'no port ' .. ARGV[b]) end
  if current ~= ARGV[b + 1] then return { -1 } end
  local other = redis.call('HGET', K.migrationsByPort(), ARGV[b])
  if other then fail('MIGRATION_IN_PROGRESS', f, 'port ' .. ARGV[b] .. ' is already being migrated (migration ' .. other .. '); commit or abort it first') end
end
local ops = {}
for i = 0, n - 1 do
  local b = 11 + i * ${PORT_ARGS}
  redis.call('HSET', K.ports(), ARGV[b], ARGV[b + 2])
  redis.call('HSET', K.migrationsByPort(), ARGV[b], id)
  ops[i + 1] = op('port', ARGV[b], ARGV[b + 2], ARGV[b + 1])
end
if vmId ~= '' then redis.call('HSET', K.migrationsByVm(), vmId, id) end
redis.call('HSET', K.migration(id), 'record', record, 'key', key, 'state', 'preparing')
redis.call('ZADD', K.migrationExpiry(), expiresAt, id)
redis.call('ZADD', K.migrationsActive(), 0, id)
redis.call('ZADD', K.migrationIndex(), 0, id)
redis.call('ZADD', K.hostIncomingMigrations(dest), 0, id)
local rev = commit(ops, { 'migration:' .. id })
redis.call('HSET', K.migration(id), 'ev:prepared', ARGV[1] .. ':' .. rev, 'by:prepared', ACTOR)
return { rev, id }
`;

/**
 * Forgets, in the list's index, the migrations created before every one still kept can have been:
 * open at most MAX_MIGRATION_TTL_MS, then kept \`retention\` ms. A UUIDv7 starts with its creation
 * time in ms (12 hex digits, a dash after the 8th), so the ids older than a time sort before it.
 */
const PRUNE_INDEX = `
local function pruneIndex(retention)
  local t = string.format('%012x', math.max(0, NOW - tonumber(retention) - ${MAX_MIGRATION_TTL_MS}))
  redis.call('ZREMRANGEBYLEX', K.migrationIndex(), '-', '(' .. string.sub(t, 1, 8) .. '-' .. string.sub(t, 9, 12))
end
`;

/** Drops a migration from the open indexes (its ports, its VM, its expiry, its destination). */
const CLOSE = `
local function close(id, record)
  for _, pid in ipairs(record.portIds) do
    if redis.call('HGET', K.migrationsByPort(), pid) == id then redis.call('HDEL', K.migrationsByPort(), pid) end
  end
  if record.vmId ~= cjson.null and redis.call('HGET', K.migrationsByVm(), record.vmId) == id then redis.call('HDEL', K.migrationsByVm(), record.vmId) end
  redis.call('ZREM', K.migrationExpiry(), id)
  redis.call('ZREM', K.hostIncomingMigrations(record.destinationHostId), id)
  redis.call('DEL', K.migrationConnections(id))
end
local function swapPorts(first, n)
  for i = 0, n - 1 do
    local b = first + i * ${PORT_ARGS}
    if redis.call('HGET', K.ports(), ARGV[b]) ~= ARGV[b + 1] then return nil end
  end
  local ops = {}
  for i = 0, n - 1 do
    local b = first + i * ${PORT_ARGS}
    redis.call('HSET', K.ports(), ARGV[b], ARGV[b + 2])
    ops[i + 1] = op('port', ARGV[b], ARGV[b + 2], ARGV[b + 1])
  end
  return ops
end
`;

/** ARGV: id, n, then n x (port id, current JSON, next JSON). Returns {revision}, {0} when already committed, {-1} to retry. */
const COMMIT = `${CLOSE}
local id, n = ARGV[3], tonumber(ARGV[4])
local state = redis.call('HGET', K.migration(id), 'state')
if not state then fail('MIGRATION_NOT_FOUND', 'id', 'no migration ' .. id) end
if state == 'committed' or state == 'completed' then return { 0 } end
if state == 'aborted' or state == 'expired' then fail('MIGRATION_CLOSED', 'id', 'migration ' .. id .. ' was ' .. state .. '; prepare a new one') end
if state == 'preparing' then fail('MIGRATION_NOT_READY', 'id', 'the destination host has not acknowledged the prepared ports yet; retry the commit, or abort') end
local expiresAt = tonumber(redis.call('ZSCORE', K.migrationExpiry(), id) or '0')
if NOW >= expiresAt then fail('MIGRATION_CLOSED', 'id', 'migration ' .. id .. ' expired before its commit; prepare a new one') end
local record = cjson.decode(redis.call('HGET', K.migration(id), 'record'))
local ops = swapPorts(5, n)
if not ops then return { -1 } end
for i = 0, n - 1 do
  local pid = ARGV[5 + i * ${PORT_ARGS}]
  redis.call('ZREM', K.hostPorts(record.sourceHostId), pid)
  redis.call('ZADD', K.hostPorts(record.destinationHostId), 0, pid)
end
close(id, record)
redis.call('HSET', K.migration(id), 'state', 'committed')
local rev = commit(ops, { 'migration:' .. id })
redis.call('HSET', K.migration(id), 'ev:committed', ARGV[1] .. ':' .. rev, 'by:committed', ACTOR)
return { rev }
`;

/**
 * ARGV: id, final state ('aborted' or 'expired'), retention (ms), n, then n x (port id, current
 * JSON, next JSON). Returns {revision}, {0} when already closed (or, for an expiry, not due), {-1} to retry.
 */
const ABORT = `${CLOSE}${PRUNE_INDEX}
local id, final, retention, n = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local state = redis.call('HGET', K.migration(id), 'state')
if not state then fail('MIGRATION_NOT_FOUND', 'id', 'no migration ' .. id) end
if state == 'aborted' or state == 'expired' then return { 0 } end
if state == 'committed' or state == 'completed' then fail('MIGRATION_COMMITTED', 'id', 'migration ' .. id .. ' is committed: the VM runs on the destination; migrate it back instead') end
if final == 'expired' and NOW < tonumber(redis.call('ZSCORE', K.migrationExpiry(), id) or '0') then return { 0 } end
local record = cjson.decode(redis.call('HGET', K.migration(id), 'record'))
local ops = swapPorts(7, n)
if not ops then return { -1 } end
close(id, record)
redis.call('ZREM', K.migrationsActive(), id)
redis.call('HSET', K.migration(id), 'state', final)
local rev = commit(ops, { 'migration:' .. id })
redis.call('HSET', K.migration(id), 'ev:' .. final, ARGV[1] .. ':' .. rev, 'by:' .. final, ACTOR)
redis.call('PEXPIRE', K.migration(id), retention)
pruneIndex(retention)
return { rev }
`;

/**
 * ARGV: id, event (destination-acked, vm-arrived, peers-acked or source-cleaned), retention (ms).
 * Records an observed event once; the last ack of a committed migration completes it. Not a
 * change of desired state: no revision. Returns 1 when it recorded the event now, 2 when that
 * also completed the migration, 0 otherwise.
 */
const MARK = `${PRUNE_INDEX}
local id, event, retention = ARGV[3], ARGV[4], ARGV[5]
local key = K.migration(id)
local state = redis.call('HGET', key, 'state')
if event == 'vm-arrived' then
  if state ~= 'preparing' and state ~= 'prepared' then return 0 end
  return redis.call('HSETNX', key, 'ev:' .. event, ARGV[1])
end
if event == 'destination-acked' then
  if state ~= 'preparing' and state ~= 'prepared' then return 0 end
  local fresh = redis.call('HSETNX', key, 'ev:' .. event, ARGV[1])
  if state == 'preparing' then redis.call('HSET', key, 'state', 'prepared') end
  return fresh
end
if state ~= 'committed' then return 0 end
local fresh = redis.call('HSETNX', key, 'ev:' .. event, ARGV[1])
if redis.call('HEXISTS', key, 'ev:peers-acked') == 1 and redis.call('HEXISTS', key, 'ev:source-cleaned') == 1 then
  redis.call('HSET', key, 'state', 'completed')
  redis.call('ZREM', K.migrationsActive(), id)
  redis.call('PEXPIRE', key, retention)
  pruneIndex(retention)
  return 2
end
return fresh
`;

/**
 * ARGV: id, port id, connections in the batch, complete (1/0), max entries per migration, the
 * batch's bytes. Appends a batch of a port's tracked connections (from the migration's source)
 * to the migration's handover stream while the migration is open. Returns the entries stored
 * so far, -1 when the migration is not open (nothing stored), or -2 - room when the batch does
 * not fit (nothing stored: the caller trims it to `room`). The complete batch of every port
 * records `connections-exported` once.
 */
const APPEND_CONNECTIONS = `
local id, port, n, complete, cap = ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local key = K.migration(id)
local state = redis.call('HGET', key, 'state')
if state ~= 'preparing' and state ~= 'prepared' then return -1 end
local have = tonumber(redis.call('HGET', key, 'conns') or '0')
if have + n > cap then return -2 - (cap - have) end
local stream = K.migrationConnections(id)
redis.call('XADD', stream, '*', 'b', ARGV[8])
have = redis.call('HINCRBY', key, 'conns', n)
redis.call('HINCRBY', key, 'cx:' .. port, n)
local ttl = redis.call('PTTL', key)
local expiresAt = tonumber(redis.call('ZSCORE', K.migrationExpiry(), id) or '0')
redis.call('PEXPIRE', stream, math.max(ttl, expiresAt - NOW, 1000) + 60000)
if complete == '1' then
  redis.call('HSETNX', key, 'cxdone:' .. port, '1')
  local record = cjson.decode(redis.call('HGET', key, 'record'))
  local total = 0
  for _, pid in ipairs(record.portIds) do
    if redis.call('HEXISTS', key, 'cxdone:' .. pid) == 0 then return have end
    total = total + tonumber(redis.call('HGET', key, 'cx:' .. pid) or '0')
  end
  redis.call('HSETNX', key, 'ev:connections-exported', ARGV[1] .. '::' .. total)
end
return have
`;

/**
 * ARGV: id, port id, installed, failed. Records what the destination inserted for one port; once
 * every port of the migration reported, records `connections-installed` (once) with the totals.
 * Ignored (0) when the migration is aborted, expired or gone.
 */
const CONNECTIONS_INSTALLED = `
local id, port = ARGV[3], ARGV[4]
local key = K.migration(id)
local state = redis.call('HGET', key, 'state')
if not state or state == 'aborted' or state == 'expired' then return 0 end
redis.call('HSET', key, 'ci:' .. port, ARGV[5] .. ':' .. ARGV[6])
local record = cjson.decode(redis.call('HGET', key, 'record'))
local installed, failed = 0, 0
for _, pid in ipairs(record.portIds) do
  local counts = redis.call('HGET', key, 'ci:' .. pid)
  if not counts then return 1 end
  local i, f = string.match(counts, '^(%d+):(%d+)$')
  installed, failed = installed + tonumber(i), failed + tonumber(f)
end
redis.call('HSETNX', key, 'ev:connections-installed', ARGV[1] .. '::' .. installed .. ':' .. failed)
return 1
`;

/** Who took a step, as the timeline shows it: the token (id, name, role) or the controller's own component. */
function byOf(actor: Actor): TimelineEntry['by'] {
  return actor.kind === 'token' ? { tokenId: actor.tokenId, name: actor.name, role: actor.role } : { system: actor.name };
}

const swapArgs = (swaps: PortSwap[]): string[] => swaps.flatMap((s) => [s.id, JSON.stringify(s.current), JSON.stringify(s.next)]);

/** Live migrations in Redis: one hash each, with open-migration indexes by port, VM, destination and expiry. */
@Injectable()
export class MigrationRepository {
  constructor(private readonly store: RedisStore) {
    store.defineScript('overlayMigrationPrepare', PREPARE);
    store.defineScript('overlayMigrationCommit', COMMIT);
    store.defineScript('overlayMigrationAbort', ABORT);
    store.defineScript('overlayMigrationMark', MARK);
    store.defineScript('overlayMigrationAppendConnections', APPEND_CONNECTIONS);
    store.defineScript('overlayMigrationConnectionsInstalled', CONNECTIONS_INSTALLED);
  }

  /**
   * Stores one batch of a port's tracked connections (`bytes`: the SyncResponse the destination
   * gets). Returns the migration's entries stored so far; `{closed}` when the migration is not
   * open; `{room}` when the batch does not fit under `cap` (nothing stored).
   */
  async appendConnections(id: string, portId: string, count: number, complete: boolean, cap: number, bytes: Buffer): Promise<{ stored: number } | { closed: true } | { room: number }> {
    const result = Number(await this.store.mutate('overlayMigrationAppendConnections', [id, portId, count, complete ? 1 : 0, cap, bytes], CONTROLLER));
    return result === -1 ? { closed: true } : result <= -2 ? { room: -2 - result } : { stored: result };
  }

  /** The batches stored after stream entry `after` ('0' = from the start), at most `limit`: [entry id, bytes]. */
  async connectionBatches(id: string, after: string, limit: number): Promise<[string, Buffer][]> {
    const entries = (await this.store.read((r) => r.xrangeBuffer(this.store.keys.migrationConnections(id), `(${after}`, '+', 'COUNT', limit))) as [Buffer, Buffer[]][];
    return entries.map(([entryId, fields]) => [entryId.toString(), fields[1]]);
  }

  /** Records the destination's report for one port (see CONNECTIONS_INSTALLED). */
  async connectionsInstalled(id: string, portId: string, installed: number, failed: number): Promise<void> {
    await this.store.mutate('overlayMigrationConnectionsInstalled', [id, portId, installed, failed], CONTROLLER);
  }

  /** `{revision, id}` of the new migration; revision 0 = an identical open one (its id); -1 = a port changed, retry. */
  async prepare(record: MigrationRecord, key: string, expiresAtMs: number, swaps: PortSwap[], actor: Actor): Promise<{ revision: number; id: string }> {
    const [revision, id] = (await this.store.mutate('overlayMigrationPrepare', [
      record.id,
      key,
      record.vmId ?? '',
      record.sourceHostId,
      record.destinationHostId,
      expiresAtMs,
      JSON.stringify(record),
      swaps.length,
      ...swapArgs(swaps),
    ], actor)) as [number, string?];
    return { revision, id: id ?? record.id };
  }

  /** The commit's revision; 0 = already committed; -1 = a port changed, retry. */
  async commit(id: string, swaps: PortSwap[], actor: Actor): Promise<number> {
    const [revision] = (await this.store.mutate('overlayMigrationCommit', [id, swaps.length, ...swapArgs(swaps)], actor)) as [number];
    return revision;
  }

  /** The abort's (or expiry's) revision; 0 = already closed or not due; -1 = a port changed, retry. */
  async abort(id: string, final: 'aborted' | 'expired', retentionMs: number, swaps: PortSwap[], actor: Actor): Promise<number> {
    const [revision] = (await this.store.mutate('overlayMigrationAbort', [id, final, retentionMs, swaps.length, ...swapArgs(swaps)], actor)) as [number];
    return revision;
  }

  /** Whether the event was recorded now (`recorded`; `completed` when it was the last ack of a committed migration) or before, or does not apply (`unchanged`). */
  async mark(id: string, event: MarkedEvent, retentionMs: number): Promise<'unchanged' | 'recorded' | 'completed'> {
    const outcome = (await this.store.mutate('overlayMigrationMark', [id, event, retentionMs], CONTROLLER)) as number;
    return outcome === 2 ? 'completed' : outcome === 1 ? 'recorded' : 'unchanged';
  }

  async get(id: string): Promise<Migration | undefined> {
    // Agents' messages name migrations: an id that is none builds no key (`<id>:connections` named a stream).
    if (!isResourceId(id)) {
      return undefined;
    }
    const fields = await this.store.read((r) => r.hgetall(this.store.keys.migration(id)));
    if (!fields.record) {
      return undefined;
    }
    const timeline: TimelineEntry[] = [];
    for (const event of MIGRATION_EVENTS) {
      const raw = fields[`ev:${event}`];
      if (raw !== undefined) {
        const [at, revision, connections, failed] = raw.split(':');
        timeline.push({
          event: event,
          at: new Date(Number(at)).toISOString(),
          ...(revision ? { revision: Number(revision) } : {}),
          ...(connections ? { connections: Number(connections) } : {}),
          ...(failed ? { failed: Number(failed) } : {}),
          ...(fields[`by:${event}`] ? { by: byOf(JSON.parse(fields[`by:${event}`]) as Actor) } : {}),
        });
      }
    }
    timeline.sort((a, b) => a.at.localeCompare(b.at) || MIGRATION_EVENTS.indexOf(a.event) - MIGRATION_EVENTS.indexOf(b.event));
    return { ...(JSON.parse(fields.record) as MigrationRecord), state: fields.state as MigrationState, timeline };
  }

  /**
   * Migrations newest first, from after `cursor` (an id), those `keep` accepts, at most `limit`.
   * Reads at most MIGRATION_SCAN_LIMIT index entries per call: past it, answers what it found with
   * a cursor to go on (a selective filter over a long history pages on rather than reading it all).
   * Index entries whose migration is gone (retention passed) are dropped on the way.
   */
  async list(limit: number, cursor: string | undefined, keep: (m: Migration) => boolean): Promise<{ items: Migration[]; nextCursor: string | null }> {
    const index = this.store.keys.migrationIndex();
    const items: Migration[] = [];
    let from = cursor === undefined ? '+' : `(${cursor}`;
    for (let scanned = 0; scanned < MIGRATION_SCAN_LIMIT; ) {
      const ids = await this.store.read((r) => r.zrevrangebylex(index, from, '-', 'LIMIT', 0, SCAN_CHUNK));
      if (ids.length === 0) {
        return { items, nextCursor: null };
      }
      const migrations = await Promise.all(ids.map((id) => this.get(id)));
      const gone = ids.filter((_, i) => migrations[i] === undefined);
      if (gone.length) {
        await this.store.redis.zrem(index, ...gone);
      }
      for (let i = 0; i < ids.length; i++) {
        const m = migrations[i];
        if (m && keep(m)) {
          items.push(m);
          if (items.length === limit) {
            // One more may follow: the cursor is this one's id (an empty next page is possible, never a skipped item).
            return { items, nextCursor: ids[i] };
          }
        }
      }
      scanned += ids.length;
      from = `(${ids[ids.length - 1]}`;
      if (ids.length < SCAN_CHUNK) {
        return { items, nextCursor: null };
      }
    }
    return { items, nextCursor: from.slice(1) };
  }

  /** The part of a migration that never changes (its hosts, its ports), with one HGET; undefined when there is none. */
  async record(id: string): Promise<MigrationRecord | undefined> {
    const json = await this.store.read((r) => r.hget(this.store.keys.migration(id), 'record'));
    return json === null ? undefined : (JSON.parse(json) as MigrationRecord);
  }

  /** Ids of open migrations due to expire at `nowMs`, at most `limit`. */
  due(nowMs: number, limit: number): Promise<string[]> {
    return this.store.read((r) => r.zrangebyscore(this.store.keys.migrationExpiry(), '-inf', nowMs, 'LIMIT', 0, limit));
  }

  /** Ids of migrations whose timeline is not complete (open, or committed and not every ack seen). */
  active(limit: number): Promise<string[]> {
    return this.store.read((r) => r.zrange(this.store.keys.migrationsActive(), 0, limit - 1));
  }

  /** How many migrations whose timeline is not complete are in each state (read for at most `limit` of them). */
  async unfinishedByState(limit: number): Promise<Map<MigrationState, number>> {
    const ids = await this.active(limit);
    const states = await Promise.all(ids.map((id) => this.store.read((r) => r.hget(this.store.keys.migration(id), 'state'))));
    const out = new Map<MigrationState, number>();
    for (const state of states) {
      if (state !== null) {
        out.set(state as MigrationState, (out.get(state as MigrationState) ?? 0) + 1);
      }
    }
    return out;
  }

  /** The raw port records (as stored), by id; undefined for a missing one. */
  async ports(ids: string[]): Promise<(Port | undefined)[]> {
    const rows = await this.store.read((r) => r.hmget(this.store.keys.ports(), ...ids));
    return rows.map((json) => (json === null ? undefined : (JSON.parse(json) as Port)));
  }
}
