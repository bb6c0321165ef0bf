/**
 * The walking skeleton, end to end on real components: `kubectl apply -f examples/hello.yaml` puts two pods on
 * edge-1 whose containers really run in edge-1's containerd; `kubectl delete` removes them from containerd too.
 */
import path from 'node:path';
import { jest } from '@jest/globals';
import { cri as criApi } from '@edgefarm/proto';
import { ROOT, cri, deleteAndWait, eventually, kubectl, kubectlJson } from './stack.js';

interface PodList {
  items: {
    metadata: { name: string; uid: string };
    spec: { nodeName?: string };
    status: { phase?: string; podIP?: string; containerStatuses?: { ready: boolean; containerID?: string }[] };
  }[];
}
interface NodeObj {
  status: {
    conditions: { type: string; status: string }[];
    capacity: Record<string, string>;
    nodeInfo: { containerRuntimeVersion: string };
  };
}

const HELLO = path.join(ROOT, 'examples/hello.yaml');

// The stack is up (jest globalSetup, global-setup.ts); this file removes what it creates, even when a test failed.
jest.setTimeout(10 * 60_000);

afterAll(async () => {
  await deleteAndWait('app=hello', ['deployment/hello']);
});

test('edge-1 is a Ready node with capacity from its agent', async () => {
  const node = await eventually('node edge-1 Ready', 60_000, async () => {
    const n = await kubectlJson<NodeObj>('get', 'node', 'edge-1');
    return n.status.conditions.find((c) => c.type === 'Ready')?.status === 'True' ? n : undefined;
  });
  expect(node.status.conditions.find((c) => c.type === 'EdgeConnected')?.status).toBe('True');
  expect(Number(node.status.capacity.cpu)).toBeGreaterThan(0);
  expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\//);
  const en = await eventually('EdgeNode edge-1 connected', 30_000, async () => {
    const e = await kubectlJson<{ status?: { connected?: boolean; agentVersion?: string; podCount?: number } }>(
      'get',
      'edgenode',
      'edge-1',
    );
    return e.status?.connected ? e : undefined;
  });
  expect(en.status?.agentVersion).toBeTruthy();
  expect(typeof en.status?.podCount).toBe('number');
  expect(await kubectl('get', 'edgenodes')).toMatch(/^NAME\s+CONNECTED\s+LAST-HEARTBEAT\s+PODS\s+DESIRED-SEQ\s+AGENT\s+AGE/);
});

test('kubectl apply runs hello on edge-1 in containerd, kubectl delete removes it', async () => {
  const started = Date.now();
  await kubectl('apply', '-f', HELLO);
  const pods = await eventually('2 hello pods Running and Ready', 120_000, async () => {
    const list = await kubectlJson<PodList>('get', 'pods', '-l', 'app=hello');
    const ok = list.items.filter((p) => p.status.phase === 'Running' && p.status.containerStatuses?.every((c) => c.ready));
    return ok.length === 2 ? list.items : undefined;
  });
  const elapsed = Date.now() - started;
  process.stderr.write(`\n[e2e] kubectl apply -> 2 pods Running: ${elapsed} ms\n`);
  for (const p of pods) {
    expect(p.spec.nodeName).toBe('edge-1');
    expect(p.status.podIP).toBeTruthy();
  }

  const { runtime } = await cri('edge-1');
  try {
    for (const p of pods) {
      const { containers } = await runtime.listContainers({ filter: { labelSelector: { 'io.kubernetes.pod.uid': p.metadata.uid } } });
      expect(containers.map((c) => [c.metadata?.name, c.state])).toEqual([['hello', criApi.ContainerState.CONTAINER_RUNNING]]);
      expect(p.status.containerStatuses?.[0]?.containerID).toBe(`containerd://${containers[0]!.id}`);
    }
    const logs = await kubectl('get', 'pods', '-l', 'app=hello', '-o', 'wide');
    process.stderr.write(logs);

    await kubectl('delete', '-f', HELLO, '--wait=false');
    await eventually('hello pods gone from the API', 120_000, async () => {
      const list = await kubectlJson<PodList>('get', 'pods', '-l', 'app=hello');
      return list.items.length === 0 ? true : undefined;
    });
    for (const p of pods) {
      const { items } = await runtime.listPodSandbox({ filter: { labelSelector: { 'io.kubernetes.pod.uid': p.metadata.uid } } });
      expect(items).toEqual([]);
      const { containers } = await runtime.listContainers({ filter: { labelSelector: { 'io.kubernetes.pod.uid': p.metadata.uid } } });
      expect(containers).toEqual([]);
    }
  } finally {
    runtime.close();
  }
});
