/**
 * Which delivered objects a pod spec uses: ConfigMaps and Secrets through projected volume sources, env key
 * references, envFrom and imagePullSecrets (always in the pod's namespace), and its own token object (named after
 * the pod). The
 * desired store uses it to queue the pods an object change concerns.
 */
import type { edge, ObjectKind } from '@edgefarm/proto';

export interface PodObjectRefs {
  configmap: Set<string>;
  secret: Set<string>;
}

export function podObjectRefs(spec: edge.EdgePodSpec): PodObjectRefs {
  const refs: PodObjectRefs = { configmap: new Set(), secret: new Set() };
  for (const v of spec.volumes) {
    if (v.source.case !== 'projected') continue;
    for (const s of v.source.value.sources) {
      if (s.source.case === 'configMap') refs.configmap.add(s.source.value.name);
      else if (s.source.case === 'secret') refs.secret.add(s.source.value.name);
    }
  }
  for (const name of spec.imagePullSecrets) refs.secret.add(name);
  for (const c of [...spec.initContainers, ...spec.containers]) {
    for (const e of c.env) {
      if (e.configMapKeyRef) refs.configmap.add(e.configMapKeyRef.name);
      if (e.secretKeyRef) refs.secret.add(e.secretKeyRef.name);
    }
    for (const f of c.envFrom) {
      if (f.configMap) refs.configmap.add(f.configMap);
      if (f.secret) refs.secret.add(f.secret);
    }
  }
  return refs;
}

/** True when the pod uses the object `kind` `namespace/name`. */
export function podUsesObject(spec: edge.EdgePodSpec, kind: ObjectKind, namespace: string, name: string): boolean {
  if (spec.namespace !== namespace) return false;
  if (kind === 'token') return spec.name === name;
  return podObjectRefs(spec)[kind].has(name);
}
