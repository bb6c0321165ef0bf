import { create } from '@bufbuild/protobuf';
import { EdgePodSpecSchema } from './gen/edgefarm/v1/edge_pb.js';
import { isKeyError, objectKey, parseObjectKey, parsePodKey, podKeyString, podObjectKeys, podUsesObject } from './keys.js';

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

  it('answers whether the pod uses an object, only in its own namespace', () => {
    expect(podUsesObject(spec, 'configmap', { namespace: 'ns', name: 'cm2' })).toBe(true);
    expect(podUsesObject(spec, 'configmap', { namespace: 'other', name: 'cm2' })).toBe(false);
    expect(podUsesObject(spec, 'secret', { namespace: 'ns', name: 'cm' })).toBe(false);
    expect(podUsesObject(spec, 'token', { namespace: 'ns', name: 'web' })).toBe(true);
  });
});
