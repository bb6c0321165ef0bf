/**
 * The files of a projected volume, as the kubelet's projected volume plugin collects them (projected.go
 * collectData, configmap/secret MakePayload): pure, from the pod spec and the delivered objects.
 *
 * - configMap / secret: every key as a file named after it, or only the listed items (key -> path, own mode). A
 *   missing object is an error unless optional (then it contributes nothing); a missing listed key too.
 * - files: the downward API files the provider resolved.
 * - serviceAccountToken: data[key] of the pod's token object (named after the pod; a token bound to another pod
 *   UID counts as missing).
 * Modes: the item's, else the volume's default_mode, else 0644. Errors of all sources are collected and reported
 * together, as the kubelet's aggregate does ("a" for one, "[a, b]" for several).
 */
import type { edge } from '@edgefarm/proto';
import type { ObjectSource } from '../runtime/env.js';
import type { Payload } from './atomic-writer.js';

export const DEFAULT_FILE_MODE = 0o644;

/** Why a volume cannot be set up; the message is the kubelet's inner error (after `MountVolume.SetUp failed ... : `). */
export class VolumeError extends Error {
  override name = 'VolumeError';
}
export function isVolumeError(err: unknown): err is VolumeError {
  return err instanceof VolumeError;
}

/** True when the volume holds Secret or token data (then it lives on a tmpfs, as the kubelet keeps secrets). */
export function holdsSecrets(v: edge.ProjectedVolume): boolean {
  return v.sources.some((s) => s.source.case === 'secret' || s.source.case === 'serviceAccountToken');
}

export function projectedPayload(pod: edge.EdgePodSpec, volume: edge.ProjectedVolume, objects: ObjectSource): Payload {
  const defaultMode = volume.defaultMode || DEFAULT_FILE_MODE;
  const payload: Payload = new Map();
  const errors: string[] = [];

  for (const { source } of volume.sources) {
    switch (source.case) {
      case 'configMap':
      case 'secret': {
        const kind = source.case === 'configMap' ? 'configmap' : 'secret';
        const ref = source.value;
        const obj = objects.object(kind, pod.namespace, ref.name);
        if (!obj && !ref.optional) {
          errors.push(`${kind} "${ref.name}" not found`);
          break;
        }
        const data = obj?.data ?? {};
        if (ref.items.length === 0) {
          for (const [key, bytes] of Object.entries(data)) payload.set(key, { data: bytes, mode: defaultMode });
          break;
        }
        let failed = false;
        const files: Payload = new Map();
        for (const item of ref.items) {
          const bytes = data[item.key];
          if (bytes === undefined) {
            if (ref.optional) continue;
            errors.push(
              kind === 'configmap'
                ? `configmap references non-existent config key: ${item.key}`
                : `references non-existent secret key: ${item.key}`,
            );
            failed = true;
            break;
          }
          files.set(item.path, { data: bytes, mode: item.mode || defaultMode });
        }
        if (!failed) for (const [p, f] of files) payload.set(p, f);
        break;
      }
      case 'files':
        for (const f of source.value.files) payload.set(f.path, { data: f.content, mode: f.mode || defaultMode });
        break;
      case 'serviceAccountToken': {
        const t = source.value;
        const obj = objects.object('token', pod.namespace, pod.name);
        const bytes = obj && (!obj.podUid || obj.podUid === pod.uid) ? obj.data[t.key] : undefined;
        if (bytes === undefined) {
          errors.push(`failed to fetch token: token "${t.key}" of pod ${pod.namespace}/${pod.name} not delivered to the node`);
          break;
        }
        payload.set(t.path, { data: bytes, mode: t.mode || defaultMode });
        break;
      }
      default:
        errors.push('projected volume source of an unknown kind');
    }
  }
  if (errors.length === 1) throw new VolumeError(errors[0]);
  if (errors.length > 1) throw new VolumeError(`[${errors.join(', ')}]`);
  return payload;
}
