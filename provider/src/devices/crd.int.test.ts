/**
 * The device CRDs (manifests/crds/devices-crd.yaml) on a real kube-apiserver: a KubeEdge-shaped DeviceModel and Device
 * are accepted; what the schema can judge is refused at admission with a message that names the field (types, bounds,
 * names, duplicate properties, sizes); status is a subresource, so a spec write cannot touch the twin and a status
 * write cannot touch the desired values.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KubeApiServer } from '@edgefarm/testing';
import * as k8s from '@kubernetes/client-node';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const GROUP = 'devices.edgefarm.io';
const VERSION = 'v1beta1';
let dir: string;
let api: KubeApiServer;
let objects: k8s.CustomObjectsApi;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-device-crd-'));
  api = await KubeApiServer.start({ dir: path.join(dir, 'kube') });
  await api.apply(path.join(ROOT, 'manifests/crds/devices-crd.yaml'));
  objects = api.kubeConfigFor().makeApiClient(k8s.CustomObjectsApi);
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await rm(dir, { recursive: true, force: true });
});

const model = (spec: object, name = 'pump') => ({ apiVersion: `${GROUP}/${VERSION}`, kind: 'DeviceModel', metadata: { name }, spec });
const device = (spec: object, name = 'pump-1') => ({ apiVersion: `${GROUP}/${VERSION}`, kind: 'Device', metadata: { name }, spec });
const PUMP_MODEL = {
  protocol: 'modbus',
  properties: [
    { name: 'speed', type: 'INT', accessMode: 'ReadWrite', minimum: '0', maximum: '3000', unit: 'rpm' },
    { name: 'temperature', type: 'DOUBLE', unit: 'celsius' },
  ],
};
const PUMP = {
  deviceModelRef: { name: 'pump' },
  nodeName: 'edge-1',
  protocol: { protocolName: 'modbus', configData: { address: '10.0.0.5:502', unitId: 1 } },
  properties: [
    {
      name: 'speed',
      desired: { value: '1200' },
      visitors: { protocolName: 'modbus', configData: { register: 'HoldingRegister', offset: 1, limit: 1 } },
      collectCycle: 1_000_000_000,
      reportCycle: 1_000_000_000,
    },
    { name: 'temperature', visitors: { protocolName: 'modbus', configData: { register: 'InputRegister', offset: 3, scale: 0.1 } } },
  ],
};

async function refusal(create: () => Promise<unknown>): Promise<string> {
  try {
    await create();
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    expect(e.code).toBe(422);
    // the Status the apiserver answered: its message names the field and what is wrong with it
    const status = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { message?: string };
    return status.message ?? '';
  }
  throw new Error('the apiserver accepted it');
}

const createModel = (body: object) =>
  objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'default', plural: 'devicemodels', body });
const createDevice = (body: object) =>
  objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'default', plural: 'devices', body });

test('accepts a KubeEdge-shaped model and device, defaulting accessMode and reportToCloud', async () => {
  await createModel(model(PUMP_MODEL));
  const d = (await createDevice(device(PUMP))) as { spec: { properties: { reportToCloud?: boolean }[] } };
  expect(d.spec.properties.map((p) => p.reportToCloud)).toEqual([true, true]);
  const m = (await objects.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: 'default',
    plural: 'devicemodels',
    name: 'pump',
  })) as {
    spec: { properties: { accessMode: string }[] };
  };
  expect(m.spec.properties.map((p) => p.accessMode)).toEqual(['ReadWrite', 'ReadOnly']);
});

test.each<[string, object, RegExp]>([
  ['an unknown property type', { properties: [{ name: 'x', type: 'COMPLEX' }] }, /Unsupported value: "COMPLEX"/],
  [
    'a property named twice',
    {
      properties: [
        { name: 'x', type: 'INT' },
        { name: 'x', type: 'INT' },
      ],
    },
    /Duplicate value/,
  ],
  [
    'bounds on a STRING',
    { properties: [{ name: 'x', type: 'STRING', minimum: '1' }] },
    /minimum and maximum apply to INT, FLOAT and DOUBLE/,
  ],
  ['a property name with a dot', { properties: [{ name: 'a.b', type: 'INT' }] }, /should match/],
  ['a protocol name in capitals', { protocol: 'Modbus' }, /should match/],
  ['an access mode of its own', { properties: [{ name: 'x', type: 'INT', accessMode: 'WriteOnly' }] }, /Unsupported value: "WriteOnly"/],
])('refuses a model with %s', async (_what, spec, message) => {
  expect(await refusal(() => createModel(model(spec, `bad-${Math.random().toString(36).slice(2, 8)}`)))).toMatch(message);
});

test.each<[string, object, RegExp]>([
  ['no node', { ...PUMP, nodeName: undefined }, /spec.nodeName: Required value/],
  ['no model', { ...PUMP, deviceModelRef: undefined }, /spec.deviceModelRef: Required value/],
  ['a desired value of 4097 characters', { ...PUMP, properties: [{ name: 'speed', desired: { value: 'x'.repeat(4097) } }] }, /Too long/],
  ['a property named twice', { ...PUMP, properties: [{ name: 'speed' }, { name: 'speed' }] }, /Duplicate value/],
  ['a negative cycle', { ...PUMP, properties: [{ name: 'speed', collectCycle: -1 }] }, /should be greater than or equal to 0/],
  [
    'a configData of 65 keys',
    { ...PUMP, protocol: { protocolName: 'modbus', configData: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])) } },
    /must have at most 64 items/,
  ],
  ['257 properties', { ...PUMP, properties: Array.from({ length: 257 }, (_, i) => ({ name: `p${i}` })) }, /must have at most 256 items/],
])('refuses a device with %s', async (_what, spec, message) => {
  expect(await refusal(() => createDevice(device(spec, `bad-${Math.random().toString(36).slice(2, 8)}`)))).toMatch(message);
});

test('keeps the twin in the status subresource: a spec write cannot set it, a status write cannot change the desired values', async () => {
  await createDevice(device(PUMP, 'pump-2'));
  const ref = { group: GROUP, version: VERSION, namespace: 'default', plural: 'devices', name: 'pump-2' };
  const twin = { twins: [{ propertyName: 'speed', reported: { value: '1190', metadata: { timestamp: '1796668160980' } } }] };
  // through the main resource, status is ignored
  const cur = (await objects.getNamespacedCustomObject(ref)) as Record<string, unknown> & { metadata: { generation: number } };
  const replaced = (await objects.replaceNamespacedCustomObject({ ...ref, body: { ...cur, status: twin } })) as { status?: unknown };
  expect(replaced.status).toBeUndefined();
  // through the status subresource, the spec stays (and the generation with it)
  const withSpec = { ...cur, spec: { ...PUMP, properties: [{ name: 'speed', desired: { value: '1' } }] }, status: twin };
  const written = (await objects.replaceNamespacedCustomObjectStatus({
    ...ref,
    body: { ...withSpec, metadata: ((await objects.getNamespacedCustomObject(ref)) as { metadata: object }).metadata },
  })) as {
    metadata: { generation: number };
    spec: typeof PUMP;
    status: typeof twin;
  };
  expect(written.status.twins[0]?.reported.value).toBe('1190');
  expect(written.spec.properties[0]?.desired?.value).toBe('1200');
  expect(written.metadata.generation).toBe(cur.metadata.generation);
});

test('accepts the example in docs/devices.md (examples/devices/pump.yaml)', async () => {
  await api.apply(path.join(ROOT, 'examples/devices/pump.yaml'));
  const d = (await objects.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: 'default',
    plural: 'devices',
    name: 'pump-1',
  })) as {
    spec: { nodeName: string };
  };
  expect(d.spec.nodeName).toBe('edge-1');
});
