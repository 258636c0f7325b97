import { cpuPercentOfOneCore, parseNetstatCounter, parseStatCpu, parseStatusMemory } from '../bench/proc-stats';
import { gcBetween, gcText, parseGcTotals } from '../bench/gc-stats';
import { metricValue } from '../bench/agent-resources';

/** The benchmarks' readers of /proc/<pid>/status, /proc/<pid>/stat and the controllers' and agent's /metrics (bench/). */
describe('parseStatusMemory', () => {
  const status = ['Name:\tnode', 'VmPeak:\t 1234567 kB', 'VmHWM:\t  152340 kB', 'VmRSS:\t  140012 kB', 'RssAnon:\t   90000 kB', 'Threads:\t11', ''].join('\n');

  it('reads VmRSS and VmHWM, not the fields that start alike', () => {
    expect(parseStatusMemory(status)).toEqual({ rssKb: 140_012, hwmKb: 152_340 });
  });

  it('gives NaN for a field the text lacks (a kernel thread has no Vm lines)', () => {
    const memory = parseStatusMemory('Name:\tkthreadd\nState:\tS (sleeping)\n');
    expect(memory.rssKb).toBeNaN();
    expect(memory.hwmKb).toBeNaN();
  });
});

describe('parseStatCpu', () => {
  // Fields 14-17 (utime stime cutime cstime) are 523 71 300 45.
  const tail = 'S 1 9150 9150 0 -1 4194560 27004 3913 0 0 523 71 300 45 20 0 11 0 8804 1158590464 35003 18446744073709551615 1 1 0 0 0 0 0 4096 134234626 0 0 0 17 1 0 0 0 0 0';

  it("sums the process's own ticks and its reaped children's", () => {
    expect(parseStatCpu(`9167 (node) ${tail}`)).toEqual({ self: 594, children: 345 });
  });

  it('counts the fields from the last parenthesis: a command name may hold spaces and parentheses', () => {
    expect(parseStatCpu(`9167 (my (odd) name) ${tail}`)).toEqual({ self: 594, children: 345 });
  });

  it('refuses a line that is not one', () => {
    expect(() => parseStatCpu('no such process')).toThrow(/not a \/proc/);
    expect(() => parseStatCpu('1 (x) S 1 2')).toThrow(/field 14/);
  });
});

describe('cpuPercentOfOneCore', () => {
  it('is CPU seconds over wall time, in percent of one core', () => {
    expect(cpuPercentOfOneCore(10, 11.2, 60_000)).toBeCloseTo(2, 6);
    expect(cpuPercentOfOneCore(0, 3, 1_500)).toBeCloseTo(200, 6);
    expect(cpuPercentOfOneCore(0, 1, 0)).toBeNaN();
  });
});

describe('metricValue', () => {
  const text = [
    '# HELP overlay_agent_in_sync 1 when ...',
    '# TYPE overlay_agent_in_sync gauge',
    'overlay_agent_in_sync 1',
    'overlay_agent_in_sync_total 7',
    'overlay_agent_apply_seconds_count{pass="change",result="ok"} 12',
    'overlay_agent_apply_seconds_count{pass="periodic",result="ok"} 6',
    '',
  ].join('\n');

  it('reads a sample by its exact name, not one whose name it starts', () => {
    expect(metricValue(text, 'overlay_agent_in_sync')).toBe(1);
  });

  it('picks the sample whose labels match', () => {
    expect(metricValue(text, 'overlay_agent_apply_seconds_count', { pass: 'periodic', result: 'ok' })).toBe(6);
    expect(metricValue(text, 'overlay_agent_apply_seconds_count', { pass: 'retry' })).toBeNaN();
  });

  it('gives NaN for a metric that is not there', () => {
    expect(metricValue(text, 'overlay_agent_connected')).toBeNaN();
  });
});

describe('parseNetstatCounter', () => {
  const text = ['TcpExt: SyncookiesSent ListenOverflows ListenDrops', 'TcpExt: 828 81023 81024', 'IpExt: InNoRoutes ListenOverflows', 'IpExt: 5 7', ''].join('\n');

  it("reads a counter of its group by name, not another group's of the same name", () => {
    expect(parseNetstatCounter(text, 'TcpExt', 'ListenOverflows')).toBe(81_023);
    expect(parseNetstatCounter(text, 'IpExt', 'ListenOverflows')).toBe(7);
  });

  it('gives NaN for a counter or group the text lacks', () => {
    expect(parseNetstatCounter(text, 'TcpExt', 'NoSuchCounter')).toBeNaN();
    expect(parseNetstatCounter(text, 'MPTcpExt', 'ListenOverflows')).toBeNaN();
  });
});

describe('parseGcTotals / gcBetween / gcText', () => {
  const metrics = (minor: number, major: number) =>
    [
      '# HELP nodejs_gc_duration_seconds Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
      '# TYPE nodejs_gc_duration_seconds histogram',
      `nodejs_gc_duration_seconds_bucket{le="0.01",kind="minor"} ${minor - 3}`,
      `nodejs_gc_duration_seconds_bucket{le="0.1",kind="minor"} ${minor - 1}`,
      `nodejs_gc_duration_seconds_bucket{le="+Inf",kind="minor"} ${minor}`,
      `nodejs_gc_duration_seconds_sum{kind="minor"} ${minor * 9 / 1000}`,
      `nodejs_gc_duration_seconds_count{kind="minor"} ${minor}`,
      `nodejs_gc_duration_seconds_bucket{kind="major",le="0.1"} ${major}`,
      `nodejs_gc_duration_seconds_sum{kind="major"} ${major * 0.05}`,
      `nodejs_gc_duration_seconds_count{kind="major"} ${major}`,
      'nodejs_heap_size_used_bytes 123',
    ].join('\n');

  it('reads count, seconds and pauses over 100 ms per kind, whatever the labels\u2019 order', () => {
    expect(parseGcTotals(metrics(100, 4))).toEqual({ minor: { count: 100, seconds: 0.9, over100ms: 1 }, major: { count: 4, seconds: 0.2, over100ms: 0 } });
    expect(parseGcTotals('nodejs_heap_size_used_bytes 1\n')).toEqual({});
  });

  it('gives the difference of two readings, a kind new in the second counted from zero', () => {
    const before = parseGcTotals(metrics(100, 4));
    const after = { ...parseGcTotals(metrics(130, 5)), incremental: { count: 7, seconds: 0.3, over100ms: 0 } };
    const d = gcBetween(before, after);
    expect(d.minor).toEqual({ count: 30, seconds: expect.closeTo(0.27, 6), over100ms: 0 });
    expect(d.incremental).toEqual({ count: 7, seconds: 0.3, over100ms: 0 });
    expect(gcText(d)).toBe('minor 30 in 0.27 s, major 1 in 0.05 s, incremental 7 in 0.30 s; 0 pause(s) over 100 ms');
    expect(gcText(undefined)).toMatch(/no GC figures/);
  });
});
