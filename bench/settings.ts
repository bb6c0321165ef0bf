/**
 * The settings of `make bench` (run.ts) and of the fsync measurement (fsync.ts); each main parses them from
 * process.env. bench/README.md says what each benchmark measures.
 */
import { defineSettings, flag, int, list, number, oneOf, text } from '@edgefarm/settings';

export const BENCHMARKS = ['latency', 'scale', 'storm', 'footprint'] as const;

export const BENCH_SETTINGS = defineSettings(
  {
    title: 'bench',
    source: 'bench/settings.ts',
    intro:
      '`make bench` (`node bench/dist/run.js`): brings up its own stack with hack/up.sh, runs the benchmarks, writes bench/results/ and removes the stack.',
  },
  {
    instance: {
      env: 'EF_INSTANCE',
      type: text('instance name (hack/lib.sh)'),
      unset: 'instance bench: ports 18000+, netns efb-*, state .local/bench',
      doc: 'the stack to bring up; another than dev, e2e or e2e3 also needs EF_PORT_BASE, EF_NET_OCTET and EF_NS_PREFIX',
    },
    only: {
      env: 'EF_BENCH_ONLY',
      type: list(oneOf(BENCHMARKS), `comma-separated ${BENCHMARKS.join(', ')}`),
      default: BENCHMARKS.join(','),
      doc: 'the benchmarks to run',
    },
    n: { env: 'EF_BENCH_N', type: int(1), default: '100', doc: 'latency: pods created, and CRI sequences of the floor' },
    rate: { env: 'EF_BENCH_RATE', type: number(0.1), default: '10', doc: 'latency: pod creates per second' },
    gentleN: { env: 'EF_BENCH_GENTLE_N', type: int(0), default: '40', doc: 'latency: pods of the second, gentler run; 0: no such run' },
    gentleRate: { env: 'EF_BENCH_GENTLE_RATE', type: number(0.1), default: '2', doc: 'latency: its creates per second' },
    rttN: { env: 'EF_BENCH_RTT_N', type: int(1), default: '200', doc: 'latency: request-reply round trips to the site' },
    scaleNodes: {
      env: 'EF_BENCH_SCALE_NODES',
      type: list(int(1)),
      default: '100,1000,3000',
      doc: 'scale: hollow node counts of the steps',
    },
    scalePods: {
      env: 'EF_BENCH_SCALE_PODS',
      type: list(int(0)),
      default: '10,10,0',
      doc: "scale: pods per node of each step's new nodes",
    },
    stormAt: {
      env: 'EF_BENCH_STORM_AT',
      type: int(1),
      default: '1000',
      doc: 'storm: the scale step (node count) after which the reconnect storm runs',
    },
    idleS: { env: 'EF_BENCH_IDLE_S', type: int(1), default: '45', doc: 'scale: idle measuring window of each step, seconds' },
    perSite: {
      env: 'EF_BENCH_PER_SITE',
      type: int(1),
      default: '250',
      doc: 'scale: hollow nodes per hollow site (one leaf nats-server and one process each)',
    },
    hollowResyncMs: {
      env: 'EF_BENCH_HOLLOW_RESYNC_MS',
      type: int(1),
      default: '30000',
      doc: "scale: the hollow nodes' EF_RESYNC_MS (the real site keeps the agent's default)",
    },
    hollowRelistMs: {
      env: 'EF_BENCH_HOLLOW_RELIST_MS',
      type: int(0),
      default: '2000',
      doc: "scale: the hollow nodes' EF_RELIST_MS",
    },
    footprintS: {
      env: 'EF_BENCH_FOOTPRINT_S',
      type: int(1),
      default: '300',
      doc: "footprint: window over which the real agent's memory is sampled, seconds (runs beside the scale steps)",
    },
    budgetS: {
      env: 'EF_BENCH_BUDGET_S',
      type: int(1),
      default: '1140',
      doc: 'time budget of the run, seconds: no wait goes past it; scale steps that do not fit are skipped and listed',
    },
    keep: { env: 'EF_BENCH_KEEP', type: flag(), default: '0', doc: '1: leave the stack up afterwards (hack/clean.sh removes it)' },
  },
);

export const FSYNC_SETTINGS = defineSettings(
  {
    title: 'bench fsync',
    source: 'bench/settings.ts',
    intro:
      '`node bench/dist/fsync.js`: what a site nats-server pays for fsync on every write (docs/decisions/0004); runs its own nats-server from the cache.',
  },
  {
    n: { env: 'EF_BENCH_FSYNC_N', type: int(1), default: '1000', doc: 'messages published per mode' },
  },
  { retired: { EF_FSYNC_N: 'set EF_BENCH_FSYNC_N' } },
);
