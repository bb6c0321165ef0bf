import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { pino } from 'pino';
import { FakeKubeClient } from '../kube/fake.js';
import { NodeCredentialError, ProviderAsNodes } from '../kube/node-clients.js';
import { ObjectWatchError } from '../kube/object-watches.js';
import { FakeBus } from '../bus/fake.js';
import { configured, pod, podControllerBed, withToken } from './testing.js';
import { configMapObject, ObjectManager, secretObject } from './objects.js';
import { PodWarnings } from './warnings.js';

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

function setup(nowMs = 1_000_000) {
  const clock = { ms: nowMs };
  const bed = podControllerBed({ now: () => new Date(clock.ms) });
  bed.kube.now = () => clock.ms;
  return { ...bed, clock };
}

describe('objects a pod uses', () => {
  it('converts ConfigMaps (data and binaryData) and Secrets (base64) to edge objects', () => {
    const cm = configMapObject({
      metadata: { namespace: 'ns', name: 'a', resourceVersion: '5' },
      data: { x: 'héllo' },
      binaryData: { b: Buffer.from([0, 255]).toString('base64') },
    });
    expect([text(cm.data.x), [...cm.data.b!]]).toEqual(['héllo', [0, 255]]);
    const s = secretObject({
      metadata: { namespace: 'ns', name: 's', resourceVersion: '6' },
      data: { pw: Buffer.from('hunter2').toString('base64') },
    });
    expect(text(s.data.pw)).toBe('hunter2');
  });

  it('publishes the ConfigMaps and Secrets a pod uses to its node before the pod, and only those', async () => {
    const { kube, bus, ctl, membership } = setup();
    const cm = kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: { 'a.conf': 'x=1' } });
    const secret = kube.secrets.set({
      metadata: { namespace: 'default', name: 'db' },
      data: { pw: Buffer.from('pw1').toString('base64') },
    });
    kube.configMaps.set({ metadata: { namespace: 'default', name: 'unrelated' }, data: {} });
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(configured());
    kube.emitPod({ ...configured('elsewhere', 'uid-9'), spec: { ...configured().spec!, nodeName: 'edge-2' } });
    await ctl.drained();
    expect(bus.log).toEqual([
      `configmap edge-1 default/app@${cm.metadata!.resourceVersion}`,
      `secret edge-1 default/db@${secret.metadata!.resourceVersion}`,
      'pod edge-1 default/web-1',
    ]);
    expect(text(bus.objects[1]!.object.data.pw)).toBe('pw1');
    // Watched one by one, only what a served pod uses (not 'unrelated', not edge-2's).
    expect(kube.objectWatches).toEqual(['configmap default/app', 'secret default/db']);
    await ctl.stop();
  });

  it('republishes a changed ConfigMap to the nodes using it, without republishing the pod', async () => {
    const { kube, bus, ctl, membership } = setup();
    kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: { 'a.conf': 'x=1' } });
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' }, data: {} });
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(configured());
    await ctl.drained();
    bus.log.length = 0;
    const v2 = kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: { 'a.conf': 'x=2' } });
    await ctl.drained();
    expect(bus.log).toEqual([`configmap edge-1 default/app@${v2.metadata!.resourceVersion}`]);
    expect(text(bus.objects.at(-1)!.object.data['a.conf'])).toBe('x=2');
    // Deleted: the edge is told, so the next container start sees what a kubelet would (not found).
    kube.configMaps.delete('default', 'app');
    await ctl.drained();
    expect(bus.log.at(-1)).toBe('-configmap edge-1 default/app');
    await ctl.stop();
  });

  it('tombstones an object after the last pod on the node that uses it is gone', async () => {
    const { kube, bus, ctl, membership } = setup();
    kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: {} });
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' }, data: {} });
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(configured('a', 'uid-a'));
    kube.emitPod(configured('b', 'uid-b'));
    await ctl.drained();
    bus.log.length = 0;
    kube.emitDelete('default', 'a');
    await ctl.drained();
    expect(bus.log).toEqual(['-pod edge-1 default/a']);
    kube.emitDelete('default', 'b');
    await ctl.drained();
    expect(bus.log).toEqual([
      '-pod edge-1 default/a',
      '-pod edge-1 default/b',
      '-configmap edge-1 default/app',
      '-secret edge-1 default/db',
    ]);
    expect([kube.configMaps.openWatches, kube.secrets.openWatches]).toEqual([0, 0]); // no pod uses them: not watched
    await ctl.stop();
  });

  it("a node whose EdgeNode is deleted gets its objects' tombstones with its pods' and watches nothing any more", async () => {
    const { kube, bus, ctl, membership } = setup();
    kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: {} });
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' }, data: {} });
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(configured());
    await ctl.drained();
    bus.log.length = 0;
    await membership.release('edge-1', 'deleted');
    await ctl.drained();
    expect(bus.log).toEqual(['-pod edge-1 default/web-1', '-configmap edge-1 default/app', '-secret edge-1 default/db']);
    expect([kube.configMaps.openWatches, kube.secrets.openWatches]).toEqual([0, 0]);
    await ctl.stop();
  });

  it('a pod whose ConfigMap does not exist yet is published; the ConfigMap follows when it is created', async () => {
    const { kube, bus, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(configured());
    await ctl.drained();
    expect(bus.log).toEqual(['pod edge-1 default/web-1']);
    kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: {} });
    await ctl.drained();
    expect(bus.log[1]).toMatch(/^configmap edge-1 default\/app@/);
    await ctl.stop();
  });

  it('a ConfigMap too large for a NATS message gets a Warning Event on the pod; the pod is still published', async () => {
    const { kube, bus, ctl, membership } = setup();
    kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: { big: 'x'.repeat(1024 * 1024 + 10) } });
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' }, data: {} });
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(configured());
    await ctl.drained();
    expect(bus.log.filter((l) => l.startsWith('configmap'))).toEqual([]);
    expect(bus.log).toContain('pod edge-1 default/web-1');
    expect(kube.events.map((e) => [e.type, e.reason])).toEqual([['Warning', 'EdgeObjectTooLarge']]);
    expect(kube.events[0]!.message).toMatch(/ConfigMap default\/app cannot be delivered to the edge: .*exceeds/);
    await ctl.stop();
  });

  it('a takeover republishes no object the node already has and tombstones those no pod uses', async () => {
    const { kube, bus, ctl, clock, membership } = setup();
    const cm = kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: {} });
    const secret = kube.secrets.set({ metadata: { namespace: 'default', name: 'db' }, data: {} });
    const p = kube.emitPod(configured());
    const tokenPod = kube.emitPod({ ...withToken(), metadata: { ...withToken().metadata, name: 'tok', uid: 'uid-t' } });
    const { translatePod } = await import('./translate.js');
    const t1 = translatePod(p);
    const t2 = translatePod(tokenPod);
    if (!t1.ok || !t2.ok) throw new Error('fixture');
    const token = create(edge.EdgeObjectSchema, {
      namespace: 'default',
      name: 'tok',
      resourceVersion: String(clock.ms),
      expiresAtMs: BigInt(clock.ms + 3600_000),
      podUid: 'uid-t',
      data: { '3600/': new Uint8Array([1]) },
    });
    await ctl.start();
    await membership.take(
      ['edge-1'],
      [
        { node: 'edge-1', kind: 'pod', key: { namespace: 'default', name: 'web-1' }, spec: t1.spec, seq: 1 },
        { node: 'edge-1', kind: 'pod', key: { namespace: 'default', name: 'tok' }, spec: t2.spec, seq: 2 },
        { node: 'edge-1', kind: 'configmap', key: { namespace: 'default', name: 'app' }, object: configMapObject(cm), seq: 3 },
        { node: 'edge-1', kind: 'secret', key: { namespace: 'default', name: 'db' }, object: secretObject(secret), seq: 4 },
        { node: 'edge-1', kind: 'token', key: { namespace: 'default', name: 'tok' }, object: token, seq: 5 },
        {
          node: 'edge-1',
          kind: 'configmap',
          key: { namespace: 'default', name: 'stale' },
          object: configMapObject({ metadata: { namespace: 'default', name: 'stale', resourceVersion: '1' } }),
          seq: 6,
        },
      ],
    );
    await ctl.drained();
    await new Promise((r) => setImmediate(r));
    expect(bus.log).toEqual(['-configmap edge-1 default/stale']);
    expect(kube.tokens).toHaveLength(0);
    await ctl.stop();
  });
});

describe('ObjectManager', () => {
  const log = pino({ level: 'silent' });
  function manager() {
    const kube = new FakeKubeClient();
    const bus = new FakeBus();
    const objects = new ObjectManager({ nodes: new ProviderAsNodes(kube), bus, warnings: new PodWarnings(kube, () => new Date()), log });
    objects.addNode('edge-1');
    return { kube, bus, objects };
  }

  it('delivers each version of an object once, a tombstone once it is gone, and nothing to a node not taken on', async () => {
    const { kube, bus, objects } = manager();
    const v1 = kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: { a: '1' } });
    await objects.deliver('edge-1', pod(), 'configmap/default/app', log);
    await objects.deliver('edge-1', pod(), 'configmap/default/app', log);
    const v2 = kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: { a: '2' } });
    await objects.deliver('edge-1', pod(), 'configmap/default/app', log);
    kube.configMaps.delete('default', 'app');
    await objects.deliver('edge-1', pod(), 'configmap/default/app', log);
    await objects.deliver('edge-1', pod(), 'configmap/default/app', log);
    await objects.deliver('edge-2', pod(), 'secret/default/db', log);
    expect(bus.log).toEqual([
      `configmap edge-1 default/app@${v1.metadata!.resourceVersion}`,
      `configmap edge-1 default/app@${v2.metadata!.resourceVersion}`,
      '-configmap edge-1 default/app',
    ]);
    expect(objects.keysOn('edge-1')).toEqual([]);
  });

  it('takes what the hub holds as delivered, releases only what the node has, and forgets a node given up', async () => {
    const { kube, bus, objects } = manager();
    const cm = kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' } });
    objects.seed('edge-1', 'configmap/default/app', configMapObject(cm));
    await objects.deliver('edge-1', pod(), 'configmap/default/app', log);
    expect(bus.log).toEqual([]);
    expect(await objects.release('edge-1', 'secret/default/db')).toBe(false);
    expect(await objects.release('edge-1', 'configmap/default/app')).toBe(true);
    expect(bus.log).toEqual(['-configmap edge-1 default/app']);
    objects.seed('edge-1', 'configmap/default/app', configMapObject(cm));
    objects.forgetNode('edge-1');
    expect(await objects.release('edge-1', 'configmap/default/app')).toBe(false);
  });

  it('stops watching an object the node never had (it did not exist) once released, and everything of a node given up', async () => {
    const { kube, objects } = manager();
    await objects.deliver('edge-1', pod(), 'secret/default/missing', log);
    kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' } });
    await objects.deliver('edge-1', pod(), 'configmap/default/app', log);
    expect(objects.watched).toBe(2);
    expect(await objects.release('edge-1', 'secret/default/missing')).toBe(false);
    expect(kube.secrets.openWatches).toBe(0);
    objects.forgetNode('edge-1');
    expect(kube.configMaps.openWatches).toBe(0);
  });

  it('without a credential for the node, nothing is read: a Warning Event FailedNodeCredential on the pod (once), and the sync fails', async () => {
    const kube = new FakeKubeClient();
    const bus = new FakeBus();
    const denied = new NodeCredentialError('edge-1', 'CSR edgefarm-node-client-x denied: NotAllowed');
    const objects = new ObjectManager({
      nodes: { client: () => Promise.reject(denied), forget: () => undefined },
      bus,
      warnings: new PodWarnings(kube, () => new Date()),
      log,
    });
    objects.addNode('edge-1');
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' } });
    for (let i = 0; i < 2; i++) await expect(objects.deliver('edge-1', pod(), 'secret/default/db', log)).rejects.toThrow(ObjectWatchError);
    expect(kube.events.map((e) => [e.type, e.reason])).toEqual([['Warning', 'FailedNodeCredential']]);
    expect(kube.events[0]!.message).toMatch(/cannot read secret\/default\/db as the pod's node: node edge-1: CSR .* denied/);
    expect(bus.log).toEqual([]);
  });
});
