/**
 * EdgeEventSink: turns the Kubernetes Events agents recorded (EdgeEvent, from the hub's EF_EVENTS) into core/v1
 * Events in the pod's namespace, as the kubelet's recorder would have written them.
 *
 * - One Event per edge aggregation key: named `<pod>.<key>`, created on first sight (one POST; 409 AlreadyExists,
 *   when another replica or an earlier run wrote it, falls back to a patch) and merge-patched (count, lastTimestamp,
 *   message) for every later message with the same key; a message older than what was written (lower count) is
 *   skipped.
 * - The pod is resolved from the informer cache only (pods bound to a node), never with an API call: an Event about a
 *   pod the cache does not have (gone, or a successor with another UID) is dropped, and costs neither an API call
 *   nor a write token. A node speaks only for its own pods: an Event about a pod bound to another node is refused
 *   (`wrong_node`; logged and a Warning Event on the reporting Node, once a minute per node) before it reaches the
 *   rate limiter, so a site's forgeries cannot spend the
 *   write budget of the others.
 * - enqueue() hands events to a keyed work queue: different Events are written in parallel (`workers`, default 8),
 *   one Event never concurrently, and messages for an Event still queued coalesce into the one with the highest
 *   count (as the kubelet's recorder aggregates). One provider writes the Events of every node it serves, so a
 *   serial writer capped the whole fleet at one API round trip per event (~40/s measured at 1,000 nodes: 10,000 pod
 *   starts took minutes to show their Events). Writes are rate-limited across all nodes (`ratePerS`, default 50/s
 *   with a burst of 100, EF_EVENT_QPS), so Events, which are best effort, never crowd out Leases and pod status on a
 *   busy apiserver. Past `maxQueued` waiting Events, enqueue() waits (backpressure on the stream consumer) instead of
 *   growing without bound.
 * - handle() resolves once the API write succeeded or the event was dropped; transient API errors are retried with
 *   bounded backoff, then the event is dropped with a warning (events are best effort).
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import { edge } from '@edgefarm/proto';
import { WorkQueue } from '@edgefarm/workqueue';
import type { Logger } from 'pino';
import type { KubeClient, Pod } from '../kube/client.js';
import { isAlreadyExists } from '../kube/errors.js';
import { RateLimiter } from './rate.js';
import { RefusalNotices } from './refusals.js';

export interface EdgeEventSinkDeps {
  kube: KubeClient;
  /** The pod as the informer cache holds it, or undefined (never an API call: an Event is not worth one). */
  getPod(namespace: string, name: string): Pod | undefined;
  log: Logger;
  /** Delay between retries (default 200 ms doubling); injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  attempts?: number;
  /** Events written in parallel (default 8). */
  workers?: number;
  /** Event writes per second across every node (default 50, burst twice that: the kubelet's --event-qps for one node). */
  ratePerS?: number;
  /** Events waiting to be written before enqueue() waits for room (default 10,000). */
  maxQueued?: number;
  /** Told what became of each event (metrics). */
  outcome?: (outcome: EventResult) => void;
}

/** `wrong_node`: refused, the Event names a pod bound to another node than the one it came in for. */
export type EventOutcome = 'created' | 'updated' | 'stale' | 'dropped' | 'wrong_node';
/** What became of an enqueued event: written, or `coalesced` into a later message for the same Event. */
export type EventResult = EventOutcome | 'coalesced';

const MAX_NAME = 253;

/** The Event's name for an edge aggregation key: `<pod>.<key>`, the kubelet's `<pod>.<suffix>` form. */
export function eventName(podName: string, key: string): string {
  return `${podName.slice(0, MAX_NAME - key.length - 1)}.${key}`;
}

/** The Event's namespace/name: how the sink keys its queue and what it wrote. */
function eventId(e: edge.EdgeEvent): string {
  return `${e.podNamespace}/${eventName(e.podName, e.key)}`;
}

export class EdgeEventSink {
  /** Count last written per Event (namespace/name), to skip older messages; bounded. */
  private readonly written = new Map<string, number>();
  private readonly sleep: (ms: number) => Promise<void>;
  /** Events waiting for a worker, by Event id (namespace/name): the message with the highest count. */
  private readonly pending = new Map<string, { node: string; e: edge.EdgeEvent }>();
  private readonly queue: WorkQueue;
  private readonly maxQueued: number;
  private roomWaiters: (() => void)[] = [];
  private stopped = false;
  private readonly rate: RateLimiter;
  /** Wrong-node refusals: logged and told on the reporting Node (a Warning Event), once a minute per node. */
  private readonly notices: RefusalNotices;

  constructor(private readonly deps: EdgeEventSinkDeps) {
    this.sleep = deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.maxQueued = deps.maxQueued ?? 10_000;
    const ratePerS = deps.ratePerS ?? 50;
    this.rate = new RateLimiter(ratePerS, 2 * ratePerS, { sleep: this.sleep });
    this.notices = new RefusalNotices({ kube: deps.kube, log: deps.log, now: () => new Date() });
    this.queue = new WorkQueue(
      async (id) => {
        const next = this.pending.get(id);
        if (!next) return;
        this.pending.delete(id);
        this.wakeWaiters();
        const result = await this.handle(next.node, next.e); // not inside outcome?.(): that skips its arguments when unset
        this.deps.outcome?.(result);
      },
      { workers: deps.workers ?? 8 },
    );
  }

  /** Events waiting for a worker. */
  get queued(): number {
    return this.pending.size;
  }

  /**
   * Queues an event to be written. Resolves at once, or, with `maxQueued` events waiting, once there is room; after
   * stop() the event is not written.
   */
  async enqueue(node: string, e: edge.EdgeEvent): Promise<void> {
    const id = eventId(e);
    const waiting = this.pending.get(id);
    if (waiting) {
      if (waiting.e.count < e.count) this.pending.set(id, { node, e });
      this.deps.outcome?.('coalesced');
      return;
    }
    while (!this.stopped && this.pending.size >= this.maxQueued) await new Promise<void>((r) => this.roomWaiters.push(r));
    if (this.stopped) return;
    this.pending.set(id, { node, e });
    this.queue.add(id);
  }

  /** Resolves when nothing is queued or being written (tests). */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  /** Drops what is queued and waits for the writes in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.pending.clear();
    this.wakeWaiters();
    await this.queue.stop();
  }

  private wakeWaiters(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w();
  }

  async handle(node: string, e: edge.EdgeEvent): Promise<EventOutcome> {
    const { log } = this.deps;
    const attempts = this.deps.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.write(node, e);
      } catch (err) {
        if (attempt >= attempts) {
          log.warn(
            { node, pod: `${e.podNamespace}/${e.podName}`, reason: e.reason, err: (err as Error).message },
            'could not write an edge event; dropped',
          );
          return 'dropped';
        }
        await this.sleep(200 * 2 ** (attempt - 1));
      }
    }
  }

  private async write(node: string, e: edge.EdgeEvent): Promise<EventOutcome> {
    const { kube } = this.deps;
    const pod = this.deps.getPod(e.podNamespace, e.podName);
    if (!pod || pod.metadata?.uid !== e.podUid) return 'dropped';
    if (pod.spec?.nodeName !== node) return this.refuse(node, pod, e);
    const name = eventName(e.podName, e.key);
    const id = eventId(e);
    if ((this.written.get(id) ?? 0) >= e.count) return 'stale';
    // JSON merge patch body: timestamps as RFC 3339 strings, as on the wire
    const patch = { count: e.count, lastTimestamp: new Date(Number(e.lastTimestampMs)).toISOString(), message: e.message };
    await this.rate.take();
    let outcome: EventOutcome = 'updated';
    // Written before by this replica: patch, and create only if it is gone (deleted, expired). Unseen: create, and
    // patch only if it exists (another replica or an earlier run wrote it). Either way the common case is one call.
    if (!(this.written.has(id) && (await kube.patchEvent(e.podNamespace, name, patch)))) {
      try {
        await kube.createEvent(toKubeEvent(node, pod, e, name));
        outcome = 'created';
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        if (!(await kube.patchEvent(e.podNamespace, name, patch))) {
          throw new Error(`Event ${id} exists, then not (deleted meanwhile)`, { cause: err });
        }
      }
    }
    this.written.delete(id);
    this.written.set(id, e.count);
    if (this.written.size > 10_000) this.written.delete(this.written.keys().next().value!);
    return outcome;
  }

  /** Refuses an Event of `node` about a pod bound to another node (told once a minute per node: RefusalNotices). */
  private refuse(node: string, pod: Pod, e: edge.EdgeEvent): 'wrong_node' {
    this.notices.refused('event', node, `${e.podNamespace}/${e.podName}`, pod.spec?.nodeName);
    return 'wrong_node';
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
