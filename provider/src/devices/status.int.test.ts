/**
 * Device twins into the API: the DeviceStatusWriter, as the provider's own user (manifests/base/provider-rbac.yaml) on
 * a real kube-apiserver, writes a site's twin into the Device's status subresource — reported values, conditions —
 * leaving the spec (the desired values) as the user wrote it, and drops a twin from a node the device is not on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create, edge } from '@edgefarm/proto';
import { KubeApiServer, waitFor } from '@edgefarm/testing';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { RealKubeClient } from '../kube/client.js';
import { DeviceStatusWriter } from './status.js';
import { DEVICE, type Device } from './types.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
let dir: string;
let api: KubeApiServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-device-status-'));
  api = await KubeApiServer.start({ dir: path.join(dir, 'kube'), users: [{ user: 'edgefarm-provider', groups: ['edgefarm:providers'] }] });
  await api.apply(
    ...['base/namespace.yaml', 'crds/devices-crd.yaml', 'base/provider-rbac.yaml', '../examples/devices/pump.yaml'].map((f) =>
      path.join(ROOT, 'manifests', f),
    ),
  );
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await rm(dir, { recursive: true, force: true });
});

test("writes a site's twin into the Device's status as the provider, spec untouched; a foreign twin is dropped", async () => {
  const kube = new RealKubeClient(api.kubeConfigFor('edgefarm-provider'));
  const devices = kube.deviceWatch();
  await devices.start({ changed: () => undefined, deleted: () => undefined });
  const outcomes: string[] = [];
  const writer = new DeviceStatusWriter({
    kube,
    devices,
    log: pino({ level: 'silent' }),
    intervalMs: 100,
    qps: 50,
    outcome: (r) => outcomes.push(r),
  });
  const pump = await waitFor('the Device in the watch', async () => devices.get('default', 'pump-1'), 10_000);
  const twin = (generation: bigint, speed: string) =>
    create(edge.DeviceStatusReportSchema, {
      uid: pump.metadata!.uid!,
      namespace: 'default',
      name: 'pump-1',
      generation,
      observedGeneration: BigInt(pump.metadata!.generation!),
      connected: true,
      lastSeenMs: BigInt(Date.now()),
      twins: [
        {
          name: 'speed',
          reported: speed,
          reportedAtMs: BigInt(Date.now()),
          observedDesired: '1200',
          observedDesiredGeneration: BigInt(pump.metadata!.generation!),
        },
      ],
    });
  writer.onReport('edge-2', twin(1n, '1')); // edge-1's device
  writer.onReport('edge-1', twin(2n, '1190'));
  await writer.flush();
  const custom = api.kubeConfigFor().makeApiClient(k8s.CustomObjectsApi);
  const get = async () => (await custom.getNamespacedCustomObject({ ...DEVICE, namespace: 'default', name: 'pump-1' })) as Device;
  let d = await get();
  expect(d.status?.twins?.[0]).toMatchObject({ propertyName: 'speed', reported: { value: '1190' } });
  expect(d.status?.conditions?.find((c) => c.type === 'Synced')).toMatchObject({ status: 'False', reason: 'Pending' });
  writer.onReport('edge-1', twin(3n, '1200'));
  await waitFor('Synced', async () => (await get()).status?.conditions?.find((c) => c.type === 'Synced')?.status === 'True', 10_000);
  d = await get();
  expect(d.spec?.properties?.[0]?.desired?.value).toBe('1200');
  expect(d.metadata?.generation).toBe(pump.metadata!.generation);
  expect(outcomes).toEqual(['foreign', 'written', 'written']);
  writer.stop();
  await devices.stop();
});
