import { Inject, Injectable } from '@nestjs/common';
import type { Actor } from '../auth/principal';
import { ControllerConfig } from '../config';
import { RedisStore } from '../store/redis-store';

/**
 * The audit trail, two Redis streams read as one, newest first: `{prefix}:events`, one entry per
 * accepted write, appended by the write's own script (lua-prelude.ts `audit`), and
 * `{prefix}:events:denied`, one per refused call (401, 403), appended here and capped in length
 * (a flood of refused calls must not grow Redis without bound, nor push out the writes). Entry
 * ids are Redis' clock (ms), so `since`/`until` are ranges of ids. An event's id is its entry id,
 * with `-d` after it for a refusal (the streams number their entries independently).
 */
export interface AuditEvent {
  /** The stream entry id (`-d` after it for a refusal): the cursor for the next page. */
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
/** The largest sequence part of a stream id: `<ms>-MAX_SEQ` is the last id of that ms. */
const MAX_SEQ = '18446744073709551615';

function parseEntry([entryId, fields]: [string, string[]], denied: boolean): AuditEvent {
  const id = denied ? `${entryId}-d` : entryId;
  const f: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) {
    f[fields[i]] = fields[i + 1];
  }
  const event: AuditEvent = {
    id,
    at: new Date(Number(entryId.slice(0, entryId.indexOf('-')))).toISOString(),
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

/** A page cursor: the id of the last event given, in its stream. */
function parseCursor(cursor: string): { entryId: string; denied: boolean } {
  return cursor.endsWith('-d') ? { entryId: cursor.slice(0, -2), denied: true } : { entryId: cursor, denied: false };
}

/** Stream ids `<ms>-<seq>` in order (both parts may exceed 2^53). */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as !== bs ? (as < bs ? -1 : 1) : 0;
}

@Injectable()
export class EventRepository {
  constructor(
    private readonly store: RedisStore,
    @Inject(ControllerConfig) private readonly config: ControllerConfig,
  ) {}

  /** Appends a refused call, keeping at most about OVERLAY_DENIED_EVENTS_MAX_LENGTH (past retention they are never listed). */
  async recordDenied(actor: AuditEvent['actor'], code: string, reason: string): Promise<void> {
    const key = this.store.keys.deniedEvents();
    await this.store.read((r) => r.xadd(key, 'MAXLEN', '~', this.config.deniedEventsMaxLength, '*', 'type', 'denied', 'actor', JSON.stringify(actor), 'code', code, 'reason', reason));
  }

  /**
   * Newest first: the events before `cursor` (an entry id; none: from now), within the filter,
   * at most `limit`; `nextCursor` is null when no more match. Filters other than time are applied
   * while reading; a page stops after EVENT_SCAN_LIMIT entries even if not full, and its
   * `nextCursor` goes on from there. Events past retention are never listed: the stream is
   * trimmed a whole node at a time (XADD MINID ~), so some may remain a while.
   */
  async list(limit: number, cursor: string | undefined, filter: EventFilter, now = Date.now()): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
    const sinceMs = Math.max(filter.sinceMs ?? 0, now - this.config.eventsRetentionSeconds * 1000);
    if (filter.untilMs !== undefined && filter.untilMs < sinceMs) {
      return { items: [], nextCursor: null };
    }
    const start = `${sinceMs}-0`;
    const top = filter.untilMs === undefined ? '+' : `${filter.untilMs}-${MAX_SEQ}`;
    // A cursor past `until` (the filter changed between pages) starts at `until`.
    const from = cursor !== undefined && (filter.untilMs === undefined || Number(cursor.split('-')[0]) <= filter.untilMs) ? parseCursor(cursor) : undefined;
    // In one ms, a write sorts before a refusal: after a write's id, the refusals of that ms are still to come.
    const writes = filter.type === 'denied' ? undefined : this.newestFirst(this.store.keys.events(), from ? `(${from.entryId}` : top, start, false, limit);
    const denials =
      filter.type === 'write' ? undefined : this.newestFirst(this.store.keys.deniedEvents(), from ? (from.denied ? `(${from.entryId}` : from.entryId) : top, start, true, limit);
    const items: AuditEvent[] = [];
    let scanned = 0;
    let w = await writes?.next();
    let d = await denials?.next();
    for (;;) {
      const takeWrite = w && !w.done && (!d || d.done || compareIds(w.value.entryId, d.value.entryId) >= 0);
      const next = takeWrite ? w : d && !d.done ? d : undefined;
      if (!next || next.done) {
        return { items, nextCursor: null };
      }
      const event = next.value.event;
      scanned++;
      if (matches(event, filter)) {
        if (items.length === limit) {
          return { items, nextCursor: items[limit - 1].id }; // one more matches: there is a next page
        }
        items.push(event);
      }
      if (scanned >= EVENT_SCAN_LIMIT) {
        return { items, nextCursor: event.id };
      }
      if (takeWrite) {
        w = await writes!.next();
      } else {
        d = await denials!.next();
      }
    }
  }

  /** A stream's entries from `end` down to `start`, read in chunks: small first (an entry may be large, a batch's resources; most pages are short). */
  private async *newestFirst(key: string, end: string, start: string, denied: boolean, limit: number): AsyncGenerator<{ entryId: string; event: AuditEvent }> {
    let count = Math.min(limit + 1, SCAN_CHUNK);
    for (;;) {
      const chunk = (await this.store.read((r) => r.xrevrange(key, end, start, 'COUNT', count))) as [string, string[]][];
      for (const entry of chunk) {
        yield { entryId: entry[0], event: parseEntry(entry, denied) };
      }
      if (chunk.length < count) {
        return;
      }
      end = `(${chunk[chunk.length - 1][0]}`;
      count = Math.min(count * 2, SCAN_CHUNK);
    }
  }
}
