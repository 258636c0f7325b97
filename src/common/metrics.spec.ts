import { Gauge, Registry } from 'prom-client';
import { registerProcessMetrics, renderGaugeFamilies, RENDER_SLICE_LINES, scrapedCounter, scrapedGauge, type GaugeFamily } from './metrics';

describe('metrics helpers', () => {
  it("registers prom-client's process metrics but the gauges named like counters", async () => {
    const registry = new Registry();
    registerProcessMetrics(registry);
    const text = await registry.metrics();
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(text).toMatch(/^nodejs_heap_space_size_used_bytes\{space="old"\} \d+/m);
    expect(text).toMatch(/^nodejs_array_buffers_bytes \d+/m);
    expect([...text.matchAll(/^# TYPE (\S+_total) (\S+)$/gm)].filter(([, , type]) => type !== 'counter').map(([, name]) => name)).toEqual([]);
  });

  it('samples the event-loop lag as often as asked (the agent: every 100 ms rather than 10)', async () => {
    const registry = new Registry();
    registerProcessMetrics(registry, { eventLoopPrecisionMs: 100 });
    // Each scrape resets the lag histogram; before a sample its max reads 0 (its min, int64's largest).
    let sample = { min: NaN, max: 0 };
    for (const deadline = Date.now() + 5_000; !(sample.max > 0) && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 250));
      const text = await registry.metrics();
      const stat = (name: string) => Number(new RegExp(`^nodejs_eventloop_lag_${name}_seconds (\\S+)`, 'm').exec(text)?.[1]);
      sample = { min: stat('min'), max: stat('max') };
    }
    // A sample is taken each period, so none is shorter than it (at 10 ms they are ~0.01 s).
    expect(sample.min).toBeGreaterThanOrEqual(0.09);
    expect(sample.min).toBeLessThan(5);
  });

  it('exposes exactly the samples read at scrape time: a gauge forgets the series no longer read; a counter takes the total as kept', async () => {
    const registry = new Registry();
    let hosts = [
      ['a', 1],
      ['b', 2],
    ] as [string, number][];
    let total = 5;
    scrapedGauge(registry, 'x_up', 'x', ['host'], async () => hosts.map(([host, v]) => [{ host }, v]));
    scrapedCounter(registry, 'x_sent_total', 'x', [], () => [[{}, total]]);
    expect(await registry.metrics()).toContain('x_up{host="a"} 1\nx_up{host="b"} 2\n');
    hosts = [['b', 3]];
    total = 7;
    const text = await registry.metrics();
    expect(text).toContain('x_up{host="b"} 3\n');
    expect(text).not.toContain('host="a"');
    expect(text).toContain('x_sent_total 7\n');
  });

  /** A family from (label value, value) pairs. */
  const familyOf = (name: string, help: string, label: string, samples: readonly (readonly [string, number])[]): GaugeFamily => ({ name, help, label, labels: samples.map(([l]) => l), values: samples.map(([, v]) => v) });
  const rendered = async (families: GaugeFamily[]): Promise<string> => (await renderGaugeFamilies(families)).toString('utf8');

  it("renders per-host gauge families line for line as prom-client's registry does, escapes included", async () => {
    const samples: Record<string, (readonly [string, number])[]> = {
      x_queue: [],
      x_up: [
        ['a', 1],
        ['quote"d', 0],
        ['back\\slash', -2.5],
        ['new\nline', 1e21],
        ['ünïcode', 1_765_000_000.123],
        ['emoji 🖥', 3],
        ['inf', Infinity],
        ['-inf', -Infinity],
      ],
      // Past the renderer's first 64 KB and several slices, in multi-byte UTF-8 (its buffer grows; no character cut).
      x_lag: Array.from({ length: 3 * RENDER_SLICE_LINES }, (_, i) => [`hôte-${i}-✓`, i * 7] as const),
    };
    const families: GaugeFamily[] = [
      familyOf('x_queue', 'queued on a "host"\\stream\nsecond line', 'host', samples.x_queue),
      familyOf('x_up', 'plain', 'host', samples.x_up),
      familyOf('x_lag', 'lag', 'node', samples.x_lag),
    ];
    const registry = new Registry();
    registry.registerMetric(new Gauge({ name: 'x_other', help: 'other', registers: [] }));
    for (const f of families) {
      const gauge = new Gauge({ name: f.name, help: f.help, labelNames: [f.label], registers: [registry] });
      for (const [value, n] of samples[f.name]) {
        gauge.set({ [f.label]: value }, n);
      }
    }
    const other = new Registry();
    other.registerMetric(new Gauge({ name: 'x_other', help: 'other', registers: [] }));
    expect(`${await other.metrics()}\n${await rendered(families)}`).toBe(await registry.metrics());
    expect(await rendered(families)).toContain('x_up{host="quote\\"d"} 0\nx_up{host="back\\\\slash"} -2.5\nx_up{host="new\\nline"} 1e+21\n');
  });

  it('renders typed columns alike (the per-host families are Uint8Array and Float64Array)', async () => {
    const family: GaugeFamily = { name: 'x_up', help: 'x', label: 'host', labels: ['a', 'b'], values: Float64Array.of(1.5, 2 ** 40) };
    expect(await rendered([family, { ...family, name: 'x_on', values: Uint8Array.of(1, 0) }])).toBe(
      '# HELP x_up x\n# TYPE x_up gauge\nx_up{host="a"} 1.5\nx_up{host="b"} 1099511627776\n\n# HELP x_on x\n# TYPE x_on gauge\nx_on{host="a"} 1\nx_on{host="b"} 0\n',
    );
  });

  it('lets the event loop run between slices of a large render (a scrape does not hold it in one piece)', async () => {
    const lines = 10 * RENDER_SLICE_LINES;
    const family: GaugeFamily = { name: 'x_up', help: 'x', label: 'host', labels: Array.from({ length: lines }, (_, i) => `h${i}`), values: new Float64Array(lines) };
    let turns = 0;
    let rendering = true;
    const count = (): void => {
      if (rendering) {
        turns++;
        setImmediate(count);
      }
    };
    setImmediate(count);
    const text = await rendered([family]);
    rendering = false;
    expect(text.split('\n').filter((l) => l.startsWith('x_up{')).length).toBe(lines);
    // One turn of the loop per slice, about: not zero (one piece), not one per line.
    expect(turns).toBeGreaterThanOrEqual(lines / RENDER_SLICE_LINES - 1);
    expect(turns).toBeLessThanOrEqual(lines / RENDER_SLICE_LINES + 1);
  });

  it('spells NaN as Prometheus does (prom-client writes Nan)', async () => {
    expect(await rendered([{ name: 'x', help: 'x', label: 'host', labels: ['a'], values: [NaN] }])).toBe('# HELP x x\n# TYPE x gauge\nx{host="a"} NaN\n');
  });
});
