import type * as k8s from '@kubernetes/client-node';
import { ApiError, FakeKubeClient } from '../kube/fake.js';
import { heartbeat, nodeControllers, policy } from './testing.js';

describe('NodeController: registration, EdgeNode policy, Leases, takeover and release', () => {
  let clock = new Date('2026-11-23T10:00:00Z').getTime();
  const { controller, add, stopAll } = nodeControllers(() => new Date(clock));
  afterEach(() => stopAll());

  it('recovers from a lease conflict on the next renewal', async () => {
    const kube = new FakeKubeClient();
    const { ctl, renew } = controller(kube);
    ctl.start();
    await add(ctl, policy());
    kube.failNext('replaceLease', Object.assign(new Error('conflict'), { code: 409 }));
    clock += 10_000;
    await renew();
    clock += 10_000;
    await renew();
    expect(kube.leases.get('kube-node-lease/edge-1')!.spec!.renewTime!.getTime()).toBe(clock);
  });

  it("applies the EdgeNode: labels and taints (keeping others' taints), reserved resources, owner", async () => {
    const kube = new FakeKubeClient();
    const { ctl, facts } = controller(kube);
    ctl.start();
    await add(
      ctl,
      policy({ labels: { site: 'plant-a' }, taints: [{ key: 'gpu', effect: 'NoSchedule' }], reserved: { cpu: '500m', memory: 'lots' } }),
    );
    const node = () => kube.nodes.get('edge-1')!;
    expect(node().metadata!.labels!.site).toBe('plant-a');
    expect(node().metadata!.ownerReferences![0]).toMatchObject({ kind: 'EdgeNode', name: 'edge-1', uid: 'uid-en' });
    expect(node().spec!.taints!.map((t) => t.key)).toEqual(['edgefarm.io/edge', 'gpu']);
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(node().status!.allocatable).toMatchObject({ cpu: '1500m', memory: '1024Ki' }); // the bad quantity is ignored
    expect(facts.allocatable('edge-1')).toMatchObject({ cpu: '1500m', memory: '1024Ki' }); // what pods see too

    // The node lifecycle controller taints the node; the EdgeNode drops its label and taint.
    node().spec!.taints!.push({ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' });
    ctl.policyChanged('edge-1', policy({ labels: { zone: 'z1' } }));
    await ctl.drained();
    expect(node().metadata!.labels).toMatchObject({ zone: 'z1', 'kubernetes.io/hostname': 'edge-1' });
    expect(node().metadata!.labels!.site).toBeUndefined();
    expect(
      node()
        .spec!.taints!.map((t) => t.key)
        .sort(),
    ).toEqual(['edgefarm.io/edge', 'node.kubernetes.io/unreachable']);
    expect(facts.allocatable('edge-1')).toMatchObject({ cpu: '2' }); // nothing reserved any more
  });

  it('a deleted Node is registered again only once no pod is bound to it (or after reregisterAfterMs)', async () => {
    const kube = new FakeKubeClient();
    let bound = 2;
    const { ctl, tick } = controller(kube, { pods: { count: () => bound } });
    ctl.start();
    await add(ctl, policy());
    kube.nodes.delete('edge-1');
    clock += 60_000;
    await tick(); // status write finds it gone
    await tick();
    expect(kube.nodes.has('edge-1')).toBe(false);
    bound = 0;
    await tick();
    expect(kube.nodes.has('edge-1')).toBe(true);
    kube.nodes.delete('edge-1');
    bound = 5;
    clock += 60_000;
    await tick();
    clock += 300_001;
    await tick();
    expect(kube.nodes.has('edge-1')).toBe(true);
  });

  it('a Node created meanwhile (409 AlreadyExists) is read again at once; a 409 Conflict is a failed write, retried later', async () => {
    const kube = new FakeKubeClient();
    const { ctl } = controller(kube);
    kube.failNext('createNode', new ApiError(409, 'nodes "edge-1" already exists', 'AlreadyExists'));
    await add(ctl, policy());
    expect(kube.calls.filter((c) => /^(getNode|createNode)/.test(c)).slice(0, 4)).toEqual([
      'getNode edge-1',
      'createNode edge-1',
      'getNode edge-1',
      'createNode edge-1',
    ]);
    expect(kube.nodes.has('edge-1')).toBe(true);

    const other = new FakeKubeClient();
    const { ctl: ctl2 } = controller(other);
    other.failNext('createNode', new ApiError(409, 'the object has been modified', 'Conflict'));
    await add(ctl2, policy());
    expect(other.calls.filter((c) => c.startsWith('createNode'))).toEqual(['createNode edge-1']);
    expect(other.nodes.has('edge-1')).toBe(false); // left to the work queue's backoff
    await new Promise((r) => setTimeout(r, 400));
    await ctl2.drained();
    expect(other.nodes.has('edge-1')).toBe(true);
  });

  it('taking over a Ready node writes it with its last heartbeat read back, never Ready False (no flap on failover)', async () => {
    const kube = new FakeKubeClient();
    await kube.createNode({
      metadata: { name: 'edge-1' },
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'EdgeAgentReady' }] },
    });
    const written: string[] = [];
    const patch = kube.patchNodeStatus.bind(kube);
    kube.patchNodeStatus = async (name, p) => {
      written.push((p as { status: k8s.V1NodeStatus }).status.conditions!.find((c) => c.type === 'Ready')!.status);
      return patch(name, p);
    };
    const { ctl } = controller(kube, { kubeletPort: { portOf: (node) => (node === 'edge-1' ? 10251 : 10250) } });
    ctl.start();
    ctl.taking({ nodes: [{ name: 'edge-1', policy: policy() }], desired: [] });
    await ctl.drained();
    expect(written).toEqual([]); // nothing written while the last heartbeat is read back
    ctl.onHeartbeat('edge-1', heartbeat(), clock); // read back from the hub
    ctl.taken(['edge-1']);
    await ctl.drained();
    expect(written).toEqual(['True']);
    expect(kube.nodes.get('edge-1')!.status!.daemonEndpoints!.kubeletEndpoint!.Port).toBe(10251);
  });

  it('a node handed over is forgotten with its Node and Lease left; a deleted EdgeNode takes its managed Node along', async () => {
    const kube = new FakeKubeClient();
    const { ctl, facts, renew } = controller(kube);
    await add(ctl, policy());
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    const writes = kube.calls.length;
    await ctl.released('edge-1', 'handed-over');
    clock += 60_000;
    await renew();
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(kube.calls.length).toBe(writes); // not a single call
    expect(kube.nodes.has('edge-1')).toBe(true);
    expect(facts.lastHeartbeat('edge-1')).toBeUndefined();

    await add(ctl, policy());
    await ctl.released('edge-1', 'deleted');
    expect(kube.nodes.has('edge-1')).toBe(false);
    // A Node the provider does not manage (no managed annotation) is not its to delete.
    await kube.createNode({ metadata: { name: 'edge-1' } });
    await add(ctl, policy()); // adopts it: labels, taints and the annotation
    kube.nodes.get('edge-1')!.metadata!.annotations = {};
    await ctl.released('edge-1', 'deleted');
    expect(kube.nodes.has('edge-1')).toBe(true);
  });
});
