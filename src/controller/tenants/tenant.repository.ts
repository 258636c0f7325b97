import { Injectable } from '@nestjs/common';
import { RedisStore } from '../store/redis-store';
import { readPage, readRecord, type Page, type PageRequest } from '../store/page';
import type { Tenant } from './tenant.model';

const CREATE = `
local id, name, json = ARGV[3], ARGV[4], ARGV[5]
local existing = redis.call('HGET', K.tenants(), id)
if existing then return { 0, existing } end
if redis.call('HEXISTS', K.tenantNames(), name) == 1 then
  fail('TENANT_NAME_TAKEN', 'name', 'a tenant named ' .. name .. ' already exists')
end
redis.call('HSET', K.tenantNames(), name, id)
redis.call('HSET', K.tenants(), id, json)
redis.call('ZADD', K.tenantIndex(), 0, id)
return { commit({ op('tenant', id, json) }), json }
`;

const DELETE = `
local id = ARGV[3]
local json = redis.call('HGET', K.tenants(), id)
if not json then fail('TENANT_NOT_FOUND', 'id', 'no tenant ' .. id) end
local n = redis.call('ZCARD', K.tenantSegments(id))
if n > 0 then
  fail('TENANT_HAS_SEGMENTS', 'id', 'tenant ' .. id .. ' still has ' .. n .. ' segment(s); delete them first')
end
redis.call('HDEL', K.tenantNames(), cjson.decode(json).name)
redis.call('HDEL', K.tenants(), id)
redis.call('ZREM', K.tenantIndex(), id)
return commit({ op('tenant', id, nil, json) })
`;

/** Tenants in Redis. Creating with an id that exists returns the stored tenant (a retried call is applied once). */
@Injectable()
export class TenantRepository {
  constructor(private readonly store: RedisStore) {
    store.defineScript('overlayTenantCreate', CREATE);
    store.defineScript('overlayTenantDelete', DELETE);
  }

  async create(tenant: Tenant): Promise<Tenant> {
    const [, json] = (await this.store.mutate('overlayTenantCreate', [tenant.id, tenant.name, JSON.stringify(tenant)])) as [number, string];
    return JSON.parse(json) as Tenant;
  }

  async delete(id: string): Promise<number> {
    return (await this.store.mutate('overlayTenantDelete', [id])) as number;
  }

  get(id: string): Promise<Tenant | undefined> {
    return readRecord<Tenant>(this.store, this.store.keys.tenants(), id);
  }

  list(page: PageRequest): Promise<Page<Tenant>> {
    return readPage<Tenant>(this.store, this.store.keys.tenantIndex(), this.store.keys.tenants(), page);
  }
}
