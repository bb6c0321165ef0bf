/** Fixtures of the pod controller's unit tests: a pod, and the controller on fakes wired as the provider wires it. */
import { create } from '@bufbuild/protobuf';
import type { V1Pod } from '@kubernetes/client-node';
import { edge } from '@edgefarm/proto';
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

/** A pod with a ConfigMap volume and a Secret env reference. */
export function configured(name = 'web-1', uid = 'uid-1'): V1Pod {
  return pod(
    {
      volumes: [{ name: 'cfg', configMap: { name: 'app' } }],
      containers: [
        {
          name: 'c',
          image: 'i',
          volumeMounts: [{ name: 'cfg', mountPath: '/etc/app' }],
          env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } }],
        },
      ],
    },
    { name, uid },
  );
}

/** default/web-1 with a projected ServiceAccount token (ServiceAccount robot, 3600 s). */
export const withToken = (): V1Pod =>
  pod({
    serviceAccountName: 'robot',
    volumes: [{ name: 'kube-api-access-1', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }] } }],
    containers: [
      { name: 'c', image: 'i', volumeMounts: [{ name: 'kube-api-access-1', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }] },
    ],
  });

/** A report of default/web-1 (pod UID `uid`) running one ready container, with the overrides given. */
export const runningReport = (uid: string, generation: bigint, extra: { removed?: boolean; phase?: edge.PodPhase } = {}) =>
  create(edge.PodStatusReportSchema, {
    uid,
    namespace: 'default',
    name: 'web-1',
    generation,
    phase: edge.PodPhase.RUNNING,
    podIp: '10.221.1.9',
    containerStatuses: [{ name: 'c', ready: true, started: true, state: { state: { case: 'running', value: {} } } }],
    ...extra,
  });

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
    services: api.serviceWatch(),
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
