import { MAX_EPHEMERAL_CONTAINERS } from '@edgefarm/proto';
import type { V1EphemeralContainer } from '@kubernetes/client-node';
import { specFingerprint, translatePod } from './translate.js';
import { pod } from './testing.js';

/** The node conformance spec's debugger (test/e2e/common/node/ephemeral_containers.go). */
const debuggerSpec: V1EphemeralContainer = {
  name: 'debugger',
  image: 'docker.io/edgefarm/busybox:1.35',
  command: ['/bin/sh'],
  args: ['-c', 'while true; do echo polo; sleep 2; done'],
  stdin: true,
  tty: true,
};
const app = { name: 'c', image: 'docker.io/edgefarm/busybox:1.35', command: ['sleep', '10000'] };

describe('translatePod: ephemeral containers', () => {
  it('carries them (stdin, tty, command, target) beside the regular containers, which do not change', () => {
    const before = translatePod(pod({ containers: [app] }));
    const after = translatePod(pod({ containers: [app], ephemeralContainers: [{ ...debuggerSpec, targetContainerName: 'c' }] }));
    if (!before.ok || !after.ok) throw new Error('not translated');
    expect(after.refusedEphemeral).toEqual([]);
    const [d] = after.spec.ephemeralContainers;
    expect(d).toMatchObject({
      name: 'debugger',
      image: 'docker.io/edgefarm/busybox:1.35',
      command: ['/bin/sh'],
      args: ['-c', 'while true; do echo polo; sleep 2; done'],
      stdin: true,
      tty: true,
      targetContainerName: 'c',
    });
    expect(after.spec.containers).toEqual(before.spec.containers);
    // The spec is published again (a new fingerprint), with the app container unchanged.
    expect(specFingerprint(after.spec)).not.toBe(specFingerprint(before.spec));
  });

  it('leaves out an ephemeral container the edge refuses, with the reason, and keeps the pod', () => {
    const bad: V1EphemeralContainer[] = [
      { name: 'ports', image: 'i', ports: [{ containerPort: 80 }] },
      { name: 'probe', image: 'i', readinessProbe: { exec: { command: ['true'] } } },
      { name: 'hook', image: 'i', lifecycle: { postStart: { exec: { command: ['true'] } } } },
      { name: 'limits', image: 'i', resources: { limits: { memory: '1Gi' } } },
      { name: 'target', image: 'i', targetContainerName: 'nope' },
      { name: 'c', image: 'i' },
      { name: 'Not_A_Label', image: 'i' },
      { name: 'noimage' },
      { ...debuggerSpec },
    ];
    const t = translatePod(pod({ containers: [app], ephemeralContainers: bad }));
    if (!t.ok) throw new Error(t.unsupported.join('; '));
    expect(t.spec.ephemeralContainers.map((c) => c.name)).toEqual(['debugger']);
    expect(t.refusedEphemeral).toEqual([
      'ephemeralContainers[ports].ports: not allowed in an ephemeral container',
      'ephemeralContainers[probe].readinessProbe: not allowed in an ephemeral container',
      'ephemeralContainers[hook].lifecycle: not allowed in an ephemeral container',
      'ephemeralContainers[limits].resources: not allowed in an ephemeral container',
      'ephemeralContainers[target].targetContainerName: no container "nope" in the pod',
      'ephemeralContainers[c].name: the pod has a container of that name already',
      'ephemeralContainers[Not_A_Label].name: not a DNS label',
      'ephemeralContainers[noimage].image: required',
    ]);
  });

  it(`takes at most ${MAX_EPHEMERAL_CONTAINERS} per pod: the first ones, so those that run stay`, () => {
    const many = Array.from({ length: MAX_EPHEMERAL_CONTAINERS + 2 }, (_, i) => ({ name: `d${i}`, image: 'i' }));
    const t = translatePod(pod({ containers: [app], ephemeralContainers: many }));
    if (!t.ok) throw new Error(t.unsupported.join('; '));
    expect(t.spec.ephemeralContainers).toHaveLength(MAX_EPHEMERAL_CONTAINERS);
    expect(t.spec.ephemeralContainers.at(-1)!.name).toBe(`d${MAX_EPHEMERAL_CONTAINERS - 1}`);
    expect(t.refusedEphemeral).toEqual([
      `ephemeralContainers[d${MAX_EPHEMERAL_CONTAINERS}]: more than ${MAX_EPHEMERAL_CONTAINERS} ephemeral containers in one pod`,
      `ephemeralContainers[d${MAX_EPHEMERAL_CONTAINERS + 1}]: more than ${MAX_EPHEMERAL_CONTAINERS} ephemeral containers in one pod`,
    ]);
  });
});
