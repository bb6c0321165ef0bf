/**
 * The EdgeNode drives its Node: labels and taints from its spec appear on the Node and go away with it (taints set
 * by others stay). With the autonomy policy `evict`, once the edge has been silent longer than evictAfterSeconds the
 * provider stops renewing the node's Lease, so the node lifecycle controller treats it as a lost kubelet: Ready
 * Unknown, pods not Ready, unreachable taint. With the agent back, all of it is undone and the pod never restarted.
 */
import { jest } from '@jest/globals';
import {
  applyObject,
  deleteAndWait,
  edgeDeployment,
  eventually,
  hack,
  isRunningReady,
  kubectl,
  kubectlJson,
  layout,
  log,
  podCondition,
  pods,
} from './stack.js';

const NAME = 'e2e-edgenode';
const SELECTOR = `app=${NAME}`;

jest.setTimeout(5 * 60_000);

interface NodeObj {
  metadata: { labels: Record<string, string> };
  spec: { taints?: { key: string; effect: string; value?: string }[] };
  status: { conditions: { type: string; status: string; reason: string }[] };
}
const node = () => kubectlJson<NodeObj>('get', 'node', 'edge-1');
const ready = (n: NodeObj) => n.status.conditions.find((c) => c.type === 'Ready')!;
const taintKeys = (n: NodeObj) => (n.spec.taints ?? []).map((t) => `${t.key}:${t.effect}`).sort();

async function patchEdgeNode(spec: object): Promise<void> {
  await kubectl('patch', 'edgenode', 'edge-1', '--type=merge', '-p', JSON.stringify({ spec }));
}

afterAll(async () => {
  await patchEdgeNode({ labels: null, taints: null, autonomy: { policy: 'keep', evictAfterSeconds: null } });
  await hack('up.sh'); // the agent, if a failed test left it stopped
  await deleteAndWait(SELECTOR, [`deployment/${NAME}`]);
});

test('labels and taints of the EdgeNode reach the Node, and are removed with it', async () => {
  await patchEdgeNode({
    labels: { 'example.com/zone': 'hall-3' },
    taints: [{ key: 'example.com/dedicated', value: 'line-a', effect: 'NoSchedule' }],
  });
  const t0 = Date.now();
  await eventually('label and taint on Node edge-1', 30_000, async () => {
    const n = await node();
    return n.metadata.labels['example.com/zone'] === 'hall-3' && taintKeys(n).includes('example.com/dedicated:NoSchedule')
      ? true
      : undefined;
  });
  log(`EdgeNode labels/taints on the Node ${Date.now() - t0} ms after kubectl patch`);
  const n = await node();
  expect(taintKeys(n)).toContain('edgefarm.io/edge:NoSchedule');

  await patchEdgeNode({ labels: null, taints: null });
  await eventually('label and taint gone from Node edge-1', 30_000, async () => {
    const m = await node();
    return m.metadata.labels['example.com/zone'] === undefined && !taintKeys(m).includes('example.com/dedicated:NoSchedule')
      ? true
      : undefined;
  });
  expect(taintKeys(await node())).toEqual(['edgefarm.io/edge:NoSchedule']);
});

test('autonomy evict: past the deadline the node lifecycle controller handles the node as a lost kubelet', async () => {
  await applyObject(edgeDeployment(NAME, 'edgenode', 1));
  const [before] = await eventually('1 pod Running and Ready', 120_000, async () => {
    const ps = (await pods(SELECTOR)).filter(isRunningReady);
    return ps.length === 1 ? ps : undefined;
  });
  await patchEdgeNode({ autonomy: { policy: 'evict', evictAfterSeconds: 5 } });
  // Silence the edge: stop its agent (its pods keep running in containerd).
  await layout('ef_stop agent-edge-1');
  const stopped = Date.now();
  const unknown = await eventually(
    'Ready Unknown',
    180_000,
    async () => {
      const n = await node();
      return ready(n).status === 'Unknown' ? n : undefined;
    },
    500,
  );
  log(`agent stopped: Ready ${ready(unknown).status} (${ready(unknown).reason}) after ${Date.now() - stopped} ms`);
  expect(ready(unknown).reason).toBe('NodeStatusUnknown');
  await eventually(
    'node.kubernetes.io/unreachable NoExecute taint from the node lifecycle controller',
    60_000,
    async () => (taintKeys(await node()).includes('node.kubernetes.io/unreachable:NoExecute') ? true : undefined),
    500,
  );
  log(`unreachable taint set ${Date.now() - stopped} ms after the agent stopped`);
  // The node lifecycle controller marks the node's pods not Ready; the provider does not put the stale report back.
  await eventually(
    'the pod marked not Ready by the node lifecycle controller',
    60_000,
    async () => {
      const [p] = await pods(SELECTOR);
      return p && podCondition(p, 'Ready') === 'False' ? true : undefined;
    },
    500,
  );

  await hack('up.sh');
  const back = Date.now();
  await eventually(
    'Ready True and no unreachable taint',
    90_000,
    async () => {
      const n = await node();
      return ready(n).status === 'True' && !taintKeys(n).some((k) => k.startsWith('node.kubernetes.io/unreachable')) ? true : undefined;
    },
    500,
  );
  log(`agent back: Ready True and the unreachable taint gone ${Date.now() - back} ms later`);
  // Reconnected: the edge's status is the authority again; the pod never restarted.
  const [after] = await eventually(
    'the pod Ready again (condition and containers)',
    60_000,
    async () => {
      const ps = await pods(SELECTOR);
      return ps.length === 1 && isRunningReady(ps[0]!) && podCondition(ps[0]!, 'Ready') === 'True' ? ps : undefined;
    },
    500,
  );
  expect(after!.metadata.uid).toBe(before!.metadata.uid);
  expect(after!.status.containerStatuses![0]!.containerID).toBe(before!.status.containerStatuses![0]!.containerID);
  expect(after!.status.containerStatuses![0]!.restartCount).toBe(0);
});
