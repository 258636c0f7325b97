import { ensureTestRedis, OneLine } from '../support/test-redis';
import { MACHINE_SKIP_REASON, systemTestSkipReason } from './topology';

/**
 * globalSetup of the system suite (jest.system.config.js): whether this machine can run system
 * tests at all, said once. It cannot: one line, then each spec skips itself without repeating
 * it; with OVERLAY_REQUIRE_SYSTEM_TESTS=1 (CI) the run stops on that line instead. It can: the
 * run's Redis (test-redis.ts).
 */
export default async function systemSetup(): Promise<void> {
  const reason = systemTestSkipReason();
  if (reason) {
    if (process.env.OVERLAY_REQUIRE_SYSTEM_TESTS === '1') {
      throw new OneLine(`system tests stopped (OVERLAY_REQUIRE_SYSTEM_TESTS=1): ${reason}`);
    }
    console.log(`system tests skipped: ${reason}`);
    process.env[MACHINE_SKIP_REASON] = reason;
    return;
  }
  await ensureTestRedis('system');
}
