/**
 * Pure translation of a corev1.Pod into the EdgePodSpec the agent implements. Anything the edge cannot do yet is
 * reported as a list of reasons instead of being dropped silently: the controller turns them into a Failed status
 * and an Event.
 */
import { create } from '@bufbuild/protobuf';
import { edge, isDnsLabel, MAX_EPHEMERAL_CONTAINERS } from '@edgefarm/proto';
import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeProjection } from '@kubernetes/client-node';
import { parseQuantity } from '../kube/quantity.js';
import { EDGE_FIELD_PATHS, fieldValue, resourceValue } from './downward.js';
import { hostAliases, probe, resources, securityContext, sysctls, terminationMessage } from './container-runtime.js';
import { lifecycleHooks } from './lifecycle.js';

/**
 * `unsupported`: what the edge cannot do (the pod fails with EdgeUnsupported). `waiting`: what cannot be resolved yet
 * (the node's allocatable before its first heartbeat): the pod waits and is translated again.
 */
export type Translation =
  | {
      ok: true;
      spec: edge.EdgePodSpec;
      /** Ephemeral containers left out of the spec, and why (a Warning Event each; the pod itself keeps running). */
      refusedEphemeral: string[];
    }
  | { ok: false; unsupported: string[]; waiting: string[] };

export interface TranslateContext {
  /** The node's allocatable resources (resourceFieldRef of a limit the container does not set). */
  allocatable?: Record<string, string>;
  /**
   * The kubelet's service environment variables of a pod in `namespace` (service-env.ts), undefined while the Services
   * have not been read yet (the pod waits). Without it, a pod gets none.
   */
  serviceEnv?: (namespace: string, enableServiceLinks: boolean) => { name: string; value: string }[] | undefined;
}

/** Default lifetime of a projected ServiceAccount token (the API's default for expirationSeconds). */
const DEFAULT_TOKEN_SECONDS = 3600;

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
const HOST_PATH_TYPES = ['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice'];

/** Key of a ServiceAccount token in the pod's token object: one token per lifetime and audience, as the kubelet caches them. */
export function tokenKey(expirationSeconds: number, audience: string): string {
  return `${expirationSeconds}/${audience}`;
}
export function parseTokenKey(key: string): { expirationSeconds: number; audience: string } {
  const i = key.indexOf('/');
  return { expirationSeconds: Number(key.slice(0, i)), audience: key.slice(i + 1) };
}

class Problems {
  readonly list: string[] = [];
  readonly waiting: string[] = [];
  add(where: string, what: string): void {
    this.list.push(`${where}: ${what}`);
  }
  /** Adds a value's error: a "not known yet" one makes the pod wait instead of failing. */
  addValueError(where: string, v: { error: string; waiting?: boolean }): void {
    if (v.waiting) this.waiting.push(`${where}: ${v.error}`);
    else this.add(where, v.error);
  }
}

function envVar(pod: V1Pod, c: V1Container, env: V1EnvVar, where: string, ctx: TranslateContext, problems: Problems): edge.EnvVar {
  const out = create(edge.EnvVarSchema, { name: env.name, value: env.value ?? '' });
  const from = env.valueFrom;
  if (!from) return out;
  const w = `${where}.env[${env.name}].valueFrom`;
  if (from.configMapKeyRef) {
    out.configMapKeyRef = create(edge.KeyRefSchema, {
      name: from.configMapKeyRef.name ?? '',
      key: from.configMapKeyRef.key,
      optional: from.configMapKeyRef.optional ?? false,
    });
  } else if (from.secretKeyRef) {
    out.secretKeyRef = create(edge.KeyRefSchema, {
      name: from.secretKeyRef.name ?? '',
      key: from.secretKeyRef.key,
      optional: from.secretKeyRef.optional ?? false,
    });
  } else if (from.fieldRef) {
    if ((EDGE_FIELD_PATHS as readonly string[]).includes(from.fieldRef.fieldPath)) out.fieldPath = from.fieldRef.fieldPath;
    else {
      const v = fieldValue(pod, from.fieldRef, false);
      if ('error' in v) problems.add(w, v.error);
      else out.value = v.value;
    }
  } else if (from.resourceFieldRef) {
    const v = resourceValue(pod, from.resourceFieldRef, c, ctx.allocatable);
    if ('error' in v) problems.addValueError(w, v);
    else out.value = v.value;
  } else {
    problems.add(w, 'unsupported source');
  }
  return out;
}

function container(pod: V1Pod, c: V1Container, where: string, ctx: TranslateContext, problems: Problems): edge.EdgeContainer {
  const volumes = new Set((pod.spec?.volumes ?? []).map((v) => v.name));
  for (const m of c.volumeMounts ?? []) {
    if (!volumes.has(m.name)) problems.add(`${where}.volumeMounts[${m.name}]`, 'no volume of that name');
    if (m.subPathExpr) problems.add(`${where}.volumeMounts[${m.name}].subPathExpr`, 'not supported at the edge yet');
    if (m.mountPropagation && m.mountPropagation !== 'None')
      problems.add(`${where}.volumeMounts[${m.name}].mountPropagation`, 'not supported at the edge yet');
  }
  for (const [i, e] of (c.envFrom ?? []).entries()) {
    if (!e.configMapRef && !e.secretRef) problems.add(`${where}.envFrom[${i}]`, 'unsupported source');
  }
  if (c.volumeDevices?.length) problems.add(`${where}.volumeDevices`, 'block volumes are not supported at the edge');
  const report = (w: string, what: string) => problems.add(w, what);
  if (c.restartPolicy) problems.add(`${where}.restartPolicy`, 'sidecar containers are not supported at the edge yet');
  const pullPolicy = c.imagePullPolicy ? PULL[c.imagePullPolicy] : edge.PullPolicy.UNSPECIFIED;
  if (pullPolicy === undefined) problems.add(`${where}.imagePullPolicy`, `unknown value "${c.imagePullPolicy}"`);
  return create(edge.EdgeContainerSchema, {
    name: c.name,
    image: c.image ?? '',
    command: c.command ?? [],
    args: c.args ?? [],
    workingDir: c.workingDir ?? '',
    env: (c.env ?? []).map((e) => envVar(pod, c, e, where, ctx, problems)),
    envFrom: (c.envFrom ?? []).map((e) =>
      create(edge.EnvFromSourceSchema, {
        prefix: e.prefix ?? '',
        configMap: e.configMapRef?.name ?? '',
        secret: e.secretRef?.name ?? '',
        optional: e.configMapRef?.optional ?? e.secretRef?.optional ?? false,
      }),
    ),
    volumeMounts: (c.volumeMounts ?? []).map((m) =>
      create(edge.VolumeMountSchema, { name: m.name, mountPath: m.mountPath, subPath: m.subPath ?? '', readOnly: m.readOnly ?? false }),
    ),
    imagePullPolicy: pullPolicy ?? edge.PullPolicy.UNSPECIFIED,
    ports: (c.ports ?? []).map((p) => ({
      name: p.name ?? '',
      containerPort: p.containerPort,
      protocol: p.protocol ?? 'TCP',
      hostPort: p.hostPort ?? 0,
    })),
    tty: c.tty ?? false,
    stdin: c.stdin ?? false,
    resources: resources(c, where, report),
    securityContext: securityContext(pod.spec?.securityContext, c.securityContext, where, report),
    livenessProbe: probe(c.livenessProbe, c, `${where}.livenessProbe`, report),
    readinessProbe: probe(c.readinessProbe, c, `${where}.readinessProbe`, report),
    startupProbe: probe(c.startupProbe, c, `${where}.startupProbe`, report),
    ...terminationMessage(c, where, report),
    ...lifecycleHooks(c, where, report),
  });
}

type DownwardItems = NonNullable<NonNullable<V1Volume['downwardAPI']>['items']>;

function downwardFiles(pod: V1Pod, items: DownwardItems, where: string, ctx: TranslateContext, problems: Problems): edge.ProjectionSource {
  const files = items.map((item) => {
    const v = item.fieldRef
      ? fieldValue(pod, item.fieldRef, true)
      : item.resourceFieldRef
        ? resourceValue(pod, item.resourceFieldRef, undefined, ctx.allocatable)
        : { error: 'needs fieldRef or resourceFieldRef' };
    if ('error' in v) problems.addValueError(`${where}[${item.path}]`, v);
    return create(edge.InlineFileSchema, {
      path: item.path,
      content: new TextEncoder().encode('value' in v ? v.value : ''),
      mode: item.mode ?? 0,
    });
  });
  return create(edge.ProjectionSourceSchema, { source: { case: 'files', value: { files } } });
}

function projectionSources(
  pod: V1Pod,
  sources: V1VolumeProjection[],
  where: string,
  ctx: TranslateContext,
  problems: Problems,
): edge.ProjectionSource[] {
  const out: edge.ProjectionSource[] = [];
  for (const [i, s] of sources.entries()) {
    const w = `${where}.sources[${i}]`;
    const items = (list: { key: string; path: string; mode?: number }[] | undefined) =>
      (list ?? []).map((k) => create(edge.KeyToPathSchema, { key: k.key, path: k.path, mode: k.mode ?? 0 }));
    if (s.configMap) {
      out.push(
        create(edge.ProjectionSourceSchema, {
          source: {
            case: 'configMap',
            value: { name: s.configMap.name ?? '', items: items(s.configMap.items), optional: s.configMap.optional ?? false },
          },
        }),
      );
    } else if (s.secret) {
      out.push(
        create(edge.ProjectionSourceSchema, {
          source: {
            case: 'secret',
            value: { name: s.secret.name ?? '', items: items(s.secret.items), optional: s.secret.optional ?? false },
          },
        }),
      );
    } else if (s.downwardAPI) {
      out.push(downwardFiles(pod, s.downwardAPI.items ?? [], `${w}.downwardAPI`, ctx, problems));
    } else if (s.serviceAccountToken) {
      const t = s.serviceAccountToken;
      if (pod.spec?.automountServiceAccountToken === false && pod.spec.serviceAccountName === undefined)
        problems.add(w, 'serviceAccountToken without a service account');
      const key = tokenKey(t.expirationSeconds ?? DEFAULT_TOKEN_SECONDS, t.audience ?? '');
      out.push(create(edge.ProjectionSourceSchema, { source: { case: 'serviceAccountToken', value: { key, path: t.path, mode: 0 } } }));
    } else {
      problems.add(w, `${Object.keys(s)[0] ?? 'empty'} projections are not supported at the edge`);
    }
  }
  return out;
}

function volume(pod: V1Pod, v: V1Volume, ctx: TranslateContext, problems: Problems): edge.EdgeVolume {
  const where = `volumes[${v.name}]`;
  const projected = (defaultMode: number | undefined, sources: edge.ProjectionSource[]) =>
    create(edge.EdgeVolumeSchema, { name: v.name, source: { case: 'projected', value: { defaultMode: defaultMode ?? 0, sources } } });
  if (v.emptyDir) {
    const medium = v.emptyDir.medium ?? '';
    if (medium !== '' && medium !== 'Memory') problems.add(`${where}.emptyDir.medium`, `"${medium}" is not supported at the edge`);
    let sizeLimitBytes = 0n;
    try {
      if (v.emptyDir.sizeLimit !== undefined) sizeLimitBytes = BigInt(Math.ceil(parseQuantity(v.emptyDir.sizeLimit)));
    } catch {
      problems.add(`${where}.emptyDir.sizeLimit`, `"${v.emptyDir.sizeLimit}" is not a quantity`);
    }
    return create(edge.EdgeVolumeSchema, {
      name: v.name,
      source: { case: 'emptyDir', value: { memory: medium === 'Memory', sizeLimitBytes } },
    });
  }
  if (v.hostPath) {
    const type = v.hostPath.type ?? '';
    if (!HOST_PATH_TYPES.includes(type)) problems.add(`${where}.hostPath.type`, `unknown value "${type}"`);
    return create(edge.EdgeVolumeSchema, { name: v.name, source: { case: 'hostPath', value: { path: v.hostPath.path, type } } });
  }
  if (v.configMap) {
    const c = v.configMap;
    return projected(
      c.defaultMode,
      projectionSources(pod, [{ configMap: { name: c.name, items: c.items, optional: c.optional } }], where, ctx, problems),
    );
  }
  if (v.secret) {
    const s = v.secret;
    return projected(
      s.defaultMode,
      projectionSources(pod, [{ secret: { name: s.secretName, items: s.items, optional: s.optional } }], where, ctx, problems),
    );
  }
  if (v.downwardAPI)
    return projected(v.downwardAPI.defaultMode, [downwardFiles(pod, v.downwardAPI.items ?? [], `${where}.downwardAPI`, ctx, problems)]);
  if (v.projected)
    return projected(v.projected.defaultMode, projectionSources(pod, v.projected.sources ?? [], `${where}.projected`, ctx, problems));
  const kind = Object.keys(v).find((k) => k !== 'name') ?? 'no source';
  problems.add(where, `${kind} volumes are not supported at the edge`);
  return create(edge.EdgeVolumeSchema, { name: v.name });
}

/** Fields the API forbids in an ephemeral container (validateEphemeralContainers); checked again, they reach a runtime. */
const NOT_EPHEMERAL = ['ports', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'resources', 'resizePolicy'] as const;

/**
 * pod.spec.ephemeralContainers (kubectl debug). They are added to a pod that runs, so one the edge cannot take is left
 * out with its reason (`refused`) instead of failing the pod; at most MAX_EPHEMERAL_CONTAINERS, the first ones (the
 * API only appends, so those already running stay). A value not known yet makes the pod wait, as for any container.
 */
function ephemeralContainers(pod: V1Pod, ctx: TranslateContext, waiting: string[]): { list: edge.EdgeContainer[]; refused: string[] } {
  const spec = pod.spec!;
  const regular = new Set([...(spec.initContainers ?? []), ...spec.containers].map((c) => c.name));
  const seen = new Set<string>();
  const list: edge.EdgeContainer[] = [];
  const refused: string[] = [];
  for (const [i, ec] of (spec.ephemeralContainers ?? []).entries()) {
    const where = `ephemeralContainers[${ec.name}]`;
    if (i >= MAX_EPHEMERAL_CONTAINERS) {
      refused.push(`${where}: more than ${MAX_EPHEMERAL_CONTAINERS} ephemeral containers in one pod`);
      continue;
    }
    const problems = new Problems();
    if (!isDnsLabel(ec.name))
      problems.add(`${where}.name`, 'not a DNS label'); // the agent refuses a spec with any other
    else if (regular.has(ec.name) || seen.has(ec.name)) problems.add(`${where}.name`, 'the pod has a container of that name already');
    if (!ec.image) problems.add(`${where}.image`, 'required');
    for (const f of NOT_EPHEMERAL) {
      const v: unknown = ec[f];
      if (v !== undefined && !(typeof v === 'object' && v !== null && Object.keys(v).length === 0))
        problems.add(`${where}.${f}`, 'not allowed in an ephemeral container');
    }
    if (ec.targetContainerName && !regular.has(ec.targetContainerName))
      problems.add(`${where}.targetContainerName`, `no container "${ec.targetContainerName}" in the pod`);
    const c = container(pod, ec, where, ctx, problems);
    seen.add(ec.name);
    waiting.push(...problems.waiting);
    if (problems.list.length > 0) {
      refused.push(...problems.list);
      continue;
    }
    c.targetContainerName = ec.targetContainerName ?? '';
    list.push(c);
  }
  return { list, refused };
}

export function translatePod(pod: V1Pod, ctx: TranslateContext = {}): Translation {
  const problems = new Problems();
  const spec = pod.spec;
  const meta = pod.metadata;
  if (!spec || !meta?.uid || !meta.name || !meta.namespace || !meta.resourceVersion) {
    return { ok: false, unsupported: ['pod has no spec or incomplete metadata'], waiting: [] };
  }
  const volumes = (spec.volumes ?? []).map((v) => volume(pod, v, ctx, problems));
  if (spec.hostPID) problems.add('hostPID', 'not supported at the edge');
  if (spec.hostIPC) problems.add('hostIPC', 'not supported at the edge');
  const restart = RESTART[spec.restartPolicy ?? 'Always'];
  if (restart === undefined) problems.add('restartPolicy', `unknown value "${spec.restartPolicy}"`);
  const initContainers = (spec.initContainers ?? []).map((c, i) => container(pod, c, `initContainers[${i}]`, ctx, problems));
  const containers = spec.containers.map((c, i) => container(pod, c, `containers[${i}]`, ctx, problems));
  const ephemeral = ephemeralContainers(pod, ctx, problems.waiting);
  // The API defaults enableServiceLinks to true.
  const serviceEnv = ctx.serviceEnv ? ctx.serviceEnv(meta.namespace, spec.enableServiceLinks ?? true) : [];
  if (!serviceEnv) problems.waiting.push('enableServiceLinks: the Services have not been read yet');
  if (problems.list.length > 0 || problems.waiting.length > 0) return { ok: false, unsupported: problems.list, waiting: problems.waiting };
  return {
    ok: true,
    refusedEphemeral: ephemeral.refused,
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
      ephemeralContainers: ephemeral.list,
      restartPolicy: restart ?? edge.RestartPolicy.ALWAYS,
      hostNetwork: spec.hostNetwork ?? false,
      hostname: spec.hostname ?? meta.name,
      terminationGracePeriodSeconds: BigInt(spec.terminationGracePeriodSeconds ?? 30),
      deleting: meta.deletionTimestamp !== undefined,
      deletionGracePeriodSeconds: BigInt(meta.deletionGracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30),
      activeDeadlineSeconds: BigInt(spec.activeDeadlineSeconds ?? 0),
      volumes,
      imagePullSecrets: (spec.imagePullSecrets ?? []).map((s) => s.name ?? '').filter((n) => n !== ''),
      sysctls: sysctls(spec.securityContext),
      hostAliases: hostAliases(spec.hostAliases),
      subdomain: spec.subdomain ?? '',
      serviceEnv: (serviceEnv ?? []).map((e) => create(edge.EnvVarSchema, e)),
      ...(spec.securityContext?.fsGroup !== undefined ? { fsGroup: BigInt(spec.securityContext.fsGroup) } : {}),
      fsGroupChangePolicy: spec.securityContext?.fsGroupChangePolicy ?? '',
    }),
  };
}

/** Identity of a spec's content for "did the desired state change?", ignoring resourceVersion churn from status. */
export function specFingerprint(spec: edge.EdgePodSpec): string {
  const { resourceVersion: _rv, $typeName: _t, ...rest } = spec;
  return JSON.stringify(rest, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
