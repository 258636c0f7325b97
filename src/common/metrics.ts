import { collectDefaultMetrics, Counter, Gauge, type Registry } from 'prom-client';
import { yieldToEventLoop } from './event-loop';

/**
 * prom-client's default metrics that `promtool check metrics` refuses: gauges whose names end in
 * `_total`, which Prometheus reserves for counters. The same counts stay, per type, in
 * `nodejs_active_handles`, `nodejs_active_requests` and `nodejs_active_resources`.
 */
const NOT_PROMETHEUS_CONVENTIONS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * Registers the process's own metrics on `registry`, as prom-client names them: CPU, resident
 * memory, heap (and per V8 space), external memory, open file descriptors, event-loop lag, GC
 * pauses, the Node version; and the part of external memory held in ArrayBuffers (Buffers:
 * sockets' and streams' data), which prom-client does not give. `eventLoopPrecisionMs`: how often
 * the event-loop lag is sampled (prom-client's default, 10 ms, is 100 wake-ups a second).
 */
export function registerProcessMetrics(registry: Registry, opts: { eventLoopPrecisionMs?: number } = {}): void {
  collectDefaultMetrics({ register: registry, ...(opts.eventLoopPrecisionMs === undefined ? {} : { eventLoopMonitoringPrecision: opts.eventLoopPrecisionMs }) });
  for (const name of NOT_PROMETHEUS_CONVENTIONS) {
    registry.removeSingleMetric(name);
  }
  scrapedGauge(registry, 'nodejs_array_buffers_bytes', 'Memory held in ArrayBuffers and Buffers (part of nodejs_external_memory_bytes), bytes', [], () => [[{}, process.memoryUsage().arrayBuffers]]);
}

/** A sample: its labels and value. */
export type Sample<L extends string> = [labels: Partial<Record<L, string>>, value: number];

/**
 * A gauge computed when scraped: `read` returns its samples (awaited before anything is set, so
 * concurrent scrapes never see half of one), and only those are exposed.
 */
export function scrapedGauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Sample<L>[] | Promise<Sample<L>[]>): Gauge<L> {
  return new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      const samples = await read();
      this.reset();
      for (const [labels, value] of samples) {
        this.set(labels, value);
      }
    },
  });
}

/** A counter whose total is kept elsewhere (a field that only grows), read when scraped. */
export function scrapedCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Sample<L>[]): Counter<L> {
  return new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      const samples = read();
      this.reset();
      for (const [labels, value] of samples) {
        this.inc(labels, value);
      }
    },
  });
}

/** Buckets (s) of the agent's apply timings: a reconcile pass and an nft load, 5 ms to 30 s. */
export const APPLY_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * A gauge of one label with a series per host (thousands of them), rendered by
 * renderGaugeFamilies: `labels[i]` has `values[i]`. Columns rather than a pair per series, so
 * that a scrape holds a few arrays (typed ones off the heap) instead of thousands of objects.
 */
export interface GaugeFamily {
  name: string;
  help: string;
  label: string;
  labels: readonly string[];
  values: ArrayLike<number>;
}

/** Series rendered between two turns of the event loop (under a millisecond of work on an idle core). */
export const RENDER_SLICE_LINES = 1_000;

/** Prometheus' escapes: `\\` and newline in HELP; those and `"` in a label value (as prom-client). */
const escapeHelp = (s: string): string => (/[\\\n]/.test(s) ? s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : s);
const escapeLabel = (s: string): string => (/[\\\n"]/.test(s) ? escapeHelp(s).replace(/"/g, '\\"') : s);
const valueText = (v: number): string => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : `${v}`);

/**
 * The UTF-8 text of gauge families whose series are one per host, exactly as prom-client's
 * registry renders them (the same lines; metrics.spec.ts compares them), to be appended to its
 * text. Why not prom-client Gauges: each keeps a labels object per series, hashes it when set and
 * formats it when scraped; at 5,000 hosts (six families, 30,000 series) that was 70-160 ms of
 * the replica's event loop per scrape and its garbage a major collection after (the scale bench's
 * propagation tail).
 *
 * The lines are written into a Buffer (off the V8 heap), which is what is sent: a string grown
 * line by line (`+=`) stays reachable, a chain of 30,000 pieces, until the end, and a 1.7 MB
 * string made from the buffer would be encoded once more by the socket. The event loop gets a
 * turn every RENDER_SLICE_LINES series, so that a scrape never holds it for long (a replica's
 * writes and agents' acks go on between the slices).
 */
export async function renderGaugeFamilies(families: readonly GaugeFamily[]): Promise<Buffer> {
  let buffer = Buffer.allocUnsafe(64 * 1024);
  let used = 0;
  const put = (text: string): void => {
    // A UTF-16 unit is at most 3 bytes of UTF-8.
    if (buffer.length - used < text.length * 3) {
      const larger = Buffer.allocUnsafe(Math.max(buffer.length * 2, used + text.length * 3));
      buffer.copy(larger, 0, 0, used);
      buffer = larger;
    }
    used += buffer.write(text, used);
  };
  let sliceLeft = RENDER_SLICE_LINES;
  for (const [i, { name, help, label, labels, values }] of families.entries()) {
    put(`${i > 0 ? '\n\n' : ''}# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} gauge`);
    const start = `\n${name}{${label}="`;
    for (let j = 0; j < labels.length; j++) {
      put(`${start}${escapeLabel(labels[j])}"} ${valueText(values[j])}`);
      if (--sliceLeft === 0) {
        sliceLeft = RENDER_SLICE_LINES;
        await yieldToEventLoop();
      }
    }
  }
  put('\n');
  return buffer.subarray(0, used);
}
