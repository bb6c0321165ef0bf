/**
 * ObjectManager: the ConfigMaps and Secrets the served pods use, delivered as the kubelet's configmap and secret
 * managers do, and by the rule the Node authorizer applies to kubelets: an object goes only to the nodes running a
 * pod that uses it (which ones a pod uses is proto's podObjectRefs). It owns the ConfigMap and Secret watches and, per
 * served node, the version of each object on the node's desired state.
 *
 * Contract with its caller (the PodController, which decides which objects a node still needs):
 * - {@link deliver} before publishing a pod: the node gets the object's current version, or a tombstone when it no
 *   longer exists (the edge then reports what the kubelet would: a missing object). An object too large for a NATS
 *   message is a Warning Event on the pod, once per object version, and is not delivered.
 * - {@link release} once no pod published to the node uses the object: a tombstone.
 * - {@link start}'s `changed` is called with the key of every ConfigMap or Secret that changes: sync the pods that use it.
 */
import { create } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import type { KubernetesObject, V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { edge, isPayloadTooLarge, objectKey, parseObjectKey, type ObjectKey } from '@edgefarm/proto';
import type { KubeClient, Pod, Watcher } from '../kube/client.js';
import type { DesiredPublisher } from '../bus/hub.js';
import type { PodWarnings } from './warnings.js';

export interface ObjectManagerDeps {
  kube: Pick<KubeClient, 'configMapWatch' | 'secretWatch'>;
  bus: Pick<DesiredPublisher, 'publishObject' | 'tombstoneObject'>;
  warnings: Pick<PodWarnings, 'warn'>;
  log: Logger;
}

export class ObjectManager {
  private readonly configMaps: Watcher<V1ConfigMap>;
  private readonly secrets: Watcher<V1Secret>;
  /** Per served node, the resourceVersion of each ConfigMap and Secret on its desired state. */
  private readonly onNode = new Map<string, Map<ObjectKey, string>>();

  constructor(private readonly deps: ObjectManagerDeps) {
    this.configMaps = deps.kube.configMapWatch();
    this.secrets = deps.kube.secretWatch();
  }

  /** Starts the ConfigMap and Secret watches; `changed` gets the key of every object added, updated or deleted. */
  async start(changed: (key: ObjectKey) => void): Promise<void> {
    const on = (kind: 'configmap' | 'secret') => (o: KubernetesObject) =>
      changed(objectKey(kind, { namespace: o.metadata!.namespace!, name: o.metadata!.name! }));
    const failed = (what: string) => (err: unknown) =>
      this.deps.log.warn({ err: (err as Error)?.message }, `${what} watch failed; restarting`);
    await this.configMaps.start({ changed: on('configmap'), deleted: on('configmap'), error: failed('ConfigMap') });
    await this.secrets.start({ changed: on('secret'), deleted: on('secret'), error: failed('Secret') });
  }

  async stop(): Promise<void> {
    await this.configMaps.stop();
    await this.secrets.stop();
  }

  /** A node taken on: it has nothing yet, until {@link seed}. */
  addNode(node: string): void {
    this.onNode.set(node, new Map());
  }

  /** What the hub holds for a node taken over (so an unchanged object is not published again). */
  seed(node: string, key: ObjectKey, object: edge.EdgeObject): void {
    this.onNode.get(node)?.set(key, object.resourceVersion);
  }

  /** The objects on the node's desired state. */
  keysOn(node: string): ObjectKey[] {
    return [...(this.onNode.get(node)?.keys() ?? [])];
  }

  /** A node given up: forgotten, nothing published. */
  forgetNode(node: string): void {
    this.onNode.delete(node);
  }

  /** Publishes the ConfigMap or Secret `ref` to the node unless it has the current version (see the module comment). */
  async deliver(node: string, pod: Pod, ref: ObjectKey, log: Logger): Promise<void> {
    const objects = this.onNode.get(node);
    if (!objects) return;
    const { kind, key } = parseObjectKey(ref);
    if (kind === 'token') throw new Error(`${ref}: tokens are the TokenManager's`);
    const source = (kind === 'configmap' ? this.configMaps : this.secrets).get(key.namespace, key.name);
    const have = objects.get(ref);
    if (!source) {
      // Deleted (or not created yet): the edge reports what the kubelet would (missing object) until it exists.
      if (have !== undefined) {
        await this.deps.bus.tombstoneObject(node, kind, key);
        objects.delete(ref);
      }
      return;
    }
    const version = source.metadata!.resourceVersion!;
    if (have === version) return;
    const object = kind === 'configmap' ? configMapObject(source) : secretObject(source);
    try {
      await this.deps.bus.publishObject(node, kind, object);
    } catch (err) {
      if (!isPayloadTooLarge(err)) throw err;
      const message = `${kind === 'configmap' ? 'ConfigMap' : 'Secret'} ${key.namespace}/${key.name} cannot be delivered to the edge: ${err.message}`;
      log.warn({ reason: 'EdgeObjectTooLarge' }, message);
      await this.deps.warnings.warn(pod, `${ref}@${version}`, 'EdgeObjectTooLarge', message);
      return;
    }
    objects.set(ref, version);
    log.debug({ object: ref, version }, 'object published');
  }

  /** Tombstones the object on the node if it is there; true when it was. */
  async release(node: string, ref: ObjectKey): Promise<boolean> {
    const objects = this.onNode.get(node);
    if (!objects?.has(ref)) return false;
    const { kind, key } = parseObjectKey(ref);
    objects.delete(ref);
    await this.deps.bus.tombstoneObject(node, kind, key);
    return true;
  }
}

const utf8 = new TextEncoder();

export function configMapObject(cm: V1ConfigMap): edge.EdgeObject {
  const data: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(cm.data ?? {})) data[k] = utf8.encode(v);
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) data[k] = Buffer.from(v, 'base64');
  return create(edge.EdgeObjectSchema, {
    namespace: cm.metadata!.namespace!,
    name: cm.metadata!.name!,
    resourceVersion: cm.metadata!.resourceVersion!,
    data,
  });
}

export function secretObject(secret: V1Secret): edge.EdgeObject {
  const data: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64');
  // stringData is write-only (merged into data by the API), but a client-built object may still carry it.
  for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] = utf8.encode(v);
  return create(edge.EdgeObjectSchema, {
    namespace: secret.metadata!.namespace!,
    name: secret.metadata!.name!,
    resourceVersion: secret.metadata!.resourceVersion!,
    data,
  });
}
