import type { JsonHttpClient } from './http-client';

/**
 * A controller's garbage collection over a phase, from its own GET /metrics (prom-client's
 * `nodejs_gc_duration_seconds` histogram, by kind: minor = scavenges, major = mark-compact
 * pauses, incremental = marking steps on the main thread, weakcb). Pauses are what a write in
 * flight waits for: the scale bench prints them beside each phase's CPU.
 */
export type GcTotals = Record<string, { count: number; seconds: number; over100ms: number }>;

/** The totals in a /metrics text (empty when it has none). */
export function parseGcTotals(text: string): GcTotals {
  const totals: GcTotals = {};
  const entry = (kind: string) => (totals[kind] ??= { count: 0, seconds: 0, over100ms: 0 });
  const kindOf = (labels: string) => /kind="([^"]+)"/.exec(labels)?.[1];
  const within100ms: Record<string, number> = {};
  for (const [, suffix, labels, value] of text.matchAll(/^nodejs_gc_duration_seconds_(sum|count|bucket)\{([^}]*)\} (\S+)/gm)) {
    const kind = kindOf(labels);
    if (kind === undefined) {
      continue;
    }
    if (suffix === 'sum') {
      entry(kind).seconds = Number(value);
    } else if (suffix === 'count') {
      entry(kind).count = Number(value);
    } else if (/le="0\.1"/.test(labels)) {
      within100ms[kind] = Number(value);
    }
  }
  for (const [kind, e] of Object.entries(totals)) {
    e.over100ms = e.count - (within100ms[kind] ?? e.count);
  }
  return totals;
}

/** The totals now, or undefined if the controller does not answer. */
export async function scrapeGc(client: JsonHttpClient): Promise<GcTotals | undefined> {
  const text = await client.metrics();
  return text === undefined ? undefined : parseGcTotals(text);
}

/** What happened between two readings. */
export function gcBetween(before: GcTotals, after: GcTotals): GcTotals {
  const delta: GcTotals = {};
  for (const [kind, a] of Object.entries(after)) {
    const b = before[kind] ?? { count: 0, seconds: 0, over100ms: 0 };
    delta[kind] = { count: a.count - b.count, seconds: a.seconds - b.seconds, over100ms: a.over100ms - b.over100ms };
  }
  return delta;
}

/** e.g. "minor 112 in 0.82 s, major 1 in 0.04 s, incremental 219 in 0.75 s; 2 pauses over 100 ms". */
export function gcText(d: GcTotals | undefined): string {
  if (!d) {
    return 'no GC figures (GET /metrics did not answer)';
  }
  const kinds = ['minor', 'major', 'incremental'].filter((k) => d[k]?.count);
  const over = Object.values(d).reduce((n, e) => n + e.over100ms, 0);
  const parts = kinds.map((k) => `${k} ${d[k].count} in ${d[k].seconds.toFixed(2)} s`);
  return `${parts.join(', ') || 'none'}; ${over} pause(s) over 100 ms`;
}
