/**
 * Pure translation of a container's resources and effective security context into CRI's LinuxContainerConfig, as
 * the kubelet computes it (pkg/kubelet/kuberuntime/kuberuntime_container_linux.go, security_context.go,
 * pkg/kubelet/cm MilliCPUToShares, pkg/kubelet/qos/policy.go), and the kubelet's runAsNonRoot verification.
 * No I/O: the image's user and the node's memory capacity are passed in.
 */
import { cri, type edge } from '@edgefarm/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';

/** Plain init objects (not messages), so callers can spread them. */
export type ResourcesInit = Exclude<MessageInitShape<typeof cri.LinuxContainerResourcesSchema>, cri.LinuxContainerResources>;
export type SecurityInit = Exclude<MessageInitShape<typeof cri.LinuxContainerSecurityContextSchema>, cri.LinuxContainerSecurityContext>;

export const MIN_SHARES = 2;
export const MAX_SHARES = 262_144;
const SHARES_PER_CPU = 1024;
/** CFS period the kubelet uses (100 ms, in µs) and the smallest quota it sets. */
export const QUOTA_PERIOD = 100_000;
const MIN_QUOTA = 1000;
const GUARANTEED_OOM_SCORE_ADJ = -997;
const BEST_EFFORT_OOM_SCORE_ADJ = 1000;

export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

/** A count from the contract (int64 as bigint); negative values are treated as unset. */
const n = (v: bigint | undefined): number => (v !== undefined && v > 0n ? Number(v) : 0);

/** cm.MilliCPUToShares: 0 -> 2; else milli * 1024 / 1000 clamped to [2, 262144]. */
export function milliCpuToShares(milliCpu: number): number {
  if (milliCpu <= 0) return MIN_SHARES;
  const shares = Math.trunc((milliCpu * SHARES_PER_CPU) / 1000);
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, shares));
}

/** milliCPUToQuota: 0 (no limit) -> 0; else milli * period / 1000, at least 1000. */
export function milliCpuToQuota(milliCpu: number, period = QUOTA_PERIOD): number {
  if (milliCpu <= 0) return 0;
  return Math.max(MIN_QUOTA, Math.trunc((milliCpu * period) / 1000));
}

/** The effective request: the limit when no request is set (the apiserver's defaulting, repeated by the kubelet). */
function requests(r: edge.Resources | undefined): { cpu: number; memory: number } {
  return { cpu: n(r?.cpuRequestMillis) || n(r?.cpuLimitMillis), memory: n(r?.memoryRequestBytes) || n(r?.memoryLimitBytes) };
}

/** v1qos.ComputePodQOS over init and app containers (cpu and memory; sums of requests compared with sums of limits). */
export function podQos(pod: Pick<edge.EdgePodSpec, 'containers' | 'initContainers'>): QosClass {
  let guaranteed = true;
  const req = { cpu: 0, memory: 0 };
  const lim = { cpu: 0, memory: 0 };
  for (const c of [...pod.containers, ...pod.initContainers]) {
    const r = requests(c.resources);
    req.cpu += r.cpu;
    req.memory += r.memory;
    const cpuLimit = n(c.resources?.cpuLimitMillis);
    const memLimit = n(c.resources?.memoryLimitBytes);
    lim.cpu += cpuLimit;
    lim.memory += memLimit;
    if (cpuLimit === 0 || memLimit === 0) guaranteed = false;
  }
  if (req.cpu === 0 && req.memory === 0 && lim.cpu === 0 && lim.memory === 0) return 'BestEffort';
  if (guaranteed && req.cpu === lim.cpu && req.memory === lim.memory) return 'Guaranteed';
  return 'Burstable';
}

/** qos.GetContainerOOMScoreAdjust: Guaranteed -997, BestEffort 1000, Burstable 1000 - 1000*request/capacity in [3, 999]. */
export function oomScoreAdj(qos: QosClass, memoryRequestBytes: number, memoryCapacityBytes: number): number {
  if (qos === 'Guaranteed') return GUARANTEED_OOM_SCORE_ADJ;
  if (qos === 'BestEffort') return BEST_EFFORT_OOM_SCORE_ADJ;
  const capacity = memoryCapacityBytes > 0 ? memoryCapacityBytes : 1;
  const adj = 1000 - Math.trunc((1000 * memoryRequestBytes) / capacity);
  if (adj < 1000 + GUARANTEED_OOM_SCORE_ADJ) return 1000 + GUARANTEED_OOM_SCORE_ADJ;
  if (adj === BEST_EFFORT_OOM_SCORE_ADJ) return adj - 1;
  return adj;
}

export interface NodeResources {
  /** The node's memory (for the Burstable oom_score_adj). */
  memoryCapacityBytes: number;
  /**
   * cgroup v1 with the swap controller (memory.memsw.*): the kubelet without NodeSwap sets the memory+swap limit to
   * the memory limit, so a container cannot swap past it.
   */
  swapControllerV1: boolean;
}

/** generateLinuxContainerResources for one container of `pod`. */
export function linuxResources(
  pod: Pick<edge.EdgePodSpec, 'containers' | 'initContainers'>,
  container: edge.EdgeContainer,
  node: NodeResources,
): ResourcesInit {
  const r = container.resources;
  const cpuRequest = n(r?.cpuRequestMillis);
  const cpuLimit = n(r?.cpuLimitMillis);
  const memoryLimit = n(r?.memoryLimitBytes);
  const out: ResourcesInit = {
    cpuShares: BigInt(milliCpuToShares(cpuRequest === 0 && cpuLimit > 0 ? cpuLimit : cpuRequest)),
    cpuPeriod: BigInt(QUOTA_PERIOD),
    cpuQuota: BigInt(milliCpuToQuota(cpuLimit)),
    oomScoreAdj: BigInt(oomScoreAdj(podQos(pod), requests(r).memory, node.memoryCapacityBytes)),
  };
  if (memoryLimit > 0) {
    out.memoryLimitInBytes = BigInt(memoryLimit);
    if (node.swapControllerV1) out.memorySwapLimitInBytes = BigInt(memoryLimit);
  }
  return out;
}

/** What the image says about its user (CRI ImageStatus: uid when numeric, else the user name). */
export interface ImageUser {
  uid?: bigint;
  username: string;
}

/**
 * The kubelet's getImageUser from an ImageStatus image: the numeric uid, else the user name, else root (an image
 * that names no user runs as root).
 */
export function imageUser(image: { uid?: { value: bigint }; username: string } | undefined): ImageUser {
  if (image?.uid) return { uid: image.uid.value, username: '' };
  if (image?.username) return { username: image.username };
  return { uid: 0n, username: '' };
}

/** format.Pod: `<name>_<namespace>(<uid>)`. */
const formatPod = (pod: Pick<edge.EdgePodSpec, 'name' | 'namespace' | 'uid'>): string => `${pod.name}_${pod.namespace}(${pod.uid})`;
const quoted = (s: string): string => JSON.stringify(s);

/**
 * verifyRunAsNonRoot: '' when the container may run, else the kubelet's message (reported as
 * CreateContainerConfigError).
 */
export function runAsNonRootViolation(
  pod: Pick<edge.EdgePodSpec, 'name' | 'namespace' | 'uid'>,
  container: edge.EdgeContainer,
  image: ImageUser,
): string {
  const sc = container.securityContext;
  if (!sc?.runAsNonRoot) return '';
  const who = `(pod: ${quoted(formatPod(pod))}, container: ${container.name})`;
  if (sc.runAsUser !== undefined) return sc.runAsUser === 0n ? `container's runAsUser breaks non-root policy ${who}` : '';
  if (image.uid !== undefined) return image.uid === 0n ? `container has runAsNonRoot and image will run as root ${who}` : '';
  if (image.username)
    return `container has runAsNonRoot and image has non-numeric user (${image.username}), cannot verify user is non-root ${who}`;
  return '';
}

/** seccompProfile.type -> CRI: "" is Unconfined (the kubelet's default without SeccompDefault). */
function seccomp(profile: string): MessageInitShape<typeof cri.SecurityProfileSchema> {
  return {
    profileType: profile === 'RuntimeDefault' ? cri.SecurityProfile_ProfileType.RuntimeDefault : cri.SecurityProfile_ProfileType.Unconfined,
  };
}

/**
 * determineEffectiveSecurityContext for a container whose contract security context is already the effective one
 * (pod merged with container). Capabilities go as given (containerd adds the CAP_ prefix and knows "ALL");
 * no_new_privs only when allowPrivilegeEscalation is explicitly false (AddNoNewPrivileges); without a runAsUser the
 * image's user is passed on, as the kubelet does. Namespace options are the caller's.
 */
export function linuxSecurityContext(container: edge.EdgeContainer, image: ImageUser): SecurityInit {
  const sc = container.securityContext;
  const out: SecurityInit = {
    privileged: sc?.privileged ?? false,
    readonlyRootfs: sc?.readOnlyRootFilesystem ?? false,
    capabilities: { addCapabilities: [...(sc?.capabilitiesAdd ?? [])], dropCapabilities: [...(sc?.capabilitiesDrop ?? [])] },
    supplementalGroups: [...(sc?.supplementalGroups ?? [])],
    noNewPrivs: sc?.allowPrivilegeEscalation === false,
    seccomp: seccomp(sc?.seccompProfile ?? ''),
  };
  if (sc?.runAsUser !== undefined) out.runAsUser = { value: sc.runAsUser };
  else {
    if (image.uid !== undefined) out.runAsUser = { value: image.uid };
    out.runAsUsername = image.username;
  }
  if (sc?.runAsGroup !== undefined) out.runAsGroup = { value: sc.runAsGroup };
  return out;
}
