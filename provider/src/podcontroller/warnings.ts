/**
 * PodWarnings: Warning Events about a pod (an unsupported spec, an object too large for the edge, a failed token
 * request), each recorded once per pod and problem, as a kubelet does not repeat the same Event for every sync.
 * What was recorded is kept per pod key with the pod's UID (a new pod of the same name starts afresh) and forgotten
 * when the pod is gone from the API or its node is given up, so it stays bounded by the pods served.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { KubeClient, Pod } from '../kube/client.js';
import { podKeyString } from '@edgefarm/proto';

export class PodWarnings {
  /** Per pod key: its UID, node and the problems already recorded. */
  private readonly recorded = new Map<string, { uid: string; node: string; problems: Set<string> }>();

  constructor(
    private readonly kube: Pick<KubeClient, 'createEvent'>,
    private readonly now: () => Date,
  ) {}

  /**
   * Records a Warning Event on the pod unless `problem` (a key naming the problem and, where it matters, the version
   * of what caused it) was recorded for this pod already. Resolves true when it recorded one.
   */
  async warn(pod: Pod, problem: string, reason: string, message: string): Promise<boolean> {
    const key = podKeyString({ namespace: pod.metadata!.namespace!, name: pod.metadata!.name! });
    const uid = pod.metadata!.uid!;
    let r = this.recorded.get(key);
    if (!r || r.uid !== uid) this.recorded.set(key, (r = { uid, node: pod.spec?.nodeName ?? '', problems: new Set() }));
    if (r.problems.has(problem)) return false;
    r.problems.add(problem);
    await this.kube.createEvent(podEvent(pod, 'Warning', reason, message, this.now()));
    return true;
  }

  /** The pod is gone from the API. */
  forget(podKey: string): void {
    this.recorded.delete(podKey);
  }

  /** The node is given up: its pods are another replica's now. */
  forgetNode(node: string): void {
    for (const [key, r] of this.recorded) if (r.node === node) this.recorded.delete(key);
  }

  /** Pods with a recorded problem (tests). */
  get size(): number {
    return this.recorded.size;
  }
}

export function podEvent(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string, now: Date): CoreV1Event {
  return {
    metadata: { generateName: `${pod.metadata!.name}.`, namespace: pod.metadata!.namespace },
    involvedObject: {
      kind: 'Pod',
      apiVersion: 'v1',
      namespace: pod.metadata!.namespace,
      name: pod.metadata!.name,
      uid: pod.metadata!.uid,
      resourceVersion: pod.metadata!.resourceVersion,
    },
    type,
    reason,
    message,
    source: { component: 'edgefarm-provider', host: pod.spec?.nodeName },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
