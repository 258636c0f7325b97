import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository root: the nearest directory above this file that holds
 * test/system/tsconfig.agent.json. Two levels up when this file runs from test/support (ts-jest);
 * three when it is compiled into dist-demo/test/support (scripts/demo.ts).
 */
function repositoryRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'test', 'system', 'tsconfig.agent.json'))) {
      return dir;
    }
    if (dirname(dir) === dir) {
      throw new Error(`test/system/tsconfig.agent.json not found above ${__dirname}`);
    }
  }
}

export const ROOT = repositoryRoot();

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      newest = Math.max(newest, newestMtime(path));
    } else if (!entry.name.endsWith('.spec.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/**
 * Compiles `tsconfig` (relative to the root) when `output` is older than any file under
 * `sources` (directories relative to the root; specs do not count). Only that program's import
 * closure is compiled, so unfinished work elsewhere cannot break the tests that run it. Returns
 * whether it built.
 */
export function buildWhenStale(output: string, sources: string[], tsconfig: string): boolean {
  const built = existsSync(output) ? statSync(output).mtimeMs : 0;
  if (built >= Math.max(...sources.map((d) => newestMtime(join(ROOT, d))))) {
    return false;
  }
  execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(ROOT, tsconfig)], { cwd: ROOT, stdio: 'pipe' });
  return true;
}
