/**
 * Pod startup through the real stack: N Pods created through the apiserver at a fixed rate onto one edge node,
 * observed with a watch. Per pod it records the local send time of the create, the local receive time of the first
 * watch event showing it bound to the node, and of the first showing it Ready.
 */
import * as k8s from '@kubernetes/client-node';
import { PooledKubeConfig } from '@edgefarm/provider/kubeconfig';
import { keepWatching } from './cluster.js';
import { BUSYBOX } from './floor.js';
import { nowMs, sleep } from './stats.js';

export interface PodTimes {
  name: string;
  created: number;
  bound?: number;
  ready?: number;
}

export interface PodRunOptions {
  kubeconfig: string;
  node: string;
  namespace: string;
  n: number;
  ratePerS: number;
  timeoutMs: number;
  label: string;
}

function podBody(name: string, o: PodRunOptions): k8s.V1Pod {
  return {
    metadata: { name, labels: { 'edgefarm.io/bench': o.label } },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': o.node },
      tolerations: [{ key: 'edgefarm.io/edge', operator: 'Exists', effect: 'NoSchedule' }],
      hostNetwork: true,
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'main', image: BUSYBOX, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] }],
    },
  };
}

export async function podStartup(o: PodRunOptions): Promise<PodTimes[]> {
  const kc = new PooledKubeConfig();
  kc.loadFromFile(o.kubeconfig);
  const api = kc.makeApiClient(k8s.CoreV1Api);
  const times = new Map<string, PodTimes>();
  let readyCount = 0;
  let onAllReady: () => void = () => undefined;
  const allReady = new Promise<void>((r) => (onAllReady = r));
  const watchEnds: unknown[] = [];
  // Started again whenever it ends: a pod that turns Ready while no watch runs is seen in the replay (a little late).
  const stopWatch = keepWatching<k8s.V1Pod>(
    kc,
    `/api/v1/namespaces/${o.namespace}/pods`,
    { labelSelector: `edgefarm.io/bench=${o.label}` },
    (_type, pod) => {
      const at = nowMs();
      const t = times.get(pod.metadata?.name ?? '');
      if (!t) return;
      if (t.bound === undefined && pod.spec?.nodeName) t.bound = at;
      if (t.ready === undefined && pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) {
        t.ready = at;
        if (++readyCount === o.n) onAllReady();
      }
    },
    (err) => watchEnds.push(err),
  );
  try {
    await sleep(500); // the watch is established before the first create
    const start = nowMs();
    const creates: Promise<unknown>[] = [];
    for (let i = 0; i < o.n; i++) {
      await sleep(Math.max(0, start + (i * 1000) / o.ratePerS - nowMs()));
      const name = `bench-${o.label}-${i}`;
      times.set(name, { name, created: nowMs() });
      creates.push(api.createNamespacedPod({ namespace: o.namespace, body: podBody(name, o) }));
    }
    await Promise.all(creates);
    await Promise.race([allReady, sleep(o.timeoutMs)]);
    if (readyCount < o.n) process.stderr.write(`[bench] only ${readyCount}/${o.n} pods Ready after ${o.timeoutMs} ms\n`);
    if (watchEnds.length)
      process.stderr.write(
        `[bench] the pod watch ended ${watchEnds.length} times and was started again (first: ${watchEnds[0] === undefined ? 'closed' : JSON.stringify(watchEnds[0])})\n`,
      );
    return [...times.values()];
  } finally {
    stopWatch();
    void kc.close();
  }
}

/** Deletes the bench pods (grace 0) and waits until none is left in the API. */
export async function deletePods(kubeconfig: string, namespace: string, label: string, timeoutMs = 120_000): Promise<void> {
  const kc = new PooledKubeConfig();
  kc.loadFromFile(kubeconfig);
  const api = kc.makeApiClient(k8s.CoreV1Api);
  const labelSelector = `edgefarm.io/bench=${label}`;
  try {
    await api.deleteCollectionNamespacedPod({ namespace, labelSelector, gracePeriodSeconds: 0 });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await api.listNamespacedPod({ namespace, labelSelector })).items.length === 0) return;
      await sleep(500);
    }
    process.stderr.write(`[bench] bench pods still in the API after ${timeoutMs} ms\n`);
  } finally {
    void kc.close();
  }
}
