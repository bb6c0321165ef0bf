/** Pod keys: the work-queue and map key of a pod, `<namespace>/<name>` (neither part may contain a slash). */
import type { PodKey } from '@edgefarm/proto';

export type { PodKey };

export function podKeyString(key: PodKey): string {
  return `${key.namespace}/${key.name}`;
}

export function parsePodKey(key: string): PodKey {
  const i = key.indexOf('/');
  if (i <= 0 || i === key.length - 1) throw new RangeError(`malformed pod key "${key}"`);
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
