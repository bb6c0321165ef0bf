import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { podStatusFromReport } from './status.js';
import { pod } from './testing.js';

const now = new Date('2026-11-23T10:00:00Z');
const at = (msAgo: number) => BigInt(now.getTime() - msAgo);

const running = (name: string, id: string) =>
  create(edge.ContainerStatusSchema, {
    name,
    image: 'docker.io/edgefarm/busybox:1.35',
    imageId: 'sha256:abc',
    containerId: `containerd://${id}`,
    ready: name === 'c',
    started: name === 'c',
    state: { state: { case: 'running', value: { startedAtMs: at(1000) } } },
  });

describe('podStatusFromReport: ephemeral containers', () => {
  it('writes status.ephemeralContainerStatuses as the kubelet (never ready, no started), apart from the pod readiness', () => {
    const p = pod({
      ephemeralContainers: [
        { name: 'debugger', image: 'docker.io/edgefarm/busybox:1.35' },
        { name: 'done', image: 'i' },
      ],
    });
    const report = create(edge.PodStatusReportSchema, {
      uid: 'uid-1',
      namespace: 'default',
      name: 'web-1',
      generation: 2n,
      phase: edge.PodPhase.RUNNING,
      containerStatuses: [running('c', 'app')],
      ephemeralContainerStatuses: [
        running('debugger', 'dbg'),
        {
          name: 'done',
          image: 'i',
          containerId: 'containerd://done',
          state: {
            state: {
              case: 'terminated',
              value: { exitCode: 0, reason: 'Completed', finishedAtMs: at(500), containerId: 'containerd://done' },
            },
          },
        },
      ],
    });
    const s = podStatusFromReport(p, report, '192.168.1.10', now);
    expect(s.ephemeralContainerStatuses).toEqual([
      {
        name: 'debugger',
        image: 'docker.io/edgefarm/busybox:1.35',
        imageID: 'sha256:abc',
        containerID: 'containerd://dbg',
        ready: false,
        restartCount: 0,
        state: { running: { startedAt: new Date(now.getTime() - 1000) } },
        lastState: {},
      },
      expect.objectContaining({
        name: 'done',
        ready: false,
        state: { terminated: expect.objectContaining({ exitCode: 0, reason: 'Completed', containerID: 'containerd://done' }) },
      }),
    ]);
    expect(s.ephemeralContainerStatuses![1]).not.toHaveProperty('started');
    expect(s.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('writes none for a pod without ephemeral containers', () => {
    const report = create(edge.PodStatusReportSchema, { uid: 'uid-1', generation: 1n, containerStatuses: [running('c', 'app')] });
    expect(podStatusFromReport(pod(), report, undefined, now)).not.toHaveProperty('ephemeralContainerStatuses');
  });
});
