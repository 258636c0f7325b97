/** Unit specs sit beside the code (src/…/*.spec.ts); medium specs run against the real Redis
 *  (test/medium/*.medium-spec.ts). System specs need root and network namespaces and run
 *  through `npm run test:system`. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.medium-spec.ts'],
  transform: { "^.+\\.ts$": "ts-jest" },
  testTimeout: 60000,
  // Keep-alive sockets of fetch() and gRPC channels can outlive a suite by a few seconds; never let CI hang on them.
  forceExit: true,
};
