/**
 * The downward API, resolved by the provider from the pod itself (k8s.io/kubernetes/pkg/fieldpath and the kubelet's
 * resource field extraction): what the agent cannot know is passed on as a field path (status.podIP and friends).
 */
import type { V1Container, V1ObjectFieldSelector, V1Pod, V1ResourceFieldSelector } from '@kubernetes/client-node';
import { parseQuantity, QuantityError } from '../kube/quantity.js';

/** Field paths the agent resolves at container start: only the node knows them. */
export const EDGE_FIELD_PATHS = ['status.podIP', 'status.podIPs', 'status.hostIP', 'status.hostIPs'] as const;

/** Go's %q for the characters that appear in label and annotation values. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

/** fieldpath.FormatMap: `key="value"` lines in key order, no trailing newline. */
export function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${goQuote(m![k]!)}`)
    .join('\n');
}

const SUBSCRIPT = /^metadata\.(labels|annotations)\['(.+)'\]$/;

/**
 * Value of a fieldRef, or an error message. `forVolume`: downwardAPI volume items accept the whole label and
 * annotation maps; env vars accept only single keys and more of the spec.
 */
export function fieldValue(pod: V1Pod, ref: V1ObjectFieldSelector, forVolume: boolean): { value: string } | { error: string } {
  const meta = pod.metadata ?? {};
  const sub = SUBSCRIPT.exec(ref.fieldPath);
  if (sub) return { value: (sub[1] === 'labels' ? meta.labels : meta.annotations)?.[sub[2]!] ?? '' };
  switch (ref.fieldPath) {
    case 'metadata.name':
      return { value: meta.name ?? '' };
    case 'metadata.namespace':
      return { value: meta.namespace ?? '' };
    case 'metadata.uid':
      return { value: meta.uid ?? '' };
    case 'metadata.labels':
      if (forVolume) return { value: formatMap(meta.labels) };
      break;
    case 'metadata.annotations':
      if (forVolume) return { value: formatMap(meta.annotations) };
      break;
    case 'spec.nodeName':
      if (!forVolume) return { value: pod.spec?.nodeName ?? '' };
      break;
    case 'spec.serviceAccountName':
      if (!forVolume) return { value: pod.spec?.serviceAccountName ?? 'default' };
      break;
  }
  return { error: `fieldRef ${ref.fieldPath} is not supported${forVolume ? ' in a downwardAPI volume' : ''}` };
}

/** Resources whose unset (or zero) limit is the node's allocatable: never hugepages, they are not overcommitted. */
const ALLOCATABLE_DEFAULTS = ['cpu', 'memory', 'ephemeral-storage'];

/** Quantity.MilliValue / Value: the quantity scaled to an integer, rounded up (toPrecision drops float noise first). */
function scaled(amount: number, milli: boolean): number {
  return Math.ceil(Number((milli ? amount * 1000 : amount).toPrecision(15)));
}

/**
 * Value of a resourceFieldRef, as the kubelet computes it (pkg/api/v1/resource ExtractContainerResourceValue and
 * MergeContainerResourceLimits, v1.33):
 * - a divisor of zero (the API defaults an unset divisor to the zero Quantity and serializes it as "0") is 1;
 * - cpu is ceil(MilliValue / divisor's MilliValue), anything else ceil(Value / divisor's Value);
 * - an unset or zero limit of cpu, memory or ephemeral-storage is the node's allocatable (`allocatable` may be unknown
 *   before the first heartbeat: then an error that makes the pod wait); a resource the allocatable does not list, and
 *   an unset request, is 0.
 */
export function resourceValue(
  pod: V1Pod,
  ref: V1ResourceFieldSelector,
  defaultContainer: V1Container | undefined,
  allocatable: Record<string, string> | undefined,
): { value: string } | { error: string; waiting?: boolean } {
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const c = ref.containerName ? containers.find((x) => x.name === ref.containerName) : defaultContainer;
  if (!c) return { error: `resourceFieldRef: container "${ref.containerName ?? ''}" not found` };
  const m = /^(limits|requests)\.(cpu|memory|ephemeral-storage|hugepages-.+)$/.exec(ref.resource);
  if (!m) return { error: `resourceFieldRef: unsupported resource "${ref.resource}"` };
  const [, kind, resource] = m as unknown as [string, 'limits' | 'requests', string];
  try {
    const set = c.resources?.[kind]?.[resource];
    let value = set === undefined ? 0 : parseQuantity(set);
    if (value === 0 && kind === 'limits' && ALLOCATABLE_DEFAULTS.includes(resource)) {
      if (allocatable === undefined)
        return {
          error: `resourceFieldRef ${ref.resource}: no limit set and the node's allocatable ${resource} is not known yet`,
          waiting: true,
        };
      const cap = allocatable[resource];
      value = cap === undefined ? 0 : parseQuantity(cap);
    }
    let divisor = ref.divisor === undefined ? 0 : parseQuantity(ref.divisor);
    if (divisor < 0) return { error: `resourceFieldRef ${ref.resource}: divisor must be positive` };
    if (divisor === 0) divisor = 1;
    const milli = resource === 'cpu';
    const by = scaled(divisor, milli);
    if (by <= 0) return { error: `resourceFieldRef ${ref.resource}: divisor ${ref.divisor ?? ''} is too small` };
    return { value: String(Math.ceil(scaled(value, milli) / by)) };
  } catch (err) {
    if (err instanceof QuantityError) return { error: `resourceFieldRef ${ref.resource}: ${err.message}` };
    throw err;
  }
}
