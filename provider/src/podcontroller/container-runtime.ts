/**
 * The parts of a container the runtime at the edge enforces: resources, the effective security context, probes and
 * the termination message, translated from corev1 with defaults and named ports resolved as the kubelet resolves
 * them; the pod's sysctls and host aliases. Anything the edge cannot honour is reported, never dropped.
 */
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import type { V1Container, V1HostAlias, V1PodSecurityContext, V1Probe, V1SecurityContext } from '@kubernetes/client-node';
import { parseQuantity, QuantityError } from '../kube/quantity.js';
import { normalizeSysctl } from './admit.js';

export type Report = (where: string, what: string) => void;

const RESOURCES = ['cpu', 'memory', 'ephemeral-storage'];

export function resources(c: V1Container, where: string, report: Report): edge.Resources {
  const out = create(edge.ResourcesSchema, {});
  for (const kind of ['requests', 'limits'] as const) {
    for (const [name, q] of Object.entries(c.resources?.[kind] ?? {})) {
      if (!RESOURCES.includes(name) && !name.startsWith('hugepages-')) {
        report(`${where}.resources.${kind}.${name}`, 'extended resources are not supported at the edge');
        continue;
      }
      let value: number;
      try {
        value = parseQuantity(q);
      } catch (err) {
        if (!(err instanceof QuantityError)) throw err;
        report(`${where}.resources.${kind}.${name}`, err.message);
        continue;
      }
      if (name === 'cpu')
        out[kind === 'requests' ? 'cpuRequestMillis' : 'cpuLimitMillis'] = BigInt(Math.ceil(Number((value * 1000).toPrecision(12))));
      else if (name === 'memory') out[kind === 'requests' ? 'memoryRequestBytes' : 'memoryLimitBytes'] = BigInt(Math.ceil(value));
      else if (name.startsWith('hugepages-')) report(`${where}.resources.${kind}.${name}`, 'hugepages are not supported at the edge');
      // ephemeral-storage: accounted by the scheduler; the edge does not enforce it (as a kubelet without eviction).
    }
  }
  return out;
}

const SECCOMP = ['', 'RuntimeDefault', 'Unconfined'];

/** The pod's security context merged with the container's (the container's wins): kubelet DetermineEffectiveSecurityContext. */
export function securityContext(
  pod: V1PodSecurityContext | undefined,
  c: V1SecurityContext | undefined,
  where: string,
  report: Report,
): edge.SecurityContext {
  const out = create(edge.SecurityContextSchema, {});
  const runAsUser = c?.runAsUser ?? pod?.runAsUser;
  const runAsGroup = c?.runAsGroup ?? pod?.runAsGroup;
  const runAsNonRoot = c?.runAsNonRoot ?? pod?.runAsNonRoot;
  if (runAsUser !== undefined) out.runAsUser = BigInt(runAsUser);
  if (runAsGroup !== undefined) out.runAsGroup = BigInt(runAsGroup);
  if (runAsNonRoot !== undefined) out.runAsNonRoot = runAsNonRoot;
  out.readOnlyRootFilesystem = c?.readOnlyRootFilesystem ?? false;
  out.privileged = c?.privileged ?? false;
  out.capabilitiesAdd = c?.capabilities?.add ?? [];
  out.capabilitiesDrop = c?.capabilities?.drop ?? [];
  if (c?.allowPrivilegeEscalation !== undefined) out.allowPrivilegeEscalation = c.allowPrivilegeEscalation;
  out.supplementalGroups = [...(pod?.supplementalGroups ?? []), ...(pod?.fsGroup !== undefined ? [pod.fsGroup] : [])].map(BigInt);
  const seccomp = c?.seccompProfile ?? pod?.seccompProfile;
  if (seccomp && !SECCOMP.includes(seccomp.type))
    report(`${where}.securityContext.seccompProfile`, `type ${seccomp.type} is not supported at the edge`);
  else out.seccompProfile = seccomp?.type ?? '';
  if (c?.procMount && c.procMount !== 'Default')
    report(`${where}.securityContext.procMount`, `${c.procMount} is not supported at the edge`);
  const apparmor = c?.appArmorProfile ?? pod?.appArmorProfile;
  if (apparmor && apparmor.type !== 'Unconfined' && apparmor.type !== 'RuntimeDefault')
    report(`${where}.securityContext.appArmorProfile`, `type ${apparmor.type} is not supported at the edge`);
  return out;
}

/**
 * The pod's sysctls by normalized name (set on the sandbox, CRI linux.sysctls). Which ones a node runs is decided at
 * admission (admit.ts: the kubelet's safe set and the node's allow list), before translation.
 */
export function sysctls(pod: V1PodSecurityContext | undefined): Record<string, string> {
  return Object.fromEntries((pod?.sysctls ?? []).map((s) => [normalizeSysctl(s.name), s.value]));
}

/** pod.spec.hostAliases, for the managed /etc/hosts the agent writes. */
export function hostAliases(aliases: V1HostAlias[] | undefined): edge.HostAlias[] {
  return (aliases ?? []).map((a) => create(edge.HostAliasSchema, { ip: a.ip, hostnames: a.hostnames ?? [] }));
}

/** A probe with the apiserver's defaults and named ports resolved against the container's ports. */
export function probe(p: V1Probe | undefined, c: V1Container, where: string, report: Report): edge.Probe | undefined {
  if (!p) return undefined;
  const port = (value: number | string | undefined, field: string): number => {
    if (typeof value === 'number') return value;
    const n = Number(value);
    if (value !== undefined && Number.isInteger(n) && String(n) === value) return n;
    const named = c.ports?.find((x) => x.name === value)?.containerPort;
    if (named === undefined) report(`${where}.${field}.port`, `no container port named "${value}"`);
    return named ?? 0;
  };
  const out = create(edge.ProbeSchema, {
    initialDelaySeconds: p.initialDelaySeconds ?? 0,
    timeoutSeconds: p.timeoutSeconds ?? 1,
    periodSeconds: p.periodSeconds ?? 10,
    successThreshold: p.successThreshold ?? 1,
    failureThreshold: p.failureThreshold ?? 3,
    terminationGracePeriodSeconds: BigInt(p.terminationGracePeriodSeconds ?? 0),
  });
  if (p.exec) out.handler = { case: 'exec', value: create(edge.ExecActionSchema, { command: p.exec.command ?? [] }) };
  else if (p.httpGet) {
    const h = p.httpGet;
    out.handler = {
      case: 'httpGet',
      value: create(edge.HttpGetActionSchema, {
        path: h.path ?? '/',
        port: port(h.port, 'httpGet'),
        host: h.host ?? '',
        scheme: h.scheme ?? 'HTTP',
        headers: (h.httpHeaders ?? []).map((x) => ({ name: x.name, value: x.value })),
      }),
    };
  } else if (p.tcpSocket)
    out.handler = {
      case: 'tcpSocket',
      value: create(edge.TcpSocketActionSchema, { port: port(p.tcpSocket.port, 'tcpSocket'), host: p.tcpSocket.host ?? '' }),
    };
  else if (p.grpc)
    out.handler = { case: 'grpc', value: create(edge.GrpcActionSchema, { port: p.grpc.port, service: p.grpc.service ?? '' }) };
  else report(where, 'a probe needs exec, httpGet, tcpSocket or grpc');
  return out;
}

const MESSAGE_POLICIES = ['File', 'FallbackToLogsOnError'];

export function terminationMessage(
  c: V1Container,
  where: string,
  report: Report,
): { terminationMessagePath: string; terminationMessagePolicy: string } {
  const policy = c.terminationMessagePolicy ?? 'File';
  if (!MESSAGE_POLICIES.includes(policy)) report(`${where}.terminationMessagePolicy`, `unknown value "${policy}"`);
  return { terminationMessagePath: c.terminationMessagePath ?? '/dev/termination-log', terminationMessagePolicy: policy };
}
