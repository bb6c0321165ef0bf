import { edge } from '@edgefarm/proto';
import type { ObjectSource } from '../runtime/env.js';
import { isRuntimeError, type RuntimeErrorKind } from '../runtime/types.js';
import { ManualClock, edgeObject, podSpec, silentLogger } from '@edgefarm/testing';
import { MemoryImageService } from './memory.js';
import { ImageManager } from './puller.js';
import { FakeEventSink } from '../events/recorder.js';
import { Registry } from 'prom-client';

const IMG = '127.0.0.1:5000/test/bb:1';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

function setup(objects: Map<string, edge.EdgeObject> = new Map()) {
  const clock = new ManualClock();
  const images = new MemoryImageService({ recordCalls: true, pullAny: false });
  const source: ObjectSource = { object: (kind, ns, name) => objects.get(`${kind}/${ns}/${name}`) };
  const used: string[] = [];
  const manager = new ImageManager({ images, objects: source, clock, log: silentLogger(), onUse: (id) => used.push(id) });
  return { clock, images, manager, objects, used };
}

function container(policy: edge.PullPolicy, image = IMG): edge.EdgeContainer {
  return podSpec({ containers: [{ name: 'c', image, imagePullPolicy: policy }] }).containers[0]!;
}

async function failure(p: Promise<unknown>): Promise<{ kind: RuntimeErrorKind; message: string }> {
  try {
    await p;
  } catch (err) {
    if (isRuntimeError(err)) return { kind: err.kind, message: err.message };
    throw err;
  }
  throw new Error('expected a failure');
}

const secret = (name: string, user: string, pass: string, host = '127.0.0.1:5000') =>
  edgeObject(name, '1', { '.dockerconfigjson': JSON.stringify({ auths: { [host]: { auth: b64(`${user}:${pass}`) } } }) });

describe('ImageManager pull policy', () => {
  it.each([
    // policy, present before, pulls expected
    [edge.PullPolicy.IF_NOT_PRESENT, true, 0],
    [edge.PullPolicy.IF_NOT_PRESENT, false, 1],
    [edge.PullPolicy.UNSPECIFIED, true, 0],
    [edge.PullPolicy.UNSPECIFIED, false, 1],
    [edge.PullPolicy.ALWAYS, true, 1],
    [edge.PullPolicy.ALWAYS, false, 1],
    [edge.PullPolicy.NEVER, true, 0],
  ])('policy %s, present %s: %s pull(s)', async (policy, present, pulls) => {
    const { images, manager, used } = setup();
    images.registry.set(IMG, { id: 'sha256:bb', sizeBytes: 10 });
    if (present) images.present.set(IMG, { id: 'sha256:bb', names: [IMG], sizeBytes: 10, pinned: false });
    const res = await manager.ensureImage(podSpec(), container(policy));
    expect(res.imageRef).toBe('sha256:bb');
    expect(images.pulls()).toHaveLength(pulls);
    expect(used).toEqual(['sha256:bb']);
  });

  it('Never with an absent image fails with the kubelet message and never pulls', async () => {
    const { images, manager } = setup();
    images.registry.set(IMG, { id: 'sha256:bb', sizeBytes: 10 });
    expect(await failure(manager.ensureImage(podSpec(), container(edge.PullPolicy.NEVER)))).toEqual({
      kind: 'image-never-pull',
      message: `Container image "${IMG}" is not present with pull policy of Never`,
    });
    expect(images.pulls()).toHaveLength(0);
  });

  it('Always pulls on every start', async () => {
    const { images, manager } = setup();
    images.registry.set(IMG, { id: 'sha256:bb', sizeBytes: 10 });
    const pod = podSpec();
    for (let i = 0; i < 3; i++) await manager.ensureImage(pod, container(edge.PullPolicy.ALWAYS));
    expect(images.pulls()).toHaveLength(3);
  });
});

describe('ImageManager credentials', () => {
  it('pulls anonymously without pull secrets', async () => {
    const { images, manager } = setup();
    images.registry.set(IMG, { id: 'sha256:bb', sizeBytes: 10 });
    await manager.ensureImage(podSpec(), container(edge.PullPolicy.IF_NOT_PRESENT));
    expect(images.pulls()).toEqual([{ image: IMG, auth: undefined }]);
  });

  it("tries each matching credential in order and no anonymous pull after them (the kubelet's PullImage); the error lists every attempt", async () => {
    const objects = new Map([
      ['secret/default/one', secret('one', 'u1', 'wrong')],
      ['secret/default/two', secret('two', 'u2', 'wrong')],
      ['secret/default/other', secret('other', 'u3', 'x', 'quay.io')],
    ]);
    const { images, manager } = setup(objects);
    images.registry.set(IMG, { id: 'sha256:bb', sizeBytes: 10, auth: { username: 'alice', password: 'right' } });
    const pod = podSpec({ imagePullSecrets: ['one', 'two', 'other', 'missing'], containers: [{ name: 'c', image: IMG }] });
    const f = await failure(manager.ensureImage(pod, pod.containers[0]!));
    expect(images.pulls().map((p) => p.auth?.username)).toEqual(['u1', 'u2']);
    expect(f.kind).toBe('image-pull');
    expect(f.message).toBe(`[${Array(2).fill(`failed to pull and unpack image "${IMG}": 401 Unauthorized`).join(', ')}]`);
  });

  it('succeeds with the matching credential', async () => {
    const { images, manager } = setup(new Map([['secret/default/reg', secret('reg', 'alice', 'right')]]));
    images.registry.set(IMG, { id: 'sha256:bb', sizeBytes: 10, auth: { username: 'alice', password: 'right' } });
    const pod = podSpec({ imagePullSecrets: ['reg'], containers: [{ name: 'c', image: IMG }] });
    expect((await manager.ensureImage(pod, pod.containers[0]!)).imageRef).toBe('sha256:bb');
    expect(images.pulls()).toEqual([{ image: IMG, auth: { username: 'alice', password: 'right' } }]);
  });

  it('a malformed pull secret fails the pull with a message naming it (no crash)', async () => {
    const { images, manager } = setup(new Map([['secret/default/bad', edgeObject('bad', '1', { '.dockerconfigjson': '{"auths": ' })]]));
    images.registry.set(IMG, { id: 'sha256:bb', sizeBytes: 10 });
    const pod = podSpec({ imagePullSecrets: ['bad'], containers: [{ name: 'c', image: IMG }] });
    const f = await failure(manager.ensureImage(pod, pod.containers[0]!));
    expect(f.kind).toBe('image-pull');
    expect(f.message).toMatch(/^invalid image pull secret "default\/bad": not valid JSON: /);
    expect(images.pulls()).toHaveLength(0);
  });

  it.each([
    [
      'too-many-keys',
      { auths: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`r${i}.io`, { auth: b64('u:p') }])) },
      /257 registry keys, more than 256/,
    ],
    [
      'key-too-long',
      { auths: { [`${'a'.repeat(2000)}.io`]: { auth: b64('u:p') } } },
      /registry key "a{64}\.\.\." is 2003 characters, longer than 1024/,
    ],
    ['invalid-auth', { auths: { 'r.io': { auth: '!!' } } }, /entry "r.io": unable to parse auth field/],
  ])('refuses a pull secret (%s) with a clear error and counts it', async (reason, doc, message) => {
    const registry = new Registry();
    const clock = new ManualClock();
    const images = new MemoryImageService({ recordCalls: true, pullAny: false });
    const bad = edgeObject('bad', '1', { '.dockerconfigjson': JSON.stringify(doc) });
    const objects: ObjectSource = { object: (kind, ns, name) => (`${kind}/${ns}/${name}` === 'secret/default/bad' ? bad : undefined) };
    const manager = new ImageManager({ images, objects, clock, log: silentLogger(), registry });
    const pod = podSpec({ imagePullSecrets: ['bad'], containers: [{ name: 'c', image: IMG }] });
    const f = await failure(manager.ensureImage(pod, pod.containers[0]!));
    expect(f.kind).toBe('image-pull');
    expect(f.message).toMatch(/^invalid image pull secret "default\/bad": /);
    expect(f.message).toMatch(message);
    const counts = (await registry.getSingleMetric('edgefarm_agent_pull_secrets_rejected_total')!.get()).values;
    expect(counts.find((v) => v.labels.reason === reason)?.value).toBe(1);
    expect(counts.reduce((a, v) => a + v.value, 0)).toBe(1);
    expect(images.pulls()).toHaveLength(0);
  });

  it('a second ImageManager on the same registry (an agent started again) shares the counter', () => {
    const registry = new Registry();
    const deps = {
      images: new MemoryImageService(),
      objects: { object: () => undefined },
      clock: new ManualClock(),
      log: silentLogger(),
      registry,
    };
    new ImageManager(deps);
    expect(() => new ImageManager(deps)).not.toThrow();
  });
});

describe('ImageManager backoff', () => {
  it('ErrImagePull, then ImagePullBackOff for 10 s doubling to 300 s, reset on success', async () => {
    const { clock, images, manager } = setup();
    const pod = podSpec();
    const c = container(edge.PullPolicy.IF_NOT_PRESENT);
    const expectedBackoffs = [10, 20, 40, 80, 160, 300, 300].map((s) => s * 1000);
    for (const backoff of expectedBackoffs) {
      expect((await failure(manager.ensureImage(pod, c))).kind).toBe('image-pull');
      expect(manager.backoffOf(pod.uid, IMG)).toBe(backoff);
      clock.advance(backoff - 1);
      expect(await failure(manager.ensureImage(pod, c))).toEqual({
        kind: 'image-pull-backoff',
        message: `Back-off pulling image "${IMG}"`,
      });
      clock.advance(1);
    }
    expect(images.pulls()).toHaveLength(expectedBackoffs.length);
    images.registry.set(IMG, { id: 'sha256:bb', sizeBytes: 10 });
    await manager.ensureImage(pod, c);
    expect(manager.backoffOf(pod.uid, IMG)).toBe(0);
  });

  it('is kept per pod UID and image', async () => {
    const { manager } = setup();
    const a = podSpec();
    const b = podSpec();
    const c = container(edge.PullPolicy.IF_NOT_PRESENT);
    await failure(manager.ensureImage(a, c));
    expect((await failure(manager.ensureImage(a, c))).kind).toBe('image-pull-backoff');
    expect((await failure(manager.ensureImage(b, c))).kind).toBe('image-pull');
    expect((await failure(manager.ensureImage(a, container(edge.PullPolicy.IF_NOT_PRESENT, 'quay.io/x:1')))).kind).toBe('image-pull');
  });

  it('forgets an entry after twice the maximum without a failure', async () => {
    const { clock, manager } = setup();
    const pod = podSpec();
    const c = container(edge.PullPolicy.IF_NOT_PRESENT);
    await failure(manager.ensureImage(pod, c));
    clock.advance(10_000);
    await failure(manager.ensureImage(pod, c));
    expect(manager.backoffOf(pod.uid, IMG)).toBe(20_000);
    clock.advance(600_001);
    await failure(manager.ensureImage(pod, c));
    expect(manager.backoffOf(pod.uid, IMG)).toBe(10_000);
  });

  it('a present image under IfNotPresent ignores a running backoff', async () => {
    const { images, manager } = setup();
    const pod = podSpec();
    const c = container(edge.PullPolicy.IF_NOT_PRESENT);
    await failure(manager.ensureImage(pod, c));
    images.present.set(IMG, { id: 'sha256:bb', names: [IMG], sizeBytes: 1, pinned: false });
    expect((await manager.ensureImage(pod, c)).pulled).toBe(false);
  });
});

describe('ImageManager events', () => {
  it('records the kubelet events: Pulling/Pulled, already present, Failed + ErrImagePull, then BackOff + ImagePullBackOff', async () => {
    const { clock, images, objects } = setup();
    const events = new FakeEventSink();
    const source: ObjectSource = { object: (kind, ns, name) => objects.get(`${kind}/${ns}/${name}`) };
    const manager = new ImageManager({ images, objects: source, clock, log: silentLogger(), events });
    const pod = podSpec();
    images.registry.set(IMG, { id: 'sha256:bb', sizeBytes: 10 });
    await manager.ensureImage(pod, container(edge.PullPolicy.IF_NOT_PRESENT));
    images.present.set(IMG, { id: 'sha256:bb', names: [IMG], sizeBytes: 10, pinned: false });
    await manager.ensureImage(pod, container(edge.PullPolicy.IF_NOT_PRESENT));
    expect(events.events.map((e) => [e.type, e.reason, e.message.replace(/ in [\d.]+s$/, '')])).toEqual([
      ['Normal', 'Pulling', `Pulling image "${IMG}"`],
      ['Normal', 'Pulled', `Successfully pulled image "${IMG}"`],
      ['Normal', 'Pulled', `Container image "${IMG}" already present on machine`],
    ]);
    expect(events.events[0]!.ref).toEqual({ uid: pod.uid, namespace: pod.namespace, name: pod.name, fieldPath: 'spec.containers{c}' });
    events.events.length = 0;
    const missing = '127.0.0.1:5000/test/missing:1';
    await failure(manager.ensureImage(pod, container(edge.PullPolicy.IF_NOT_PRESENT, missing)));
    await failure(manager.ensureImage(pod, container(edge.PullPolicy.IF_NOT_PRESENT, missing)));
    expect(events.events.map((e) => [e.type, e.reason, e.message.slice(0, 40)])).toEqual([
      ['Normal', 'Pulling', `Pulling image "${missing}"`.slice(0, 40)],
      ['Warning', 'Failed', `Failed to pull image "${missing}": `.slice(0, 40)],
      ['Warning', 'Failed', 'Error: ErrImagePull'],
      ['Normal', 'BackOff', `Back-off pulling image "${missing}"`.slice(0, 40)],
      ['Warning', 'Failed', 'Error: ImagePullBackOff'],
    ]);
  });
});
