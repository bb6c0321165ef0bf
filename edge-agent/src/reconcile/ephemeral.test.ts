/**
 * Ephemeral containers (kubectl debug) as the kubelet's computePodActions treats them: started once in the pod's
 * ready sandbox (also while init containers run), never restarted, never started with a new sandbox, never killed
 * for being absent from containers; and, through the Reconciler over the memory runtime, as the node conformance
 * specs (test/e2e/common/node/ephemeral_containers.go) see them.
 */
import { edge } from '@edgefarm/proto';
import { BUSYBOX, fieldsOf, podSpec } from '@edgefarm/testing';
import { computePodActions, type ActionContext } from './actions.js';
import { NOW, base, container, observed, sandbox, summary } from './actions.fixtures.js';
import { RestartBackoff } from './backoff.js';
import { keyOf, setup } from './reconciler.fixtures.js';

const ctx: ActionContext = { nowMs: NOW, backoff: new RestartBackoff(1000, 60_000) };
const debuggerSpec = {
  name: 'debugger',
  image: BUSYBOX,
  command: ['/bin/sh'],
  args: ['-c', 'while true; do echo polo; sleep 2; done'],
  stdin: true,
  tty: true,
};
const debug = (policy = edge.RestartPolicy.ALWAYS, target = '') =>
  podSpec({ ...fieldsOf(base), restartPolicy: policy, ephemeralContainers: [{ ...debuggerSpec, targetContainerName: target }] });

describe('computePodActions: ephemeral containers', () => {
  it('starts one added to a running pod, in its sandbox, and nothing else; with its target container', () => {
    const pod = debug(edge.RestartPolicy.ALWAYS, 'main');
    const a = computePodActions(pod, observed(pod, [sandbox(pod)], [container(pod)]), ctx);
    expect(summary(a)).toEqual({ start: ['debugger#0/a0'] });
    expect(a.sandbox).toEqual({ id: 'sb1', attempt: 0 });
    expect(a.startContainers[0]).toMatchObject({ ephemeral: true, init: false, target: { name: 'main', id: 'c1' } });
  });

  it('never restarts one that exited, under any restartPolicy, and keeps it (no kill, no removal)', () => {
    for (const policy of [edge.RestartPolicy.ALWAYS, edge.RestartPolicy.ON_FAILURE, edge.RestartPolicy.NEVER]) {
      const pod = debug(policy);
      for (const exitCode of [0, 1, 137]) {
        const exited = container(pod, { id: 'e1', name: 'debugger', state: 'exited', exitCode, finishedAtMs: NOW - 1000 });
        const a = computePodActions(pod, observed(pod, [sandbox(pod)], [exited, container(pod)]), ctx);
        expect(summary(a)).toEqual({});
      }
    }
  });

  it('leaves a running one alone whatever its hash, and does not count it in the pod completing', () => {
    const pod = debug(edge.RestartPolicy.NEVER);
    const running = container(pod, { id: 'e1', name: 'debugger', hash: 'whatever' });
    expect(summary(computePodActions(pod, observed(pod, [sandbox(pod)], [container(pod), running]), ctx))).toEqual({});
    const done = container(pod, { state: 'exited', exitCode: 0, finishedAtMs: NOW - 1000 });
    // The app container completed: the pod is done and its sandbox stopped, the debugger with it (as the kubelet).
    expect(summary(computePodActions(pod, observed(pod, [sandbox(pod)], [done, running]), ctx))).toEqual({ stopSandbox: ['sb1'] });
  });

  it('is not started with a new sandbox, and starts while init containers run', () => {
    const pod = debug();
    expect(summary(computePodActions(pod, observed(pod, [], []), ctx))).toEqual({ createSandbox: 0, start: ['main#0/a0'] });
    const withInit = podSpec({ ...fieldsOf(pod), initContainers: [{ name: 'init1', image: 'img:1' }] });
    const a = computePodActions(withInit, observed(withInit, [sandbox(withInit)], [container(withInit, { name: 'init1' })]), ctx);
    expect(summary(a)).toEqual({ start: ['debugger#0/a0'] });
  });

  it('names a target that has no container yet with an empty id (the executor reports CreateContainerConfigError)', () => {
    const pod = debug(edge.RestartPolicy.ALWAYS, 'main');
    const a = computePodActions(pod, observed(pod, [sandbox(pod)], []), ctx);
    expect(a.startContainers.find((s) => s.name === 'debugger')).toMatchObject({ target: { name: 'main', id: '' } });
  });
});

describe('ephemeral containers through the Reconciler (the node conformance specs)', () => {
  it('adds debugger and then debugger2 to a running pod: each Running in ephemeralContainerStatuses, the app container untouched', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = podSpec({ containers: [{ name: 'busybox', image: BUSYBOX, command: ['sleep', '10000'] }] });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    const app = t.last().containerStatuses[0]!;
    expect(app.state?.state.case).toBe('running');
    expect(t.last().ephemeralContainerStatuses).toEqual([]);

    const withDebugger = podSpec({ ...fieldsOf(pod), resourceVersion: '101', generation: 2n, ephemeralContainers: [debuggerSpec] });
    t.put(withDebugger);
    await t.reconciler.sync(keyOf(pod));
    let r = t.last();
    expect(r.containerStatuses[0]).toMatchObject({ containerId: app.containerId, restartCount: 0 });
    expect(r.ephemeralContainerStatuses).toHaveLength(1);
    expect(r.ephemeralContainerStatuses[0]).toMatchObject({ name: 'debugger', image: BUSYBOX, ready: false, restartCount: 0 });
    expect(r.ephemeralContainerStatuses[0]!.state?.state.case).toBe('running');
    expect(r.ephemeralContainerStatuses[0]!.containerId).toMatch(/^containerd:\/\//);
    expect(t.runtime.methods().filter((m) => m === 'stopContainer' || m === 'stopSandbox' || m === 'runSandbox')).toEqual(['runSandbox']);

    const two = podSpec({
      ...fieldsOf(withDebugger),
      resourceVersion: '102',
      generation: 3n,
      ephemeralContainers: [debuggerSpec, { name: 'debugger2', image: 'registry.k8s.io/e2e-test-images/agnhost:2.53' }],
    });
    t.put(two);
    await t.reconciler.sync(keyOf(pod));
    r = t.last();
    expect(r.ephemeralContainerStatuses.map((s) => [s.name, s.state?.state.case])).toEqual([
      ['debugger', 'running'],
      ['debugger2', 'running'],
    ]);
    expect(r.containerStatuses[0]).toMatchObject({ containerId: app.containerId, restartCount: 0 });

    // debugger exits: it stays Terminated, is not started again, and the pod stays Running.
    const dbg = t.runtime.containerIds(pod).find((id) => t.runtime.containers.get(id)!.name === 'debugger')!;
    t.runtime.exit(dbg, 0);
    t.clock.advance(60_000);
    await t.reconciler.sync(keyOf(pod));
    await t.reconciler.sync(keyOf(pod));
    r = t.last();
    expect(r.phase).toBe(edge.PodPhase.RUNNING);
    expect(r.ephemeralContainerStatuses[0]).toMatchObject({ name: 'debugger', restartCount: 0 });
    expect(r.ephemeralContainerStatuses[0]!.state?.state.case).toBe('terminated');
    expect(t.runtime.containerIds(pod).filter((id) => t.runtime.containers.get(id)!.name === 'debugger')).toHaveLength(1);
  });

  it('one whose target has no container yet waits with CreateContainerConfigError, as the kubelet', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = podSpec({ initContainers: [{ name: 'init1', image: BUSYBOX, command: ['sleep', '3600'] }] });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod)); // init1 runs, main is not created yet
    t.put(podSpec({ ...fieldsOf(pod), resourceVersion: '101', ephemeralContainers: [{ ...debuggerSpec, targetContainerName: 'main' }] }));
    await t.reconciler.sync(keyOf(pod));
    expect(t.last().ephemeralContainerStatuses[0]!.state?.state).toEqual({
      case: 'waiting',
      value: expect.objectContaining({
        reason: 'CreateContainerConfigError',
        message: expect.stringMatching(/unable to find target container main/),
      }),
    });
  });
});
