import type { JsonHttpClient } from './http-client';

/**
 * Where the controller's resident memory goes, from its own GET /metrics (prom-client's process
 * metrics, and nodejs_array_buffers_bytes): the V8 heap (used of reserved, by space), memory
 * outside it that V8 knows of (external: Buffers, ArrayBuffers, native objects V8 is told about),
 * and the rest of the RSS (code, malloc'd memory V8 does not see: the HTTP/2 and TLS stacks'
 * buffers, thread stacks, allocator slack).
 */
export interface MemoryBreakdown {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** V8 heap spaces: used and reserved bytes. */
  spaces: Record<string, { used: number; size: number }>;
}

function parse(text: string): MemoryBreakdown {
  const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  const spaces: MemoryBreakdown['spaces'] = {};
  for (const [, kind, space, v] of text.matchAll(/^nodejs_heap_space_size_(used|total)_bytes\{space="([^"]+)"\} (\S+)/gm)) {
    const entry = (spaces[space] ??= { used: 0, size: 0 });
    entry[kind === 'used' ? 'used' : 'size'] = Number(v);
  }
  return {
    rss: value('process_resident_memory_bytes'),
    heapTotal: value('nodejs_heap_size_total_bytes'),
    heapUsed: value('nodejs_heap_size_used_bytes'),
    external: value('nodejs_external_memory_bytes'),
    arrayBuffers: value('nodejs_array_buffers_bytes'),
    spaces,
  };
}

/** The breakdown now (the metrics token's GET /metrics), or undefined if the controller does not answer. */
export async function scrapeMemory(client: JsonHttpClient): Promise<MemoryBreakdown | undefined> {
  const text = await client.metrics();
  return text === undefined ? undefined : parse(text);
}

const MB = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;

/** One line per part, indented. */
export function breakdownLines(m: MemoryBreakdown, indent = '    '): string[] {
  const other = m.rss - m.heapTotal - m.external;
  const spaces = Object.entries(m.spaces)
    .filter(([, s]) => s.size >= 1e6)
    .sort(([, a], [, b]) => b.size - a.size)
    .map(([name, s]) => `${name.replace(/_space$/, '')} ${MB(s.used)}/${MB(s.size)}`)
    .join(', ');
  return [
    `${indent}RSS ${MB(m.rss)} = V8 heap ${MB(m.heapTotal)} (used ${MB(m.heapUsed)}) + external ${MB(m.external)} (ArrayBuffers ${MB(m.arrayBuffers)}) + the rest ${MB(other)} (code, malloc, stacks)`,
    `${indent}heap spaces (used/reserved): ${spaces}`,
  ];
}

/** Polls the breakdown every `intervalMs` and keeps the sample of largest RSS (the nearest to the peak a poll sees). */
export class PeakSampler {
  peak?: MemoryBreakdown;
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly client: JsonHttpClient,
    private readonly intervalMs = 2_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.busy) {
        return;
      }
      this.busy = true;
      void scrapeMemory(this.client)
        .then((m) => {
          if (m && (!this.peak || m.rss > this.peak.rss)) {
            this.peak = m;
          }
        })
        .finally(() => (this.busy = false));
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
