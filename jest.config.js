// Three suites: unit (fakes allowed), int (`*.int.test.ts`, real components), e2e (e2e/, a whole real stack).
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2023', parser: { syntax: 'typescript' } }, module: { type: 'es6' } }] };
const common = {
  transform,
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^@edgefarm/proto$': '<rootDir>/proto/src/index.ts',
    '^@edgefarm/edge-agent/testing$': '<rootDir>/edge-agent/src/testing/index.ts',
    '^@edgefarm/edge-agent/testing/agent-bed$': '<rootDir>/edge-agent/src/testing/agent-bed.ts',
  },
  testEnvironment: 'node',
  rootDir: '.',
};
export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{proto,provider,edge-agent}/src/**/*.test.ts', '<rootDir>/bench/*.test.ts'], testPathIgnorePatterns: ['\\.int\\.test\\.ts$', '/dist/'] },
    { ...common, displayName: 'int', testMatch: ['<rootDir>/{proto,provider,edge-agent}/src/**/*.int.test.ts'], testPathIgnorePatterns: ['/dist/'] },
    // The stack comes up once per run (globalSetup) and goes away after it (globalTeardown); run with --runInBand.
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/e2e/src/**/*.test.ts'],
      testPathIgnorePatterns: ['/dist/'],
      globalSetup: '<rootDir>/e2e/src/global-setup.ts',
      globalTeardown: '<rootDir>/e2e/src/global-teardown.ts',
    },
  ],
};
