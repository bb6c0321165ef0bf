/**
 * TokenManager: the ServiceAccount tokens of the served pods' projected volumes, as the kubelet's token manager
 * requests them: a TokenRequest bound to the pod per audience and lifetime the spec asks for, made as the pod's node
 * (NodeClients: the Node authorizer and NodeRestriction allow a node tokens only of the ServiceAccounts its pods use,
 * bound to those pods; decision 0010), published to the pod's
 * node as one token object (`token/<ns>/<pod>`), and renewed once 80% of the shortest lifetime has passed. It owns,
 * per served node, what token object each pod has there and when it is due.
 *
 * Contract with its caller (the PodController):
 * - {@link deliver} before publishing a pod; a failed TokenRequest is a Warning Event on the pod (once) and resolves
 *   false: sync the pod again later.
 * - {@link due} names the pods whose tokens are due for renewal: sync them (deliver renews).
 * - {@link release} once the pod is no longer published to the node: a tombstone.
 */
import { create } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import { edge, parseObjectKey, podKeyString, type ObjectKey } from '@edgefarm/proto';
import type { Pod } from '../kube/client.js';
import type { NodeClients } from '../kube/node-clients.js';
import type { DesiredPublisher } from '../bus/hub.js';
import { parseTokenKey } from './translate.js';
import type { PodWarnings } from './warnings.js';

export interface TokenManagerDeps {
  /** The API as each node. */
  nodes: NodeClients;
  bus: Pick<DesiredPublisher, 'publishObject' | 'tombstoneObject'>;
  warnings: Pick<PodWarnings, 'warn'>;
  now: () => Date;
}

/** A pod's token object on its node. */
interface Tokens {
  podUid: string;
  /** The token keys (audience and lifetime, see translate.ts tokenKey) it holds, comma-separated in order. */
  keys: string;
  refreshAtMs: number;
}

/** Token keys the spec's projected volumes need, in order. */
export function specTokenKeys(spec: edge.EdgePodSpec): string[] {
  const keys = new Set<string>();
  for (const v of spec.volumes) {
    if (v.source.case !== 'projected') continue;
    for (const s of v.source.value.sources) if (s.source.case === 'serviceAccountToken') keys.add(s.source.value.key);
  }
  return [...keys].sort();
}

/** What a token object on the hub says of itself: its pod, keys and when 80% of its lifetime has passed. */
function tokensOf(object: edge.EdgeObject): Tokens {
  const issuedMs = Number(object.resourceVersion);
  const expiresMs = Number(object.expiresAtMs);
  return {
    podUid: object.podUid,
    keys: Object.keys(object.data).sort().join(','),
    refreshAtMs: issuedMs + 0.8 * Math.max(0, expiresMs - issuedMs),
  };
}

export class TokenManager {
  /** Per served node, the token object of each pod there. */
  private readonly onNode = new Map<string, Map<ObjectKey, Tokens>>();

  constructor(private readonly deps: TokenManagerDeps) {}

  /** A node taken on: it has nothing yet, until {@link seed}. */
  addNode(node: string): void {
    this.onNode.set(node, new Map());
  }

  /** What the hub holds for a node taken over (so tokens still valid are not requested again). */
  seed(node: string, key: ObjectKey, object: edge.EdgeObject): void {
    this.onNode.get(node)?.set(key, tokensOf(object));
  }

  /** The token objects on the node's desired state. */
  keysOn(node: string): ObjectKey[] {
    return [...(this.onNode.get(node)?.keys() ?? [])];
  }

  /** A node given up: forgotten, nothing published. */
  forgetNode(node: string): void {
    this.onNode.delete(node);
  }

  /** Pod keys whose tokens are due for renewal at `nowMs`. */
  due(nowMs: number): string[] {
    const pods: string[] = [];
    for (const objects of this.onNode.values()) {
      for (const [ref, t] of objects) if (t.refreshAtMs <= nowMs) pods.push(podKeyString(parseObjectKey(ref).key));
    }
    return pods;
  }

  /**
   * Requests the pod's tokens when its node has none for this pod, the set of audiences/lifetimes changed, or 80% of
   * their lifetime has passed, and publishes them as one object. False when a TokenRequest failed.
   */
  async deliver(node: string, pod: Pod, spec: edge.EdgePodSpec, ref: ObjectKey, log: Logger): Promise<boolean> {
    const objects = this.onNode.get(node);
    if (!objects) return true;
    const keys = specTokenKeys(spec);
    const have = objects.get(ref);
    const nowMs = this.deps.now().getTime();
    if (have && have.podUid === spec.uid && have.keys === keys.join(',') && nowMs < have.refreshAtMs) return true;
    const serviceAccount = pod.spec?.serviceAccountName || 'default';
    const data: Record<string, Uint8Array> = {};
    let expiresAtMs = Number.MAX_SAFE_INTEGER;
    try {
      const kube = keys.length > 0 ? await this.deps.nodes.client(node) : undefined;
      for (const k of keys) {
        const { audience, expirationSeconds } = parseTokenKey(k);
        const t = await kube!.createToken(spec.namespace, serviceAccount, {
          audience,
          expirationSeconds,
          pod: { name: spec.name, uid: spec.uid },
        });
        data[k] = new TextEncoder().encode(t.token);
        expiresAtMs = Math.min(expiresAtMs, t.expiresAtMs);
      }
    } catch (err) {
      const message = `requesting a token for ServiceAccount ${spec.namespace}/${serviceAccount} failed: ${(err as Error).message}`;
      log.warn({ reason: 'FailedTokenRequest' }, message);
      await this.deps.warnings.warn(pod, `${ref}@token`, 'FailedTokenRequest', message);
      return false;
    }
    const object = create(edge.EdgeObjectSchema, {
      namespace: spec.namespace,
      name: spec.name,
      resourceVersion: String(nowMs),
      data,
      expiresAtMs: BigInt(expiresAtMs),
      podUid: spec.uid,
    });
    await this.deps.bus.publishObject(node, 'token', object);
    objects.set(ref, tokensOf(object));
    log.debug({ expiresAt: new Date(expiresAtMs).toISOString() }, 'service account tokens published');
    return true;
  }

  /** Tombstones the token object on the node if it is there; true when it was. */
  async release(node: string, ref: ObjectKey): Promise<boolean> {
    const objects = this.onNode.get(node);
    if (!objects?.has(ref)) return false;
    objects.delete(ref);
    await this.deps.bus.tombstoneObject(node, 'token', parseObjectKey(ref).key);
    return true;
  }
}
