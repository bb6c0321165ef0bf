/**
 * The Kubernetes side of the scale benchmarks: bulk creates/deletes with bounded concurrency, and watches that keep
 * running (restarted when the apiserver ends them) and record what the benchmarks wait for and measure: pods Ready or
 * gone, nodes' EdgeConnected condition, Node Lease renewals (gaps between successive renewTimes).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { PooledKubeConfig } from '@edgefarm/provider/kubeconfig';
import { BUSYBOX } from './floor.js';
import { requestCounts } from './prom.js';
import { nowMs, sleep } from './stats.js';

export const BENCH_LABEL = 'edgefarm.io/bench';

/** Runs `fn` over `items` with at most `concurrency` in flight; failures are counted, not thrown. */
export async function bounded<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<number> {
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item).catch(() => failed++);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return failed;
}

/**
 * A watch that is started again (after 1 s) whenever it ends, until stopped; the replayed ADDED events are harmless.
 * (client-node ends a watch after 30 s without a byte, and the apiserver ends them now and then.) `onEnd` hears why.
 */
export function keepWatching<T>(
  kc: k8s.KubeConfig,
  path: string,
  query: Record<string, string>,
  on: (type: string, obj: T) => void,
  onEnd?: (err: unknown) => void,
): () => void {
  let stopped = false;
  let abort: AbortController | undefined;
  const start = async (): Promise<void> => {
    if (stopped) return;
    try {
      abort = await new k8s.Watch(kc).watch(
        path,
        query,
        (type, obj: T) => on(type, obj),
        (err) => {
          if (!stopped) onEnd?.(err);
          void sleep(1000).then(start);
        },
      );
    } catch (err) {
      onEnd?.(err);
      await sleep(1000);
      return start();
    }
  };
  void start();
  return () => {
    stopped = true;
    abort?.abort();
  };
}

export interface WatchedPod {
  ready?: number;
  gone?: number;
}

export class Cluster {
  readonly kc = new PooledKubeConfig();
  readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly stops: (() => void)[] = [];
  /** Pods of the benchmark by name: local time first seen Ready, and deleted. */
  readonly pods = new Map<string, WatchedPod>();
  /** Node name -> EdgeConnected condition status ('True', 'False', ...). */
  readonly connected = new Map<string, string>();
  /** Node name -> last Lease renewTime (ms) and the largest gap between two renewals seen (ms). */
  readonly leases = new Map<string, { last: number; maxGap: number; renewals: number }>();
  /**
   * When the Lease watch ended (and was started again): renewals made meanwhile are not seen, so a gap spanning one
   * may be the watch's, not the provider's.
   */
  readonly leaseWatchEnds: number[] = [];
  /** Nodes the node lifecycle controller ever marked Ready=Unknown: its verdict that a Lease really expired. */
  readonly lost = new Set<string>();

  /** @param deadline epoch ms after which no wait goes on (the benchmark run's time budget). */
  constructor(
    private readonly kubeconfig: string,
    readonly deadline = Infinity,
  ) {
    this.kc.loadFromFile(kubeconfig);
    this.core = this.kc.makeApiClient(k8s.CoreV1Api);
    this.custom = this.kc.makeApiClient(k8s.CustomObjectsApi);
  }

  /** Starts the pod (label selector), node and Lease watches. */
  watch(label: string): void {
    this.stops.push(
      keepWatching<k8s.V1Pod>(this.kc, '/api/v1/pods', { labelSelector: `${BENCH_LABEL}=${label}` }, (type, pod) => {
        const name = pod.metadata?.name ?? '';
        const p = this.pods.get(name) ?? {};
        this.pods.set(name, p);
        if (type === 'DELETED') p.gone ??= nowMs();
        else if (p.ready === undefined && pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) p.ready = nowMs();
      }),
      keepWatching<k8s.V1Node>(this.kc, '/api/v1/nodes', {}, (type, node) => {
        const name = node.metadata?.name ?? '';
        if (type === 'DELETED') this.connected.delete(name);
        else this.connected.set(name, node.status?.conditions?.find((c) => c.type === 'EdgeConnected')?.status ?? 'Unknown');
        if (type !== 'DELETED' && node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'Unknown') this.lost.add(name);
      }),
      keepWatching<k8s.V1Lease>(
        this.kc,
        '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases',
        {},
        (_type, lease) => {
          const name = lease.metadata?.name ?? '';
          const at = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : NaN;
          if (Number.isNaN(at)) return;
          const l = this.leases.get(name);
          if (!l) this.leases.set(name, { last: at, maxGap: 0, renewals: 1 });
          else if (at > l.last) {
            l.maxGap = Math.max(l.maxGap, at - l.last);
            l.last = at;
            l.renewals++;
          }
        },
        () => this.leaseWatchEnds.push(Date.now()),
      ),
    );
  }

  stop(): void {
    for (const s of this.stops.splice(0)) s();
    void this.kc.close();
  }

  /** Lease renewals of the nodes: the largest gap (also counting the time since the last renewal) and how many nodes
   * had a gap over `durationS` (a missed renewal: the Lease expired). Nodes never seen count as missed. */
  leaseGaps(
    nodes: readonly string[],
    durationS = 40,
  ): { maxGapS: number; missed: number; renewals: number; watchEnds: number; nodesLost: number } {
    const now = Date.now();
    let maxGap = 0;
    let missed = 0;
    let renewals = 0;
    for (const n of nodes) {
      const l = this.leases.get(n);
      const gap = l ? Math.max(l.maxGap, now - l.last) : Infinity;
      maxGap = Math.max(maxGap, gap);
      if (gap > durationS * 1000) missed++;
      renewals += l?.renewals ?? 0;
    }
    return {
      maxGapS: Math.round(maxGap / 100) / 10,
      missed,
      renewals,
      watchEnds: this.leaseWatchEnds.length,
      nodesLost: nodes.filter((n) => this.lost.has(n)).length,
    };
  }

  /** Waits until `cond` holds (checked every 500 ms); false after `timeoutMs`, or at the run's deadline if earlier. */
  /** The apiserver's request counters so far (its /metrics, read with kubectl), by "VERB resource[/subresource]". */
  async apiRequests(): Promise<Map<string, number>> {
    const { stdout } = await promisify(execFile)('kubectl', ['--kubeconfig', this.kubeconfig, 'get', '--raw', '/metrics'], {
      maxBuffer: 256 << 20,
    });
    return requestCounts(stdout);
  }

  async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Math.min(Date.now() + timeoutMs, this.deadline);
    while (!cond()) {
      if (Date.now() > deadline) return false;
      await sleep(500);
    }
    return true;
  }

  createEdgeNodes(names: readonly string[], concurrency = 16): Promise<number> {
    return bounded(names, concurrency, (name) =>
      this.custom
        .createClusterCustomObject({
          group: 'edgefarm.io',
          version: 'v1alpha1',
          plural: 'edgenodes',
          body: { apiVersion: 'edgefarm.io/v1alpha1', kind: 'EdgeNode', metadata: { name } },
        })
        .catch((err: unknown) => {
          if ((err as { code?: number }).code !== 409) throw err;
        }),
    );
  }

  /** Creates plain pods bound to their node (spec.nodeName: no scheduler in the path; see bench/README.md). */
  createPods(pods: readonly { name: string; node: string }[], label: string, concurrency = 24): Promise<number> {
    return bounded(pods, concurrency, (p) =>
      this.core.createNamespacedPod({ namespace: 'default', body: hollowPod(p.name, p.node, label) }),
    );
  }

  deletePods(names: readonly string[], concurrency = 24): Promise<number> {
    return bounded(names, concurrency, (name) => this.core.deleteNamespacedPod({ namespace: 'default', name }));
  }

  deleteAllPods(label: string): Promise<unknown> {
    return this.core.deleteCollectionNamespacedPod({
      namespace: 'default',
      labelSelector: `${BENCH_LABEL}=${label}`,
      gracePeriodSeconds: 0,
    });
  }
}

/** A busybox `sleep` pod bound to `node`; no service account token; grace 1 s, so a delete waits for the edge. */
export function hollowPod(name: string, node: string, label: string): k8s.V1Pod {
  return {
    metadata: { name, labels: { [BENCH_LABEL]: label } },
    spec: {
      nodeName: node,
      tolerations: [{ key: 'edgefarm.io/edge', operator: 'Exists', effect: 'NoSchedule' }],
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: BUSYBOX, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] }],
    },
  };
}
