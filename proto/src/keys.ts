/**
 * Keys of desired-state objects, as both sides use them for maps and work queues: a pod is `<namespace>/<name>`, a
 * delivered object `<kind>/<namespace>/<name>` (a token object is named after its pod). Kubernetes names and
 * namespaces never contain '/', so the split is unambiguous; anything else is a {@link KeyError}.
 *
 * Also the one answer to "which objects does this pod use" (ConfigMaps and Secrets through projected volumes, env key
 * references, envFrom and imagePullSecrets, always in the pod's namespace, and its own token object): the provider
 * delivers exactly those to the pod's node, the agent queues the pods an object change concerns.
 */
import type { EdgeContainer, EdgePodSpec } from './gen/edgefarm/v1/edge_pb.js';
import type { ObjectKind, PodKey } from './subjects.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/**
 * A DNS label as Kubernetes accepts one (RFC 1123, at most 63 characters): namespaces and container names, which end
 * up in CRI names, log paths and cgroup paths. The provider checks what it sends, the agent what it receives.
 */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

/** Every container of the pod: init, regular and ephemeral ones, in that order. */
export function allContainers(spec: EdgePodSpec): EdgeContainer[] {
  return [...spec.initContainers, ...spec.containers, ...spec.ephemeralContainers];
}

export class KeyError extends Error {
  override name = 'KeyError';
}
export function isKeyError(err: unknown): err is KeyError {
  return err instanceof KeyError;
}

/** `<namespace>/<name>` */
export type PodKeyString = string;
/** `<kind>/<namespace>/<name>` */
export type ObjectKey = string;

export function podKeyString(key: PodKey): PodKeyString {
  return `${key.namespace}/${key.name}`;
}

export function parsePodKey(key: string): PodKey {
  const parts = key.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new KeyError(`malformed pod key "${key}"`);
  return { namespace: parts[0], name: parts[1] };
}

export function objectKey(kind: ObjectKind, key: PodKey): ObjectKey {
  return `${kind}/${key.namespace}/${key.name}`;
}

/** A desired device's key: `device/<ns>/<name>` (docs/decisions/0012-devices.md). */
export function deviceKey(key: PodKey): string {
  return `device/${key.namespace}/${key.name}`;
}

export function parseDeviceKey(key: string): PodKey {
  const parts = key.split('/');
  if (parts.length !== 3 || parts[0] !== 'device' || !parts[1] || !parts[2]) throw new KeyError(`malformed device key "${key}"`);
  return { namespace: parts[1], name: parts[2] };
}

const OBJECT_KINDS: readonly string[] = ['configmap', 'secret', 'token'];

export function parseObjectKey(key: string): { kind: ObjectKind; key: PodKey } {
  const parts = key.split('/');
  if (parts.length !== 3 || !OBJECT_KINDS.includes(parts[0]!) || !parts[1] || !parts[2]) {
    throw new KeyError(`malformed object key "${key}"`);
  }
  return { kind: parts[0] as ObjectKind, key: { namespace: parts[1], name: parts[2] } };
}

/** An object a pod spec refers to. */
export interface ObjectRef {
  kind: ObjectKind;
  namespace: string;
  name: string;
}

/** Every object the pod uses, once each, sorted by object key. */
export function podObjectRefs(spec: EdgePodSpec): ObjectRef[] {
  const out = new Map<ObjectKey, ObjectRef>();
  const add = (kind: ObjectKind, name: string) => {
    if (name) out.set(objectKey(kind, { namespace: spec.namespace, name }), { kind, namespace: spec.namespace, name });
  };
  for (const v of spec.volumes) {
    if (v.source.case !== 'projected') continue;
    for (const s of v.source.value.sources) {
      if (s.source.case === 'configMap') add('configmap', s.source.value.name);
      else if (s.source.case === 'secret') add('secret', s.source.value.name);
      else if (s.source.case === 'serviceAccountToken') add('token', spec.name);
    }
  }
  for (const name of spec.imagePullSecrets) add('secret', name);
  for (const c of allContainers(spec)) {
    for (const e of c.env) {
      if (e.configMapKeyRef) add('configmap', e.configMapKeyRef.name);
      if (e.secretKeyRef) add('secret', e.secretKeyRef.name);
    }
    for (const e of c.envFrom) {
      add('configmap', e.configMap);
      add('secret', e.secret);
    }
  }
  return [...out.keys()].sort().map((k) => out.get(k)!);
}

/** The object keys of {@link podObjectRefs}. */
export function podObjectKeys(spec: EdgePodSpec): ObjectKey[] {
  return podObjectRefs(spec).map((r) => objectKey(r.kind, r));
}

/** True when the pod uses the object `kind` `namespace/name`. */
export function podUsesObject(spec: EdgePodSpec, kind: ObjectKind, key: PodKey): boolean {
  if (spec.namespace !== key.namespace) return false;
  return podObjectRefs(spec).some((r) => r.kind === kind && r.name === key.name);
}
