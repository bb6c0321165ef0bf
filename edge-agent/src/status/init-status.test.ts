/**
 * Init container statuses as the kubelet reports them (test/e2e/common/node/init_container.go): in spec order, a
 * succeeded init container Ready, the ones not yet run and all app containers Waiting PodInitializing, a failed init
 * container under Always in CrashLoopBackOff with its last termination, under Never a Failed pod.
 */
import { edge } from '@edgefarm/proto';
import { podSpec } from '@edgefarm/testing';
import { containerHash, sandboxHash } from '../runtime/labels.js';
import type { ObservedContainer, ObservedPod, ObservedSandbox } from '../runtime/types.js';
import { buildPodStatus, type StatusContext } from './build.js';

const BUSYBOX = 'docker.io/library/busybox:1.36';
const spec = (policy: edge.RestartPolicy) =>
  podSpec({
    name: 'p',
    uid: 'u1',
    restartPolicy: policy,
    initContainers: [
      { name: 'init1', image: BUSYBOX, command: ['/bin/true'] },
      { name: 'init2', image: BUSYBOX, command: ['/bin/false'] },
    ],
    containers: [{ name: 'run1', image: BUSYBOX, command: ['/bin/true'] }],
  });
const ctx: StatusContext = {
  nodeIp: '192.168.1.5',
  runtimeName: 'containerd',
  containerFailures: new Map(),
  sandboxFailure: null,
  backoff: [],
  nowMs: 10_000,
};
function sb(pod: edge.EdgePodSpec): ObservedSandbox {
  return {
    id: 'sb1',
    uid: 'u1',
    namespace: 'default',
    name: 'p',
    attempt: 0,
    state: 'ready',
    createdAtMs: 1000,
    ip: '10.1.0.7',
    hostNetwork: false,
    configHash: sandboxHash(pod),
    resourceVersion: '100',
  };
}
function exited(pod: edge.EdgePodSpec, name: string, exitCode: number, over: Partial<ObservedContainer> = {}): ObservedContainer {
  const c = [...pod.initContainers, ...pod.containers].find((x) => x.name === name)!;
  return {
    id: `${name}-${over.attempt ?? 0}`,
    sandboxId: 'sb1',
    podUid: 'u1',
    name,
    attempt: 0,
    state: 'exited',
    hash: containerHash(c),
    restartCount: 0,
    terminationGracePeriodSec: 1,
    image: c.image,
    imageRef: 'sha256:abc',
    createdAtMs: 1100,
    startedAtMs: 1200,
    finishedAtMs: 1300,
    exitCode,
    reason: '',
    message: '',
    ...over,
  };
}
const obs = (pod: edge.EdgePodSpec, containers: ObservedContainer[]): ObservedPod => ({
  key: { namespace: 'default', name: 'p' },
  sandboxes: [sb(pod)],
  containers,
});
const waitingReason = (s: edge.ContainerStatus | undefined) => (s?.state?.state.case === 'waiting' ? s.state.state.value.reason : '');

describe('init container statuses', () => {
  it('a succeeded init container is Ready (terminated with exit code 0), as the kubelet reports it', () => {
    const pod = spec(edge.RestartPolicy.ALWAYS);
    const s = buildPodStatus(pod, obs(pod, [exited(pod, 'init1', 0), exited(pod, 'init2', 0)]), ctx);
    expect(s.initContainerStatuses.map((c) => [c.name, c.ready, c.state?.state.case])).toEqual([
      ['init1', true, 'terminated'],
      ['init2', true, 'terminated'],
    ]);
  });

  it('a failed init container is not Ready', () => {
    const pod = spec(edge.RestartPolicy.NEVER);
    const s = buildPodStatus(pod, obs(pod, [exited(pod, 'init1', 0), exited(pod, 'init2', 1)]), ctx);
    expect(s.initContainerStatuses.map((c) => c.ready)).toEqual([true, false]);
  });

  it('RestartNever: init2 failed, the pod is Failed and run1 stays Waiting PodInitializing', () => {
    const pod = spec(edge.RestartPolicy.NEVER);
    const s = buildPodStatus(pod, obs(pod, [exited(pod, 'init1', 0), exited(pod, 'init2', 1)]), ctx);
    expect(s.phase).toBe(edge.PodPhase.FAILED);
    expect(s.initContainerStatuses.map((c) => c.name)).toEqual(['init1', 'init2']);
    expect(s.initContainerStatuses[1]!.state?.state).toMatchObject({ case: 'terminated', value: { exitCode: 1, reason: 'Error' } });
    expect(waitingReason(s.containerStatuses[0])).toBe('PodInitializing');
  });

  it('RestartAlways: init1 in back-off is Waiting CrashLoopBackOff with its last termination, init2 and run1 PodInitializing', () => {
    const pod = spec(edge.RestartPolicy.ALWAYS);
    const s = buildPodStatus(pod, obs(pod, [exited(pod, 'init1', 1, { attempt: 1, restartCount: 1 }), exited(pod, 'init1', 1)]), {
      ...ctx,
      backoff: [
        { name: 'init1', restartCount: 1, untilMs: 30_000, message: 'back-off 20s restarting failed container=init1 pod=p_default(u1)' },
      ],
    });
    expect(s.phase).toBe(edge.PodPhase.PENDING);
    expect(waitingReason(s.initContainerStatuses[0])).toBe('CrashLoopBackOff');
    expect(s.initContainerStatuses[0]!.lastState?.state).toMatchObject({ case: 'terminated', value: { exitCode: 1 } });
    expect(s.initContainerStatuses[0]!.restartCount).toBe(1);
    expect(waitingReason(s.initContainerStatuses[1])).toBe('PodInitializing');
    expect(waitingReason(s.containerStatuses[0])).toBe('PodInitializing');
  });
});
