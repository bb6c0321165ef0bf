/**
 * A container's environment, command and args as the kubelet computes them at container creation
 * (kubelet_pods.go makeEnvironmentVariables + ExpandContainerCommandAndArgs). Pure: objects come from an
 * {@link ObjectSource}, IPs from the caller.
 *
 *   1. envFrom, in order: every key of the ConfigMap/Secret (with the prefix) that is a valid variable name; keys that
 *      are not are skipped and returned in `invalidKeys`. A later source overrides an earlier one.
 *   2. env, in order (overriding step 1): a literal value is `$(VAR)`-expanded against what is defined so far; else a
 *      configMapKeyRef / secretKeyRef is read from the delivered object (not expanded); else a field path
 *      (status.podIP(s), status.hostIP(s)). An optional reference to a missing object or key leaves the variable
 *      unset (an earlier value of the same name stays).
 *   3. the pod's service environment variables (the provider computes them from Services, as the kubelet's
 *      getServiceEnvVarMap) are added for every name steps 1 and 2 did not define; `$(VAR)` in step 2 falls back to
 *      them for a name not defined so far.
 *   4. command and args are `$(VAR)`-expanded against the final environment.
 *
 * A missing non-optional object or key throws a {@link ContainerConfigError} with the kubelet's message; the
 * executor reports it as CreateContainerConfigError and the next sync retries.
 */
import type { edge, ObjectKind } from '@edgefarm/proto';

/** Read access to delivered ConfigMaps, Secrets and tokens (the desired store implements it). */
export interface ObjectSource {
  object(kind: ObjectKind, namespace: string, name: string): edge.EdgeObject | undefined;
}

export interface EnvPair {
  name: string;
  value: string;
}

export interface ResolvedContainerConfig {
  env: EnvPair[];
  command: string[];
  args: string[];
  /** envFrom keys skipped because they are not valid variable names (the kubelet makes an event of them). */
  invalidKeys: string[];
}

export interface EnvContext {
  /** The pod's IPs (for hostNetwork pods, the node's). */
  podIps: string[];
  /** The node's IPs. */
  hostIps: string[];
}

/** A container config that cannot be built from what the node holds (the kubelet's CreateContainerConfigError). */
export class ContainerConfigError extends Error {
  override name = 'ContainerConfigError';
}
export function isContainerConfigError(err: unknown): err is ContainerConfigError {
  return err instanceof ContainerConfigError;
}

/** The field paths the provider leaves to the node, because only the node knows them. */
export const NODE_FIELD_PATHS = ['status.podIP', 'status.podIPs', 'status.hostIP', 'status.hostIPs'] as const;

/** Whether a field path's value needs the pod's IPs (the executor asks the runtime only then). */
export function needsPodIps(container: edge.EdgeContainer): boolean {
  return container.env.some(
    (e) => !e.value && !e.configMapKeyRef && !e.secretKeyRef && (e.fieldPath === 'status.podIP' || e.fieldPath === 'status.podIPs'),
  );
}

// apimachinery's IsEnvVarName: a C identifier relaxed by '-' and '.', and not '.', '..' or starting with '..'.
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
export function isEnvVarName(name: string): boolean {
  return ENV_VAR_NAME.test(name) && name !== '.' && !name.startsWith('..');
}

const decoder = new TextDecoder();

function notFound(kind: 'configmap' | 'secret', name: string): ContainerConfigError {
  return new ContainerConfigError(`${kind} "${name}" not found`);
}

export function resolveContainerConfig(
  pod: edge.EdgePodSpec,
  container: edge.EdgeContainer,
  objects: ObjectSource,
  ctx: EnvContext,
): ResolvedContainerConfig {
  const env = new Map<string, string>();
  const invalidKeys: string[] = [];
  const services = new Map(pod.serviceEnv.map((e) => [e.name, e.value]));

  for (const from of container.envFrom) {
    const kind = from.configMap ? 'configmap' : from.secret ? 'secret' : undefined;
    if (!kind) continue;
    const name = from.configMap || from.secret;
    const obj = objects.object(kind, pod.namespace, name);
    if (!obj) {
      if (from.optional) continue;
      throw notFound(kind, name);
    }
    for (const [k, v] of Object.entries(obj.data)) {
      const key = from.prefix + k;
      if (!isEnvVarName(key)) {
        invalidKeys.push(key);
        continue;
      }
      env.set(key, decoder.decode(v));
    }
  }

  for (const e of container.env) {
    let value: string;
    if (e.value) {
      value = expand(e.value, (name) => env.get(name) ?? services.get(name));
    } else if (e.configMapKeyRef || e.secretKeyRef) {
      const ref = (e.configMapKeyRef ?? e.secretKeyRef)!;
      const kind = e.configMapKeyRef ? 'configmap' : 'secret';
      const obj = objects.object(kind, pod.namespace, ref.name);
      if (!obj) {
        if (ref.optional) continue;
        throw notFound(kind, ref.name);
      }
      const bytes = obj.data[ref.key];
      if (bytes === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(
          `couldn't find key ${ref.key} in ${kind === 'configmap' ? 'ConfigMap' : 'Secret'} ${pod.namespace}/${ref.name}`,
        );
      }
      value = decoder.decode(bytes);
    } else if (e.fieldPath) {
      value = fieldValue(e.fieldPath, ctx);
    } else {
      value = '';
    }
    env.set(e.name, value);
  }

  for (const [name, value] of services) if (!env.has(name)) env.set(name, value);
  const lookup = (name: string): string | undefined => env.get(name);
  return {
    env: [...env].map(([name, value]) => ({ name, value })),
    command: container.command.map((c) => expand(c, lookup)),
    args: container.args.map((a) => expand(a, lookup)),
    invalidKeys,
  };
}

function fieldValue(path: string, ctx: EnvContext): string {
  switch (path) {
    case 'status.podIP':
      return ctx.podIps[0] ?? '';
    case 'status.podIPs':
      return ctx.podIps.join(',');
    case 'status.hostIP':
      return ctx.hostIps[0] ?? '';
    case 'status.hostIPs':
      return ctx.hostIps.join(',');
    default:
      throw new ContainerConfigError(`unsupported fieldPath: ${path}`);
  }
}

/**
 * Kubernetes' `$(VAR)` expansion (third_party/forked/golang/expansion): `$(NAME)` becomes the value of NAME when
 * `lookup` knows it and stays as written otherwise; `$$` is an escaped `$`; an unterminated `$(` and any other `$x`
 * stay as written; a value is never expanded again. One pass, as Go's Expand, except that Go scans for the `)` of
 * every `$(` from scratch (quadratic on `$($($(...`): here the position of the next `)` is remembered, so every
 * character is looked at a bounded number of times. `meter` counts those looks (tests prove linearity with it).
 */
export function expand(input: string, lookup: (name: string) => string | undefined, meter?: { steps: number }): string {
  const parts: string[] = [];
  let checkpoint = 0;
  // The first ')' at or after where it was last looked for; -1: none left; -2: not looked for yet. The cursor only
  // moves forward, so a ')' found stays the answer until the cursor passes it, and none found stays none.
  let close = -2;
  let cursor = input.indexOf('$');
  while (cursor >= 0 && cursor + 1 < input.length) {
    if (meter) meter.steps += cursor - checkpoint + 1;
    parts.push(input.slice(checkpoint, cursor));
    const next = input[cursor + 1];
    let advance = 1;
    if (next === '$') {
      parts.push('$');
    } else if (next === '(') {
      const from = cursor + 2;
      if (close === -2 || (close !== -1 && close < from)) {
        close = input.indexOf(')', from);
        if (meter) meter.steps += (close >= 0 ? close + 1 : input.length) - from;
      }
      if (close >= from) {
        const name = input.slice(from, close);
        parts.push(lookup(name) ?? `$(${name})`);
        advance = close - cursor;
      } else {
        parts.push('$(');
      }
    } else {
      parts.push(`$${next}`);
    }
    checkpoint = cursor + advance + 1;
    cursor = input.indexOf('$', checkpoint);
  }
  if (meter) meter.steps += input.length - checkpoint;
  parts.push(input.slice(checkpoint));
  return parts.join('');
}
