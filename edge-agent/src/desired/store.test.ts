import { create, desiredSubjects, edge, encode, type ObjectKind } from '@edgefarm/proto';
import { DesiredStore, type DesiredMessage } from './store.js';
import { LEVEL, edgeDevice, fieldsOf, podSpec, recordingLogger } from '@edgefarm/testing';

const NODE = 'node-1.example';

function msg(spec: edge.EdgePodSpec, seq: number, over: Partial<DesiredMessage> = {}): DesiredMessage {
  return {
    subject: desiredSubjects.pod(NODE, { namespace: spec.namespace, name: spec.name }),
    seq,
    data: encode(edge.EdgePodSpecSchema, spec),
    ...over,
  };
}

function setup() {
  const { log, records } = recordingLogger();
  const changes: string[] = [];
  const store = new DesiredStore(NODE, log, (k) => changes.push(k));
  return { store, changes, records };
}

describe('DesiredStore', () => {
  it('keeps the newest spec per key and notifies by key', () => {
    const { store, changes } = setup();
    const a = podSpec({ name: 'a.b', resourceVersion: '10' });
    expect(store.apply(msg(a, 1))).toEqual({ kind: 'upsert', key: 'default/a.b' });
    const a2 = podSpec({ ...fieldsOf(a), resourceVersion: '11' });
    expect(store.apply(msg(a2, 2)).kind).toBe('upsert');
    expect(store.get('default/a.b')?.resourceVersion).toBe('11');
    expect(changes).toEqual(['default/a.b', 'default/a.b']);
    expect(store.appliedSequence).toBe(2);
  });

  it('tracks the highest hub sequence of what it applied (Nats-Stream-Source), apart from the site sequence', () => {
    const { store } = setup();
    expect(store.appliedHubSequence).toBe(0);
    store.apply({ ...msg(podSpec({ name: 'x' }), 1), hubSeq: 40 });
    store.apply({ ...msg(podSpec({ name: 'y' }), 2), hubSeq: 57 });
    store.apply(msg(podSpec({ name: 'z' }), 3)); // no header: unknown, keeps what it had
    expect([store.appliedSequence, store.appliedHubSequence]).toEqual([3, 57]);
  });

  it('ignores a spec older than the one held for the same UID', () => {
    const { store, changes, records } = setup();
    const a = podSpec({ resourceVersion: '200' });
    store.apply(msg(a, 1));
    const older = podSpec({ ...fieldsOf(a), resourceVersion: '99' });
    expect(store.apply(msg(older, 2))).toMatchObject({ kind: 'stale' });
    expect(store.get(`default/${a.name}`)?.resourceVersion).toBe('200');
    expect(changes).toHaveLength(1);
    expect(store.appliedSequence).toBe(2);
    expect(records.some((r) => r.msg === 'ignoring stale desired pod')).toBe(true);
  });

  it('compares resourceVersions as numbers, not strings', () => {
    const { store } = setup();
    const a = podSpec({ resourceVersion: '9' });
    store.apply(msg(a, 1));
    expect(store.apply(msg(podSpec({ ...fieldsOf(a), resourceVersion: '10' }), 2)).kind).toBe('upsert');
  });

  it('accepts an older resourceVersion for a different UID (pod re-created under the same name)', () => {
    const { store } = setup();
    const a = podSpec({ resourceVersion: '500' });
    store.apply(msg(a, 1));
    const b = podSpec({ name: a.name, uid: 'other-uid', resourceVersion: '400' });
    expect(store.apply(msg(b, 2)).kind).toBe('upsert');
    expect(store.get(`default/${a.name}`)?.uid).toBe('other-uid');
  });

  it('does not let a later spec take back a deletion of the same UID', () => {
    const { store } = setup();
    const a = podSpec({ resourceVersion: '5', deleting: true });
    store.apply(msg(a, 1));
    expect(store.apply(msg(podSpec({ ...fieldsOf(a), resourceVersion: '6', deleting: false }), 2)).kind).toBe('stale');
    expect(store.get(`default/${a.name}`)?.deleting).toBe(true);
  });

  it('reports an identical re-delivery as unchanged, without notifying', () => {
    const { store, changes } = setup();
    const a = podSpec();
    store.apply(msg(a, 1));
    expect(store.apply(msg(a, 1)).kind).toBe('unchanged');
    expect(changes).toHaveLength(1);
  });

  it('deletes on a tombstone (DEL or PURGE, empty payload) and notifies', () => {
    const { store, changes } = setup();
    const a = podSpec();
    const b = podSpec();
    store.apply(msg(a, 1));
    store.apply(msg(b, 2));
    expect(store.apply(msg(a, 3, { data: new Uint8Array(), operation: 'DEL' }))).toEqual({ kind: 'delete', key: `default/${a.name}` });
    expect(store.apply(msg(b, 4, { data: new Uint8Array(), operation: 'PURGE' })).kind).toBe('delete');
    expect(store.size).toBe(0);
    expect(changes).toEqual([`default/${a.name}`, `default/${b.name}`, `default/${a.name}`, `default/${b.name}`]);
  });

  it('notifies a tombstone for a key it never held (the runtime may still have the pod)', () => {
    const { store, changes } = setup();
    const a = podSpec();
    expect(store.apply(msg(a, 1, { data: new Uint8Array(), operation: 'DEL' })).kind).toBe('delete');
    expect(changes).toEqual([`default/${a.name}`]);
  });

  it('logs and skips undecodable payloads without losing the others', () => {
    const { store, records } = setup();
    const a = podSpec();
    const garbage = msg(a, 1, { data: new Uint8Array([0xff, 0xff, 0xff, 0x01]) });
    expect(store.apply(garbage).kind).toBe('invalid');
    const noContainers = msg(podSpec({ ...fieldsOf(a), containers: [] }), 2);
    expect(store.apply(noContainers).kind).toBe('invalid');
    expect(store.apply(msg(a, 3)).kind).toBe('upsert');
    const errors = records.filter((r) => r.level === LEVEL.error);
    expect(errors).toHaveLength(2);
    expect(errors[0]!.subject).toBe(garbage.subject);
    expect(store.size).toBe(1);
    expect(store.appliedSequence).toBe(3);
  });

  it('skips messages whose subject is malformed, of another node, or disagrees with the payload', () => {
    const { store, records } = setup();
    const a = podSpec();
    expect(store.apply(msg(a, 1, { subject: 'ef.desired.x' })).kind).toBe('invalid');
    expect(store.apply(msg(a, 2, { subject: desiredSubjects.pod('other-node', { namespace: a.namespace, name: a.name }) })).kind).toBe(
      'invalid',
    );
    expect(store.apply(msg(a, 3, { subject: desiredSubjects.pod(NODE, { namespace: 'kube-system', name: a.name }) })).kind).toBe('invalid');
    expect(records.filter((r) => r.level === LEVEL.error)).toHaveLength(3);
    expect(store.size).toBe(0);
  });

  it("keyed by the node's wire id: takes its key-named subjects, refuses the node name's, passes its NodeConfig by", () => {
    const key = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
    const { log, records } = recordingLogger();
    const changes: string[] = [];
    const store = new DesiredStore(key, log, (k) => changes.push(k));
    const a = podSpec({ name: 'a' });
    const under = (node: string) => desiredSubjects.pod(node, { namespace: a.namespace, name: a.name });
    expect(store.apply(msg(a, 1, { subject: under(key) }))).toEqual({ kind: 'upsert', key: 'default/a' });
    expect(store.apply(msg(a, 2, { subject: under(NODE) })).kind).toBe('invalid');
    const config = encode(edge.NodeConfigSchema, create(edge.NodeConfigSchema, { tombstoneTtlSeconds: 60n }));
    expect(store.apply({ subject: desiredSubjects.nodeConfig(key), seq: 3, data: config })).toEqual({ kind: 'node-config' });
    expect(store.apply({ subject: desiredSubjects.nodeConfig(NODE), seq: 4, data: config }).kind).toBe('invalid');
    expect(store.heldSubjects()).toEqual([{ key: 'default/a', subject: under(key), seq: 1 }]);
    expect(changes).toEqual(['default/a']);
    expect(store.appliedSequence).toBe(4);
    expect(records.filter((r) => r.level === LEVEL.error)).toHaveLength(2);
  });

  it('skips specs whose names are unusable in paths and CRI names', () => {
    const { store } = setup();
    const bad = [
      podSpec({ uid: '../../etc' }),
      podSpec({ containers: [{ name: '../x', image: 'i' }] }),
      podSpec({
        containers: [
          { name: 'a', image: 'i' },
          { name: 'a', image: 'i' },
        ],
      }),
    ];
    bad.forEach((b, i) => expect(store.apply(msg(b, i + 1)).kind).toBe('invalid'));
    expect(store.size).toBe(0);
  });

  it('resolves whenSynced once marked', async () => {
    const { store } = setup();
    let synced = false;
    const p = store.whenSynced().then(() => (synced = true));
    await Promise.resolve();
    expect(synced).toBe(false);
    store.markSynced();
    await p;
    expect(store.synced).toBe(true);
  });
});

describe('DesiredStore: ConfigMaps, Secrets and tokens', () => {
  const enc = new TextEncoder();
  function object(
    kind: ObjectKind,
    name: string,
    resourceVersion: string,
    data: Record<string, string>,
    namespace = 'default',
  ): { kind: ObjectKind; obj: edge.EdgeObject } {
    const obj = create(edge.EdgeObjectSchema, {
      namespace,
      name,
      resourceVersion,
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, enc.encode(v)])),
    });
    return { kind, obj };
  }
  function objMsg(
    { kind, obj }: { kind: ObjectKind; obj: edge.EdgeObject },
    seq: number,
    over: Partial<DesiredMessage> = {},
  ): DesiredMessage {
    return { subject: desiredSubjects.of(NODE, kind, obj), seq, data: encode(edge.EdgeObjectSchema, obj), ...over };
  }
  const dec = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

  /** Pods using objects in every way a spec can. */
  function users() {
    const byVolume = podSpec({
      name: 'by-volume',
      volumes: [
        { name: 'cfg', source: { case: 'projected', value: { sources: [{ source: { case: 'configMap', value: { name: 'app' } } }] } } },
      ],
    });
    const byEnv = podSpec({
      name: 'by-env',
      containers: [
        {
          name: 'c',
          image: 'i',
          env: [
            { name: 'A', configMapKeyRef: { name: 'app', key: 'k' } },
            { name: 'P', secretKeyRef: { name: 'creds', key: 'p' } },
          ],
        },
      ],
    });
    const byEnvFrom = podSpec({
      name: 'by-envfrom',
      initContainers: [{ name: 'i', image: 'i', envFrom: [{ secret: 'creds' }] }],
    });
    const bySecretVolume = podSpec({
      name: 'by-secret-volume',
      volumes: [
        { name: 's', source: { case: 'projected', value: { sources: [{ source: { case: 'secret', value: { name: 'creds' } } }] } } },
      ],
    });
    const otherNs = podSpec({
      name: 'other-ns',
      namespace: 'other',
      containers: [{ name: 'c', image: 'i', envFrom: [{ configMap: 'app' }] }],
    });
    const none = podSpec({ name: 'none' });
    return { byVolume, byEnv, byEnvFrom, bySecretVolume, otherNs, none };
  }

  it('keeps objects by kind, namespace and name, and notifies every pod that uses one', () => {
    const { store, changes } = setup();
    const u = users();
    Object.values(u).forEach((p, i) => store.apply(msg(p, i + 1)));
    changes.length = 0;

    expect(store.apply(objMsg(object('configmap', 'app', '5', { k: 'v1' }), 10))).toEqual({ kind: 'upsert', key: 'configmap/default/app' });
    expect(changes.sort()).toEqual(['default/by-env', 'default/by-volume']);
    expect(dec(store.object('configmap', 'default', 'app')?.data.k)).toBe('v1');
    expect(store.object('secret', 'default', 'app')).toBeUndefined();
    expect(store.object('configmap', 'other', 'app')).toBeUndefined();

    changes.length = 0;
    store.apply(objMsg(object('secret', 'creds', '7', { p: 'pw' }), 11));
    expect(changes.sort()).toEqual(['default/by-env', 'default/by-envfrom', 'default/by-secret-volume']);

    changes.length = 0;
    store.apply(objMsg(object('configmap', 'app', '3', { k: 'x' }, 'other'), 12));
    expect(changes).toEqual(['other/other-ns']);
    expect(store.objectCount).toBe(3);
    expect(store.size).toBe(6); // objects are not pods
    expect(store.keys()).not.toContain('configmap/default/app');
    expect(store.appliedSequence).toBe(12);
  });

  it('a token object notifies the pod it is named after, even before the pod arrives', () => {
    const { store, changes } = setup();
    store.apply(objMsg(object('token', 'web-0', '1700000000000', { 'kube-api-access': 'jwt' }), 1));
    expect(changes).toEqual(['default/web-0']);
    expect(dec(store.object('token', 'default', 'web-0')?.data['kube-api-access'])).toBe('jwt');
  });

  it('ignores an older resourceVersion and an identical re-delivery; a newer one replaces and notifies', () => {
    const { store, changes, records } = setup();
    const u = users();
    store.apply(msg(u.byVolume, 1));
    changes.length = 0;
    store.apply(objMsg(object('configmap', 'app', '20', { k: 'v20' }), 2));
    expect(store.apply(objMsg(object('configmap', 'app', '9', { k: 'v9' }), 3))).toMatchObject({
      kind: 'stale',
      key: 'configmap/default/app',
    });
    expect(store.apply(objMsg(object('configmap', 'app', '20', { k: 'v20' }), 4)).kind).toBe('unchanged');
    expect(dec(store.object('configmap', 'default', 'app')?.data.k)).toBe('v20');
    expect(changes).toEqual(['default/by-volume']);
    expect(records.some((r) => r.msg === 'ignoring stale desired object')).toBe(true);
    expect(store.apply(objMsg(object('configmap', 'app', '100', { k: 'v100' }), 5)).kind).toBe('upsert');
    expect(dec(store.object('configmap', 'default', 'app')?.data.k)).toBe('v100');
    expect(changes).toEqual(['default/by-volume', 'default/by-volume']);
  });

  it('removes an object on a tombstone and notifies its users; a tombstone for an unknown object changes nothing', () => {
    const { store, changes } = setup();
    const u = users();
    store.apply(msg(u.byEnv, 1));
    const cm = object('configmap', 'app', '5', { k: 'v' });
    store.apply(objMsg(cm, 2));
    changes.length = 0;
    expect(store.apply(objMsg(cm, 3, { data: new Uint8Array(), operation: 'DEL' }))).toEqual({
      kind: 'delete',
      key: 'configmap/default/app',
    });
    expect(store.object('configmap', 'default', 'app')).toBeUndefined();
    expect(changes).toEqual(['default/by-env']);
    changes.length = 0;
    expect(store.apply(objMsg(object('secret', 'gone', '1', {}), 4, { data: new Uint8Array(), operation: 'PURGE' })).kind).toBe('delete');
    expect(changes).toEqual([]);
    // after a tombstone, the object may come back with any version
    expect(store.apply(objMsg(object('configmap', 'app', '1', { k: 'back' }), 5)).kind).toBe('upsert');
  });

  it('logs and skips bad object messages without stopping or losing held objects', () => {
    const { store, records, changes } = setup();
    const good = object('secret', 'creds', '3', { p: 'pw' });
    store.apply(objMsg(good, 1));
    changes.length = 0;
    const bad: DesiredMessage[] = [
      objMsg(good, 2, { data: new Uint8Array([0xff, 0xff, 0xff, 0x01]) }), // undecodable
      objMsg(object('secret', 'creds', '', { p: 'x' }), 3), // no resourceVersion
      objMsg(object('secret', 'creds', 'abc', { p: 'x' }), 4), // not a decimal
      objMsg(good, 5, {
        data: encode(edge.EdgeObjectSchema, create(edge.EdgeObjectSchema, { namespace: 'default', resourceVersion: '9' })),
      }), // no name
      objMsg(object('secret', 'other', '9', { p: 'x' }), 6, {
        subject: desiredSubjects.of(NODE, 'secret', { namespace: 'default', name: 'creds' }),
      }), // payload/subject mismatch
      objMsg(good, 7, { subject: desiredSubjects.of('other-node', 'secret', { namespace: 'default', name: 'creds' }) }), // another node
      objMsg(good, 8, { subject: 'ef.desired.node-1~2Eexample.volume.default.creds' }), // unknown kind
    ];
    for (const m of bad) expect(store.apply(m).kind).toBe('invalid');
    expect(records.filter((r) => r.level === LEVEL.error)).toHaveLength(bad.length);
    expect(changes).toEqual([]);
    expect(dec(store.object('secret', 'default', 'creds')?.data.p)).toBe('pw');
    expect(store.apply(objMsg(object('secret', 'creds', '4', { p: 'new' }), 9)).kind).toBe('upsert');
    expect(store.appliedSequence).toBe(9);
  });

  it('skips pod specs whose volume names are unusable as directory names', () => {
    const { store } = setup();
    const vol = (name: string) => ({ name, source: { case: 'emptyDir' as const, value: {} } });
    expect(store.apply(msg(podSpec({ volumes: [vol('../etc')] }), 1)).kind).toBe('invalid');
    expect(store.apply(msg(podSpec({ volumes: [vol('a'), vol('a')] }), 2)).kind).toBe('invalid');
    expect(store.apply(msg(podSpec({ volumes: [vol('a'), vol('b-2')] }), 3)).kind).toBe('upsert');
  });
});

describe('DesiredStore: devices (docs/decisions/0012-devices.md)', () => {
  const device = (generation: bigint, over: { name?: string; uid?: string } = {}): edge.EdgeDevice =>
    edgeDevice(generation, { ...over, speed: String(generation * 100n) });
  const dmsg = (d: edge.EdgeDevice, seq: number, over: Partial<DesiredMessage> = {}): DesiredMessage => ({
    subject: desiredSubjects.device(NODE, { namespace: d.namespace, name: d.name }),
    seq,
    data: encode(edge.EdgeDeviceSchema, d),
    ...over,
  });
  function deviceSetup() {
    const { log, records } = recordingLogger();
    const pods: string[] = [];
    const devices: string[] = [];
    const store = new DesiredStore(
      NODE,
      log,
      (k) => pods.push(k),
      (k) => devices.push(k),
    );
    return { store, pods, devices, records };
  }
  const KEY = 'device/plant/pump-1';

  it('keeps the newest generation of a device; a stale or repeated one changes nothing', () => {
    const { store, pods, devices } = deviceSetup();
    expect(store.apply(dmsg(device(2n), 1))).toEqual({ kind: 'upsert', key: KEY });
    expect(store.apply(dmsg(device(5n), 2))).toEqual({ kind: 'upsert', key: KEY });
    expect(store.apply(dmsg(device(3n), 3))).toMatchObject({ kind: 'stale', reason: 'generation 3 older than 5' });
    expect(store.apply(dmsg(device(5n), 4))).toEqual({ kind: 'unchanged', key: KEY });
    expect(store.device(KEY)?.properties[0]?.desired).toBe('500');
    expect(devices).toEqual([KEY, KEY]);
    expect(pods).toEqual([]); // a device never wakes the pod reconciler
  });

  it('takes the same generation with other content (its model changed), not the same content again', () => {
    const { store, devices } = deviceSetup();
    store.apply(dmsg(device(2n), 1));
    const remodelled = device(2n);
    remodelled.properties[0]!.unit = 'rpm';
    expect(store.apply(dmsg(remodelled, 2))).toEqual({ kind: 'upsert', key: KEY });
    expect(store.device(KEY)?.properties[0]?.unit).toBe('rpm');
    expect(store.apply(dmsg(remodelled, 3))).toEqual({ kind: 'unchanged', key: KEY });
    expect(devices).toEqual([KEY, KEY]);
  });

  it('takes a device made anew (another UID) whatever its generation, and forgets one at its tombstone', () => {
    const { store, devices } = deviceSetup();
    store.apply(dmsg(device(9n), 1));
    expect(store.apply(dmsg(device(1n, { uid: 'u-2' }), 2)).kind).toBe('upsert');
    expect(store.device(KEY)?.uid).toBe('u-2');
    expect(store.apply(dmsg(device(1n), 3, { data: new Uint8Array(), operation: 'DEL' }))).toEqual({ kind: 'delete', key: KEY });
    expect(store.device(KEY)).toBeUndefined();
    expect(devices).toEqual([KEY, KEY, KEY]);
  });

  it('skips an undecodable device or one whose payload names another device, keeping what it held', () => {
    const { store, records } = deviceSetup();
    store.apply(dmsg(device(2n), 1));
    expect(store.apply(dmsg(device(3n), 2, { data: new Uint8Array([0xff, 0x01]) })).kind).toBe('invalid');
    expect(
      store.apply(dmsg(device(3n, { name: 'other' }), 3, { subject: desiredSubjects.device(NODE, { namespace: 'plant', name: 'pump-1' }) }))
        .kind,
    ).toBe('invalid');
    expect(store.device(KEY)?.generation).toBe(2n);
    expect(records.filter((r) => r.level === LEVEL.error)).toHaveLength(2);
  });

  it('lists its devices for the compaction check, forgets one, and survives a snapshot', () => {
    const { store, devices } = deviceSetup();
    store.apply(dmsg(device(2n), 4));
    expect(store.heldSubjects()).toEqual([{ key: KEY, subject: 'ef.desired.node-1~2Eexample.device.plant.pump-1', seq: 4 }]);
    const snap = store.snapshot();
    const again = deviceSetup();
    again.store.restore(snap);
    expect(again.store.device(KEY)?.generation).toBe(2n);
    expect(again.devices).toEqual([KEY]);
    store.forget(KEY);
    expect(store.deviceKeys()).toEqual([]);
    expect(devices).toEqual([KEY, KEY]);
  });
});
