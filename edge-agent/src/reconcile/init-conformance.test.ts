/**
 * The InitContainer conformance specs (test/e2e/common/node/init_container.go) through the Reconciler over the memory
 * runtime: the statuses reported at each step, as the kubelet reports them.
 */
import { edge } from '@edgefarm/proto';
import { BUSYBOX, podSpec } from '@edgefarm/testing';
import { keyOf, setup } from './reconciler.fixtures.js';

const reason = (s: edge.ContainerStatus | undefined) =>
  s?.state?.state.case === 'waiting' ? s.state.state.value.reason : s?.state?.state.case;

function spec(policy: edge.RestartPolicy, init1: string, init2: string) {
  return podSpec({
    restartPolicy: policy,
    initContainers: [
      { name: 'init1', image: BUSYBOX, command: [init1] },
      { name: 'init2', image: BUSYBOX, command: [init2] },
    ],
    containers: [{ name: 'run1', image: BUSYBOX, command: ['/bin/true'] }],
  });
}

describe('init containers as the conformance specs see them', () => {
  it('Always, init1 failing: restarted with back-off, init1 never Ready, init2 and run1 stay Waiting PodInitializing', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = spec(edge.RestartPolicy.ALWAYS, '/bin/false', '/bin/true');
    t.put(pod);
    const fail = async () => {
      const id = t.runtime.containerIds(pod).find((i) => t.runtime.containers.get(i)!.state === 'running');
      t.runtime.exit(id!, 1);
      t.clock.advance(60_000); // past any back-off
      await t.reconciler.sync(keyOf(pod));
    };
    await t.reconciler.sync(keyOf(pod));
    for (let i = 0; i < 3; i++) await fail();
    for (const r of t.reports()) {
      expect(r.phase).toBe(edge.PodPhase.PENDING);
      expect(r.initContainerStatuses.map((s) => s.name)).toEqual(['init1', 'init2']);
      expect(r.initContainerStatuses[0]!.ready).toBe(false);
      expect(reason(r.initContainerStatuses[1])).toBe('PodInitializing');
      expect(reason(r.containerStatuses[0])).toBe('PodInitializing');
      expect(r.containerStatuses[0]!.restartCount).toBe(0);
    }
    expect(t.last().initContainerStatuses[0]!.restartCount).toBe(3);
    expect(t.last().initContainerStatuses[0]!.lastState?.state.case).toBe('terminated');
    expect(t.runtime.containerIds(pod).map((i) => t.runtime.containers.get(i)!.name)).not.toContain('run1');
  });

  it('Never, init2 failing: the pod is Failed, init1 Ready, run1 never started and Waiting PodInitializing', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = spec(edge.RestartPolicy.NEVER, '/bin/true', '/bin/false');
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    const running = () => t.runtime.containerIds(pod).find((i) => t.runtime.containers.get(i)!.state === 'running')!;
    t.runtime.exit(running(), 0);
    await t.reconciler.sync(keyOf(pod));
    t.runtime.exit(running(), 1);
    await t.reconciler.sync(keyOf(pod));
    await t.reconciler.sync(keyOf(pod));
    const r = t.last();
    expect(r.phase).toBe(edge.PodPhase.FAILED);
    expect(r.initContainerStatuses.map((s) => [s.name, s.ready, reason(s)])).toEqual([
      ['init1', true, 'terminated'],
      ['init2', false, 'terminated'],
    ]);
    expect(reason(r.containerStatuses[0])).toBe('PodInitializing');
    expect(t.runtime.containerIds(pod).map((i) => t.runtime.containers.get(i)!.name)).not.toContain('run1');
  });
});
