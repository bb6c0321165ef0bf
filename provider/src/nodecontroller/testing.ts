/** Fixtures of the node controller's unit tests: a policy, a heartbeat, and controllers on the fake API. */
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { pino } from 'pino';
import type { FakeKubeClient } from '../kube/fake.js';
import { NodeController, type NodeControllerOptions } from './controller.js';
import { NodeFacts } from './facts.js';
import { policyOf, DEFAULT_TAINT, type NodePolicy } from './node.js';

/** edge-1's policy from an EdgeNode with this spec. */
export const policy = (spec = {}) => policyOf({ metadata: { name: 'edge-1', uid: 'uid-en' }, spec }, [DEFAULT_TAINT]).policy;

/** A heartbeat of edge-1: Ready, 2 CPUs, the site at 10.201.1.2. */
export function heartbeat() {
  return create(edge.NodeHeartbeatSchema, {
    nodeName: 'edge-1',
    agentVersion: '0.1.0',
    capacity: { cpu: '2', memory: '1024Ki', pods: '110' },
    allocatable: { cpu: '2', memory: '1024Ki', pods: '110' },
    conditions: [{ type: 'Ready', status: 'True' }],
    addresses: [{ type: 'InternalIP', address: '10.201.1.2' }],
    systemInfo: { containerRuntimeVersion: 'containerd://1.6.20', operatingSystem: 'linux', architecture: 'amd64' },
  });
}

/** A condition of edge-1's Node as the (fake) API holds it. */
export const condition = (kube: FakeKubeClient, type: string) =>
  kube.nodes.get('edge-1')!.status!.conditions!.find((c) => c.type === type)!;

/**
 * Makes controllers on the fake API on the clock `now`, with a scan too slow to fire: tests drive `tick` (a scan,
 * then the queued writes) and `renew` (every Lease now) themselves. Status refresh 60 s here (5 min by default).
 * `stopAll` stops every controller made.
 */
export function nodeControllers(now: () => Date) {
  const log = pino({ level: 'silent' });
  const running: NodeController[] = [];
  function controller(kube: FakeKubeClient, extra: Partial<NodeControllerOptions> = {}) {
    const facts = new NodeFacts({ now });
    const ctl = new NodeController({
      kube,
      log,
      facts,
      kubeletPort: 10250,
      kubeletAddress: '127.0.0.1',
      now,
      tickMs: 600_000,
      leaseRenewMs: 10_000,
      statusRefreshMs: 60_000,
      ...extra,
    });
    running.push(ctl);
    const internals = ctl as unknown as { scan(): void; renewLeases(): Promise<void> };
    return {
      ctl,
      facts,
      tick: async () => {
        internals.scan();
        await ctl.drained();
      },
      renew: () => internals.renewLeases(),
    };
  }
  /** Serves edge-1 with the policy as membership would (nothing to read back from a hub) and waits for its writes. */
  async function add(ctl: NodeController, p: NodePolicy): Promise<void> {
    ctl.taking({ nodes: [{ name: 'edge-1', policy: p }], desired: [] });
    ctl.taken(['edge-1']);
    await ctl.drained();
  }
  const stopAll = () => Promise.all(running.splice(0).map((c) => c.stop()));
  return { controller, add, stopAll };
}
