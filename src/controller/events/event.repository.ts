import { Inject, Injectable } from '@nestjs/common';
import type { Actor } from '../auth/principal';
import { ControllerConfig } from '../config';
import { RedisStore } from '../store/redis-store';

/**
 * The audit trail (a Redis stream, `{prefix}:events`): one entry per accepted write, appended by
 * the write's own script (lua-prelude.ts `audit`), and one per refused call (401, 403), appended
 * here. Entry ids are Redis' clock (ms), so `since`/`until` are ranges of ids.
 */
export interface AuditEvent {
  /** The stream entry id: the cursor for the next page. */
  id: string;
  at: string;
  type: 'write' | 'denied';
  actor: Actor | { kind: 'anonymous'; source: string; method: string; route: string };
  /** The revision the write made; null for writes outside the desired state (tokens) and refusals. */
  revision: number | null;
  /** What the write touched. */
  resources: { kind: string; id: string }[];
  /** A refusal's code (UNAUTHENTICATED, FORBIDDEN) and why. */
  code?: string;
  reason?: string;
}

export interface EventFilter {
  sinceMs?: number;
  untilMs?: number;
  /** A token id or name. */
  actor?: string;
  resourceId?: string;
  kind?: string;
  type?: AuditEvent['type'];
}

/** The most entries one page request reads before it answers with what it found (and a cursor to go on). */
export const EVENT_SCAN_LIMIT = 10_000;
const SCAN_CHUNK = 500;

function parseEntry([id, fields]: [string, string[]]): AuditEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) {
    f[fields[i]] = fields[i + 1];
  }
  const event: AuditEvent = {
    id,
    at: new Date(Number(id.slice(0, id.indexOf('-')))).toISOString(),
    type: f.type === 'denied' ? 'denied' : 'write',
    actor: JSON.parse(f.actor ?? '{"kind":"system","name":"unknown"}') as AuditEvent['actor'],
    revision: f.rev ? Number(f.rev) : null,
    resources: f.res
      ? f.res.split(',').map((r) => {
          const colon = r.indexOf(':');
          return { kind: r.slice(0, colon), id: r.slice(colon + 1) };
        })
      : [],
  };
  if (f.code !== undefined) {
    event.code = f.code;
    event.reason = f.reason;
  }
  return event;
}

function matches(event: AuditEvent, filter: EventFilter): boolean {
  if (filter.type !== undefined && event.type !== filter.type) {
    return false;
  }
  if (filter.actor !== undefined) {
    const a = event.actor;
    if (!(a.kind === 'token' && (a.tokenId === filter.actor || a.name === filter.actor)) && !(a.kind === 'system' && a.name === filter.actor)) {
      return false;
    }
  }
  if (filter.resourceId !== undefined && !event.resources.some((r) => r.id === filter.resourceId)) {
    return false;
  }
  if (filter.kind !== undefined && !event.resources.some((r) => r.kind === filter.kind)) {
    return false;
  }
  return true;
}

@Injectable()
export class EventRepository {
  constructor(
    private readonly store: RedisStore,
    @Inject(ControllerConfig) private readonly config: ControllerConfig,
  ) {}

  /** Appends a refused call; trims what is past retention, like the writes do. */
  async recordDenied(actor: AuditEvent['actor'], code: string, reason: string): Promise<void> {
    const minId = Date.now() - this.config.eventsRetentionSeconds * 1000;
    await this.store.read((r) => r.xadd(this.store.keys.events(), 'MINID', '~', minId, '*', 'type', 'denied', 'actor', JSON.stringify(actor), 'code', code, 'reason', reason));
  }

  /**
   * Newest first: the events before `cursor` (an entry id; none: from now), within the filter,
   * at most `limit`. Filters other than time are applied while reading; a page stops after
   * EVENT_SCAN_LIMIT entries even if not full, and its `nextCursor` goes on from there.
   */
  async list(limit: number, cursor: string | undefined, filter: EventFilter): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
    const key = this.store.keys.events();
    let end = cursor === undefined ? (filter.untilMs === undefined ? '+' : `${filter.untilMs}-18446744073709551615`) : `(${cursor}`;
    if (cursor !== undefined && filter.untilMs !== undefined && Number(cursor.split('-')[0]) > filter.untilMs) {
      end = `${filter.untilMs}-18446744073709551615`;
    }
    const start = filter.sinceMs === undefined ? '-' : `${filter.sinceMs}-0`;
    const items: AuditEvent[] = [];
    let scanned = 0;
    for (;;) {
      const chunk = (await this.store.read((r) => r.xrevrange(key, end, start, 'COUNT', SCAN_CHUNK))) as [string, string[]][];
      for (const entry of chunk) {
        scanned++;
        const event = parseEntry(entry);
        if (matches(event, filter)) {
          items.push(event);
          if (items.length === limit) {
            return { items, nextCursor: event.id };
          }
        }
        if (scanned >= EVENT_SCAN_LIMIT) {
          return { items, nextCursor: event.id };
        }
      }
      if (chunk.length < SCAN_CHUNK) {
        return { items, nextCursor: null };
      }
      end = `(${chunk[chunk.length - 1][0]}`;
    }
  }
}
