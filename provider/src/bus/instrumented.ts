/**
 * A desired-state publisher that times every publish of another one (publish → JetStream ack) and reports it with
 * its kind and result, so the publish metrics live in one place. Kept free of the metrics library.
 */
import type { edge, ObjectKind, PodKey } from '@edgefarm/proto';
import type { DesiredPublisher } from './hub.js';
import { isHubStreamFull, type PublishRejectReason } from './limits.js';

export type PublishKind = 'pod' | ObjectKind | 'node' | 'device' | 'tombstone';

export interface PublishObserver {
  /** `seconds`: from the publish to the hub's ack. */
  published(kind: PublishKind, seconds: number): void;
  /** `rejected`: the hub refused it by a stream limit (EF_DESIRED full, or the message too large). */
  failed(kind: PublishKind, rejected?: PublishRejectReason): void;
}

/** What the pod controller publishes through (the hub bus, or a fake). */
export type PodBus = DesiredPublisher & {
  forgetPodStatus(node: string, uid: string): Promise<void>;
  forgetDeviceStatus(node: string, uid: string): Promise<void>;
};

export class InstrumentedPublisher implements PodBus {
  constructor(
    private readonly inner: PodBus,
    private readonly observe: PublishObserver,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  private async timed(kind: PublishKind, publish: () => Promise<number>): Promise<number> {
    const start = this.nowMs();
    try {
      const seq = await publish();
      this.observe.published(kind, (this.nowMs() - start) / 1000);
      return seq;
    } catch (err) {
      this.observe.failed(kind, isHubStreamFull(err) ? err.reason : undefined);
      throw err;
    }
  }

  publishPod(node: string, spec: edge.EdgePodSpec) {
    return this.timed('pod', () => this.inner.publishPod(node, spec));
  }
  tombstonePod(node: string, key: PodKey) {
    return this.timed('tombstone', () => this.inner.tombstonePod(node, key));
  }
  publishObject(node: string, kind: ObjectKind, object: edge.EdgeObject) {
    return this.timed(kind, () => this.inner.publishObject(node, kind, object));
  }
  tombstoneObject(node: string, kind: ObjectKind, key: PodKey) {
    return this.timed('tombstone', () => this.inner.tombstoneObject(node, kind, key));
  }
  publishNodeConfig(node: string, config: edge.NodeConfig) {
    return this.timed('node', () => this.inner.publishNodeConfig(node, config));
  }
  tombstoneNodeConfig(node: string) {
    return this.timed('tombstone', () => this.inner.tombstoneNodeConfig(node));
  }
  publishDevice(node: string, device: edge.EdgeDevice) {
    return this.timed('device', () => this.inner.publishDevice(node, device));
  }
  tombstoneDevice(node: string, key: PodKey) {
    return this.timed('tombstone', () => this.inner.tombstoneDevice(node, key));
  }
  forgetPodStatus(node: string, uid: string) {
    return this.inner.forgetPodStatus(node, uid);
  }
  forgetDeviceStatus(node: string, uid: string) {
    return this.inner.forgetDeviceStatus(node, uid);
  }
}
