import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { podStatusFromReport, statusDiffers } from './status.js';
import { pod } from './fixtures.js';

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
});
