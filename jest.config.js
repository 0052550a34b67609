/**
 * Three lanes (jest projects), all run by `npm test` (tools/run-tests.ts), which is what CI runs:
 * - unit: test/unit only, pure functions and streams; no Azurite, no simulators, no build of the tree
 *   (ts-jest transpiles each file: tsconfig.json sets isolatedModules). `npm run test:unit`.
 * - integration: end to end, faults, the simulators, infra. Needs Azurite (globalSetup starts one) and
 *   the TLS certificate tools/run-tests.ts makes; the kill tests run the built CLI. `npm run test:integration`.
 * - soak: sixty simulated days, and the tenant generator and the oracle it is checked against. `npm run test:soak`.
 * A globalSetup configured in a project runs only when a test of that project runs.
 */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] };
const withAzurite = {
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
};
const SOAK = [
  '<rootDir>/test/soak/**/*.test.ts',
  '<rootDir>/test/tools/tenant.test.ts',
  '<rootDir>/test/tools/expected.test.ts',
];

module.exports = {
  testTimeout: 60000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
      transform,
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/{e2e,faults,tools,infra}/**/*.test.ts'],
      testPathIgnorePatterns: [
        '/node_modules/',
        '<rootDir>/test/tools/tenant\\.test\\.ts$',
        '<rootDir>/test/tools/expected\\.test\\.ts$',
      ],
      transform,
      ...withAzurite,
    },
    {
      displayName: 'soak',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: SOAK,
      transform,
      ...withAzurite,
    },
  ],
};
