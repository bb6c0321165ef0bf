/**
 * A site reports for a pod of another node, on the secured fabric (SecureFabric: hub and site servers configured as
 * the product, every party with its real credentials). Node B's agent may publish status only under its own wire
 * id; it publishes a `removed` report about node A's pod (which is being deleted gracefully). The provider's HubBus
 * hands it on as node B's, and the StatusManager refuses it: no force-delete, no status write, counted
 * `rejected{wrong_node}`, its copy purged from EF_STATUS. Node A's own report then finishes the delete.
 *
 * The Kubernetes side is the hand-written fake (as in the other bus integration tests): the component under test is
 * the path from a site's credentials through the hub to the provider's decision.
 */
import { create } from '@bufbuild/protobuf';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { HUB_DOMAIN, Streams, edge, encode, statusSubjects } from '@edgefarm/proto';
import { SecureFabric, silentLogger, waitFor } from '@edgefarm/testing';
import { FakeKubeClient } from '../kube/fake.js';
import { HubBus } from '../bus/hub.js';
import { NodeIdentities } from '../membership/identities.js';
import { NodeFacts } from '../nodecontroller/facts.js';
import { StatusManager } from './status-manager.js';
import { pod } from './testing.js';

const T = 90_000;
const log = silentLogger();
let fabric: SecureFabric;
let desired: NatsConnection;
let cloud: NatsConnection;
let bus: HubBus;

beforeAll(async () => {
  fabric = await SecureFabric.start({ nodes: ['node-a', 'node-b'] });
  desired = await fabric.connectProvider('desired');
  cloud = await fabric.connectProvider('cloud');
  const ids = new NodeIdentities(log);
  for (const name of ['node-a', 'node-b'])
    ids.observe({ metadata: { name }, status: { connected: true, identity: { publicKey: fabric.node(name).wireId } } });
  bus = new HubBus({ hub: { desired, cloud }, log, wireIds: ids });
  await bus.ensureStreams();
}, T);

afterAll(async () => {
  await bus?.stop();
  await fabric?.stop();
}, T);

const removed = (generation: bigint) =>
  encode(
    edge.PodStatusReportSchema,
    create(edge.PodStatusReportSchema, {
      uid: 'uid-1',
      namespace: 'default',
      name: 'web-1',
      generation,
      removed: true,
      phase: edge.PodPhase.SUCCEEDED,
    }),
  );

it(
  "refuses node B's report about node A's pod: no force-delete, counted, purged from the hub; A's own report finishes the delete",
  async () => {
    const kube = new FakeKubeClient();
    const deleting = kube.emitPod(pod({ nodeName: 'node-a' }, { deletionTimestamp: new Date(), deletionGracePeriodSeconds: 30 }));
    const outcomes: string[] = [];
    const metrics = {
      statusReport: (r: string, reason?: string) => void outcomes.push(reason ? `${r}:${reason}` : r),
      statusApplied: () => void outcomes.push('applied'),
      statusConflict: () => undefined,
      podStarted: () => undefined,
    };
    const sm = new StatusManager({ kube, bus, facts: new NodeFacts(), metrics, now: () => new Date(), log });
    const received: string[] = [];
    await bus.followStatus({
      pod: (node, report) => {
        received.push(`${node} ${report.uid} ${report.generation}`);
        sm.record(node, report);
      },
      heartbeat: () => undefined,
    });

    // Node B's agent, with B's credentials through B's site: its own wire id is the only one it may publish under.
    const B = fabric.node('node-b').wireId;
    const agentB = await fabric.connectAgent('node-b');
    const ack = await jetstream(agentB, { domain: HUB_DOMAIN, timeout: 5_000 }).publish(
      statusSubjects.of(B, { kind: 'pod', uid: 'uid-1' }),
      removed(1_000n),
    );
    expect(ack.stream).toBe(Streams.status);
    await waitFor("B's report at the provider", async () => received.includes('node-b uid-1 1000'), 15_000, 50);

    expect(await sm.finishDelete(deleting, 'node-a', log)).toBe(false);
    await sm.sync(deleting, 'node-a');
    expect(kube.calls.filter((c) => c.startsWith('deletePod') || c.startsWith('replacePodStatus'))).toEqual([]);
    expect(outcomes).toEqual(['rejected:wrong_node']);
    const jsm = await jetstreamManager(cloud);
    await waitFor(
      "B's report purged from EF_STATUS",
      async () => {
        const info = await jsm.streams.info(Streams.status, { subjects_filter: statusSubjects.of(B, { kind: 'pod', uid: 'uid-1' }) });
        return Object.keys(info.state.subjects ?? {}).length === 0;
      },
      10_000,
      100,
    );

    // Node A's own report (a far lower generation than B's forgery) is taken and finishes the graceful delete.
    const A = fabric.node('node-a').wireId;
    const agentA = await fabric.connectAgent('node-a');
    await jetstream(agentA, { domain: HUB_DOMAIN, timeout: 5_000 }).publish(
      statusSubjects.of(A, { kind: 'pod', uid: 'uid-1' }),
      removed(1n),
    );
    await waitFor("A's report at the provider", async () => received.includes('node-a uid-1 1'), 15_000, 50);
    expect(await sm.finishDelete(deleting, 'node-a', log)).toBe(true);
    expect(kube.calls).toContain('deletePod default/web-1 grace=0');
  },
  T,
);
