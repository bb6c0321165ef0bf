/**
 * Pure construction of the Node object and its status from what the provider knows of an edge node: its last
 * heartbeat and when the hub stored it.
 *
 * Conditions: `EdgeConnected` says whether heartbeats are fresh. `Ready` follows the autonomy policy `keep`: it turns
 * True with the first heartbeat whose runtime is ready, and stays True while the link is down, so Kubernetes neither
 * evicts nor recreates the node's pods (EdgeFarm issue 3 adds the eviction-deadline policy).
 */
import type { V1Node, V1NodeCondition, V1NodeStatus } from '@kubernetes/client-node';
import type { EdgeNodeStatus } from '../kube/client.js';
import type { edge } from '@edgefarm/proto';

export const EDGE_LABEL = 'node-role.kubernetes.io/edge';
export const EDGE_TAINT_KEY = 'edgefarm.io/edge';
export const AGENT_VERSION_LABEL = 'edgefarm.io/agent-version';

export interface NodeView {
  name: string;
  heartbeat?: edge.NodeHeartbeat;
  heartbeatAtMs?: number;
  /** True once any heartbeat was seen while this process runs or before (the Node's Ready was True). */
  everReady: boolean;
  kubeletPort: number;
  /**
   * Where the apiserver reaches this node's kubelet API: the provider's own address (it serves the kubelet API for
   * all its nodes), never the site's address, which is behind NAT. The site's address is reported on pods (hostIP).
   */
  kubeletAddress: string;
}

export function newNode(name: string, kubeletPort: number): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'type': 'virtual-kubelet',
        [EDGE_LABEL]: '',
      },
    },
    spec: { taints: [{ key: EDGE_TAINT_KEY, value: 'true', effect: 'NoSchedule' }] },
    status: { daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } } },
  };
}

function cond(type: string, status: string, reason: string, message: string, prev: V1NodeCondition[] | undefined, now: Date): V1NodeCondition {
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

export function isConnected(view: NodeView, nowMs: number, staleAfterMs: number): boolean {
  return view.heartbeatAtMs !== undefined && nowMs - view.heartbeatAtMs <= staleAfterMs;
}

export function nodeStatus(view: NodeView, prev: V1NodeStatus | undefined, now: Date, staleAfterMs: number): V1NodeStatus {
  const hb = view.heartbeat;
  const connected = isConnected(view, now.getTime(), staleAfterMs);
  const runtimeReady = hb?.conditions.find((c) => c.type === 'Ready');
  const since = view.heartbeatAtMs ? new Date(view.heartbeatAtMs).toISOString() : 'never';
  const ready = hb
    ? runtimeReady && runtimeReady.status !== 'True'
      ? cond('Ready', 'False', runtimeReady.reason || 'RuntimeNotReady', runtimeReady.message, prev?.conditions, now)
      : cond('Ready', 'True', 'EdgeAgentReady', connected ? 'edge agent is posting ready status' : `edge link down since ${since}; autonomy policy keep holds the node Ready`, prev?.conditions, now)
    : cond('Ready', 'False', 'EdgeAgentNeverConnected', 'no heartbeat from the edge agent yet', prev?.conditions, now);
  const conditions: V1NodeCondition[] = [
    ready,
    cond('EdgeConnected', connected ? 'True' : 'False', connected ? 'HeartbeatFresh' : 'HeartbeatStale', connected ? 'edge agent heartbeats arrive' : `last heartbeat at ${since}`, prev?.conditions, now),
    cond('MemoryPressure', 'False', 'EdgeAgentHasSufficientMemory', '', prev?.conditions, now),
    cond('DiskPressure', 'False', 'EdgeAgentHasNoDiskPressure', '', prev?.conditions, now),
    cond('PIDPressure', 'False', 'EdgeAgentHasSufficientPID', '', prev?.conditions, now),
  ];
  const info = hb?.systemInfo;
  return {
    capacity: hb ? { ...hb.capacity } : prev?.capacity,
    allocatable: hb ? { ...hb.allocatable } : prev?.allocatable,
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
      kubeletVersion: hb ? `v1.33.13-edgefarm-${hb.agentVersion}` : 'v1.33.13-edgefarm',
      kubeProxyVersion: '',
      operatingSystem: info?.operatingSystem || 'linux',
      architecture: info?.architecture || 'amd64',
    },
    images: hb ? hb.images.slice(0, 50).map((i) => ({ names: [...i.names], sizeBytes: Number(i.sizeBytes) })) : prev?.images,
  };
}

/** Whether a new status is worth a write: any condition status/reason, capacity, address or info change. */
export function nodeStatusChanged(a: V1NodeStatus | undefined, b: V1NodeStatus): boolean {
  const strip = (s: V1NodeStatus | undefined) =>
    JSON.stringify({
      ...s,
      conditions: s?.conditions?.map((c) => [c.type, c.status, c.reason, c.message]),
    });
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
