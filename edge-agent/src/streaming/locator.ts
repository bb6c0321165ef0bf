/**
 * PodLocator: finds the CRI sandbox and containers a streaming request names (namespace, pod, optional UID,
 * container) by the agent's CRI labels, with the kubelet's NotFound wording.
 */
import { cri } from '@edgefarm/proto';
import type { RuntimeServiceClient } from '@edgefarm/cri';
import { Labels, MANAGED } from '../runtime/labels.js';
import { notFound } from './errors.js';

export interface PodName {
  namespace: string;
  pod: string;
  /** Checked when non-empty. */
  uid: string;
}

function newestFirst<T extends { createdAt: bigint; metadata?: { attempt: number } | undefined }>(items: T[]): T[] {
  return items.sort((a, b) => Number(b.createdAt - a.createdAt) || (b.metadata?.attempt ?? 0) - (a.metadata?.attempt ?? 0));
}

export class PodLocator {
  constructor(private readonly runtime: RuntimeServiceClient) {}

  private selector(p: PodName): Record<string, string> {
    return {
      [Labels.managed]: MANAGED,
      [Labels.podNamespace]: p.namespace,
      [Labels.podName]: p.pod,
      ...(p.uid ? { [Labels.podUid]: p.uid } : {}),
    };
  }

  /** The pod's ready sandbox (the newest); NotFound `pod not found ("<pod>_<ns>")` as the kubelet's GetPortForward. */
  async sandbox(p: PodName): Promise<cri.PodSandbox> {
    const res = await this.runtime.listPodSandbox({ filter: { labelSelector: this.selector(p) } });
    const ready = newestFirst(res.items.filter((s) => s.state === cri.PodSandboxState.SANDBOX_READY));
    if (!ready[0]) throw notFound(`pod not found ("${p.pod}_${p.namespace}")`);
    return ready[0];
  }

  /** Every instance of a container, newest first (the current one, then the previous). */
  async containers(p: PodName, container: string): Promise<cri.Container[]> {
    const res = await this.runtime.listContainers({
      filter: { labelSelector: { ...this.selector(p), [Labels.containerName]: container } },
    });
    return newestFirst(res.containers);
  }

  /** The newest instance of a container; NotFound `container not found ("<c>")` as the kubelet's GetExec. */
  async current(p: PodName, container: string): Promise<cri.Container> {
    const [c] = await this.containers(p, container);
    if (!c) {
      await this.sandbox(p); // a missing pod says so
      throw notFound(`container not found ("${container}")`);
    }
    return c;
  }
}
