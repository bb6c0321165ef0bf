/**
 * The objects a pod spec refers to (ConfigMaps, Secrets, the pod's ServiceAccount tokens; which ones is proto's
 * podObjectRefs), as the provider delivers them: only to the nodes running a pod that uses them, the rule the Node
 * authorizer applies to kubelets.
 */
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';

/** Token keys (see translate.ts tokenKey) the spec's projected volumes need. */
export function specTokenKeys(spec: edge.EdgePodSpec): string[] {
  const keys = new Set<string>();
  for (const v of spec.volumes) {
    if (v.source.case !== 'projected') continue;
    for (const s of v.source.value.sources) if (s.source.case === 'serviceAccountToken') keys.add(s.source.value.key);
  }
  return [...keys].sort();
}

const utf8 = new TextEncoder();

export function configMapObject(cm: V1ConfigMap): edge.EdgeObject {
  const data: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(cm.data ?? {})) data[k] = utf8.encode(v);
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) data[k] = Buffer.from(v, 'base64');
  return create(edge.EdgeObjectSchema, {
    namespace: cm.metadata!.namespace!,
    name: cm.metadata!.name!,
    resourceVersion: cm.metadata!.resourceVersion!,
    data,
  });
}

export function secretObject(secret: V1Secret): edge.EdgeObject {
  const data: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64');
  // stringData is write-only (merged into data by the API), but a client-built object may still carry it.
  for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = utf8.encode(v);
  return create(edge.EdgeObjectSchema, {
    namespace: secret.metadata!.namespace!,
    name: secret.metadata!.name!,
    resourceVersion: secret.metadata!.resourceVersion!,
    data,
  });
}
