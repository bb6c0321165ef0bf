/**
 * BoundPods: the pods bound to nodes as the pod informer's cache holds them (KubeClient.podWatch), read-only, for
 * every part that needs a pod or a node's pods: the kubelet API (routing, /pods), the Event sink, the node
 * controller (pods still bound to a deleted Node) and the metrics. The pod controller starts the informer and is
 * the only one that follows its changes.
 */
import type { Pod, PodWatch } from './client.js';

export class BoundPods {
  constructor(private readonly cache: Pick<PodWatch, 'get' | 'list'>) {}

  /** The pod, or undefined when the cache does not hold it. */
  get(namespace: string, name: string): Pod | undefined {
    return this.cache.get(namespace, name);
  }

  /** The pods bound to any of the nodes. */
  on(nodes: Iterable<string>): Pod[] {
    const set = nodes instanceof Set ? (nodes as ReadonlySet<string>) : new Set(nodes);
    return this.cache.list().filter((p) => set.has(p.spec?.nodeName ?? ''));
  }

  /** How many pods are bound to the node. */
  count(node: string): number {
    let n = 0;
    for (const p of this.cache.list()) if (p.spec?.nodeName === node) n++;
    return n;
  }
}
