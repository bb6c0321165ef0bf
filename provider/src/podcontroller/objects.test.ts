import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import type { V1Pod } from '@kubernetes/client-node';
import { pod, podControllerBed } from './testing.js';
import { configMapObject, secretObject } from './objects.js';

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

function setup(nowMs = 1_000_000) {
  const clock = { ms: nowMs };
  const bed = podControllerBed({ now: () => new Date(clock.ms) });
  bed.kube.now = () => clock.ms;
  return { ...bed, clock };
}

/** A pod with a ConfigMap volume and a Secret env reference. */
function configured(name = 'web-1', uid = 'uid-1'): V1Pod {
  return pod(
    {
      volumes: [{ name: 'cfg', configMap: { name: 'app' } }],
      containers: [
        {
          name: 'c',
          image: 'i',
          volumeMounts: [{ name: 'cfg', mountPath: '/etc/app' }],
          env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } }],
        },
      ],
    },
    { name, uid },
  );
}

const withToken = (): V1Pod =>
  pod({
    serviceAccountName: 'robot',
    volumes: [{ name: 'kube-api-access-1', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }] } }],
    containers: [
      { name: 'c', image: 'i', volumeMounts: [{ name: 'kube-api-access-1', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }] },
    ],
  });

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

  it('requests ServiceAccount tokens bound to the pod and renews them after 80% of their lifetime', async () => {
    const { kube, bus, ctl, clock, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(withToken());
    await ctl.drained();
    expect(kube.tokens).toHaveLength(1);
    expect(kube.tokens[0]).toMatchObject({
      namespace: 'default',
      serviceAccount: 'robot',
      request: { audience: '', expirationSeconds: 3600, pod: { name: 'web-1', uid: 'uid-1' } },
    });
    expect(bus.log).toEqual([`token edge-1 default/web-1@${clock.ms}`, 'pod edge-1 default/web-1']);
    expect(text(bus.objects[0]!.object.data['3600/'])).toBe('token-1');
    expect(bus.objects[0]!.object.podUid).toBe('uid-1');

    clock.ms += 2000 * 1000; // 56% of the lifetime: not yet
    ctl.renewDueTokens();
    await ctl.drained();
    expect(kube.tokens).toHaveLength(1);
    clock.ms += 900 * 1000; // 81%
    ctl.renewDueTokens();
    await ctl.drained();
    expect(kube.tokens).toHaveLength(2);
    expect(bus.log.at(-1)).toBe(`token edge-1 default/web-1@${clock.ms}`);
    expect(bus.published).toHaveLength(1);

    kube.emitDelete('default', 'web-1');
    await ctl.drained();
    expect(bus.log.slice(-2)).toEqual(['-pod edge-1 default/web-1', '-token edge-1 default/web-1']);
    await ctl.stop();
  });

  it('a failed TokenRequest is a Warning Event; the pod is still published', async () => {
    const { kube, bus, ctl, membership } = setup();
    kube.failNext('createToken', new Error('serviceaccounts "robot" not found'));
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(withToken());
    await ctl.drained();
    expect(bus.log).toEqual(['pod edge-1 default/web-1']);
    expect(kube.events.map((e) => [e.reason, e.message])).toEqual([['FailedTokenRequest', expect.stringMatching(/robot" not found/)]]);
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
