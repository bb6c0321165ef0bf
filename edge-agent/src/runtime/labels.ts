/**
 * The CRI labels and annotations that carry pod identity. The kubelet's names where one exists, so tools such as
 * crictl show EdgeFarm pods the usual way; the agent's own under edgefarm.io/.
 */
import { edge, encode } from '@edgefarm/proto';
import { shortHash } from '../util/hash.js';

export const Labels = {
  podUid: 'io.kubernetes.pod.uid',
  podNamespace: 'io.kubernetes.pod.namespace',
  podName: 'io.kubernetes.pod.name',
  containerName: 'io.kubernetes.container.name',
  managed: 'edgefarm.io/managed',
} as const;

export const Annotations = {
  containerHash: 'io.kubernetes.container.hash',
  restartCount: 'io.kubernetes.container.restartCount',
  terminationGracePeriod: 'io.kubernetes.pod.terminationGracePeriod',
  terminationMessagePath: 'io.kubernetes.container.terminationMessagePath',
  terminationMessagePolicy: 'io.kubernetes.container.terminationMessagePolicy',
  resourceVersion: 'edgefarm.io/resource-version',
  sandboxHash: 'edgefarm.io/sandbox-hash',
  hostNetwork: 'edgefarm.io/host-network',
} as const;

export const MANAGED = 'true';

/** Hash of a container's spec: a change makes the agent replace the container. */
export function containerHash(container: edge.EdgeContainer): string {
  return shortHash(encode(edge.EdgeContainerSchema, container));
}

/** Hash of the sandbox-level fields of a pod spec: a change makes the agent replace the sandbox. */
export function sandboxHash(pod: edge.EdgePodSpec): string {
  const ports = pod.containers
    .flatMap((c) => c.ports)
    .filter((p) => p.hostPort > 0)
    .map((p) => `${p.protocol}:${p.hostPort}:${p.containerPort}`)
    .sort();
  return shortHash(JSON.stringify([pod.uid, pod.hostNetwork, effectiveHostname(pod), ports]));
}

/** Hostname of the pod's UTS namespace: none with host networking (the runtime refuses one without a private UTS). */
export function effectiveHostname(pod: edge.EdgePodSpec): string {
  if (pod.hostNetwork) return '';
  return (pod.hostname || pod.name).slice(0, 63).replace(/[.-]+$/, '');
}

/**
 * Grace period for stopping a pod's containers: the deletion's when deleting (the provider always sets it, to the
 * Pod's deletionGracePeriodSeconds or else its terminationGracePeriodSeconds; 0 kills at once, as after
 * `kubectl delete --force --grace-period=0`), else terminationGracePeriodSeconds (the apiserver defaults it to 30).
 */
export function gracePeriodSec(pod: edge.EdgePodSpec): number {
  if (pod.deleting) return Math.max(0, Number(pod.deletionGracePeriodSeconds));
  return Math.max(0, Number(pod.terminationGracePeriodSeconds));
}
