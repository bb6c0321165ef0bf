import { mkdtemp, readFile, writeFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { edgeObject, podSpec, silentLogger } from '@edgefarm/testing';
import { SnapshotFile } from './snapshot.js';
import { DesiredStore } from './store.js';
import { create, desiredSubjects, edge, encode } from '@edgefarm/proto';

const stream = { name: 'EFD_n1', created: '2026-11-23T10:00:00.000Z' };

function filledStore(): DesiredStore {
  const store = new DesiredStore('n1', silentLogger(), () => undefined);
  const spec = podSpec({ name: 'web' });
  store.apply({ subject: desiredSubjects.pod('n1', spec), seq: 4, hubSeq: 40, data: encode(edge.EdgePodSpecSchema, spec) });
  const cm = edgeObject('cfg', '7', { a: '1' });
  store.apply({ subject: desiredSubjects.of('n1', 'configmap', cm), seq: 5, hubSeq: 41, data: encode(edge.EdgeObjectSchema, cm) });
  return store;
}

describe('SnapshotFile', () => {
  it('keeps desired devices, and loads a snapshot written before devices existed (none)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'snap-'));
    const file = new SnapshotFile(dir);
    const store = filledStore();
    const d = create(edge.EdgeDeviceSchema, {
      namespace: 'plant',
      name: 'pump',
      uid: 'u',
      generation: 2n,
      model: 'm',
      protocol: 'modbus',
      protocolConfigJson: '{}',
    });
    store.apply({ subject: desiredSubjects.device('n1', d), seq: 6, data: encode(edge.EdgeDeviceSchema, d) });
    await file.save({ node: 'n1', stream, lastHubContactMs: 1 }, store.snapshot());
    const loaded = await file.load('n1');
    if (!loaded.ok) throw new Error(loaded.reason);
    expect(loaded.snapshot.state.devices.map((x) => [x.key, x.seq, x.device.generation])).toEqual([['device/plant/pump', 6, 2n]]);
    // the same file without the devices field (an agent from before devices wrote it)
    const raw = JSON.parse(await readFile(file.path, 'utf8')) as Record<string, unknown>;
    delete raw.devices;
    await writeFile(file.path, JSON.stringify(raw));
    const old = await file.load('n1');
    if (!old.ok) throw new Error(old.reason);
    expect(old.snapshot.state.devices).toEqual([]);
  });

  it('saves and loads a store: same pods, objects, sequences, mode 0600', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'snap-'));
    const file = new SnapshotFile(dir);
    const store = filledStore();
    await file.save({ node: 'n1', stream, lastHubContactMs: 1234 }, store.snapshot());
    expect((await stat(file.path)).mode & 0o777).toBe(0o600);
    const loaded = await file.load('n1');
    if (!loaded.ok) throw new Error(loaded.reason);
    expect(loaded.snapshot.stream).toEqual(stream);
    expect(loaded.snapshot.lastHubContactMs).toBe(1234);
    const keys: string[] = [];
    const copy = new DesiredStore('n1', silentLogger(), (k) => keys.push(k));
    copy.restore(loaded.snapshot.state);
    expect(copy.keys()).toEqual(['default/web']);
    expect(keys).toEqual(['default/web']);
    expect(copy.object('configmap', 'default', 'cfg')?.name).toBe('cfg');
    expect(copy.appliedSequence).toBe(5);
    expect(copy.appliedHubSequence).toBe(41);
    expect(copy.heldSubjects()).toEqual(store.heldSubjects());
  });

  it('says why it cannot use a file: missing, another node, another version, torn or garbage', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'snap-'));
    const file = new SnapshotFile(dir);
    expect(await file.load('n1')).toEqual({ ok: false, reason: 'no snapshot' });
    await file.save({ node: 'n1', stream, lastHubContactMs: 0 }, filledStore().snapshot());
    expect(await file.load('n2')).toEqual({ ok: false, reason: 'snapshot of node "n1", not "n2"' });
    const good = await readFile(file.path, 'utf8');
    await writeFile(file.path, good.replace('"version":1', '"version":9'));
    expect(await file.load('n1')).toEqual({ ok: false, reason: 'snapshot version 9, not 1' });
    await writeFile(file.path, good.slice(0, good.length / 2));
    expect((await file.load('n1')).ok).toBe(false);
    await writeFile(file.path, good.replace(/"spec":"[^"]*"/, '"spec":"////"'));
    const bad = await file.load('n1');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.reason).toMatch(/^snapshot malformed/);
    await writeFile(file.path, good.replace('"seq":5', '"seq":-1'));
    expect((await file.load('n1')).ok).toBe(false);
  });
});

describe('DesiredStore.forget', () => {
  it('removes a pod or an object as its tombstone would, and refuses restore() into a used store', () => {
    const keys: string[] = [];
    const store = new DesiredStore('n1', silentLogger(), (k) => keys.push(k));
    const spec = podSpec({ name: 'uses-cfg', containers: [{ name: 'c', image: 'i', envFrom: [{ configMap: 'cfg' }] }] });
    store.apply({ subject: desiredSubjects.pod('n1', spec), seq: 1, data: encode(edge.EdgePodSpecSchema, spec) });
    const cm = edgeObject('cfg', '1', {});
    store.apply({ subject: desiredSubjects.of('n1', 'configmap', cm), seq: 2, data: encode(edge.EdgeObjectSchema, cm) });
    keys.length = 0;
    store.forget('configmap/default/cfg');
    expect(store.object('configmap', 'default', 'cfg')).toBeUndefined();
    expect(keys).toEqual(['default/uses-cfg']); // its user is re-synced
    store.forget('default/uses-cfg');
    expect(store.size).toBe(0);
    expect(store.heldSubjects()).toEqual([]);
    expect(() => store.restore({ seq: 1, hubSeq: 0, pods: [], objects: [], devices: [] })).toThrow(/empty store/);
  });
});
