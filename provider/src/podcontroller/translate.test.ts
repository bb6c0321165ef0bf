import { edge } from '@edgefarm/proto';
import type { V1Pod } from '@kubernetes/client-node';
import { specFingerprint, translatePod } from './translate.js';

export function pod(overrides: Partial<V1Pod['spec']> = {}, meta: Partial<NonNullable<V1Pod['metadata']>> = {}): V1Pod {
  return {
    metadata: { name: 'web-1', namespace: 'default', uid: 'uid-1', resourceVersion: '7', ...meta },
    spec: {
      nodeName: 'edge-1',
      containers: [{ name: 'c', image: 'docker.io/edgefarm/busybox:1.35', command: ['sh'], args: ['-c', 'sleep 1'] }],
      ...overrides,
    },
  };
}

describe('translatePod', () => {
  it('translates the supported subset', () => {
    const t = translatePod(
      pod({
        restartPolicy: 'OnFailure',
        terminationGracePeriodSeconds: 5,
        containers: [
          {
            name: 'c',
            image: 'img',
            imagePullPolicy: 'Never',
            env: [
              { name: 'A', value: '1' },
              { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            ],
            ports: [{ containerPort: 80 }],
          },
        ],
      }),
    );
    if (!t.ok) throw new Error(t.unsupported.join());
    expect(t.spec.restartPolicy).toBe(edge.RestartPolicy.ON_FAILURE);
    expect(t.spec.terminationGracePeriodSeconds).toBe(5n);
    expect(t.spec.containers[0]!.env).toEqual([
      expect.objectContaining({ name: 'A', value: '1' }),
      expect.objectContaining({ name: 'POD', value: 'web-1' }),
    ]);
    expect(t.spec.containers[0]!.imagePullPolicy).toBe(edge.PullPolicy.NEVER);
    expect(t.spec.containers[0]!.ports[0]!.protocol).toBe('TCP');
    expect(t.spec.deleting).toBe(false);
  });

  it('ignores the auto-injected service account volume', () => {
    const p = pod({
      volumes: [{ name: 'kube-api-access-abcde', projected: { sources: [] } }],
      containers: [{ name: 'c', image: 'i', volumeMounts: [{ name: 'kube-api-access-abcde', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }] }],
    });
    expect(translatePod(p).ok).toBe(true);
  });

  it('lists every unsupported field instead of dropping it', () => {
    const t = translatePod(
      pod({
        hostPID: true,
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'x' } }],
        containers: [
          {
            name: 'c',
            image: 'i',
            volumeMounts: [{ name: 'data', mountPath: '/data' }],
            env: [{ name: 'S', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }],
          },
        ],
      }),
    );
    expect(t.ok).toBe(false);
    if (t.ok) return;
    expect(t.unsupported).toEqual([
      'volumes[data]: volumes are not supported at the edge yet',
      'hostPID: not supported at the edge',
      'containers[0].volumeMounts[data]: volumes are not supported at the edge yet',
      expect.stringContaining('containers[0].env[S].valueFrom'),
    ]);
  });

  it('rejects unknown enum values and incomplete pods', () => {
    expect(translatePod(pod({ restartPolicy: 'Sometimes' })).ok).toBe(false);
    expect(translatePod({ metadata: { name: 'x' } }).ok).toBe(false);
  });

  it('marks deleting pods with their grace period', () => {
    const t = translatePod(pod({}, { deletionTimestamp: new Date(), deletionGracePeriodSeconds: 3 }));
    expect(t.ok && t.spec.deleting && t.spec.deletionGracePeriodSeconds).toBe(3n);
  });

  it('fingerprints ignore resourceVersion churn but see spec changes', () => {
    const a = translatePod(pod({}, { resourceVersion: '7' }));
    const b = translatePod(pod({}, { resourceVersion: '9' }));
    const c = translatePod(pod({ containers: [{ name: 'c', image: 'other' }] }));
    if (!a.ok || !b.ok || !c.ok) throw new Error('unexpected');
    expect(specFingerprint(a.spec)).toBe(specFingerprint(b.spec));
    expect(specFingerprint(a.spec)).not.toBe(specFingerprint(c.spec));
  });
});
