/** Unit specs sit beside the code (src/…/*.spec.ts) and need nothing; medium specs run against
 *  the real Redis (test/medium/*.medium-spec.ts), which their globalSetup checks once, starting a
 *  throwaway redis-server when the machine has none (test/support/test-redis.ts): it runs only
 *  when a medium spec is selected. System specs need root and network namespaces and run
 *  through `npm run test:system`. `npx jest <path>` runs any of the first two. */
const typescript = { preset: 'ts-jest', testEnvironment: 'node', transform: { '^.+\\.ts$': 'ts-jest' } };

module.exports = {
  testTimeout: 60000,
  // Keep-alive sockets of fetch() and gRPC channels can outlive a suite by a few seconds; never let CI hang on them.
  forceExit: true,
  projects: [
    { ...typescript, displayName: 'unit', roots: ['<rootDir>/src'], testMatch: ['**/*.spec.ts'] },
    {
      ...typescript,
      displayName: 'medium',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.medium-spec.ts'],
      globalSetup: '<rootDir>/test/support/medium-setup.ts',
      globalTeardown: '<rootDir>/test/support/test-redis-teardown.ts',
    },
  ],
};
