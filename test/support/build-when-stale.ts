import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository root: the nearest directory above this file that holds jest.system.config.js.
 * Two levels up when this file runs from test/support (ts-jest); three when it is compiled into
 * dist-demo/test/support (scripts/demo.ts).
 */
function repositoryRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'jest.system.config.js'))) {
      return dir;
    }
    if (dirname(dir) === dir) {
      throw new Error(`jest.system.config.js not found above ${__dirname}`);
    }
  }
}

export const ROOT = repositoryRoot();

/** The newest modification time of `path` (a file, or every file under a directory but specs). */
function newestMtime(path: string): number {
  if (!statSync(path).isDirectory()) {
    return statSync(path).mtimeMs;
  }
  let newest = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory() || !entry.name.endsWith('.spec.ts')) {
      newest = Math.max(newest, newestMtime(join(path, entry.name)));
    }
  }
  return newest;
}

/**
 * How an output is built: `tsconfig` (relative to the root) compiled by tsc, only that program's
 * import closure, so unfinished work elsewhere cannot break the tests that run it; or `script`
 * (relative to the root) run as it is (scripts/build-agent.sh).
 */
export type Build = { tsconfig: string } | { script: string };

/**
 * Builds `output` when it is older than any file under `sources` (files or directories relative
 * to the root; specs do not count). Returns whether it built.
 */
export function buildWhenStale(output: string, sources: string[], build: Build): boolean {
  const built = existsSync(output) ? statSync(output).mtimeMs : 0;
  if (built >= Math.max(...sources.map((d) => newestMtime(join(ROOT, d))))) {
    return false;
  }
  if ('tsconfig' in build) {
    execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(ROOT, build.tsconfig)], { cwd: ROOT, stdio: 'pipe' });
  } else {
    execFileSync(join(ROOT, build.script), [], { cwd: ROOT, stdio: 'pipe' });
  }
  return true;
}
