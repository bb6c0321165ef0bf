/**
 * The declarations of the test harness's and the e2e suite's settings, and the rule of the cache paths. Pure: env.ts
 * parses them for the harness, e2e/src/stack.ts for the e2e suite. Exported as @edgefarm/testing/settings.
 */
import os from 'node:os';
import path from 'node:path';
import { absolutePath, defineSettings, flag, int, logLevel, text, type Env } from '@edgefarm/settings';

export const TEST_SETTINGS = defineSettings(
  {
    title: 'tests (unit and int)',
    source: 'testing/src/settings.ts',
    intro: 'Knobs of the integration harness and of single integration tests (`make test-int`, or jest directly).',
  },
  {
    keep: {
      env: 'EF_TEST_KEEP',
      type: flag(),
      default: '0',
      doc: "1: keep each test site's temp directory (with the agent's log) and test registries' directories",
    },
    logLevel: {
      env: 'EF_TEST_LOG_LEVEL',
      type: logLevel(),
      unset: "debug in a test site's agent log, info for nats-streams-memory's agent process",
      doc: 'level of the agent logs the tests write',
    },
    transferMb: {
      env: 'EF_TEST_TRANSFER_MB',
      type: int(1),
      default: '100',
      doc: 'provider nats-streams-memory.int.test: megabytes moved each way through exec',
    },
    upCommand: {
      env: 'EF_TEST_UP_CMD',
      type: text('shell command'),
      default: 'wc -c',
      doc: 'provider nats-streams-memory.int.test: the command that receives the upload (its size is checked only for the default)',
    },
    agentProfileDir: {
      env: 'EF_TEST_AGENT_PROF',
      type: absolutePath(),
      unset: 'no profile',
      doc: 'provider nats-streams-memory.int.test: write a CPU profile of the agent process into this directory',
    },
    fuzzSeed: {
      env: 'EF_FUZZ_SEED',
      type: int(1),
      default: '20261207',
      doc: 'fuzzing (testing/src/fuzz.ts, every *.fuzz.test.ts): the fast-check seed, fixed so a failure reproduces',
    },
    fuzzRuns: {
      env: 'EF_FUZZ_RUNS',
      type: int(1),
      default: '300',
      doc: 'fuzzing: inputs per property (make fuzz: 20000)',
    },
    fuzzHangMs: {
      env: 'EF_FUZZ_HANG_MS',
      type: int(1),
      default: '2000',
      doc: 'fuzzing: one input taking longer than this fails the property as a hang (a CPU trap)',
    },
    fuzzReport: {
      env: 'EF_FUZZ_REPORT',
      type: absolutePath(),
      unset: 'no report',
      doc: 'fuzzing: append one JSON line per property (name, inputs run, failures) to this file (hack/fuzz.sh sums them)',
    },
    window: {
      env: 'EF_TEST_WINDOW',
      type: int(1),
      default: '1048576',
      doc: 'provider nats-streams.int.test: flow-control window (bytes) of the session streams',
    },
  },
);

export const E2E_SETTINGS = defineSettings(
  {
    title: 'e2e suite',
    source: 'testing/src/settings.ts',
    intro:
      'The e2e suite (`make e2e`, `make e2e-hub3`), which brings up a whole stack with hack/up.sh. e2e/src/global-setup.ts and global-teardown.ts read EF_E2E_INSTANCE and EF_E2E_KEEP themselves (Jest loads them without the module mapper).',
  },
  {
    instance: {
      env: 'EF_E2E_INSTANCE',
      type: text('instance name (hack/lib.sh)'),
      default: 'e2e',
      doc: 'the stack the suite brings up and tests (`make e2e-hub3` sets e2e3)',
    },
    keep: {
      env: 'EF_E2E_KEEP',
      type: flag(),
      default: '0',
      doc: '1: no clean before the run (a kept stack is reused as is), and the stack stays up after it',
    },
    partitionMs: {
      env: 'EF_E2E_PARTITION_MS',
      type: int(1000),
      default: '120000',
      doc: 'how long the fault suite keeps a site partitioned in its long partition case',
    },
  },
  { retired: { EF_FAULT_PARTITION_MS: 'set EF_E2E_PARTITION_MS' } },
);

/** Where EdgeFarm caches what it builds, outside the repository. */
export interface CachePaths {
  /** $EF_CACHE, else $XDG_CACHE_HOME/edgefarm, else ~/.cache/edgefarm: hack/versions.sh's rule. */
  root: string;
  /** Built binaries: nats-server, etcd, kube-* (hack/build-binaries.sh). */
  bin: string;
  /** The image archives of hack/images.sh. */
  images: string;
}

/** The cache paths for an environment record, by the rule of hack/versions.sh. */
export function cachePaths(env: Env): CachePaths {
  const home = env.HOME || os.homedir();
  const root = env.EF_CACHE || path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'edgefarm');
  return { root, bin: path.join(root, 'bin'), images: path.join(root, 'images') };
}
