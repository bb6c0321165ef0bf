/**
 * The kubelet's pod admission for what an edge node checks before a pod runs (pkg/kubelet/lifecycle/predicate.go,
 * pkg/kubelet/sysctl/allowlist.go): a pod for another OS (spec.os.name not linux) is refused with PodOSNotSupported;
 * a sysctl neither in the kubelet's safe set nor allowed on the node (allowedUnsafeSysctls, `*` ending a prefix) is
 * refused with SysctlForbidden, as is a network sysctl with hostNetwork or an IPC one with hostIPC. A refused pod is
 * failed the way a kubelet fails it: phase Failed, the reason and the kubelet's message, and one Warning Event.
 */
import type { Logger } from 'pino';
import type { V1Pod } from '@kubernetes/client-node';
import type { KubeClient, Pod } from '../kube/client.js';
import type { PodWarnings } from './warnings.js';

export type AdmissionReason = 'PodOSNotSupported' | 'SysctlForbidden';
export const ADMISSION_REASONS: readonly AdmissionReason[] = ['PodOSNotSupported', 'SysctlForbidden'];

export interface Refusal {
  reason: AdmissionReason;
  message: string;
}

/**
 * The kubelet's safe sysctls (pkg/kubelet/sysctl/safe_sysctls.go): namespaced and isolated, allowed on every node.
 * The kernel-gated ones (ip_local_reserved_ports >= 3.16, tcp_rmem and tcp_wmem >= 4.15) are older than any kernel
 * an edge node runs containerd 2 on.
 */
export const SAFE_SYSCTLS: readonly string[] = [
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
];

/**
 * A sysctl name with `.` as its separator (utilsysctl.NormalizeName): when the first separator is `/`, slashes and
 * dots swap (`kernel/shm_rmid_forced` is `kernel.shm_rmid_forced`, `net/ipv4/conf/eno2.100/rp_filter` keeps the dot
 * of its interface as `/`).
 */
export function normalizeSysctl(name: string): string {
  const first = name.search(/[./]/);
  if (first < 0 || name[first] !== '/') return name;
  return name.replace(/[./]/g, (c) => (c === '/' ? '.' : '/'));
}

/** The namespace a sysctl lives in (pkg/kubelet/sysctl/namespace.go): ipc, net, or none (not namespaced). */
function namespaceOf(sysctl: string): 'ipc' | 'net' | undefined {
  if (sysctl.startsWith('net.')) return 'net';
  if (['kernel.sem', 'kernel.shm_rmid_forced'].includes(sysctl)) return 'ipc';
  if (['kernel.shm', 'kernel.msg', 'fs.mqueue.'].some((p) => sysctl.startsWith(p))) return 'ipc';
  return undefined;
}

/** A sysctl name or a prefix ending in `*` (the kubelet's SysctlPatternFmt, dots or slashes). */
const SYSCTL_PATTERN = /^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]$/;

/**
 * Why an entry of a node's allowed unsafe sysctls is refused, or undefined: as the kubelet's NewAllowlist, it must be
 * a sysctl name or prefix and namespaced (ipc or net: a node-wide sysctl is never a pod's to set).
 */
export function unsafeSysctlPatternProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string' || pattern.length > 253 || !SYSCTL_PATTERN.test(pattern))
    return 'not a sysctl name or a prefix ending in *';
  const name = normalizeSysctl(pattern.endsWith('*') ? pattern.slice(0, -1) : pattern);
  if (!namespaceOf(name)) return `${JSON.stringify(pattern)} is not known to be namespaced`;
  return undefined;
}

function allowed(sysctl: string, patterns: readonly string[]): boolean {
  if (SAFE_SYSCTLS.includes(sysctl)) return true;
  return patterns.some((p) => (p.endsWith('*') ? sysctl.startsWith(normalizeSysctl(p.slice(0, -1))) : sysctl === normalizeSysctl(p)));
}

/** Why the node refuses `pod` at admission, or undefined when it admits it. `allowedUnsafeSysctls`: the node's allow list. */
export function admissionRefusal(pod: V1Pod, allowedUnsafeSysctls: readonly string[] = []): Refusal | undefined {
  const spec = pod.spec;
  for (const s of spec?.securityContext?.sysctls ?? []) {
    const name = normalizeSysctl(s.name);
    if (!allowed(name, allowedUnsafeSysctls)) return { reason: 'SysctlForbidden', message: `forbidden sysctl: "${name}" not allowlisted` };
    const ns = namespaceOf(name);
    if ((ns === 'net' && spec?.hostNetwork) || (ns === 'ipc' && spec?.hostIPC))
      return { reason: 'SysctlForbidden', message: `forbidden sysctl: "${name}" not allowed with host ${ns} enabled` };
  }
  if (spec?.os?.name !== undefined && spec.os.name !== 'linux')
    return { reason: 'PodOSNotSupported', message: "Failed to admit pod as the OS field doesn't match node OS" };
  return undefined;
}

export interface AdmitDeps {
  kube: Pick<KubeClient, 'replacePodStatus' | 'deletePod'>;
  warnings: Pick<PodWarnings, 'warn'>;
  /** Counts each refusal once a pod (pods_rejected_total{reason}). */
  rejected?: (reason: AdmissionReason) => void;
}

/** Fails a refused pod as the kubelet does; a refused pod being deleted never ran, so its delete is finished at once. */
export async function rejectAtAdmission(deps: AdmitDeps, pod: Pod, refusal: Refusal, log: Logger): Promise<void> {
  const { namespace, name, uid } = pod.metadata!;
  if (pod.metadata!.deletionTimestamp) {
    await deps.kube.deletePod(namespace!, name!, { uid: uid!, gracePeriodSeconds: 0 });
    return;
  }
  if (pod.status?.phase !== 'Failed' || pod.status.reason !== refusal.reason) {
    await deps.kube.replacePodStatus({
      ...pod,
      status: { ...pod.status, phase: 'Failed', reason: refusal.reason, message: refusal.message },
    });
  }
  if (await deps.warnings.warn(pod, refusal.reason, refusal.reason, refusal.message)) {
    deps.rejected?.(refusal.reason);
    log.warn({ reason: refusal.reason, message: refusal.message }, 'pod rejected at admission');
  }
}
