import { ErrorCode, OverlayError } from '../../common/errors';
import { parseId } from '../../common/values';
import type { RedisStore } from './redis-store';

/** One page of a list: `nextCursor` is passed back as `?cursor=` for the next page; null at the end. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PageRequest {
  limit: number;
  cursor?: string;
}

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

/** Parses `?limit=&cursor=`; the cursor is the last id of the previous page. */
export function parsePageQuery(query: Record<string, unknown>): PageRequest {
  let limit = DEFAULT_PAGE_LIMIT;
  if (query.limit !== undefined) {
    const raw = typeof query.limit === 'string' ? query.limit : '';
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_PAGE_LIMIT) {
      throw new OverlayError(ErrorCode.InvalidValue, `limit must be an integer between 1 and ${MAX_PAGE_LIMIT}`, { field: 'limit' });
    }
    limit = Number(raw);
  }
  if (query.cursor === undefined) {
    return { limit };
  }
  try {
    return { limit, cursor: parseId(typeof query.cursor === 'string' ? query.cursor : '', 'cursor') };
  } catch {
    throw new OverlayError(ErrorCode.InvalidCursor, 'cursor must be the nextCursor of a previous page', { field: 'cursor' });
  }
}

/**
 * Reads a page from an id index (a sorted set whose scores are all 0, so members sort by id,
 * and ids are UUIDv7: creation order) and the records from their hash.
 */
export async function readPage<T>(store: RedisStore, indexKey: string, hashKey: string, page: PageRequest): Promise<Page<T>> {
  const from = page.cursor ? `(${page.cursor}` : '-';
  const ids = await store.read((r) => r.zrangebylex(indexKey, from, '+', 'LIMIT', 0, page.limit + 1));
  const more = ids.length > page.limit;
  const pageIds = more ? ids.slice(0, page.limit) : ids;
  const records = pageIds.length ? await store.read((r) => r.hmget(hashKey, ...pageIds)) : [];
  const items = records.filter((json): json is string => json !== null).map((json) => JSON.parse(json) as T);
  return { items, nextCursor: more ? pageIds[pageIds.length - 1] : null };
}

export async function readRecord<T>(store: RedisStore, hashKey: string, id: string): Promise<T | undefined> {
  const json = await store.read((r) => r.hget(hashKey, id));
  return json === null ? undefined : (JSON.parse(json) as T);
}
