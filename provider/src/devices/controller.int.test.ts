/**
 * The device controller against a real kube-apiserver (the device CRDs, the provider's own user and RBAC,
 * manifests/base/provider-rbac.yaml) and a real nats-server hub: a Device created in the API appears at its desired
 * subject as an EdgeDevice the agent's decoder accepts, a problem the schema cannot judge is a Warning Event the
 * provider may record, and deleting the Device leaves a tombstone there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { Headers, Streams, decodeEdgeDevice, desiredSubjects, edge } from '@edgefarm/proto';
import { HubFixture, KubeApiServer, waitFor } from '@edgefarm/testing';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { RealKubeClient } from '../kube/client.js';
import { HubBus, oneConnection } from '../bus/hub.js';
import { DesiredSequences } from '../bus/sequences.js';
import { FakeMembership } from '../membership/fake.js';
import { DeviceController } from './controller.js';
import { DEVICE, DEVICE_MODEL } from './types.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const log = pino({ level: 'silent' });
const NODE = 'edge-dev';
let dir: string;
let api: KubeApiServer;
let hub: HubFixture;
let ctl: DeviceController;
let sequences: DesiredSequences;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-devices-'));
  [api, hub] = await Promise.all([
    KubeApiServer.start({ dir: path.join(dir, 'kube'), users: [{ user: 'edgefarm-provider', groups: ['edgefarm:providers'] }] }),
    HubFixture.start('ef-devices-hub-'),
  ]);
  await api.apply(
    ...['base/namespace.yaml', 'crds/devices-crd.yaml', 'base/provider-rbac.yaml'].map((f) => path.join(ROOT, 'manifests', f)),
  );
  const bus = new HubBus({ hub: oneConnection(hub.nc), log });
  await bus.ensureStreams();
  const membership = new FakeMembership();
  sequences = new DesiredSequences(bus, membership);
  // as the provider's own user: what it may read and record is what RBAC grants it
  const kube = new RealKubeClient(api.kubeConfigFor('edgefarm-provider'));
  ctl = new DeviceController({
    kube,
    bus: sequences,
    devices: kube.deviceWatch(),
    models: kube.deviceModelWatch(),
    served: membership,
    log,
  });
  membership.subscribe(sequences);
  membership.subscribe(ctl);
  await ctl.start();
  await membership.take([NODE]);
}, 120_000);

afterAll(async () => {
  await ctl?.stop();
  await hub?.stop();
  await api?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The last message at a subject of EF_DESIRED, or undefined when there is none. */
async function last(subject: string) {
  const jsm = await jetstreamManager(hub.nc);
  try {
    return (await jsm.streams.getMessage(Streams.desired, { last_by_subj: subject })) ?? undefined;
  } catch {
    return undefined;
  }
}

test('a Device created in the API appears decoded at its desired subject; its deletion leaves a tombstone', async () => {
  const objects = api.kubeConfigFor().makeApiClient(k8s.CustomObjectsApi);
  const ns = 'default';
  await objects.createNamespacedCustomObject({
    ...DEVICE_MODEL,
    namespace: ns,
    body: {
      apiVersion: `${DEVICE_MODEL.group}/${DEVICE_MODEL.version}`,
      kind: 'DeviceModel',
      metadata: { name: 'pump' },
      spec: {
        protocol: 'modbus',
        properties: [
          { name: 'speed', type: 'INT', accessMode: 'ReadWrite', minimum: '0', maximum: '3000', unit: 'rpm' },
          { name: 'temperature', type: 'DOUBLE', unit: 'celsius' },
        ],
      },
    },
  });
  const created = (await objects.createNamespacedCustomObject({
    ...DEVICE,
    namespace: ns,
    body: {
      apiVersion: `${DEVICE.group}/${DEVICE.version}`,
      kind: 'Device',
      metadata: { name: 'pump-1' },
      spec: {
        deviceModelRef: { name: 'pump' },
        nodeName: NODE,
        protocol: { protocolName: 'modbus', configData: { address: '10.0.0.5:502', unitId: 1 } },
        properties: [
          { name: 'speed', desired: { value: '1200' }, visitors: { configData: { register: 'HoldingRegister', offset: 1 } } },
          { name: 'pressure' }, // the model has none: a Warning Event, left out
        ],
      },
    },
  })) as { metadata: { uid: string } };

  const subject = desiredSubjects.device(NODE, { namespace: ns, name: 'pump-1' });
  const m = await waitFor('the desired device on the hub', () => last(subject));
  const d = decodeEdgeDevice(m.data, subject);
  expect(d).toMatchObject({ namespace: ns, name: 'pump-1', uid: created.metadata.uid, generation: 1n, model: 'pump', protocol: 'modbus' });
  expect(JSON.parse(d.protocolConfigJson)).toEqual({ address: '10.0.0.5:502', unitId: 1 });
  expect(d.properties.map((p) => [p.name, p.type, p.writable, p.desired])).toEqual([
    ['speed', edge.PropertyType.INT, true, '1200'],
    ['temperature', edge.PropertyType.DOUBLE, false, undefined],
  ]);
  expect(sequences.sequence(NODE)).toBe(m.seq);

  const core = api.kubeConfigFor().makeApiClient(k8s.CoreV1Api);
  const events = await waitFor('the UnknownProperty Event', async () => {
    const list = await core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=pump-1' });
    return list.items.length > 0 && list.items;
  });
  expect(events.map((e) => [e.type, e.reason, e.involvedObject.kind])).toEqual([['Warning', 'UnknownProperty', 'Device']]);

  await objects.deleteNamespacedCustomObject({ ...DEVICE, namespace: ns, name: 'pump-1' });
  const tomb = await waitFor('the tombstone', async () => {
    const t = await last(subject);
    return t && t.seq > m.seq && t;
  });
  expect(tomb.header?.get(Headers.operation)).toBe('DEL');
  expect(tomb.data.length).toBe(0);
}, 60_000);

test("the provider's own user may write a Device's status but not its spec, and may not write a DeviceModel", async () => {
  const admin = api.kubeConfigFor().makeApiClient(k8s.CustomObjectsApi);
  const asProvider = api.kubeConfigFor('edgefarm-provider').makeApiClient(k8s.CustomObjectsApi);
  const ns = 'default';
  await admin.createNamespacedCustomObject({
    ...DEVICE,
    namespace: ns,
    body: {
      apiVersion: `${DEVICE.group}/${DEVICE.version}`,
      kind: 'Device',
      metadata: { name: 'rbac-1' },
      spec: { deviceModelRef: { name: 'pump' }, nodeName: 'edge-elsewhere', protocol: { protocolName: 'modbus' } },
    },
  });
  const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  const code = async (call: () => Promise<unknown>) => {
    try {
      await call();
      return 200;
    } catch (err) {
      return (err as { code?: number }).code;
    }
  };
  const ref = { ...DEVICE, namespace: ns, name: 'rbac-1' };
  expect(await code(() => asProvider.patchNamespacedCustomObjectStatus({ ...ref, body: { status: { state: 'online' } } }, merge))).toBe(
    200,
  );
  expect(await code(() => asProvider.patchNamespacedCustomObject({ ...ref, body: { spec: { nodeName: 'x' } } }, merge))).toBe(403);
  expect(await code(() => asProvider.deleteNamespacedCustomObject(ref))).toBe(403);
  expect(await code(() => asProvider.deleteNamespacedCustomObject({ ...DEVICE_MODEL, namespace: ns, name: 'pump' }))).toBe(403);
}, 30_000);
