import { create } from '@bufbuild/protobuf';
import { EdgePodSpecSchema } from './gen/edgefarm/v1/edge_pb.js';
import { isDnsLabel, isKeyError, objectKey, parseObjectKey, parsePodKey, podKeyString, podObjectKeys, podUsesObject } from './keys.js';

describe('pod and object keys', () => {
  it('round-trip', () => {
    expect(parsePodKey(podKeyString({ namespace: 'ns', name: 'web-1' }))).toEqual({ namespace: 'ns', name: 'web-1' });
    expect(parseObjectKey(objectKey('secret', { namespace: 'ns', name: 'db.creds' }))).toEqual({
      kind: 'secret',
      key: { namespace: 'ns', name: 'db.creds' },
    });
  });

  it.each(['', 'ns', 'ns/', '/name', 'a/b/c'])('refuses the pod key %p', (key) => {
    expect(() => parsePodKey(key)).toThrow(expect.objectContaining({ name: 'KeyError' }));
  });

  it.each(['', 'pod/ns/name', 'secret/ns', 'secret//name', 'configmap/ns/a/b'])('refuses the object key %p', (key) => {
    let err: unknown;
    try {
      parseObjectKey(key);
    } catch (e) {
      err = e;
    }
    expect(isKeyError(err)).toBe(true);
  });
});

describe('podObjectKeys', () => {
  const spec = create(EdgePodSpecSchema, {
    namespace: 'ns',
    name: 'web',
    imagePullSecrets: ['regcred'],
    volumes: [
      {
        name: 'v',
        source: {
          case: 'projected',
          value: {
            sources: [
              { source: { case: 'configMap', value: { name: 'cm' } } },
              { source: { case: 'secret', value: { name: 'regcred' } } },
              { source: { case: 'serviceAccountToken', value: { key: '3600/api' } } },
            ],
          },
        },
      },
    ],
    containers: [
      {
        name: 'c',
        image: 'i',
        env: [
          { name: 'A', configMapKeyRef: { name: 'cm2', key: 'k' } },
          { name: 'B', secretKeyRef: { name: 's2', key: 'k' } },
        ],
        envFrom: [{ configMap: 'cm3' }, { secret: '' }],
      },
    ],
  });

  it('lists every object the pod uses once, sorted, the token named after the pod', () => {
    expect(podObjectKeys(spec)).toEqual([
      'configmap/ns/cm',
      'configmap/ns/cm2',
      'configmap/ns/cm3',
      'secret/ns/regcred',
      'secret/ns/s2',
      'token/ns/web',
    ]);
  });

  it("includes what an ephemeral container's env and envFrom reference (kubectl debug with --env-from)", () => {
    const debugging = create(EdgePodSpecSchema, {
      namespace: 'ns',
      name: 'web',
      containers: [{ name: 'c', image: 'i' }],
      ephemeralContainers: [
        {
          name: 'debugger',
          image: 'i',
          env: [{ name: 'T', secretKeyRef: { name: 'debug-token', key: 'k' } }],
          envFrom: [{ configMap: 'debug-env' }],
        },
      ],
    });
    expect(podObjectKeys(debugging)).toEqual(['configmap/ns/debug-env', 'secret/ns/debug-token']);
    expect(podUsesObject(debugging, 'configmap', { namespace: 'ns', name: 'debug-env' })).toBe(true);
  });

  it('answers whether the pod uses an object, only in its own namespace', () => {
    expect(podUsesObject(spec, 'configmap', { namespace: 'ns', name: 'cm2' })).toBe(true);
    expect(podUsesObject(spec, 'configmap', { namespace: 'other', name: 'cm2' })).toBe(false);
    expect(podUsesObject(spec, 'secret', { namespace: 'ns', name: 'cm' })).toBe(false);
    expect(podUsesObject(spec, 'token', { namespace: 'ns', name: 'web' })).toBe(true);
  });
});

describe('isDnsLabel', () => {
  it('accepts what Kubernetes accepts for namespaces and container names, and nothing else', () => {
    for (const ok of ['a', 'web-1', '0', 'a'.repeat(63)]) expect(isDnsLabel(ok)).toBe(true);
    for (const bad of ['', 'A', '-a', 'a-', 'a.b', 'a_b', 'a/b', '../x', 'a'.repeat(64), 'é']) expect(isDnsLabel(bad)).toBe(false);
  });
});
