import { create, edge } from '@edgefarm/proto';
import {
  afterProbe,
  beforeProbe,
  initialWorkerState,
  type BeforeProbeInput,
  type ProbeKind,
  type ProbeResult,
  type WorkerState,
} from './results.js';

const probe = (over: Partial<{ initialDelaySeconds: number; successThreshold: number; failureThreshold: number }> = {}) =>
  create(edge.ProbeSchema, {
    handler: { case: 'exec', value: { command: ['true'] } },
    timeoutSeconds: 1,
    periodSeconds: 10,
    successThreshold: 1,
    failureThreshold: 3,
    ...over,
  });
const running = { id: 'c1', state: 'running' as const, startedAtMs: 0 };
const input = (kind: ProbeKind, over: Partial<BeforeProbeInput> = {}): BeforeProbeInput => ({
  kind,
  probe: probe(),
  container: running,
  started: true,
  restartPolicyNever: false,
  deleting: false,
  nowMs: 60_000,
  ...over,
});
const seen = (kind: ProbeKind, over: Partial<WorkerState> = {}): WorkerState => ({
  ...initialWorkerState(kind),
  containerId: 'c1',
  ...over,
});

describe('beforeProbe (the kubelet worker doProbe gates)', () => {
  it.each([
    {
      name: 'no container yet: wait',
      kind: 'readiness',
      state: initialWorkerState('readiness'),
      over: { container: undefined },
      want: { probe: false, set: null, stop: false },
    },
    {
      name: 'a new container: initial value (readiness failure) and probe',
      kind: 'readiness',
      state: initialWorkerState('readiness'),
      over: {},
      want: { probe: true, set: 'failure' },
    },
    {
      name: 'a new container: liveness starts as success',
      kind: 'liveness',
      state: initialWorkerState('liveness'),
      over: {},
      want: { probe: true, set: 'success' },
    },
    {
      name: 'a new container replaces the old: old result removed, hold lifted',
      kind: 'liveness',
      state: seen('liveness', { containerId: 'c0', onHold: true }),
      over: {},
      want: { probe: true, remove: 'c0' },
    },
    {
      name: 'on hold after a liveness failure: no probe',
      kind: 'liveness',
      state: seen('liveness', { onHold: true }),
      over: {},
      want: { probe: false },
    },
    {
      name: 'exited, restartable: failure, keep going',
      kind: 'readiness',
      state: seen('readiness'),
      over: { container: { ...running, state: 'exited' as const } },
      want: { probe: false, set: 'failure', stop: false },
    },
    {
      name: 'exited under Never: failure, worker ends',
      kind: 'readiness',
      state: seen('readiness'),
      over: { restartPolicyNever: true, container: { ...running, state: 'exited' as const } },
      want: { set: 'failure', stop: true },
    },
    {
      name: 'deleting: liveness set to success and ends',
      kind: 'liveness',
      state: seen('liveness'),
      over: { deleting: true },
      want: { set: 'success', stop: true },
    },
    {
      name: 'deleting: readiness keeps probing',
      kind: 'readiness',
      state: seen('readiness'),
      over: { deleting: true },
      want: { probe: true, stop: false },
    },
    {
      name: 'within the initial delay: no probe',
      kind: 'readiness',
      state: seen('readiness'),
      over: { probe: probe({ initialDelaySeconds: 61 }) },
      want: { probe: false },
    },
    {
      name: 'initial delay passed: probe',
      kind: 'readiness',
      state: seen('readiness'),
      over: { probe: probe({ initialDelaySeconds: 60 }) },
      want: { probe: true },
    },
    {
      name: 'not started: liveness waits for the startup probe',
      kind: 'liveness',
      state: seen('liveness'),
      over: { started: false },
      want: { probe: false },
    },
    { name: 'not started: startup probes', kind: 'startup', state: seen('startup'), over: { started: false }, want: { probe: true } },
    { name: 'started: startup probe rests', kind: 'startup', state: seen('startup'), over: { started: true }, want: { probe: false } },
  ] as { name: string; kind: ProbeKind; state: WorkerState; over: Partial<BeforeProbeInput>; want: Record<string, unknown> }[])(
    '$name',
    ({ kind, state, over, want }) => {
      expect(beforeProbe(state, input(kind, over))).toMatchObject(want);
    },
  );
});

describe('afterProbe (thresholds)', () => {
  /** Feeds results in order; returns what was published after each. */
  function run(kind: ProbeKind, results: ProbeResult[], over: Parameters<typeof probe>[0] = {}): (ProbeResult | null)[] {
    let s = seen(kind);
    return results.map((r) => {
      const a = afterProbe(s, kind, probe(over), r);
      s = a.state;
      return a.set;
    });
  }
  it.each([
    { name: 'readiness: success publishes at once (threshold 1)', kind: 'readiness', results: ['success'], want: ['success'] },
    {
      name: 'readiness: 3 failures in a row publish failure',
      kind: 'readiness',
      results: ['failure', 'failure', 'failure'],
      want: [null, null, 'failure'],
    },
    {
      name: 'a success resets the failure run',
      kind: 'readiness',
      results: ['failure', 'failure', 'success', 'failure', 'failure'],
      want: [null, null, 'success', null, null],
    },
    {
      name: 'success threshold 2',
      kind: 'readiness',
      results: ['success', 'success', 'success'],
      over: { successThreshold: 2 },
      want: [null, 'success', 'success'],
    },
    {
      name: 'unknown is thrown away',
      kind: 'readiness',
      results: ['failure', 'unknown', 'failure', 'failure'],
      want: [null, null, null, 'failure'],
    },
    {
      name: 'liveness: failure holds the worker (run reset)',
      kind: 'liveness',
      results: ['failure', 'failure', 'failure', 'failure'],
      want: [null, null, 'failure', null],
    },
  ] as { name: string; kind: ProbeKind; results: ProbeResult[]; over?: Parameters<typeof probe>[0]; want: (ProbeResult | null)[] }[])(
    '$name',
    ({ kind, results, over, want }) => {
      expect(run(kind, results, over)).toEqual(want);
    },
  );

  it('a failed liveness probe puts the worker on hold', () => {
    let s = seen('liveness');
    for (let i = 0; i < 3; i++) s = afterProbe(s, 'liveness', probe(), 'failure').state;
    expect(s.onHold).toBe(true);
  });
});
