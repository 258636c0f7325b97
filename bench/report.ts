import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/*
 * What the benchmarks (run.ts, sync.ts, dataplane.ts) share to report: number formatting, the
 * commit measured, the machine's CPU counters, and the results file.
 */

/** The repository root (bench files run from dist/bench/). */
export const ROOT = path.resolve(__dirname, '..', '..');

export const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const dec = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
export const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
export const bytesText = (b: number): string => (b >= 1e6 ? `${dec(b / 1e6, 2)} MB` : `${dec(b / 1e3, 1)} kB`);
export const verdict = (pass: boolean): string => (pass ? 'PASS' : 'MISS');
export const round2 = (n: number): number | null => (Number.isFinite(n) ? +n.toFixed(2) : null);

/** The commit measured, `+dirty` when src/ has uncommitted changes. */
export function gitDescribe(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', timeout: 5_000 }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8', timeout: 5_000 }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

/** Busy and total jiffies of all CPUs, from the first line of /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = fields[3] + fields[4]; // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

/** Sets `meta.wallSeconds`, writes the results as JSON and says so; false if the file could not be written. */
export function writeResults(outFile: string, results: { meta: Record<string, unknown> }, wallStartMs: number, now: number): boolean {
  results.meta.wallSeconds = +((now - wallStartMs) / 1000).toFixed(1);
  try {
    mkdirSync(path.dirname(outFile), { recursive: true });
    writeFileSync(outFile, JSON.stringify(results, null, 2) + '\n');
    console.log(`\nWrote ${path.relative(process.cwd(), outFile) || outFile} (run took ${results.meta.wallSeconds} s)`);
    return true;
  } catch (err) {
    console.error(`could not write ${outFile}: ${(err as Error).message}`);
    return false;
  }
}

/** A bench's entry point: exits with what `run` answers (0 = every figure measured), or 1 saying what crashed. */
export function exitWith(run: Promise<number>, what = 'bench'): void {
  run.then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`${what} crashed:`, err);
      process.exit(1);
    },
  );
}
