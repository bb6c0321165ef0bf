/** computePodActions with the restart backoff (CrashLoopBackOff) and failed liveness/startup probes. */
import { computePodActions, type ActionContext } from './actions.js';
import { NOW, base, container, observed, sandbox, summary } from './actions.fixtures.js';
import { RestartBackoff, backoffKey } from './backoff.js';
import { edge } from '@edgefarm/proto';
import { fieldsOf, podSpec } from '@edgefarm/testing';

describe('computePodActions: CrashLoopBackOff and probe failures', () => {
  const key = backoffKey(base, base.containers[0]!);
  const fresh = (): ActionContext => ({ nowMs: NOW, backoff: new RestartBackoff(10_000, 300_000) });

  it('restarts at once after the first crash (no backoff entry yet) and asks for the entry to be advanced', () => {
    const a = computePodActions(
      base,
      observed(base, [sandbox(base)], [container(base, { state: 'exited', exitCode: 1, finishedAtMs: NOW - 10 })]),
      fresh(),
    );
    expect(summary(a)).toEqual({ start: ['main#1/a1'] });
    expect(a.startContainers[0]!.backoff).toEqual({ key, sinceMs: NOW - 10 });
  });

  it('holds the second crash back with the kubelet message', () => {
    const ctx2 = fresh();
    (ctx2.backoff as RestartBackoff).next(key, NOW - 30_000, NOW - 30_000); // the first restart
    const a = computePodActions(
      base,
      observed(base, [sandbox(base)], [container(base, { state: 'exited', exitCode: 1, restartCount: 1, finishedAtMs: NOW - 1000 })]),
      ctx2,
    );
    expect(summary(a)).toEqual({ backoff: ['main@9000'] });
    expect(a.backoff[0]!.message).toBe(`back-off 10s restarting failed container=main pod=web_default(u1)`);
  });

  it('liveness failure: kill with the pod grace period and restart in the same sync', () => {
    const a = computePodActions(base, observed(base, [sandbox(base)], [container(base)]), {
      ...fresh(),
      probeFailures: new Map([['c1', 'liveness' as const]]),
    });
    expect(summary(a)).toEqual({ kill: ['c1@5'], start: ['main#1/a1'] });
    expect(a.killContainers[0]!.reason).toBe('Container main failed liveness probe');
    expect(a.startContainers[0]!.backoff).toBeUndefined(); // no exited attempt: no backoff (doBackOff finds none)
  });

  it('startup failure uses the probe-level grace period; Never kills without a restart', () => {
    const probed = podSpec({
      ...fieldsOf(base),
      restartPolicy: edge.RestartPolicy.NEVER,
      containers: [
        {
          name: 'main',
          image: base.containers[0]!.image,
          command: ['sleep', '3600'],
          startupProbe: {
            handler: { case: 'exec', value: { command: ['false'] } },
            failureThreshold: 3,
            periodSeconds: 10,
            timeoutSeconds: 1,
            successThreshold: 1,
            terminationGracePeriodSeconds: 2n,
          },
        },
      ],
    });
    const a = computePodActions(probed, observed(probed, [sandbox(probed)], [container(probed)]), {
      ...fresh(),
      probeFailures: new Map([['c1', 'startup' as const]]),
    });
    expect(summary(a)).toEqual({ kill: ['c1@2'] });
  });

  it('liveness failure while the previous exit is still backing off: kill now, restart later', () => {
    const ctx2 = fresh();
    (ctx2.backoff as RestartBackoff).next(key, NOW - 3000, NOW - 3000);
    const obs = observed(
      base,
      [sandbox(base)],
      [
        container(base, { id: 'c2', attempt: 1, restartCount: 1 }),
        container(base, { state: 'exited', exitCode: 1, finishedAtMs: NOW - 3000 }),
      ],
    );
    const a = computePodActions(base, obs, { ...ctx2, probeFailures: new Map([['c2', 'liveness' as const]]) });
    expect(summary(a)).toEqual({ kill: ['c2@5'], backoff: ['main@7000'] });
  });

  it('a failure of a container that is not the running one changes nothing', () => {
    const a = computePodActions(base, observed(base, [sandbox(base)], [container(base)]), {
      ...fresh(),
      probeFailures: new Map([['old', 'liveness' as const]]),
    });
    expect(summary(a)).toEqual({});
  });
});
