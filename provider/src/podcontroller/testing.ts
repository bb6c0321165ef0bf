/** Fixtures of the pod controller's unit tests: a pod, and the controller on fakes wired as the provider wires it. */
import type { V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { FakeKubeClient } from '../kube/fake.js';
import type { KubeClient } from '../kube/client.js';
import { FakeBus } from '../bus/fake.js';
import type { PodBus } from '../bus/instrumented.js';
import { DesiredSequences } from '../bus/sequences.js';
import { FakeMembership } from '../membership/fake.js';
import { NodeFacts } from '../nodecontroller/facts.js';
import type { ProviderMetrics } from '../metrics/metrics.js';
import { PodController } from './controller.js';

/** A minimal pod bound to edge-1, with the spec and metadata overrides given. */
export function pod(overrides: Partial<V1Pod['spec']> = {}, meta: Partial<NonNullable<V1Pod['metadata']>> = {}): V1Pod {
  return {
    metadata: { name: 'web-1', namespace: 'default', uid: 'uid-1', resourceVersion: '7', ...meta },
    spec: {
      nodeName: 'edge-1',
      containers: [{ name: 'c', image: 'docker.io/edgefarm/busybox:1.35', command: ['sh'], args: ['-c', 'sleep 1'] }],
      ...overrides,
    },
  };
}

export interface PodControllerBedOptions {
  now?: () => Date;
  metrics?: Pick<ProviderMetrics, 'statusReport' | 'statusApplied' | 'statusConflict' | 'podStarted'>;
  /** The API the controller uses, made from the fake (an instrumented one, say); default the fake itself. */
  kube?: (fake: FakeKubeClient) => KubeClient;
  /** The publisher under the desired sequences, made from the fake bus; default the fake bus itself. */
  bus?: (fake: FakeBus) => PodBus;
}

/**
 * A PodController on the fake API and hub, with a FakeMembership (take nodes with `membership.take`), NodeFacts (the
 * node side's facts: record heartbeats there) and DesiredSequences, subscribed in the provider's order.
 */
export function podControllerBed(o: PodControllerBedOptions = {}) {
  const kube = new FakeKubeClient();
  const bus = new FakeBus();
  const membership = new FakeMembership();
  const facts = new NodeFacts({ now: o.now });
  const sequences = new DesiredSequences(o.bus?.(bus) ?? bus, membership);
  const api = o.kube?.(kube) ?? kube;
  const ctl = new PodController({
    kube: api,
    bus: sequences,
    pods: api.podWatch(),
    served: membership,
    facts,
    log: pino({ level: 'silent' }),
    metrics: o.metrics,
    now: o.now,
  });
  membership.subscribe(sequences);
  membership.subscribe(ctl);
  return { kube, bus, membership, facts, sequences, ctl };
}
