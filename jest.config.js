// Three suites: unit (fakes allowed), int (`*.int.test.ts`, real components), e2e (e2e/, a whole real stack).
// Every @edgefarm/* import resolves to the package's source, so a test never runs whatever build is lying around.
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2023', parser: { syntax: 'typescript' } }, module: { type: 'es6' } }] };
const packages = [
  'settings',
  'proto',
  'workqueue',
  'streaming',
  'cri',
  'identity',
  'registrar',
  'cli',
  'edge-agent',
  'mapper',
  'provider',
  'testing',
];
const common = {
  transform,
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^@edgefarm/registrar/site$': '<rootDir>/registrar/src/site.ts',
    '^@edgefarm/testing/agent-bed$': '<rootDir>/testing/src/agent-bed.ts',
    '^@edgefarm/testing/settings$': '<rootDir>/testing/src/settings.ts',
    '^@edgefarm/testing/fuzz$': '<rootDir>/testing/src/fuzz.ts',
    '^@edgefarm/edge-agent/cgroups$': '<rootDir>/edge-agent/src/runtime/cgroups.ts',
    '^@edgefarm/provider/kubeconfig$': '<rootDir>/provider/src/kube/kubeconfig.ts',
    ...Object.fromEntries(packages.map((p) => [`^@edgefarm/${p}$`, `<rootDir>/${p}/src/index.ts`])),
  },
  testEnvironment: 'node',
  rootDir: '.',
  // build/: bundles, images and packages (hack/bundle.sh, ...), whose package.json files share the workspaces' names
  modulePathIgnorePatterns: ['<rootDir>/build/', '<rootDir>/.local/'],
};
const sources = `<rootDir>/{${packages.join(',')}}/src/**`;
export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: [`${sources}/*.test.ts`, '<rootDir>/bench/*.test.ts'],
      testPathIgnorePatterns: ['\\.int\\.test\\.ts$', '/dist/'],
      // Key generation costs ~50 ms per key under jest; on a loaded machine 5 s timed out a test of many keys.
      testTimeout: 15_000,
    },
    // Real processes answer slower on a loaded machine: a test's default limit is a hang detector, not a benchmark.
    { ...common, displayName: 'int', testMatch: [`${sources}/*.int.test.ts`], testPathIgnorePatterns: ['/dist/'], testTimeout: 60_000 },
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
