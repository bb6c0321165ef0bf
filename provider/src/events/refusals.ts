/**
 * RefusalNotices: tells people that a site sent something about pods not its own (a status report, an Event), without
 * letting the site flood the log or the API with it. Every refusal is counted by its caller; per reporting node, at
 * most one log line and one Warning Event on that node's Node object per interval (default a minute), each saying
 * how many were refused since the last one, so `kubectl describe node` shows which site misbehaves.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';

export type RefusedKind = 'status' | 'event';

export interface RefusalNoticesDeps {
  kube: Pick<KubeClient, 'createEvent'>;
  /** None: only the Event is written. */
  log?: Logger;
  now: () => Date;
  /** Per node, at most one notice per this many ms (default 60,000). */
  intervalMs?: number;
}

/** The Warning Event's reason. */
export const REFUSED_REASON = 'ForeignPodDataRefused';

const WHAT: Record<RefusedKind, string> = { status: 'status reports', event: 'Events' };

export class RefusalNotices {
  /** Per reporting node: refusals not told yet, and when the last notice went out. */
  private readonly nodes = new Map<string, { untold: number; toldAtMs: number }>();
  private readonly intervalMs: number;

  constructor(private readonly deps: RefusalNoticesDeps) {
    this.intervalMs = deps.intervalMs ?? 60_000;
  }

  /** Node `from` sent `kind` about `pod` (namespace/name), which is bound to `podNode`. */
  refused(kind: RefusedKind, from: string, pod: string, podNode: string | undefined): void {
    const nowMs = this.deps.now().getTime();
    const n = this.nodes.get(from) ?? { untold: 0, toldAtMs: -Infinity };
    n.untold++;
    this.nodes.set(from, n);
    if (nowMs - n.toldAtMs < this.intervalMs) return;
    const message =
      `refused ${n.untold} ${WHAT[kind]} from this node about pods bound to other nodes (last: pod ${pod} on ${podNode ?? 'no node'}); ` +
      'a node speaks only for its own pods';
    this.deps.log?.warn({ node: from, kind, pod, podNode, refused: n.untold }, `refused ${WHAT[kind]} about pods of another node`);
    n.untold = 0;
    n.toldAtMs = nowMs;
    this.deps.kube
      .createEvent(nodeEvent(from, message, this.deps.now()))
      .catch((err: unknown) => this.deps.log?.warn({ node: from, err: (err as Error).message }, 'could not write the refusal Event'));
  }

  /** The node is no longer served here. */
  forget(node: string): void {
    this.nodes.delete(node);
  }
}

function nodeEvent(node: string, message: string, at: Date): CoreV1Event {
  return {
    metadata: { name: `${node.slice(0, 200)}.refused.${at.getTime().toString(16)}`, namespace: 'default' },
    involvedObject: { kind: 'Node', apiVersion: 'v1', name: node, uid: node },
    type: 'Warning',
    reason: REFUSED_REASON,
    message,
    source: { component: 'edgefarm-provider' },
    reportingComponent: 'edgefarm-provider',
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}
