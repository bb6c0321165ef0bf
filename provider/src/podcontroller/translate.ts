/**
 * Pure translation of a corev1.Pod into the EdgePodSpec the agent implements. Anything the edge cannot do yet is
 * reported as a list of reasons instead of being dropped silently: the controller turns them into a Failed status
 * and an Event.
 */
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import type { V1Container, V1Pod, V1EnvVar } from '@kubernetes/client-node';

export type Translation = { ok: true; spec: edge.EdgePodSpec } | { ok: false; unsupported: string[] };

/** The projected volume the ServiceAccount admission plugin adds to every pod; served in a later step. */
const SA_TOKEN_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

const RESTART: Record<string, edge.RestartPolicy> = {
  Always: edge.RestartPolicy.ALWAYS,
  OnFailure: edge.RestartPolicy.ON_FAILURE,
  Never: edge.RestartPolicy.NEVER,
};
const PULL: Record<string, edge.PullPolicy> = {
  IfNotPresent: edge.PullPolicy.IF_NOT_PRESENT,
  Always: edge.PullPolicy.ALWAYS,
  Never: edge.PullPolicy.NEVER,
};

function isServiceAccountVolume(pod: V1Pod, name: string): boolean {
  const v = pod.spec?.volumes?.find((x) => x.name === name);
  return !!v?.projected && name.startsWith('kube-api-access-');
}

function envValue(pod: V1Pod, env: V1EnvVar, where: string, problems: string[]): string | undefined {
  if (env.valueFrom === undefined) return env.value ?? '';
  const path = env.valueFrom.fieldRef?.fieldPath;
  switch (path) {
    case 'metadata.name':
      return pod.metadata?.name;
    case 'metadata.namespace':
      return pod.metadata?.namespace;
    case 'metadata.uid':
      return pod.metadata?.uid;
    case 'spec.nodeName':
      return pod.spec?.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
  }
  problems.push(`${where}.env[${env.name}].valueFrom: only fieldRef to metadata.name/namespace/uid and spec.nodeName/serviceAccountName is supported at the edge yet`);
  return undefined;
}

function container(pod: V1Pod, c: V1Container, where: string, problems: string[]): edge.EdgeContainer {
  for (const m of c.volumeMounts ?? []) {
    if (!(m.mountPath === SA_TOKEN_MOUNT && isServiceAccountVolume(pod, m.name))) {
      problems.push(`${where}.volumeMounts[${m.name}]: volumes are not supported at the edge yet`);
    }
  }
  if (c.envFrom?.length) problems.push(`${where}.envFrom: not supported at the edge yet`);
  const pullPolicy = c.imagePullPolicy ? PULL[c.imagePullPolicy] : edge.PullPolicy.UNSPECIFIED;
  if (pullPolicy === undefined) problems.push(`${where}.imagePullPolicy: unknown value "${c.imagePullPolicy}"`);
  return create(edge.EdgeContainerSchema, {
    name: c.name,
    image: c.image ?? '',
    command: c.command ?? [],
    args: c.args ?? [],
    workingDir: c.workingDir ?? '',
    env: (c.env ?? []).map((e) => ({ name: e.name, value: envValue(pod, e, where, problems) ?? '' })),
    imagePullPolicy: pullPolicy ?? edge.PullPolicy.UNSPECIFIED,
    ports: (c.ports ?? []).map((p) => ({
      name: p.name ?? '',
      containerPort: p.containerPort,
      protocol: p.protocol ?? 'TCP',
      hostPort: p.hostPort ?? 0,
    })),
    tty: c.tty ?? false,
    stdin: c.stdin ?? false,
  });
}

export function translatePod(pod: V1Pod): Translation {
  const problems: string[] = [];
  const spec = pod.spec;
  const meta = pod.metadata;
  if (!spec || !meta?.uid || !meta.name || !meta.namespace || !meta.resourceVersion) {
    return { ok: false, unsupported: ['pod has no spec or incomplete metadata'] };
  }
  for (const v of spec.volumes ?? []) {
    if (!isServiceAccountVolume(pod, v.name)) problems.push(`volumes[${v.name}]: volumes are not supported at the edge yet`);
  }
  if (spec.hostPID) problems.push('hostPID: not supported at the edge');
  if (spec.hostIPC) problems.push('hostIPC: not supported at the edge');
  if (spec.ephemeralContainers?.length) problems.push('ephemeralContainers: not supported at the edge yet');
  const restart = RESTART[spec.restartPolicy ?? 'Always'];
  if (restart === undefined) problems.push(`restartPolicy: unknown value "${spec.restartPolicy}"`);
  const initContainers = (spec.initContainers ?? []).map((c, i) => container(pod, c, `initContainers[${i}]`, problems));
  const containers = spec.containers.map((c, i) => container(pod, c, `containers[${i}]`, problems));
  if (problems.length > 0) return { ok: false, unsupported: problems };
  return {
    ok: true,
    spec: create(edge.EdgePodSpecSchema, {
      uid: meta.uid,
      namespace: meta.namespace,
      name: meta.name,
      resourceVersion: meta.resourceVersion,
      generation: BigInt(meta.generation ?? 0),
      labels: meta.labels ?? {},
      annotations: meta.annotations ?? {},
      containers,
      initContainers,
      restartPolicy: restart ?? edge.RestartPolicy.ALWAYS,
      hostNetwork: spec.hostNetwork ?? false,
      hostname: spec.hostname ?? meta.name,
      terminationGracePeriodSeconds: BigInt(spec.terminationGracePeriodSeconds ?? 30),
      deleting: meta.deletionTimestamp !== undefined,
      deletionGracePeriodSeconds: BigInt(meta.deletionGracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30),
    }),
  };
}

/** Identity of a spec's content for "did the desired state change?", ignoring resourceVersion churn from status. */
export function specFingerprint(spec: edge.EdgePodSpec): string {
  const { resourceVersion: _rv, $typeName: _t, ...rest } = spec;
  return JSON.stringify(rest, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
