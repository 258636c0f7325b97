import { execFileSync } from 'node:child_process';
import { systemTestSkipReason } from './topology';

/**
 * `describe` for a system spec when it can run here, else `describe.skip`, printing why: the
 * machine (systemTestSkipReason) or a command the spec needs that is not on PATH. With
 * OVERLAY_REQUIRE_SYSTEM_TESTS=1 (what .ci/run sets) a reason fails the run instead: a CI run
 * that skipped them would pass without proving anything.
 */
export function systemSuite(name: string, commands: string[] = []): jest.Describe {
  const missing = commands.filter((cmd) => {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  const reason = systemTestSkipReason() ?? (missing.length ? `not on PATH: ${missing.join(', ')}` : undefined);
  if (!reason) {
    return describe;
  }
  if (process.env.OVERLAY_REQUIRE_SYSTEM_TESTS === '1') {
    throw new Error(`${name} system tests cannot run here (OVERLAY_REQUIRE_SYSTEM_TESTS=1): ${reason}`);
  }
  console.warn(`${name} system tests skipped: ${reason}`);
  return describe.skip;
}
