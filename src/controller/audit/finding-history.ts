import { Injectable } from '@nestjs/common';
import { systemActor } from '../auth/principal';
import { RedisStore } from '../store/redis-store';
import type { AuditReport } from './audit';
import type { FindingSubject, Severity } from './audit.types';

/**
 * The findings' history: a finding opens when an evaluation of the audit first finds it and
 * closes when one no longer does, each with the evaluation's time. Open findings live in a hash
 * by finding id, closed ones in a sorted set by the time they closed (kept as long as the audit
 * trail keeps events, OVERLAY_EVENTS_RETENTION_SECONDS, and at most MAX_CLOSED_FINDINGS).
 *
 * Every replica evaluates (AuditEvaluator, and each GET /v1/audit), so two recordings can race:
 * each evaluation takes a sequence number before it reads anything, and the script refuses one
 * older than the newest recorded (a slow evaluation of an older state must not reopen what a
 * newer one closed); a recording also names the version of the open set it diffed against and
 * is refused when another replica changed it meanwhile (it then diffs again).
 */

/** The most closed findings kept; the oldest go first. */
export const MAX_CLOSED_FINDINGS = 100_000;
const ATTEMPTS = 3;
const RECORDER = systemActor('audit');

export interface OpenFinding {
  id: string;
  recommendation: string;
  severity: Severity;
  subject: FindingSubject;
  evidence: string;
  /** ms */
  openedAt: number;
}

export interface ClosedFinding extends OpenFinding {
  /** ms */
  closedAt: number;
}

/** A finding of the history as the API shows it. */
export interface FindingRecord {
  id: string;
  recommendation: string;
  severity: Severity;
  subject: FindingSubject;
  evidence: string;
  openedAt: string;
  /** null while it is open. */
  closedAt: string | null;
}

export interface FindingFilter {
  /** Findings open at some time at or after it: still open, or closed at or after it. */
  sinceMs?: number;
  /** Findings opened at or before it. */
  untilMs?: number;
  state?: 'open' | 'closed';
  recommendation?: string;
  hostId?: string;
  severity?: Severity;
}

export interface FindingPage {
  /** When the history was last recorded (an evaluation of the audit); null before the first. */
  evaluatedAt: string | null;
  items: FindingRecord[];
  nextCursor: string | null;
}

/**
 * Pure: what a report changes in the open findings. A finding found again keeps its `openedAt`
 * (its severity and evidence may have changed: then it is rewritten); one no longer found closes at `now`.
 */
export function diffFindings(open: ReadonlyMap<string, OpenFinding>, report: AuditReport, now: number): { upserts: OpenFinding[]; closed: ClosedFinding[]; current: Map<string, OpenFinding> } {
  const current = new Map<string, OpenFinding>();
  const upserts: OpenFinding[] = [];
  for (const r of report.recommendations) {
    for (const f of r.findings) {
      const before = open.get(f.id);
      const next: OpenFinding = { id: f.id, recommendation: r.id, severity: f.severity, subject: f.subject, evidence: f.evidence, openedAt: before?.openedAt ?? now };
      current.set(f.id, next);
      if (!before || before.severity !== next.severity || before.evidence !== next.evidence || before.recommendation !== next.recommendation) {
        upserts.push(next);
      }
    }
  }
  const closed = [...open.values()].filter((f) => !current.has(f.id)).map((f) => ({ ...f, closedAt: now }));
  return { upserts, closed, current };
}

/** Pure: the report with each finding's `since` from the open findings. */
export function withSince(report: AuditReport, open: ReadonlyMap<string, OpenFinding>): AuditReport {
  return {
    ...report,
    recommendations: report.recommendations.map((r) => ({
      ...r,
      findings: r.findings.map((f) => {
        const at = open.get(f.id)?.openedAt;
        return { ...f, since: at === undefined ? null : new Date(at).toISOString() };
      }),
    })),
  };
}

/** A record's place in a list, newest opened first: `<openedAt, 15 digits>.<id>`, compared as text. */
const sortKey = (f: OpenFinding): string => `${String(f.openedAt).padStart(15, '0')}.${f.id}`;

const present = (f: OpenFinding | ClosedFinding): FindingRecord => ({
  id: f.id,
  recommendation: f.recommendation,
  severity: f.severity,
  subject: f.subject,
  evidence: f.evidence,
  openedAt: new Date(f.openedAt).toISOString(),
  closedAt: 'closedAt' in f ? new Date(f.closedAt).toISOString() : null,
});

/** The cursor a list gives: the last record's sort key. */
export const FINDING_CURSOR = /^\d{15}\.[0-9a-f]{16}(-\d{1,6})?$/;

const RECORD = `
local state = K.auditFindingsState()
local seq = tonumber(ARGV[3])
local version = redis.call('HGET', state, 'version') or '0'
if seq <= tonumber(redis.call('HGET', state, 'seq') or '0') then return {'stale', version} end
if version ~= ARGV[4] then return {'conflict', version} end
local open, closed = K.auditFindingsOpen(), K.auditFindingsClosed()
local i = 6
local upserts = tonumber(ARGV[i]); i = i + 1
for _ = 1, upserts do redis.call('HSET', open, ARGV[i], ARGV[i + 1]); i = i + 2 end
local closes = tonumber(ARGV[i]); i = i + 1
for _ = 1, closes do
  redis.call('HDEL', open, ARGV[i])
  redis.call('ZADD', closed, NOW, ARGV[i + 1])
  i = i + 2
end
redis.call('ZREMRANGEBYSCORE', closed, '-inf', '(' .. (NOW - EVENTS_KEEP_MS))
local excess = redis.call('ZCARD', closed) - tonumber(ARGV[5])
if excess > 0 then redis.call('ZREMRANGEBYRANK', closed, 0, excess - 1) end
if upserts + closes > 0 then version = tostring(tonumber(version) + 1) end
redis.call('HSET', state, 'version', version, 'seq', seq, 'at', NOW)
return {'ok', version}
`;

@Injectable()
export class FindingHistory {
  /** The open findings as of `version` (read whole once, then kept current by this replica's own recordings). */
  private cache: { version: string; open: Map<string, OpenFinding> } | null = null;

  constructor(private readonly store: RedisStore) {
    store.defineScript('auditRecordFindings', RECORD);
  }

  /** The sequence number of an evaluation about to start: take it before reading anything it audits. */
  async nextEvaluation(): Promise<number> {
    return this.store.redis.incr(this.store.keys.auditEvaluations());
  }

  /**
   * Records evaluation `seq`'s report at `now` and answers the open findings after it (after a
   * newer evaluation's, when this one came too late).
   */
  async record(report: AuditReport, seq: number, now = Date.now()): Promise<ReadonlyMap<string, OpenFinding>> {
    for (let attempt = 1; ; attempt++) {
      const { version, open } = await this.openFindings();
      const { upserts, closed, current } = diffFindings(open, report, now);
      const args: (string | number)[] = [seq, version, MAX_CLOSED_FINDINGS, upserts.length];
      upserts.forEach((f) => args.push(f.id, JSON.stringify(f)));
      args.push(closed.length);
      closed.forEach((f) => args.push(f.id, JSON.stringify(f)));
      const [outcome, after] = (await this.store.mutate('auditRecordFindings', args, RECORDER, now)) as [string, string];
      if (outcome === 'ok') {
        this.cache = { version: after, open: current };
        return current;
      }
      if (outcome === 'stale' || attempt >= ATTEMPTS) {
        return (await this.openFindings()).open;
      }
    }
  }

  /** When the history was last recorded (ms); null before the first recording. */
  async evaluatedAt(): Promise<number | null> {
    const at = await this.store.read((r) => r.hget(this.store.keys.auditFindingsState(), 'at'));
    return at ? Number(at) : null;
  }

  /** A page of the history, newest opened first. */
  async list(filter: FindingFilter, limit: number, cursor?: string): Promise<FindingPage> {
    const [{ open }, closedRaw, at] = await Promise.all([
      this.openFindings(),
      // Up to MAX_CLOSED_FINDINGS records: not read for a list of open ones (the status page's, every 2 s).
      filter.state === 'open' ? Promise.resolve([]) : this.store.read((r) => r.zrangebyscore(this.store.keys.auditFindingsClosed(), filter.sinceMs ?? '-inf', '+inf')),
      this.evaluatedAt(),
    ]);
    const closed = closedRaw.flatMap((raw) => parse<ClosedFinding>(raw));
    const all: (OpenFinding | ClosedFinding)[] = [...(filter.state === 'closed' ? [] : open.values()), ...(filter.state === 'open' ? [] : closed)];
    const matching = all
      .filter(
        (f) =>
          (filter.untilMs === undefined || f.openedAt <= filter.untilMs) &&
          (filter.recommendation === undefined || f.recommendation === filter.recommendation) &&
          (filter.hostId === undefined || f.subject.hostId === filter.hostId) &&
          (filter.severity === undefined || f.severity === filter.severity) &&
          (cursor === undefined || sortKey(f) < cursor),
      )
      .sort((a, b) => (sortKey(a) < sortKey(b) ? 1 : sortKey(a) > sortKey(b) ? -1 : 0));
    const page = matching.slice(0, limit);
    return {
      evaluatedAt: at === null ? null : new Date(at).toISOString(),
      items: page.map(present),
      nextCursor: matching.length > limit ? sortKey(page[page.length - 1]) : null,
    };
  }

  /** The open findings: the cached ones when the stored version has not moved, else read whole. */
  private async openFindings(): Promise<{ version: string; open: Map<string, OpenFinding> }> {
    const { keys } = this.store;
    const version = (await this.store.read((r) => r.hget(keys.auditFindingsState(), 'version'))) ?? '0';
    if (this.cache?.version === version) {
      return this.cache;
    }
    // The version and the set read together: a recording in between would pair one with the other's content.
    const [[, readVersion], [, raw]] = (await this.store.read((r) => r.multi().hget(keys.auditFindingsState(), 'version').hgetall(keys.auditFindingsOpen()).exec())) as [
      [unknown, string | null],
      [unknown, Record<string, string>],
    ];
    const open = new Map<string, OpenFinding>();
    for (const value of Object.values(raw)) {
      for (const f of parse<OpenFinding>(value)) {
        open.set(f.id, f);
      }
    }
    this.cache = { version: readVersion ?? '0', open };
    return this.cache;
  }
}

/** Values are written only by `record` above; one that cannot be read is skipped, never thrown. */
function parse<T extends OpenFinding>(raw: string): T[] {
  try {
    const value = JSON.parse(raw) as T;
    return typeof value?.id === 'string' && typeof value.openedAt === 'number' ? [value] : [];
  } catch {
    return [];
  }
}
