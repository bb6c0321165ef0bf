/** Pod fixtures for the pod controller's unit tests. */
import type { V1Pod } from '@kubernetes/client-node';

/** A minimal pod bound to edge-1, with the spec and metadata overrides given. */
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
