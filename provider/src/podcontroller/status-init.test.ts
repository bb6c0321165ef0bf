/**
 * The Initialized condition exactly as the kubelet's GeneratePodInitializedCondition (pkg/kubelet/status/generate.go)
 * writes it, as the upstream InitContainer conformance specs check it.
 */
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { podStatusFromReport } from './status.js';
import { pod } from './testing.js';

const now = new Date('2026-11-23T10:00:00Z');
type S = edge.ContainerStatus['state'];
const waiting = (reason: string): S => create(edge.ContainerStateSchema, { state: { case: 'waiting', value: { reason } } });
const term = (exitCode: number): S => create(edge.ContainerStateSchema, { state: { case: 'terminated', value: { exitCode } } });
const running = (): S => create(edge.ContainerStateSchema, { state: { case: 'running', value: { startedAtMs: 1n } } });

function report(phase: edge.PodPhase, inits: [string, S][], app: S) {
  return create(edge.PodStatusReportSchema, {
    uid: 'uid-1',
    namespace: 'default',
    name: 'web-1',
    phase,
    initContainerStatuses: inits.map(([name, state]) => ({ name, state })),
    containerStatuses: [{ name: 'c', state: app }],
  });
}
const initialized = (r: edge.PodStatusReport) =>
  podStatusFromReport(pod(), r, undefined, now).conditions!.find((c) => c.type === 'Initialized');

describe('Initialized condition', () => {
  it('RestartAlways, init1 failing: False, ContainersNotInitialized, "containers with incomplete status: [init1 init2]"', () => {
    const c = initialized(
      report(
        edge.PodPhase.PENDING,
        [
          ['init1', waiting('CrashLoopBackOff')],
          ['init2', waiting('PodInitializing')],
        ],
        waiting('PodInitializing'),
      ),
    );
    expect(c).toMatchObject({
      status: 'False',
      reason: 'ContainersNotInitialized',
      message: 'containers with incomplete status: [init1 init2]',
    });
  });

  it('RestartNever, init2 failed: "containers with incomplete status: [init2]"', () => {
    const c = initialized(
      report(
        edge.PodPhase.FAILED,
        [
          ['init1', term(0)],
          ['init2', term(1)],
        ],
        waiting('PodInitializing'),
      ),
    );
    expect(c).toMatchObject({ status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [init2]' });
  });

  it('all init containers succeeded: True without reason or message', () => {
    const c = initialized(
      report(
        edge.PodPhase.RUNNING,
        [
          ['init1', term(0)],
          ['init2', term(0)],
        ],
        running(),
      ),
    );
    expect(c).toMatchObject({ status: 'True' });
    expect(c!.reason).toBeUndefined();
    expect(c!.message).toBeUndefined();
  });

  it('a pod that succeeded: True with reason PodCompleted', () => {
    const c = initialized(
      report(
        edge.PodPhase.SUCCEEDED,
        [
          ['init1', term(0)],
          ['init2', term(0)],
        ],
        term(0),
      ),
    );
    expect(c).toMatchObject({ status: 'True', reason: 'PodCompleted' });
  });

  it('an app container has started (init containers being re-run): True', () => {
    const c = initialized(
      report(
        edge.PodPhase.RUNNING,
        [
          ['init1', waiting('PodInitializing')],
          ['init2', waiting('PodInitializing')],
        ],
        running(),
      ),
    );
    expect(c).toMatchObject({ status: 'True' });
  });
});
