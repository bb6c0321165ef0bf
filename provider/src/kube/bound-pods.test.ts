import { BoundPods } from './bound-pods.js';
import { FakeKubeClient } from './fake.js';

describe('BoundPods', () => {
  it('reads pods, pods of nodes and their count from the informer cache', () => {
    const kube = new FakeKubeClient();
    const bound = (name: string, node: string) =>
      kube.emitPod({ metadata: { namespace: 'default', name, uid: `uid-${name}` }, spec: { nodeName: node, containers: [] } });
    bound('a', 'edge-1');
    bound('b', 'edge-1');
    bound('c', 'edge-2');
    const pods = new BoundPods(kube.podWatch());
    expect(pods.get('default', 'c')?.spec?.nodeName).toBe('edge-2');
    expect(pods.get('default', 'nope')).toBeUndefined();
    expect(pods.on(['edge-1']).map((p) => p.metadata!.name)).toEqual(['a', 'b']);
    expect(pods.on(new Set(['edge-1', 'edge-2']))).toHaveLength(3);
    expect([pods.count('edge-1'), pods.count('edge-2'), pods.count('edge-3')]).toEqual([2, 1, 0]);
  });
});
