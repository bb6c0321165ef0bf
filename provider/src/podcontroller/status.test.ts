import { create } from '@bufbuild/protobuf';
import type { V1Pod, V1PodStatus } from '@kubernetes/client-node';
import { edge } from '@edgefarm/proto';
import { podStatusFromReport, statusDiffers } from './status.js';
import { pod } from './testing.js';

const now = new Date('2026-11-23T10:00:00Z');

function report(running: boolean) {
  return create(edge.PodStatusReportSchema, {
    uid: 'uid-1',
    namespace: 'default',
    name: 'web-1',
    generation: 1n,
    phase: running ? edge.PodPhase.RUNNING : edge.PodPhase.PENDING,
    podIp: '10.221.1.5',
    startTimeMs: BigInt(now.getTime() - 5000),
    containerStatuses: [
      {
        name: 'c',
        image: 'docker.io/edgefarm/busybox:1.35',
        imageId: 'sha256:abc',
        containerId: running ? 'containerd://cid' : '',
        ready: running,
        started: running,
        restartCount: running ? 2 : 0,
        state: running
          ? { state: { case: 'running', value: { startedAtMs: BigInt(now.getTime() - 1000) } } }
          : { state: { case: 'waiting', value: { reason: 'ContainerCreating' } } },
        lastState: running
          ? { state: { case: 'terminated', value: { exitCode: 137, reason: 'Error', finishedAtMs: BigInt(now.getTime() - 2000) } } }
          : undefined,
      },
    ],
  });
}

/**
 * What a status looks like read back from the API: JSON through the apiserver, which keeps times in whole seconds
 * (RFC 3339, no fraction), and a typed read turns them back into Dates (the watch does not: statusDiffers' string
 * tests).
 */
function throughApi(s: V1PodStatus): V1PodStatus {
  const json = JSON.stringify(s).replace(/\.\d{3}Z"/g, 'Z"');
  return JSON.parse(json, (_k, v: unknown) =>
    typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(v) ? new Date(v) : v,
  ) as V1PodStatus;
}

describe('podStatusFromReport', () => {
  it('maps a running report', () => {
    const s = podStatusFromReport(pod(), report(true), '10.201.1.2', now);
    expect(s.phase).toBe('Running');
    expect(s.podIP).toBe('10.221.1.5');
    expect(s.podIPs).toEqual([{ ip: '10.221.1.5' }]);
    expect(s.hostIP).toBe('10.201.1.2');
    const c = s.containerStatuses![0]!;
    expect(c.containerID).toBe('containerd://cid');
    expect(c.restartCount).toBe(2);
    expect(c.state!.running!.startedAt).toEqual(new Date(now.getTime() - 1000));
    expect(c.lastState!.terminated!.exitCode).toBe(137);
    expect(s.conditions!.map((x) => `${x.type}=${x.status}`)).toEqual([
      'Initialized=True',
      'Ready=True',
      'ContainersReady=True',
      'PodScheduled=True',
    ]);
  });

  it('keeps transition times when a condition does not change', () => {
    const first = podStatusFromReport(pod(), report(true), undefined, now);
    const later = podStatusFromReport({ ...pod(), status: first }, report(true), undefined, new Date(now.getTime() + 60_000));
    expect(later.conditions![1]!.lastTransitionTime).toEqual(now);
    expect(statusDiffers(first, later)).toBe(false);
  });

  it('is not ready while a container waits', () => {
    const s = podStatusFromReport(pod(), report(false), undefined, now);
    expect(s.phase).toBe('Pending');
    expect(s.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady' });
    expect(s.containerStatuses![0]!.state).toEqual({ waiting: { reason: 'ContainerCreating', message: undefined } });
  });

  it('gives times in whole seconds, so a status read back from the API is not a change (no write loop)', () => {
    const odd = new Date('2026-11-23T10:00:00.789Z');
    const r = report(true);
    r.startTimeMs = BigInt(odd.getTime() - 5000);
    const c = r.containerStatuses[0]!;
    if (c.state?.state.case === 'running') c.state.state.value.startedAtMs = BigInt(odd.getTime() - 1000);
    const s = podStatusFromReport(pod(), r, undefined, odd);
    expect(s.startTime).toEqual(new Date('2026-11-23T09:59:55Z'));
    expect(s.containerStatuses![0]!.state!.running!.startedAt).toEqual(new Date('2026-11-23T09:59:59Z'));
    expect(s.conditions![1]!.lastTransitionTime).toEqual(new Date('2026-11-23T10:00:00Z'));
    const stored = throughApi(s);
    expect(statusDiffers(stored, s)).toBe(false);
    // The next report of the same state, a moment later, maps onto what is stored: nothing to write.
    expect(statusDiffers(stored, podStatusFromReport({ ...pod(), status: stored }, r, undefined, new Date(odd.getTime() + 3000)))).toBe(
      false,
    );
  });
});

describe('podStatusFromReport: readiness gates (kubelet GeneratePodReadyCondition)', () => {
  const gated = (conditions?: { type: string; status: string }[]) =>
    ({
      ...pod({ readinessGates: [{ conditionType: 'k8s.io/test-condition1' }, { conditionType: 'k8s.io/test-condition2' }] }),
      status: { conditions },
    }) as V1Pod;
  const ready = (s: V1PodStatus) => s.conditions!.find((c) => c.type === 'Ready')!;

  it('is not Ready while a gate condition does not exist, ContainersReady all the same', () => {
    const s = podStatusFromReport(gated(), report(true), undefined, now);
    expect(ready(s)).toMatchObject({
      status: 'False',
      reason: 'ReadinessGatesNotReady',
      message:
        'corresponding condition of pod readiness gate "k8s.io/test-condition1" does not exist., corresponding condition of pod readiness gate "k8s.io/test-condition2" does not exist.',
    });
    expect(s.conditions!.find((c) => c.type === 'ContainersReady')!.status).toBe('True');
  });

  it('is not Ready while a gate condition is False, and Ready when every one is True', () => {
    const half = podStatusFromReport(
      gated([
        { type: 'k8s.io/test-condition1', status: 'True' },
        { type: 'k8s.io/test-condition2', status: 'False' },
      ]),
      report(true),
      undefined,
      now,
    );
    expect(ready(half)).toMatchObject({
      status: 'False',
      reason: 'ReadinessGatesNotReady',
      message: 'the status of pod readiness gate "k8s.io/test-condition2" is not "True", but False',
    });
    const all = podStatusFromReport(
      gated([
        { type: 'k8s.io/test-condition1', status: 'True' },
        { type: 'k8s.io/test-condition2', status: 'True' },
      ]),
      report(true),
      undefined,
      now,
    );
    expect(ready(all).status).toBe('True');
  });

  it('keeps the conditions other writers set (pods/status), in place', () => {
    const s = podStatusFromReport(
      gated([
        { type: 'k8s.io/test-condition1', status: 'True' },
        { type: 'Ready', status: 'False' },
        { type: 'k8s.io/test-condition2', status: 'False' },
      ]),
      report(true),
      undefined,
      now,
    );
    expect(s.conditions!.map((x) => `${x.type}=${x.status}`)).toEqual([
      'Initialized=True',
      'Ready=False',
      'ContainersReady=True',
      'PodScheduled=True',
      'k8s.io/test-condition1=True',
      'k8s.io/test-condition2=False',
    ]);
  });

  it('says which containers are not ready, as the kubelet does', () => {
    const s = podStatusFromReport(pod(), report(false), undefined, now);
    expect(ready(s)).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [c]' });
  });
});

describe('statusDiffers', () => {
  const base = (t: string): V1PodStatus => ({
    phase: 'Running',
    startTime: new Date(t),
    conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: new Date(t) }],
  });

  it('compares times in whole seconds, as the API keeps them', () => {
    expect(statusDiffers(base('2026-11-23T10:00:00.000Z'), base('2026-11-23T10:00:00.999Z'))).toBe(false);
    expect(statusDiffers(base('2026-11-23T10:00:00Z'), base('2026-11-23T10:00:01Z'))).toBe(true);
  });

  it('compares a time the watch hands over as a string with the same time as a Date', () => {
    const asWatched = JSON.parse(JSON.stringify(base('2026-11-23T10:00:00Z'))) as V1PodStatus; // times are strings now
    expect(typeof asWatched.startTime).toBe('string');
    expect(statusDiffers(asWatched, base('2026-11-23T10:00:00.400Z'))).toBe(false);
    expect(statusDiffers(base('2026-11-23T10:00:00Z'), asWatched)).toBe(false);
    expect(statusDiffers(asWatched, base('2026-11-23T10:00:05Z'))).toBe(true);
  });

  it('maps a report onto a pod as the watch delivers it (string times) without seeing a change', () => {
    const r = report(true);
    const written = podStatusFromReport(pod(), r, '192.0.2.2', now);
    const echoed = JSON.parse(JSON.stringify({ ...pod(), status: written })) as V1Pod;
    expect(statusDiffers(echoed.status, podStatusFromReport(echoed, r, '192.0.2.2', new Date(now.getTime() + 7_000)))).toBe(false);
  });

  it('treats null as absent and sees a change of any other field', () => {
    expect(statusDiffers({ phase: 'Running', message: null as unknown as undefined }, { phase: 'Running' })).toBe(false);
    expect(statusDiffers({ phase: 'Running' }, { phase: 'Pending' })).toBe(true);
    expect(statusDiffers(undefined, { phase: 'Running' })).toBe(true);
  });
});
