/**
 * ImageManager: makes a container's image present before it is created, as the kubelet's image manager does.
 *
 * - Pull policy: Always pulls on every container start (the registry answers a digest check when nothing
 *   changed); IfNotPresent (and unspecified: the apiserver has already defaulted `:latest` to Always) pulls only
 *   when the image is absent; Never never pulls and fails with ErrImageNeverPull:
 *   `Container image "x" is not present with pull policy of Never`.
 * - Credentials: the pod's imagePullSecrets, read from the delivered secret objects (a missing one is skipped, as the
 *   kubelet skips a Secret it cannot get; one that cannot be parsed fails the pull with a message naming it). Each
 *   matching credential is tried in turn (an anonymous pull only when none matches, as the kubelet's PullImage);
 *   the error lists every attempt.
 * - Backoff: a failed pull of an image for a pod (key `<pod uid>_<image>`, the kubelet's) holds further pulls for
 *   10 s, doubling to 300 s; a pull asked for meanwhile fails at once with ImagePullBackOff
 *   (`Back-off pulling image "x"`). Success forgets the entry; so does a quiet period of twice the maximum.
 *
 * Errors are RuntimeErrors of kind image-pull (ErrImagePull), image-pull-backoff (ImagePullBackOff) or
 * image-never-pull (ErrImageNeverPull); the executor turns the kind into the container's waiting reason.
 */
import { edge } from '@edgefarm/proto';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { ObjectSource } from '../runtime/env.js';
import { RuntimeError } from '../runtime/types.js';
import { Reasons, containerFieldPath, type EventSink } from '../events/recorder.js';
import { errorMessage, type Clock } from '../util/time.js';
import {
  DOCKER_CONFIG_REJECTIONS,
  DockerKeyring,
  dockerConfigFromSecret,
  isDockerConfigError,
  type DockerConfigRejection,
  type RegistryAuth,
} from './credentials.js';
import type { ImageService } from './service.js';

export interface ImageManagerOptions {
  /** First backoff after a failed pull (default 10 s, the kubelet's). */
  backoffInitialMs?: number;
  /** Longest backoff (default 300 s, the kubelet's MaxContainerBackOff). */
  backoffMaxMs?: number;
}

export interface ImageManagerDeps {
  images: ImageService;
  objects: ObjectSource;
  clock: Clock;
  log: Logger;
  /** Told about every image a container is about to use (the image GC's last-used times). */
  onUse?: (imageId: string) => void;
  /** Kubernetes Events (Pulling, Pulled, Failed, BackOff), as the kubelet records them. */
  events?: EventSink;
  /** Where edgefarm_agent_pull_secrets_rejected_total{reason} is registered (the agent's metrics registry). */
  registry?: Registry;
}

/** What ensureImage did, for logs and tests. */
export interface EnsureResult {
  imageRef: string;
  pulled: boolean;
}

interface BackoffEntry {
  backoffMs: number;
  lastUpdateMs: number;
}

const SECRETS_REJECTED = 'edgefarm_agent_pull_secrets_rejected_total';

export function neverPullMessage(image: string): string {
  return `Container image "${image}" is not present with pull policy of Never`;
}
export function backoffMessage(image: string): string {
  return `Back-off pulling image "${image}"`;
}

/** The keyring of a pod's imagePullSecrets; secrets not delivered (yet) are named in `missing`. */
export function podKeyring(
  pod: edge.EdgePodSpec,
  objects: ObjectSource,
  onRejected?: (reason: DockerConfigRejection | 'other') => void,
): { keyring: DockerKeyring; missing: string[]; skippedKeys: string[] } {
  const keyring = new DockerKeyring();
  const missing: string[] = [];
  const skippedKeys: string[] = [];
  for (const name of pod.imagePullSecrets) {
    const obj = objects.object('secret', pod.namespace, name);
    if (!obj) {
      missing.push(name);
      continue;
    }
    let config;
    try {
      config = dockerConfigFromSecret(obj.data);
    } catch (err) {
      onRejected?.(isDockerConfigError(err) ? err.reason : 'other');
      throw new RuntimeError(`invalid image pull secret "${pod.namespace}/${name}": ${errorMessage(err)}`, 'image-pull', { cause: err });
    }
    if (config) skippedKeys.push(...keyring.add(config));
  }
  return { keyring, missing, skippedKeys };
}

export class ImageManager {
  private readonly backoff = new Map<string, BackoffEntry>();
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly secretsRejected?: Counter<'reason'>;

  constructor(
    private readonly deps: ImageManagerDeps,
    options: ImageManagerOptions = {},
  ) {
    this.initialMs = options.backoffInitialMs ?? 10_000;
    this.maxMs = options.backoffMaxMs ?? 300_000;
    if (deps.registry) {
      // An agent restarted in the same process assembles a new ImageManager on the same registry: reuse the counter.
      this.secretsRejected =
        (deps.registry.getSingleMetric(SECRETS_REJECTED) as Counter<'reason'> | undefined) ??
        new Counter({
          name: SECRETS_REJECTED,
          help: 'Image pull secrets refused when a pull needed them, by reason (the pull fails with a message naming the secret).',
          labelNames: ['reason'],
          registers: [deps.registry],
        });
      for (const reason of [...DOCKER_CONFIG_REJECTIONS, 'other']) this.secretsRejected.inc({ reason }, 0);
    }
  }

  /** Makes the container's image present according to its pull policy; throws RuntimeErrors (see the module doc). */
  async ensureImage(pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<EnsureResult> {
    const { images, clock } = this.deps;
    const image = container.image;
    const policy = container.imagePullPolicy;
    const ref = {
      uid: pod.uid,
      namespace: pod.namespace,
      name: pod.name,
      fieldPath: containerFieldPath(
        container.name,
        pod.initContainers.includes(container) ? 'init' : pod.ephemeralContainers.includes(container) ? 'ephemeral' : 'regular',
      ),
    };
    const event = (type: 'Normal' | 'Warning', reason: string, message: string) => this.deps.events?.event(ref, type, reason, message);
    if (policy !== edge.PullPolicy.ALWAYS) {
      const id = await images.imageId(image);
      if (id) {
        this.deps.onUse?.(id);
        event('Normal', Reasons.pulled, `Container image "${image}" already present on machine`);
        return { imageRef: id, pulled: false };
      }
      if (policy === edge.PullPolicy.NEVER) {
        event('Warning', Reasons.errImageNeverPull, neverPullMessage(image));
        throw new RuntimeError(neverPullMessage(image), 'image-never-pull');
      }
    }
    const key = `${pod.uid}_${image}`;
    const now = clock.now();
    this.expire(now);
    const held = this.backoff.get(key);
    if (held && now - held.lastUpdateMs < held.backoffMs) {
      event('Normal', Reasons.backOff, backoffMessage(image));
      event('Warning', Reasons.failed, 'Error: ImagePullBackOff');
      throw new RuntimeError(backoffMessage(image), 'image-pull-backoff');
    }
    event('Normal', Reasons.pulling, `Pulling image "${image}"`);
    try {
      const imageRef = await this.pull(pod, image);
      this.backoff.delete(key);
      this.deps.onUse?.(imageRef);
      event('Normal', Reasons.pulled, `Successfully pulled image "${image}" in ${((clock.now() - now) / 1000).toFixed(3)}s`);
      return { imageRef, pulled: true };
    } catch (err) {
      event('Warning', Reasons.failed, `Failed to pull image "${image}": ${errorMessage(err)}`);
      event('Warning', Reasons.failed, 'Error: ErrImagePull');
      const next = held ? Math.min(held.backoffMs * 2, this.maxMs) : this.initialMs;
      this.backoff.set(key, { backoffMs: next, lastUpdateMs: clock.now() });
      throw err;
    }
  }

  /** Current backoff of a pod's image in ms (0: none), for tests and diagnostics. */
  backoffOf(podUid: string, image: string): number {
    return this.backoff.get(`${podUid}_${image}`)?.backoffMs ?? 0;
  }

  /** Forgets the backoff entries of a pod UID (its pod is gone). */
  forgetPod(podUid: string): void {
    for (const k of this.backoff.keys()) if (k.startsWith(`${podUid}_`)) this.backoff.delete(k);
  }

  private expire(now: number): void {
    for (const [k, e] of this.backoff) if (now - e.lastUpdateMs > 2 * this.maxMs) this.backoff.delete(k);
  }

  private async pull(pod: edge.EdgePodSpec, image: string): Promise<string> {
    const { keyring, missing, skippedKeys } = podKeyring(pod, this.deps.objects, (reason) => this.secretsRejected?.inc({ reason }));
    const log = this.deps.log;
    if (missing.length > 0)
      log.warn({ pod: `${pod.namespace}/${pod.name}`, secrets: missing }, 'image pull secrets not delivered; pulling without them');
    if (skippedKeys.length > 0)
      log.warn(
        { pod: `${pod.namespace}/${pod.name}`, keys: skippedKeys },
        'image pull secret keys that are not registry locations skipped',
      );
    // As the kubelet's PullImage: anonymous only when no credential matches; otherwise each matching one, no more.
    const matching = keyring.lookup(image);
    const attempts: (RegistryAuth | undefined)[] = matching.length > 0 ? matching : [undefined];
    const errors: string[] = [];
    for (const auth of attempts) {
      try {
        return await this.deps.images.pullImage(image, auth, pod);
      } catch (err) {
        errors.push(errorMessage(err));
      }
    }
    const message = errors.length === 1 ? errors[0]! : `[${errors.join(', ')}]`;
    throw new RuntimeError(message, 'image-pull');
  }
}
