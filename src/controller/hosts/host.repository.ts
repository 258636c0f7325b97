import { type Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { RedisStore } from '../store/redis-store';
import { readPage, readRecord, type Page, type PageRequest } from '../store/page';
import type { Host } from '../model/host';

const CREATE = `
local id, name, vtep, json = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local existing = redis.call('HGET', K.hosts(), id)
if existing then return { 0, existing } end
local owner = redis.call('HGET', K.hostNames(), name)
if owner then fail('HOST_NAME_TAKEN', 'name', 'a host named ' .. name .. ' is registered as ' .. owner) end
owner = redis.call('HGET', K.hostVteps(), vtep)
if owner then fail('VTEP_IP_TAKEN', 'vtepIp', 'VTEP ' .. vtep .. ' belongs to host ' .. owner) end
redis.call('HSET', K.hostNames(), name, id)
redis.call('HSET', K.hostVteps(), vtep, id)
redis.call('HSET', K.hosts(), id, json)
redis.call('ZADD', K.hostIndex(), 0, id)
return { commit({ op('host', id, json) }), json }
`;

// Compare-and-set: the caller read 'expected' and derived 'json'; a concurrent change returns -1 and the caller retries.
const UPDATE = `
local id, expected, json, oldName, newName, oldVtep, newVtep = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local current = redis.call('HGET', K.hosts(), id)
if not current then fail('HOST_NOT_FOUND', 'id', 'no host ' .. id) end
if current ~= expected then return -1 end
if newName ~= oldName and redis.call('HEXISTS', K.hostNames(), newName) == 1 then
  fail('HOST_NAME_TAKEN', 'name', 'a host named ' .. newName .. ' exists')
end
if newVtep ~= oldVtep and redis.call('HEXISTS', K.hostVteps(), newVtep) == 1 then
  fail('VTEP_IP_TAKEN', 'vtepIp', 'VTEP ' .. newVtep .. ' belongs to another host')
end
redis.call('HDEL', K.hostNames(), oldName)
redis.call('HDEL', K.hostVteps(), oldVtep)
redis.call('HSET', K.hostNames(), newName, id)
redis.call('HSET', K.hostVteps(), newVtep, id)
redis.call('HSET', K.hosts(), id, json)
return commit({ op('host', id, json, current) })
`;

const DELETE = `
local id = ARGV[3]
local json = redis.call('HGET', K.hosts(), id)
if not json then fail('HOST_NOT_FOUND', 'id', 'no host ' .. id) end
local n = redis.call('ZCARD', K.hostPorts(id))
if n > 0 then fail('HOST_HAS_PORTS', 'id', 'host ' .. id .. ' still has ' .. n .. ' bound port(s); unbind or move them first') end
local uplinked = redis.call('ZRANGE', K.hostMirrorSessions(id), 0, 0)[1]
if uplinked then
  local others = redis.call('ZCARD', K.hostMirrorSessions(id)) - 1
  fail('HOST_HAS_MIRROR_SESSIONS', 'id', 'host ' .. id .. ' is the uplink sink of mirror session ' .. uplinked .. (others > 0 and (' and ' .. others .. ' other(s)') or '') .. '; change their sink or delete them first')
end
local incoming = redis.call('ZCARD', K.hostIncomingMigrations(id))
if incoming > 0 then fail('HOST_HAS_MIGRATIONS', 'id', 'host ' .. id .. ' is the destination of ' .. incoming .. ' open migration(s); commit or abort them first') end
local host = cjson.decode(json)
redis.call('HDEL', K.hostNames(), host.name)
redis.call('HDEL', K.hostVteps(), host.vtepIp)
redis.call('HDEL', K.hosts(), id)
redis.call('ZREM', K.hostIndex(), id)
redis.call('HDEL', K.agentApplied(), id)
redis.call('HDEL', K.agentSessions(), id)
redis.call('HDEL', K.agentLastErrors(), id)
redis.call('HDEL', K.agentPortFailures(), id)
redis.call('DEL', K.hostMirrorCounters(id))
redis.call('DEL', K.hostObserved(id))
return commit({ op('host', id, nil, json) })
`;

/** Hypervisor hosts in Redis; names and VTEP addresses are unique per deployment. */
@Injectable()
export class HostRepository {
  constructor(private readonly store: RedisStore) {
    store.defineScript('overlayHostCreate', CREATE);
    store.defineScript('overlayHostUpdate', UPDATE);
    store.defineScript('overlayHostDelete', DELETE);
  }

  /** Idempotent on the host id. */
  async create(host: Host, actor: Actor): Promise<Host> {
    const [, json] = (await this.store.mutate('overlayHostCreate', [host.id, host.name, host.vtepIp, JSON.stringify(host)], actor)) as [number, string];
    return JSON.parse(json) as Host;
  }

  /** Replaces `current` by `next` if nobody changed it meanwhile; false = it changed, read again. */
  async replace(current: Host, next: Host, actor: Actor): Promise<boolean> {
    const rev = (await this.store.mutate('overlayHostUpdate', [
      current.id,
      JSON.stringify(current),
      JSON.stringify(next),
      current.name,
      next.name,
      current.vtepIp,
      next.vtepIp,
    ], actor)) as number;
    return rev >= 0;
  }

  async delete(id: string, actor: Actor): Promise<number> {
    return (await this.store.mutate('overlayHostDelete', [id], actor)) as number;
  }

  get(id: string): Promise<Host | undefined> {
    return readRecord<Host>(this.store, this.store.keys.hosts(), id);
  }

  async getMany(ids: string[]): Promise<(Host | undefined)[]> {
    if (!ids.length) {
      return [];
    }
    const rows = await this.store.read((r) => r.hmget(this.store.keys.hosts(), ...ids));
    return rows.map((json) => (json === null ? undefined : (JSON.parse(json) as Host)));
  }

  list(page: PageRequest): Promise<Page<Host>> {
    return readPage<Host>(this.store, this.store.keys.hostIndex(), this.store.keys.hosts(), page);
  }
}
