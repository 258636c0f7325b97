/** System specs (test/system/*.system-spec.ts): root, network namespaces, real VXLAN devices,
 *  bridges and packets, real overlay-agent processes. Run with `npm run test:system` (in band:
 *  they share the machine's kernel). The globalSetup says once why this machine cannot run them
 *  (they then skip; with OVERLAY_REQUIRE_SYSTEM_TESTS=1 the run stops on that line) and checks
 *  the run's Redis; a spec that needs a command not on PATH skips itself, saying which. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test/system'],
  testMatch: ['**/*.system-spec.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  globalSetup: '<rootDir>/test/system/system-setup.ts',
  globalTeardown: '<rootDir>/test/support/test-redis-teardown.ts',
  testTimeout: 60000,
  forceExit: true,
};
