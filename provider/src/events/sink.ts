/**
 * EdgeEventSink: turns the Kubernetes Events agents recorded (EdgeEvent, from the hub's EF_EVENTS) into core/v1
 * Events in the pod's namespace, as the kubelet's recorder would have written them.
 *
 * - One Event per edge aggregation key: named `<pod>.<key>`, created on first sight and merge-patched (count,
 *   lastTimestamp, message) for every later message with the same key; a message older than what was written
 *   (lower count) is skipped.
 * - Events about pods that are no longer in the API (or a successor with another UID) are dropped.
 * - handle() resolves once the API write succeeded or the event was dropped; transient API errors are retried with
 *   bounded backoff, then the event is dropped with a warning (events are best effort).
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import { edge } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { KubeClient, Pod } from '../kube/client.js';
import { isAlreadyExists } from '../kube/errors.js';

export interface EdgeEventSinkDeps {
  kube: KubeClient;
  /** The pod as the provider knows it (informer cache), or undefined. */
  getPod(namespace: string, name: string): Pod | undefined | Promise<Pod | undefined>;
  log: Logger;
  /** Delay between retries (default 200 ms doubling); injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  attempts?: number;
}

export type EventOutcome = 'created' | 'updated' | 'stale' | 'dropped';

const MAX_NAME = 253;

/** The Event's name for an edge aggregation key: `<pod>.<key>`, the kubelet's `<pod>.<suffix>` form. */
export function eventName(podName: string, key: string): string {
  return `${podName.slice(0, MAX_NAME - key.length - 1)}.${key}`;
}

export class EdgeEventSink {
  /** Count last written per Event (namespace/name), to skip older messages; bounded. */
  private readonly written = new Map<string, number>();
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly deps: EdgeEventSinkDeps) {
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  async handle(node: string, e: edge.EdgeEvent): Promise<EventOutcome> {
    const { log } = this.deps;
    const attempts = this.deps.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.write(node, e);
      } catch (err) {
        if (attempt >= attempts) {
          log.warn({ node, pod: `${e.podNamespace}/${e.podName}`, reason: e.reason, err: (err as Error).message }, 'could not write an edge event; dropped');
          return 'dropped';
        }
        await this.sleep(200 * 2 ** (attempt - 1));
      }
    }
  }

  private async write(node: string, e: edge.EdgeEvent): Promise<EventOutcome> {
    const { kube } = this.deps;
    const pod = await this.deps.getPod(e.podNamespace, e.podName);
    if (!pod || pod.metadata?.uid !== e.podUid) return 'dropped';
    const name = eventName(e.podName, e.key);
    const id = `${e.podNamespace}/${name}`;
    if ((this.written.get(id) ?? 0) >= e.count) return 'stale';
    // JSON merge patch body: timestamps as RFC 3339 strings, as on the wire
    const patch = { count: e.count, lastTimestamp: new Date(Number(e.lastTimestampMs)).toISOString(), message: e.message };
    let outcome: EventOutcome = 'updated';
    if (!(await kube.patchEvent(e.podNamespace, name, patch))) {
      try {
        await kube.createEvent(toKubeEvent(node, pod, e, name));
        outcome = 'created';
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        await kube.patchEvent(e.podNamespace, name, patch); // created meanwhile (another replica, a redelivery)
      }
    }
    this.written.delete(id);
    this.written.set(id, e.count);
    if (this.written.size > 10_000) this.written.delete(this.written.keys().next().value!);
    return outcome;
  }
}

export function toKubeEvent(node: string, pod: Pod, e: edge.EdgeEvent, name: string): CoreV1Event {
  const first = new Date(Number(e.firstTimestampMs));
  return {
    metadata: { name, namespace: e.podNamespace },
    involvedObject: {
      kind: 'Pod',
      apiVersion: 'v1',
      namespace: e.podNamespace,
      name: e.podName,
      uid: e.podUid,
      resourceVersion: pod.metadata?.resourceVersion,
      ...(e.fieldPath ? { fieldPath: e.fieldPath } : {}),
    },
    type: e.type === edge.EventType.WARNING ? 'Warning' : 'Normal',
    reason: e.reason,
    message: e.message,
    source: { component: 'kubelet', host: node },
    reportingComponent: 'kubelet',
    reportingInstance: node,
    firstTimestamp: first,
    lastTimestamp: new Date(Number(e.lastTimestampMs)),
    count: e.count,
  };
}
