/**
 * ObjectManager: the ConfigMaps and Secrets the served pods use, delivered as the kubelet's configmap and secret
 * managers do, and by the rule the Node authorizer applies to kubelets: an object goes only to the nodes running a
 * pod that uses it (which ones a pod uses is proto's podObjectRefs). It owns, per served node, the version of each
 * object on the node's desired state, and the watches of those objects (kube/object-watches.ts: one per object,
 * opened as a node that uses it, so the provider reads no Secret no served pod uses; decision 0010).
 *
 * Contract with its caller (the PodController, which decides which objects a node still needs):
 * - {@link deliver} before publishing a pod: the node gets the object's current version, or a tombstone when it no
 *   longer exists (the edge then reports what the kubelet would: a missing object). An object too large for a NATS
 *   message is a Warning Event on the pod, once per object version, and is not delivered.
 * - {@link release} once no pod published to the node uses the object: a tombstone, and the node stops watching it.
 * - {@link start}'s `changed` is called with the key of every ConfigMap or Secret that changes: sync the pods that use it.
 * - A watch that cannot be opened (the node's credential, a 403) makes {@link deliver} throw: sync the pod again later.
 */
import { create } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { edge, isPayloadTooLarge, parseObjectKey, type ObjectKey } from '@edgefarm/proto';
import type { Pod } from '../kube/client.js';
import { NodeCredentialError, type NodeClients } from '../kube/node-clients.js';
import { ObjectWatches } from '../kube/object-watches.js';
import type { DesiredPublisher } from '../bus/hub.js';
import type { PodWarnings } from './warnings.js';

export interface ObjectManagerDeps {
  /** The API as each node: the objects are watched as a node that uses them. */
  nodes: NodeClients;
  bus: Pick<DesiredPublisher, 'publishObject' | 'tombstoneObject'>;
  warnings: Pick<PodWarnings, 'warn'>;
  log: Logger;
  /** Delay before a failed object watch is opened again. */
  watchRetryMs?: number;
}

export class ObjectManager {
  private readonly watches: ObjectWatches;
  private changed?: (key: ObjectKey) => void;
  /** Per served node, the resourceVersion of each ConfigMap and Secret on its desired state. */
  private readonly onNode = new Map<string, Map<ObjectKey, string>>();

  constructor(private readonly deps: ObjectManagerDeps) {
    this.watches = new ObjectWatches({
      nodes: deps.nodes,
      changed: (key) => this.changed?.(key),
      log: deps.log,
      retryMs: deps.watchRetryMs,
    });
  }

  /** From now on `changed` gets the key of every watched object added, updated or deleted. */
  async start(changed: (key: ObjectKey) => void): Promise<void> {
    this.changed = changed;
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.changed = undefined;
    await this.watches.stop();
  }

  /** Objects watched now (one watch each). */
  get watched(): number {
    return this.watches.size;
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

  /** A node given up: forgotten, nothing published; it watches nothing any more. */
  forgetNode(node: string): void {
    this.onNode.delete(node);
    this.watches.releaseNode(node);
  }

  /**
   * A node whose EdgeNode is deleted: it watches nothing any more (its credential goes), but what it has is kept, so
   * {@link release} still tombstones each object as its pods' tombstones go out.
   */
  stopWatching(node: string): void {
    this.watches.releaseNode(node);
  }

  /** Publishes the ConfigMap or Secret `ref` to the node unless it has the current version (see the module comment). */
  async deliver(node: string, pod: Pod, ref: ObjectKey, log: Logger): Promise<void> {
    const objects = this.onNode.get(node);
    if (!objects) return;
    const { kind, key } = parseObjectKey(ref);
    if (kind === 'token') throw new Error(`${ref}: tokens are the TokenManager's`);
    let source;
    try {
      source = await this.watches.get(node, ref);
    } catch (err) {
      // No credential for the node: nothing of the node's can be read until there is one; the user sees why.
      const cause = (err as Error).cause;
      if (cause instanceof NodeCredentialError) {
        log.warn({ reason: 'FailedNodeCredential' }, cause.message);
        await this.deps.warnings.warn(
          pod,
          `${ref}@credential`,
          'FailedNodeCredential',
          `cannot read ${ref} as the pod's node: ${cause.message}`,
        );
      }
      throw err;
    }
    if (this.onNode.get(node) !== objects) return; // forgotten or rekeyed meanwhile
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

  /** Stops watching the object for the node, and tombstones it on the node if it is there; true when it was. */
  async release(node: string, ref: ObjectKey): Promise<boolean> {
    this.watches.release(node, ref);
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
