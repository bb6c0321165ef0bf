/**
 * Heartbeat admission against a real kube-apiserver, as the provider's own user (manifests/base/provider-rbac.yaml): a
 * hostile site's extended resource never reaches the Node, a heartbeat naming another node changes nothing, and the
 * HeartbeatRejected Event on the Node is one the API takes from the provider.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { KubeApiServer } from '@edgefarm/testing';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { RealKubeClient } from '../kube/client.js';
import { NodeController } from './controller.js';
import { NodeFacts } from './facts.js';
import { DEFAULT_TAINT, policyOf } from './node.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
let dir: string;
let api: KubeApiServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-admission-'));
  api = await KubeApiServer.start({ dir: path.join(dir, 'kube'), users: [{ user: 'edgefarm-provider', groups: ['edgefarm:providers'] }] });
  await api.apply(
    ...['base/namespace.yaml', 'crds/edgenode-crd.yaml', 'base/provider-rbac.yaml'].map((f) => path.join(ROOT, 'manifests', f)),
  );
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await rm(dir, { recursive: true, force: true });
});

test("a hostile site's heartbeat: no extended resource on the Node, no word for another node, a Warning Event the user sees", async () => {
  const kc = api.kubeConfigFor('edgefarm-provider');
  const rejected: string[] = [];
  const ctl = new NodeController({
    kube: new RealKubeClient(kc),
    log: pino({ level: 'silent' }),
    facts: new NodeFacts(),
    kubeletPort: 10250,
    kubeletAddress: '127.0.0.1',
    tickMs: 600_000,
    rejected: (reason) => rejected.push(reason),
  });
  const { policy } = policyOf({ metadata: { name: 'edge-h' }, spec: {} }, [DEFAULT_TAINT]);
  ctl.taking({ nodes: [{ name: 'edge-h', policy }], desired: [] });
  ctl.taken(['edge-h']);
  await ctl.drained();

  const resources = { cpu: '2', memory: '1Gi', pods: '110', 'example.com/gpu': '1000' };
  const hb = (nodeName: string) =>
    create(edge.NodeHeartbeatSchema, {
      nodeName,
      agentVersion: '0.1.0',
      capacity: resources,
      allocatable: resources,
      conditions: [{ type: 'Ready', status: 'True' }],
      addresses: [{ type: 'InternalIP', address: '10.201.1.2' }],
    });
  ctl.onHeartbeat('edge-h', hb('edge-other'), Date.now());
  await ctl.drained();
  const core = api.kubeConfigFor().makeApiClient(k8s.CoreV1Api); // reading as the admin: the provider may not list Events
  let node = await core.readNode({ name: 'edge-h' });
  expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');

  ctl.onHeartbeat('edge-h', hb('edge-h'), Date.now());
  await ctl.drained();
  node = await core.readNode({ name: 'edge-h' });
  expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  expect(node.status?.capacity).toEqual({ cpu: '2', memory: '1Gi', pods: '110' });
  expect(node.status?.allocatable).not.toHaveProperty('example.com/gpu');
  expect(rejected).toEqual(['node-name', 'resource-name', 'resource-name']);

  // One Event: the second refusal came within the interval (10 min).
  const events = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=edge-h' });
  expect(events.items.map((e) => [e.type, e.reason, e.involvedObject.kind])).toEqual([['Warning', 'HeartbeatRejected', 'Node']]);
  expect(events.items[0]!.message).toContain('node_name "edge-other"');
  await ctl.stop();
}, 60_000);
