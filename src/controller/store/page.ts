import { ErrorCode, OverlayError } from '../errors';
import { type ResourceId } from '../../common/values';
import { parseId } from '../model/value-parsers';
import { integerParam, type QueryParam, type QuerySpec, type QueryValues } from '../http/query';
import type { RedisStore } from './redis-store';

/** One page of a list: `nextCursor` is passed back as `?cursor=` for the next page; null at the end. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** A page showing nothing, as a filter that matches nothing answers. */
export function emptyPage<T>(): Page<T> {
  return { items: [], nextCursor: null };
}

export interface PageRequest {
  limit: number;
  cursor?: string;
}

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

/** `?cursor=`: the last id of the previous page (`nextCursor`). */
const cursorParam: QueryParam<ResourceId> = {
  code: ErrorCode.InvalidCursor,
  schema: { type: 'string' },
  description: 'nextCursor of the previous page',
  parse(raw, name) {
    try {
      return parseId(raw, name);
    } catch {
      throw new OverlayError(ErrorCode.InvalidCursor, 'cursor must be the nextCursor of a previous page', { field: name });
    }
  },
};

/** `?limit=&cursor=`, taken by every list. */
export const PAGE_QUERY = {
  limit: integerParam({ min: 1, max: MAX_PAGE_LIMIT, default: DEFAULT_PAGE_LIMIT, description: 'items per page' }),
  cursor: cursorParam,
} satisfies QuerySpec;

/** The page a list query asks for. */
export function pageRequestOf(query: QueryValues<typeof PAGE_QUERY>): PageRequest {
  return query.cursor === undefined ? { limit: query.limit ?? DEFAULT_PAGE_LIMIT } : { limit: query.limit ?? DEFAULT_PAGE_LIMIT, cursor: query.cursor };
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
