/** System specs (test/system/*.system-spec.ts): root, network namespaces, real VXLAN devices,
 *  bridges and packets, real overlay-agent processes. Run with `npm run test:system` (in band:
 *  they share the machine's kernel); each spec skips itself, saying why, when it cannot run. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test/system'],
  testMatch: ['**/*.system-spec.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  testTimeout: 60000,
  forceExit: true,
};
