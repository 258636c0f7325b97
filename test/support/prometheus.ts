import { execFileSync, spawnSync } from 'node:child_process';

/** One sample of a Prometheus text exposition: `name{labels} value`. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of an exposition (comments and blank lines skipped). Label values are unescaped. */
export function parseSamples(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) {
      continue;
    }
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples of `name` whose labels include `labels`. */
export function samplesOf(samples: PromSample[], name: string, labels: Record<string, string> = {}): PromSample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` with `labels` (among others); undefined when none; throws when several match. */
export function valueOf(samples: PromSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samplesOf(samples, name, labels);
  if (found.length > 1) {
    throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  }
  return found[0]?.value;
}

const hasPromtool = (): boolean => {
  try {
    execFileSync('sh', ['-c', 'command -v promtool'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/**
 * `it` for a test that runs `promtool check metrics` when promtool (Debian package `prometheus`)
 * is on PATH, else `it.skip`, saying why. With OVERLAY_REQUIRE_SYSTEM_TESTS=1 (what .ci/run sets)
 * a missing promtool fails the run instead (test/system/system-suite.ts does the same).
 */
export function withPromtool(): jest.It {
  if (hasPromtool()) {
    return it;
  }
  if (process.env.OVERLAY_REQUIRE_SYSTEM_TESTS === '1') {
    throw new Error('promtool is not on PATH (OVERLAY_REQUIRE_SYSTEM_TESTS=1): install the Debian package prometheus');
  }
  console.warn('promtool checks skipped: promtool is not on PATH (Debian package prometheus)');
  return it.skip;
}

/** What `promtool check metrics` says of an exposition: its exit status and its complaints. */
export function promtoolCheck(text: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

/** What `promtool check rules` says of a rules file. */
export function promtoolCheckRules(path: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', ['check', 'rules', path], { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}
