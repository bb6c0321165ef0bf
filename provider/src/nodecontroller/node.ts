/**
 * Pure construction of the Node object and its status from what the provider knows of an edge node: its EdgeNode
 * spec, its last heartbeat and when the hub stored it.
 *
 * Conditions: `EdgeConnected` says whether heartbeats are fresh. `Ready` turns True with the first heartbeat whose
 * runtime is ready, then follows the EdgeNode's autonomy policy while the link is down:
 * - `keep` (default): Ready stays True, so Kubernetes neither evicts nor recreates the node's pods;
 * - `evict` with `evictAfterSeconds`: once the last heartbeat is older than that, the provider goes silent for the
 *   node ({@link silenced}: no Lease renewal, no status), exactly like a lost kubelet. After its grace period the
 *   node lifecycle controller turns Ready Unknown, marks the pods not Ready, taints the node unreachable and evicts.
 *   (Posting Ready Unknown ourselves would not do: the controller marks pods not Ready only on its own transition.)
 */
import { unsafeSysctlPatternProblem } from '../podcontroller/admit.js';
import type { CoreV1Event, V1Node, V1NodeCondition, V1NodeStatus, V1Taint } from '@kubernetes/client-node';
import type { EdgeNode, EdgeNodeStatus } from '../kube/client.js';
import type { edge } from '@edgefarm/proto';
import { parseQuantity, subtractReserved } from '../kube/quantity.js';

export const EDGE_LABEL = 'node-role.kubernetes.io/edge';
export const EDGE_TAINT_KEY = 'edgefarm.io/edge';
export const AGENT_VERSION_LABEL = 'edgefarm.io/agent-version';

export interface NodeView {
  name: string;
  heartbeat?: edge.NodeHeartbeat;
  /** The hub's storage time of `heartbeat` (ms). */
  heartbeatAtMs?: number;
  kubeletPort: number;
  /**
   * Where the apiserver reaches this node's kubelet API: the provider's own address (it serves the kubelet API for
   * all its nodes), never the site's address, which is behind NAT. The site's address is reported on pods (hostIP).
   */
  kubeletAddress: string;
}

/** The default taint that keeps ordinary workloads off edge nodes (provider option EF_NODE_TAINTS). */
export const DEFAULT_TAINT: V1Taint = { key: EDGE_TAINT_KEY, value: 'true', effect: 'NoSchedule' };
/** Annotation on the Node: which labels and taints the provider manages (so it removes only its own). */
export const MANAGED_ANNOTATION = 'edgefarm.io/managed';

/** What the provider applies to a Node, from its EdgeNode and the provider's defaults. */
export interface NodePolicy {
  labels: Record<string, string>;
  taints: V1Taint[];
  autonomy: { policy: 'keep' | 'evict'; evictAfterSeconds: number };
  reserved: Record<string, string | number>;
  /** Unsafe sysctls pods on the node may set (spec.allowedUnsafeSysctls, checked as the kubelet checks its flag). */
  allowedUnsafeSysctls?: string[];
  /** The EdgeNode, as the Node's owner: deleting the EdgeNode lets the garbage collector delete the Node. */
  owner?: { name: string; uid: string };
}

/** Policy from an EdgeNode; `problems` lists what in its spec was ignored and why. */
export function policyOf(en: EdgeNode | undefined, defaultTaints: readonly V1Taint[]): { policy: NodePolicy; problems: string[] } {
  const spec = en?.spec ?? {};
  const problems: string[] = [];
  const reserved: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(spec.reserved ?? {})) {
    try {
      parseQuantity(v);
      reserved[k] = v;
    } catch (err) {
      problems.push(`spec.reserved.${k}: ${(err as Error).message}; ignored`);
    }
  }
  const allowedUnsafeSysctls: string[] = [];
  for (const [i, s] of (Array.isArray(spec.allowedUnsafeSysctls) ? spec.allowedUnsafeSysctls : []).entries()) {
    const why = unsafeSysctlPatternProblem(s);
    if (why) problems.push(`spec.allowedUnsafeSysctls[${i}]: ${why}; ignored`);
    else allowedUnsafeSysctls.push(s);
  }
  const policy = spec.autonomy?.policy ?? 'keep';
  const evictAfterSeconds = spec.autonomy?.evictAfterSeconds ?? 300;
  const taints = [...defaultTaints];
  for (const t of spec.taints ?? []) {
    if (!taints.some((d) => d.key === t.key && d.effect === t.effect)) taints.push({ key: t.key, value: t.value, effect: t.effect });
  }
  return {
    policy: {
      labels: { ...(spec.labels ?? {}) },
      taints,
      autonomy: { policy, evictAfterSeconds },
      reserved,
      allowedUnsafeSysctls,
      owner: en?.metadata?.uid ? { name: en.metadata.name!, uid: en.metadata.uid } : undefined,
    },
    problems,
  };
}

function ownerReferences(policy: NodePolicy) {
  return policy.owner
    ? [{ apiVersion: 'edgefarm.io/v1alpha1', kind: 'EdgeNode', name: policy.owner.name, uid: policy.owner.uid }]
    : undefined;
}

function managedOf(policy: NodePolicy): string {
  return JSON.stringify({ labels: Object.keys(policy.labels).sort(), taints: policy.taints.map(taintId).sort() });
}
const taintId = (t: V1Taint) => `${t.key}:${t.effect}`;

export function newNode(name: string, kubeletPort: number, policy: NodePolicy): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        ...policy.labels,
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'virtual-kubelet',
        [EDGE_LABEL]: '',
      },
      annotations: { [MANAGED_ANNOTATION]: managedOf(policy) },
      ownerReferences: ownerReferences(policy),
    },
    spec: { taints: policy.taints.map((t) => ({ ...t })) },
    status: { daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } } },
  };
}

/**
 * The JSON merge patch that brings an existing Node's labels, taints and owner in line with the policy, or undefined
 * when it already is. Labels and taints the provider did not set (another controller's, the node lifecycle
 * controller's unreachable taint) are kept; the patch carries the resourceVersion, so a concurrent change makes it
 * fail with a conflict instead of losing that change.
 */
export function nodeMetadataPatch(node: V1Node, policy: NodePolicy): object | undefined {
  let before: { labels?: string[]; taints?: string[] } = {};
  try {
    before = JSON.parse(node.metadata?.annotations?.[MANAGED_ANNOTATION] ?? '{}') as typeof before;
  } catch {
    // Unreadable annotation: treat as managing nothing.
  }
  const labels: Record<string, string | null> = {};
  const current = node.metadata?.labels ?? {};
  for (const k of before.labels ?? []) if (!(k in policy.labels) && k in current) labels[k] = null;
  for (const [k, v] of Object.entries(policy.labels)) if (current[k] !== v) labels[k] = v;
  const wanted = new Set(policy.taints.map(taintId));
  const dropped = new Set(before.taints ?? []);
  const kept = (node.spec?.taints ?? []).filter((t) => !wanted.has(taintId(t)) && !dropped.has(taintId(t)));
  const taints = [...kept, ...policy.taints.map((t) => ({ ...t }))];
  const sameTaints =
    JSON.stringify(taints.map((t) => [t.key, t.value ?? '', t.effect]).sort()) ===
    JSON.stringify((node.spec?.taints ?? []).map((t) => [t.key, t.value ?? '', t.effect]).sort());
  const managed = managedOf(policy);
  const owners = ownerReferences(policy);
  const sameOwner = !owners || (node.metadata?.ownerReferences ?? []).some((o) => o.uid === owners[0]!.uid);
  if (Object.keys(labels).length === 0 && sameTaints && node.metadata?.annotations?.[MANAGED_ANNOTATION] === managed && sameOwner)
    return undefined;
  return {
    metadata: {
      resourceVersion: node.metadata?.resourceVersion,
      labels,
      annotations: { [MANAGED_ANNOTATION]: managed },
      ...(sameOwner ? {} : { ownerReferences: owners }),
    },
    ...(sameTaints ? {} : { spec: { taints } }),
  };
}

/** An Event about a Node, as the kubelet records one (namespace default, the node's name as its UID). */
export function nodeEvent(node: string, type: 'Normal' | 'Warning', reason: string, message: string, now: Date): CoreV1Event {
  return {
    metadata: { generateName: `${node}.`, namespace: 'default' },
    involvedObject: { kind: 'Node', apiVersion: 'v1', name: node, uid: node },
    type,
    reason,
    message,
    source: { component: 'edgefarm-provider', host: node },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

function cond(
  type: string,
  status: string,
  reason: string,
  message: string,
  prev: V1NodeCondition[] | undefined,
  now: Date,
): V1NodeCondition {
  const old = prev?.find((c) => c.type === type);
  return {
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : now,
  };
}

export function isConnected(view: Pick<NodeView, 'heartbeatAtMs'>, nowMs: number, staleAfterMs: number): boolean {
  return view.heartbeatAtMs !== undefined && nowMs - view.heartbeatAtMs <= staleAfterMs;
}

/** Autonomy `evict` past its deadline: the provider stops renewing the node's Lease and writing its status. */
export function silenced(view: Pick<NodeView, 'heartbeatAtMs'>, policy: NodePolicy, nowMs: number, staleAfterMs: number): boolean {
  const { autonomy } = policy;
  return (
    autonomy.policy === 'evict' &&
    view.heartbeatAtMs !== undefined &&
    !isConnected(view, nowMs, staleAfterMs) &&
    nowMs - view.heartbeatAtMs > autonomy.evictAfterSeconds * 1000
  );
}

export function nodeStatus(
  view: NodeView,
  prev: V1NodeStatus | undefined,
  now: Date,
  staleAfterMs: number,
  policy: NodePolicy,
): V1NodeStatus {
  const hb = view.heartbeat;
  const connected = isConnected(view, now.getTime(), staleAfterMs);
  const runtimeReady = hb?.conditions.find((c) => c.type === 'Ready');
  const since = view.heartbeatAtMs ? new Date(view.heartbeatAtMs).toISOString() : 'never';
  const { autonomy } = policy;
  const ready = !hb
    ? cond('Ready', 'False', 'EdgeAgentNeverConnected', 'no heartbeat from the edge agent yet', prev?.conditions, now)
    : runtimeReady && runtimeReady.status !== 'True'
      ? cond('Ready', 'False', runtimeReady.reason || 'RuntimeNotReady', runtimeReady.message, prev?.conditions, now)
      : cond(
          'Ready',
          'True',
          'EdgeAgentReady',
          connected
            ? 'edge agent is posting ready status'
            : `edge link down since ${since}; autonomy policy ${autonomy.policy} holds the node Ready${autonomy.policy === 'evict' ? ` for ${autonomy.evictAfterSeconds} s` : ''}`,
          prev?.conditions,
          now,
        );
  // A pressure condition as the agent reports it (admitted: a standard type, status and reason), False until it does.
  const pressure = (type: string, fine: string) => {
    const c = hb?.conditions.find((x) => x.type === type);
    return c
      ? cond(type, c.status, c.reason || (c.status === 'False' ? fine : `EdgeAgent${type}`), c.message, prev?.conditions, now)
      : cond(type, 'False', fine, '', prev?.conditions, now);
  };
  const conditions: V1NodeCondition[] = [
    ready,
    cond(
      'EdgeConnected',
      connected ? 'True' : 'False',
      connected ? 'HeartbeatFresh' : 'HeartbeatStale',
      connected ? 'edge agent heartbeats arrive' : `last heartbeat at ${since}`,
      prev?.conditions,
      now,
    ),
    pressure('MemoryPressure', 'EdgeAgentHasSufficientMemory'),
    pressure('DiskPressure', 'EdgeAgentHasNoDiskPressure'),
    pressure('PIDPressure', 'EdgeAgentHasSufficientPID'),
  ];
  const info = hb?.systemInfo;
  return {
    capacity: hb ? { ...hb.capacity } : prev?.capacity,
    allocatable: hb ? subtractReserved(hb.allocatable, policy.reserved) : prev?.allocatable,
    conditions,
    addresses: [
      { type: 'InternalIP', address: view.kubeletAddress },
      { type: 'Hostname', address: view.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: view.kubeletPort } },
    nodeInfo: {
      machineID: info?.machineId ?? '',
      systemUUID: info?.machineId ?? '',
      bootID: info?.bootId ?? '',
      kernelVersion: info?.kernelVersion ?? '',
      osImage: info?.osImage ?? '',
      containerRuntimeVersion: info?.containerRuntimeVersion ?? '',
      kubeletVersion: hb?.agentVersion ? `v1.33.13-edgefarm-${hb.agentVersion}` : 'v1.33.13-edgefarm',
      kubeProxyVersion: '',
      operatingSystem: info?.operatingSystem || 'linux',
      architecture: info?.architecture || 'amd64',
    },
    images: hb ? hb.images.slice(0, 50).map((i) => ({ names: [...i.names], sizeBytes: Number(i.sizeBytes) })) : prev?.images,
  };
}

/**
 * Whether a new status is worth a write: any condition status/reason, capacity, address or info change. `a` is what
 * the API returned: the client builds it with its own key order, and the API omits empty strings and lists (a
 * condition's empty message, a node without images). Both are compared canonically (keys sorted, empty = absent), or
 * every tick would write every node's status again.
 */
export function nodeStatusChanged(a: V1NodeStatus | undefined, b: V1NodeStatus): boolean {
  const omitEmpty = (_key: string, v: unknown) => {
    if (v === '' || (Array.isArray(v) && v.length === 0)) return undefined;
    if (v && typeof v === 'object' && !Array.isArray(v))
      return Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
    return v;
  };
  const strip = (s: V1NodeStatus | undefined) =>
    JSON.stringify(
      {
        ...s,
        conditions: s?.conditions?.map((c) => [c.type, c.status, c.reason, c.message]),
      },
      omitEmpty,
    );
  return strip(a) !== strip(b);
}

/** The EdgeNode status the provider reports for a node. */
export function edgeNodeStatus(view: NodeView, nowMs: number, staleAfterMs: number, desiredSequence: number | undefined): EdgeNodeStatus {
  const hb = view.heartbeat;
  return {
    connected: isConnected(view, nowMs, staleAfterMs),
    lastHeartbeatTime: view.heartbeatAtMs !== undefined ? new Date(view.heartbeatAtMs).toISOString().replace(/\.\d+Z$/, 'Z') : undefined,
    agentVersion: hb?.agentVersion || undefined,
    podCount: hb ? hb.podCount : undefined,
    desiredSequence,
    appliedSequence: hb ? Number(hb.appliedSequence) : undefined,
  };
}
