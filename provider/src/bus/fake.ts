/** A recording DesiredPublisher for unit tests. */
import { encode, edge, type ObjectKind, type PodKey } from '@edgefarm/proto';
import type { DesiredPublisher } from './hub.js';

export class FakeBus implements DesiredPublisher {
  readonly published: { node: string; spec: edge.EdgePodSpec }[] = [];
  readonly tombstones: { node: string; key: PodKey }[] = [];
  readonly forgotten: string[] = [];
  readonly objects: { node: string; kind: ObjectKind; object: edge.EdgeObject }[] = [];
  readonly objectTombstones: { node: string; kind: ObjectKind; key: PodKey }[] = [];
  /** Every publish in order: `pod <node> <ns>/<name>`, `-pod ...`, `<kind> <node> <ns>/<name>@<version>`, `-<kind> ...`. */
  readonly log: string[] = [];
  private seq = 0;
  failNextPublish?: Error;

  async publishPod(node: string, spec: edge.EdgePodSpec) {
    if (this.failNextPublish) {
      const e = this.failNextPublish;
      this.failNextPublish = undefined;
      throw e;
    }
    this.published.push({ node, spec });
    this.log.push(`pod ${node} ${spec.namespace}/${spec.name}`);
    return ++this.seq;
  }
  async tombstonePod(node: string, key: PodKey) {
    this.tombstones.push({ node, key });
    this.log.push(`-pod ${node} ${key.namespace}/${key.name}`);
    return ++this.seq;
  }
  async publishObject(node: string, kind: ObjectKind, object: edge.EdgeObject) {
    encode(edge.EdgeObjectSchema, object); // the size check the real bus makes
    this.objects.push({ node, kind, object });
    this.log.push(`${kind} ${node} ${object.namespace}/${object.name}@${object.resourceVersion}`);
    return ++this.seq;
  }
  async tombstoneObject(node: string, kind: ObjectKind, key: PodKey) {
    this.objectTombstones.push({ node, kind, key });
    this.log.push(`-${kind} ${node} ${key.namespace}/${key.name}`);
    return ++this.seq;
  }
  async forgetPodStatus(node: string, uid: string) {
    this.forgotten.push(`${node}/${uid}`);
  }
}
