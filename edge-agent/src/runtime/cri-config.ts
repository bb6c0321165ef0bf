/**
 * Pure translation between EdgePodSpec and CRI: the sandbox and container configs the agent creates, and the
 * observed pod rebuilt from CRI labels/annotations. No I/O here; cri-runtime.ts does the calls.
 */
import path from 'node:path';
import { allContainers, cri, edge, podKeyString, type PodKey } from '@edgefarm/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { Annotations, Labels, MANAGED, containerHash, effectiveHostname, sandboxHash } from './labels.js';
import type { ResourcesInit, SecurityInit } from './linux.js';
import type { ContainerCreateOptions, ContainerState, ObservedContainer, ObservedSandbox, RelistSnapshot } from './types.js';

export interface NodeLayout {
  /** Root of per-pod log directories. */
  podLogRoot: string;
  /** cgroupfs parent for every pod of the node. */
  cgroupParent: string;
}

type SandboxConfigInit = MessageInitShape<typeof cri.PodSandboxConfigSchema>;
type ContainerConfigInit = MessageInitShape<typeof cri.ContainerConfigSchema>;

export function podLogDirectory(layout: NodeLayout, pod: { namespace: string; name: string; uid: string }): string {
  return path.join(layout.podLogRoot, `${pod.namespace}_${pod.name}_${pod.uid}`);
}

export function podCgroupParent(layout: NodeLayout, uid: string): string {
  return `${layout.cgroupParent.replace(/\/+$/, '')}/pod${uid}`;
}

export function containerLogPath(container: string, restartCount: number): string {
  return `${container}/${restartCount}.log`;
}

function podLabels(pod: edge.EdgePodSpec): Record<string, string> {
  return {
    ...pod.labels,
    [Labels.podUid]: pod.uid,
    [Labels.podNamespace]: pod.namespace,
    [Labels.podName]: pod.name,
    [Labels.managed]: MANAGED,
  };
}

/** The pod's namespaces; an ephemeral container with a target joins that container's process namespace (TARGET). */
function namespaceOptions(pod: edge.EdgePodSpec, targetId = ''): MessageInitShape<typeof cri.NamespaceOptionSchema> {
  return {
    network: pod.hostNetwork ? cri.NamespaceMode.NODE : cri.NamespaceMode.POD,
    pid: targetId ? cri.NamespaceMode.TARGET : cri.NamespaceMode.CONTAINER,
    ipc: cri.NamespaceMode.POD,
    ...(targetId ? { targetId } : {}),
  };
}

const PROTOCOLS: Record<string, cri.Protocol> = { TCP: cri.Protocol.TCP, UDP: cri.Protocol.UDP, SCTP: cri.Protocol.SCTP };

export function sandboxConfig(layout: NodeLayout, pod: edge.EdgePodSpec, attempt: number): SandboxConfigInit {
  return {
    metadata: { name: pod.name, namespace: pod.namespace, uid: pod.uid, attempt },
    hostname: effectiveHostname(pod),
    logDirectory: podLogDirectory(layout, pod),
    portMappings: pod.containers
      .flatMap((c) => c.ports)
      .filter((p) => p.hostPort > 0)
      .map((p) => ({
        protocol: PROTOCOLS[p.protocol.toUpperCase() || 'TCP'] ?? cri.Protocol.TCP,
        containerPort: p.containerPort,
        hostPort: p.hostPort,
      })),
    labels: podLabels(pod),
    annotations: {
      ...pod.annotations,
      [Annotations.resourceVersion]: pod.resourceVersion,
      [Annotations.sandboxHash]: sandboxHash(pod),
      [Annotations.hostNetwork]: String(pod.hostNetwork),
    },
    linux: {
      cgroupParent: podCgroupParent(layout, pod.uid),
      // pod.spec.securityContext.sysctls the provider admitted (the kubelet's safe set and the node's allow list).
      sysctls: { ...pod.sysctls },
      // As the kubelet: the sandbox is privileged when any container is (containerd refuses one otherwise).
      securityContext: {
        namespaceOptions: namespaceOptions(pod),
        privileged: allContainers(pod).some((c) => c.securityContext?.privileged),
      },
    },
  };
}

/** Resources and security context of a container (runtime/linux.ts); namespace options are added here. */
export interface LinuxContainerInit {
  resources?: ResourcesInit;
  securityContext?: SecurityInit;
}

export function containerConfig(
  pod: edge.EdgePodSpec,
  container: edge.EdgeContainer,
  options: ContainerCreateOptions,
  linux: LinuxContainerInit = {},
): ContainerConfigInit {
  return {
    metadata: { name: container.name, attempt: options.attempt },
    image: { image: container.image, userSpecifiedImage: container.image },
    command: options.command ?? container.command,
    args: options.args ?? container.args,
    workingDir: container.workingDir,
    envs: (options.env ?? container.env).map((e) => ({ key: e.name, value: e.value })),
    mounts: (options.mounts ?? []).map((m) => ({ containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readOnly })),
    labels: {
      [Labels.podUid]: pod.uid,
      [Labels.podNamespace]: pod.namespace,
      [Labels.podName]: pod.name,
      [Labels.containerName]: container.name,
      [Labels.managed]: MANAGED,
    },
    annotations: {
      [Annotations.containerHash]: containerHash(container),
      [Annotations.restartCount]: String(options.restartCount),
      [Annotations.terminationGracePeriod]: String(Number(pod.terminationGracePeriodSeconds)),
      [Annotations.terminationMessagePath]: terminationMessagePath(container),
      [Annotations.terminationMessagePolicy]: container.terminationMessagePolicy || 'File',
    },
    logPath: containerLogPath(container.name, options.restartCount),
    stdin: container.stdin,
    tty: container.tty,
    linux: { ...linux, securityContext: { ...linux.securityContext, namespaceOptions: namespaceOptions(pod, options.targetId) } },
  };
}

/** Where the container's termination message is read from (Kubernetes' default /dev/termination-log). */
export function terminationMessagePath(container: edge.EdgeContainer): string {
  return container.terminationMessagePath || '/dev/termination-log';
}

const nsToMs = (ns: bigint): number => Number(ns / 1_000_000n);

function intAnnotation(annotations: Record<string, string>, key: string): number {
  const n = Number(annotations[key] ?? '0');
  return Number.isFinite(n) && n >= 0 ? Math.trunc(n) : 0;
}

/** An observed sandbox from ListPodSandbox's item (and the IP from PodSandboxStatus, when known). */
export function observedSandbox(item: cri.PodSandbox, ip: string): ObservedSandbox {
  return {
    id: item.id,
    uid: item.labels[Labels.podUid] ?? item.metadata?.uid ?? '',
    namespace: item.labels[Labels.podNamespace] ?? item.metadata?.namespace ?? '',
    name: item.labels[Labels.podName] ?? item.metadata?.name ?? '',
    attempt: item.metadata?.attempt ?? 0,
    state: item.state === cri.PodSandboxState.SANDBOX_READY ? 'ready' : 'notready',
    createdAtMs: nsToMs(item.createdAt),
    ip,
    hostNetwork: item.annotations[Annotations.hostNetwork] === 'true',
    configHash: item.annotations[Annotations.sandboxHash] ?? '',
    resourceVersion: item.annotations[Annotations.resourceVersion] ?? '',
  };
}

const STATES: Record<cri.ContainerState, ContainerState> = {
  [cri.ContainerState.CONTAINER_CREATED]: 'created',
  [cri.ContainerState.CONTAINER_RUNNING]: 'running',
  [cri.ContainerState.CONTAINER_EXITED]: 'exited',
  [cri.ContainerState.CONTAINER_UNKNOWN]: 'unknown',
};

/** An observed container from ListContainers' item, completed by ContainerStatus when available. */
export function observedContainer(item: cri.Container, status: cri.ContainerStatus | undefined): ObservedContainer {
  const annotations = status?.annotations && Object.keys(status.annotations).length > 0 ? status.annotations : item.annotations;
  return {
    id: item.id,
    sandboxId: item.podSandboxId,
    podUid: item.labels[Labels.podUid] ?? '',
    name: item.labels[Labels.containerName] ?? item.metadata?.name ?? '',
    attempt: item.metadata?.attempt ?? 0,
    state: STATES[status?.state ?? item.state] ?? 'unknown',
    hash: annotations[Annotations.containerHash] ?? '',
    restartCount: intAnnotation(annotations, Annotations.restartCount),
    terminationGracePeriodSec: intAnnotation(annotations, Annotations.terminationGracePeriod),
    image: item.image?.userSpecifiedImage || item.image?.image || '',
    imageRef: status?.imageRef || item.imageRef,
    createdAtMs: nsToMs(item.createdAt),
    startedAtMs: status ? nsToMs(status.startedAt) : 0,
    finishedAtMs: status ? nsToMs(status.finishedAt) : 0,
    exitCode: status?.exitCode ?? 0,
    reason: status?.reason ?? '',
    message: status?.message ?? '',
  };
}

/** Newest first (creation time, then attempt): the order {@link PodRuntime.observePod} returns. */
export function newestFirst(a: { createdAtMs: number; attempt: number }, b: { createdAtMs: number; attempt: number }): number {
  return b.createdAtMs - a.createdAtMs || b.attempt - a.attempt;
}

/** The pod keys of managed sandboxes, from their labels (each key once). */
export function podKeysOf(sandboxes: Iterable<{ labels: Record<string, string> }>): PodKey[] {
  const keys = new Map<string, PodKey>();
  for (const s of sandboxes) {
    const namespace = s.labels[Labels.podNamespace];
    const name = s.labels[Labels.podName];
    if (namespace && name) keys.set(podKeyString({ namespace, name }), { namespace, name });
  }
  return [...keys.values()];
}

/** The relist digest per pod key of a listing of sandboxes and one of containers, keyed by their labels. */
export function relistSnapshot(
  sandboxes: Iterable<{ id: string; state: number; labels: Record<string, string> }>,
  containers: Iterable<{ id: string; state: number; labels: Record<string, string> }>,
): RelistSnapshot {
  const parts = new Map<string, string[]>();
  const add = (labels: Record<string, string>, part: string) => {
    const namespace = labels[Labels.podNamespace];
    const name = labels[Labels.podName];
    if (!namespace || !name) return;
    const k = podKeyString({ namespace, name });
    const list = parts.get(k) ?? [];
    list.push(part);
    parts.set(k, list);
  };
  for (const s of sandboxes) add(s.labels, `s:${s.id}:${s.state}`);
  for (const c of containers) add(c.labels, `c:${c.id}:${c.state}`);
  return new Map([...parts].map(([k, list]) => [k, list.sort().join(',')]));
}
