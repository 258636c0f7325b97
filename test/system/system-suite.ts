import { execFileSync } from 'node:child_process';
import { MACHINE_SKIP_REASON, systemTestSkipReason } from './topology';

/**
 * `describe` for a system spec when it can run here, else `describe.skip`, printing why: the
 * machine (systemTestSkipReason) or a command the spec needs that is not on PATH. With
 * OVERLAY_REQUIRE_SYSTEM_TESTS=1 (what .ci/run sets) a reason fails the run instead: a CI run
 * that skipped them would pass without proving anything. When the suite's setup (system-setup.ts)
 * already said why the machine cannot run any of them, each spec skips without saying it again.
 */
export function systemSuite(name: string, commands: string[] = []): jest.Describe {
  if (process.env[MACHINE_SKIP_REASON] !== undefined) {
    return describe.skip;
  }
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
