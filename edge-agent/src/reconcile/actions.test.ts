import type { MessageInitShape } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { computePodActions, describePodActions, isNoop, type ActionContext } from './actions.js';
import { NOW, base, container, observed, sandbox, summary } from './actions.fixtures.js';
import { RestartBackoff, backoffKey } from './backoff.js';
import type { ObservedPod } from '../runtime/types.js';
import { fieldsOf, podSpec } from '@edgefarm/testing';

/** A backoff in which base's container `main` has a 4 s backoff (as after three restarts with base 1 s). */
const held = new RestartBackoff(1000, 60_000);
const ctx: ActionContext = { nowMs: NOW, backoff: held };

for (let i = 0; i < 3; i++) held.next(backoffKey(base, base.containers[0]!), NOW - 20_000, NOW - 20_000);
const withPolicy = (p: edge.RestartPolicy) => podSpec({ ...fieldsOf(base), restartPolicy: p });
const twoContainers = podSpec({
  ...fieldsOf(base),
  containers: [
    { name: 'main', image: 'img:1', command: ['sleep', '1'] },
    { name: 'side', image: 'img:1' },
  ],
});
const withInit = podSpec({
  ...fieldsOf(base),
  initContainers: [
    { name: 'init1', image: 'img:1' },
    { name: 'init2', image: 'img:1' },
  ],
});
const changed = podSpec({ ...fieldsOf(base), containers: [{ name: 'main', image: 'img:2', command: ['sleep', '3600'] }] });
const hostNet = podSpec({ ...fieldsOf(base), hostNetwork: true });
/** base with activeDeadlineSeconds; its sandbox (created NOW - 10 s) is the pod's start. */
const deadline = (seconds: bigint, over: Omit<MessageInitShape<typeof edge.EdgePodSpecSchema>, '$typeName'> = {}) =>
  podSpec({ ...fieldsOf(base), activeDeadlineSeconds: seconds, ...over });

interface Case {
  name: string;
  desired: edge.EdgePodSpec | undefined;
  observed: ObservedPod;
  want: Record<string, unknown>;
}

const cases: Case[] = [
  {
    name: 'new pod: create sandbox and start every container',
    desired: twoContainers,
    observed: observed(base, [], []),
    want: { createSandbox: 0, start: ['main#0/a0', 'side#0/a0'] },
  },
  {
    name: 'running and matching: nothing (re-adoption after a restart)',
    desired: base,
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: {},
  },
  {
    name: 'container missing in a ready sandbox: start it',
    desired: base,
    observed: observed(base, [sandbox(base)], []),
    want: { start: ['main#0/a0'] },
  },
  {
    name: 'Always: exited with 0 after backoff: restart',
    desired: base,
    observed: observed(base, [sandbox(base)], [container(base, { state: 'exited', exitCode: 0, finishedAtMs: NOW - 5000 })]),
    want: { start: ['main#1/a1'] },
  },
  {
    name: 'Always: exited just now: backoff',
    desired: base,
    observed: observed(
      base,
      [sandbox(base)],
      [container(base, { state: 'exited', exitCode: 1, restartCount: 2, finishedAtMs: NOW - 100 })],
    ),
    want: { backoff: ['main@3900'] },
  },
  {
    name: 'OnFailure: exit 0: done, sandbox stopped',
    desired: withPolicy(edge.RestartPolicy.ON_FAILURE),
    observed: observed(base, [sandbox(base)], [container(base, { state: 'exited', exitCode: 0, finishedAtMs: NOW - 5000 })]),
    want: { stopSandbox: ['sb1'] },
  },
  {
    name: 'OnFailure: exit 2: restart',
    desired: withPolicy(edge.RestartPolicy.ON_FAILURE),
    observed: observed(base, [sandbox(base)], [container(base, { state: 'exited', exitCode: 2, finishedAtMs: NOW - 5000 })]),
    want: { start: ['main#1/a1'] },
  },
  {
    name: 'Never: exit 2: no restart, sandbox stopped',
    desired: withPolicy(edge.RestartPolicy.NEVER),
    observed: observed(base, [sandbox(base)], [container(base, { state: 'exited', exitCode: 2, finishedAtMs: NOW - 5000 })]),
    want: { stopSandbox: ['sb1'] },
  },
  {
    name: 'Never: completed pod with stopped sandbox: nothing',
    desired: withPolicy(edge.RestartPolicy.NEVER),
    observed: observed(base, [sandbox(base, { state: 'notready' })], [container(base, { state: 'exited', exitCode: 0 })]),
    want: {},
  },
  {
    name: 'container spec changed: kill and start the new one',
    desired: changed,
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: { kill: ['c1@5'], start: ['main#1/a1'] },
  },
  {
    name: 'created but never started: replace it',
    desired: base,
    observed: observed(base, [sandbox(base)], [container(base, { state: 'created', startedAtMs: 0 })]),
    want: { removeContainer: ['c1'], start: ['main#0/a1'] },
  },
  {
    name: 'sandbox died (e.g. reboot): new sandbox, restart counted',
    desired: base,
    observed: observed(
      base,
      [sandbox(base, { state: 'notready' })],
      [container(base, { state: 'exited', exitCode: 255, restartCount: 3 })],
    ),
    want: { createSandbox: 1, start: ['main#4/a1'] },
  },
  {
    name: 'sandbox spec changed (hostNetwork): stop the old one, create a new one',
    desired: hostNet,
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: { kill: ['c1@5'], stopSandbox: ['sb1'], createSandbox: 1, start: ['main#1/a1'] },
  },
  {
    name: 'a replaced sandbox is removed once the new one is current',
    desired: base,
    observed: observed(
      base,
      [sandbox(base, { id: 'sb2', attempt: 1, createdAtMs: NOW - 100 }), sandbox(base, { state: 'notready' })],
      [container(base, { id: 'c2', sandboxId: 'sb2', attempt: 1 }), container(base, { state: 'exited' })],
    ),
    want: { removeSandbox: ['sb1'] },
  },
  {
    name: 'deleting: kill with the deletion grace period, stop and remove',
    desired: podSpec({ ...fieldsOf(base), deleting: true, deletionGracePeriodSeconds: 2n }),
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: { kill: ['c1@2'], stopSandbox: ['sb1'], removeSandbox: ['sb1'] },
  },
  {
    name: 'deleting and nothing left: nothing',
    desired: podSpec({ ...fieldsOf(base), deleting: true }),
    observed: observed(base, [], []),
    want: {},
  },
  {
    name: 'tombstone: remove everything with the recorded grace period',
    desired: undefined,
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: { kill: ['c1@7'], stopSandbox: ['sb1'], removeSandbox: ['sb1'] },
  },
  {
    name: 'a pod re-created under the same name: drop the old UID, create the new',
    desired: podSpec({ ...fieldsOf(base), uid: 'u2' }),
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: { kill: ['c1@7'], stopSandbox: ['sb1'], removeSandbox: ['sb1'], createSandbox: 0, start: ['main#0/a0'] },
  },
  {
    name: 'container removed from the spec: kill and remove it',
    desired: base,
    observed: observed(base, [sandbox(base)], [container(base), container(base, { id: 'c9', name: 'gone' })]),
    want: { kill: ['c9@5'], removeContainer: ['c9'] },
  },
  {
    name: 'old exited attempts beyond the previous one are garbage-collected',
    desired: base,
    observed: observed(
      base,
      [sandbox(base)],
      [
        container(base, { id: 'c3', attempt: 2 }),
        container(base, { id: 'c2', attempt: 1, state: 'exited' }),
        container(base, { id: 'c1', attempt: 0, state: 'exited' }),
      ],
    ),
    want: { removeContainer: ['c1'] },
  },
  {
    name: 'init containers: first runs alone in a new sandbox',
    desired: withInit,
    observed: observed(base, [], []),
    want: { createSandbox: 0, start: ['init:init1#0/a0'] },
  },
  {
    name: 'init containers: next one after the first succeeded',
    desired: withInit,
    observed: observed(base, [sandbox(base)], [container(withInit, { name: 'init1', state: 'exited', exitCode: 0 })]),
    want: { start: ['init:init2#0/a0'] },
  },
  {
    name: 'init containers: main containers after all succeeded',
    desired: withInit,
    observed: observed(
      base,
      [sandbox(base)],
      [
        container(withInit, { id: 'i1', name: 'init1', state: 'exited', exitCode: 0 }),
        container(withInit, { id: 'i2', name: 'init2', state: 'exited', exitCode: 0 }),
      ],
    ),
    want: { start: ['main#0/a0'] },
  },
  {
    name: 'init container running: wait',
    desired: withInit,
    observed: observed(base, [sandbox(base)], [container(withInit, { name: 'init1' })]),
    want: {},
  },
  {
    name: 'init container failed under Never: pod fails, sandbox stopped',
    desired: podSpec({ ...fieldsOf(withInit), restartPolicy: edge.RestartPolicy.NEVER }),
    observed: observed(base, [sandbox(base)], [container(withInit, { name: 'init1', state: 'exited', exitCode: 1 })]),
    want: { stopSandbox: ['sb1'] },
  },
  {
    name: 'unknown container state: kill, remove and start again',
    desired: base,
    observed: observed(base, [sandbox(base)], [container(base, { state: 'unknown' })]),
    want: { kill: ['c1@5'], removeContainer: ['c1'], start: ['main#1/a1'] },
  },
  {
    name: 'active deadline ahead: nothing, the next sync is due when it runs out',
    desired: deadline(60n),
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: { deadlineIn: 50_000 },
  },
  {
    name: 'active deadline not counting before the pod has started',
    desired: deadline(1n),
    observed: observed(base, [], []),
    want: { createSandbox: 0, start: ['main#0/a0'] },
  },
  {
    name: 'active deadline reached (now - start = deadline): kill with the pod grace period, stop the sandbox',
    desired: deadline(10n),
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: { kill: ['c1@5'], stopSandbox: ['sb1'] },
  },
  {
    name: 'active deadline lowered by a newer spec below the pod age: kill',
    desired: deadline(3n, { resourceVersion: '101' }),
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: { kill: ['c1@5'], stopSandbox: ['sb1'] },
  },
  {
    name: 'active deadline passed, killed under Always: no restart, no new sandbox, nothing removed',
    desired: deadline(5n),
    observed: observed(
      base,
      [sandbox(base, { state: 'notready' })],
      [container(base, { state: 'exited', exitCode: 137, finishedAtMs: NOW - 4000 })],
    ),
    want: {},
  },
  {
    name: 'active deadline passed during a restart backoff: no restart, sandbox stopped',
    desired: deadline(5n),
    observed: observed(base, [sandbox(base)], [container(base, { state: 'exited', exitCode: 1, finishedAtMs: NOW - 100 })]),
    want: { stopSandbox: ['sb1'] },
  },
  {
    name: 'active deadline passed while an init container runs: kill it, start nothing',
    desired: deadline(5n, { initContainers: [{ name: 'init1', image: 'img:1' }] }),
    observed: observed(base, [sandbox(base)], [container(withInit, { name: 'init1' })]),
    want: { kill: ['c1@5'], stopSandbox: ['sb1'] },
  },
  {
    name: 'active deadline counts from the oldest sandbox of the pod',
    desired: deadline(5n),
    observed: observed(
      base,
      [sandbox(base, { id: 'sb2', attempt: 1, createdAtMs: NOW - 100 }), sandbox(base, { state: 'notready' })],
      [container(base, { id: 'c2', sandboxId: 'sb2', attempt: 1 }), container(base, { state: 'exited', exitCode: 255 })],
    ),
    want: { kill: ['c2@5'], stopSandbox: ['sb2'] },
  },
  {
    name: 'active deadline passed after a Never pod completed: nothing',
    desired: deadline(5n, { restartPolicy: edge.RestartPolicy.NEVER }),
    observed: observed(
      base,
      [sandbox(base, { state: 'notready' })],
      [container(base, { state: 'exited', exitCode: 0, finishedAtMs: NOW - 7000 })],
    ),
    want: {},
  },
  {
    name: 'active deadline passed on a deleting pod: the deletion rules',
    desired: deadline(5n, { deleting: true, deletionGracePeriodSeconds: 2n }),
    observed: observed(base, [sandbox(base)], [container(base)]),
    want: { kill: ['c1@2'], stopSandbox: ['sb1'], removeSandbox: ['sb1'] },
  },
];

describe('computePodActions', () => {
  it.each(cases)('$name', ({ desired, observed: obs, want }) => {
    const a = computePodActions(desired, obs, ctx);
    expect(summary(a)).toEqual(want);
    expect(isNoop(a)).toBe(Object.keys(want).filter((k) => k !== 'backoff' && k !== 'deadlineIn').length === 0);
  });

  it('prints itself', () => {
    const a = computePodActions(changed, observed(base, [sandbox(base)], [container(base)]), ctx);
    expect(describePodActions(a)).toBe('default/web: kill: main/c1 (spec changed, grace 5s); start: main#1 (spec changed)');
    expect(describePodActions(computePodActions(base, observed(base, [sandbox(base)], [container(base)]), ctx))).toBe(
      'default/web: nothing',
    );
  });

  it('says why it kills at the active deadline', () => {
    const a = computePodActions(deadline(10n), observed(base, [sandbox(base)], [container(base)]), ctx);
    expect(describePodActions(a)).toBe(
      'default/web: kill: main/c1 (active deadline exceeded, grace 5s); stop sandbox: sb1 (active deadline exceeded)',
    );
  });

  it('evicted: kills at once (grace 0), stops the sandbox, starts nothing, not even a new sandbox', () => {
    const evicted = { ...ctx, evicted: true };
    const a = computePodActions(base, observed(base, [sandbox(base)], [container(base)]), evicted);
    expect(summary(a)).toEqual({ kill: ['c1@0'], stopSandbox: ['sb1'] });
    expect(describePodActions(a)).toBe('default/web: kill: main/c1 (evicted, grace 0s); stop sandbox: sb1 (evicted)');
    const after = observed(base, [sandbox(base, { state: 'notready' })], [container(base, { state: 'exited', exitCode: 137 })]);
    expect(summary(computePodActions(base, after, evicted))).toEqual({});
    expect(summary(computePodActions(base, observed(base, [], []), evicted))).toEqual({});
    // deletion still removes it
    const deleting = podSpec({ ...fieldsOf(base), deleting: true, deletionGracePeriodSeconds: 2n });
    expect(summary(computePodActions(deleting, after, evicted))).toEqual({ removeSandbox: ['sb1'] });
  });

  it('uses the existing ready sandbox for new containers', () => {
    const a = computePodActions(base, observed(base, [sandbox(base, { attempt: 3 })], []), ctx);
    expect(a.sandbox).toEqual({ id: 'sb1', attempt: 3 });
  });
});
