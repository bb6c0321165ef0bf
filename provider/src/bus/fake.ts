/** A recording DesiredPublisher for unit tests. */
import type { edge, PodKey } from '@edgefarm/proto';
import type { DesiredPublisher } from './hub.js';

export class FakeBus implements DesiredPublisher {
  readonly published: { node: string; spec: edge.EdgePodSpec }[] = [];
  readonly tombstones: { node: string; key: PodKey }[] = [];
  readonly forgotten: string[] = [];
  private seq = 0;
  failNextPublish?: Error;

  async publishPod(node: string, spec: edge.EdgePodSpec) {
    if (this.failNextPublish) {
      const e = this.failNextPublish;
      this.failNextPublish = undefined;
      throw e;
    }
    this.published.push({ node, spec });
    return ++this.seq;
  }
  async tombstonePod(node: string, key: PodKey) {
    this.tombstones.push({ node, key });
    return ++this.seq;
  }
  async forgetPodStatus(node: string, uid: string) {
    this.forgotten.push(`${node}/${uid}`);
  }
}
