import { create, toBinary } from '@bufbuild/protobuf';
import {
  compareResourceVersions,
  decodeEdgeEvent,
  decodeEdgeObject,
  decodeEdgePodSpec,
  decodeNodeConfig,
  decodeNodeHeartbeat,
  decodePodStatusReport,
  encode,
  isDecodeError,
  MAX_EPHEMERAL_CONTAINERS,
  MAX_PAYLOAD_BYTES,
  MAX_TOMBSTONE_TTL_SECONDS,
  PayloadTooLargeError,
} from './codec.js';
import {
  EdgeContainerSchema,
  EdgeEventSchema,
  EdgeObjectSchema,
  EdgePodSpecSchema,
  EventType,
  NodeConfigSchema,
  NodeHeartbeatSchema,
  PodStatusReportSchema,
} from './gen/edgefarm/v1/edge_pb.js';

const spec = () =>
  create(EdgePodSpecSchema, {
    uid: 'u1',
    namespace: 'default',
    name: 'p',
    resourceVersion: '42',
    containers: [{ name: 'c', image: 'docker.io/edgefarm/busybox:1.35' }],
  });

function expectDecodeError(fn: () => unknown, pattern: RegExp) {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(isDecodeError(caught)).toBe(true);
  expect((caught as Error).message).toMatch(pattern);
}

describe('decoders', () => {
  it('round-trips a pod spec', () => {
    const decoded = decodeEdgePodSpec(encode(EdgePodSpecSchema, spec()));
    expect(decoded.name).toBe('p');
    expect(decoded.containers[0]?.image).toBe('docker.io/edgefarm/busybox:1.35');
  });
  it('rejects garbage with the subject in the message', () => {
    expectDecodeError(
      () => decodeEdgePodSpec(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 'ef.desired.x'),
      /malformed protobuf.*subject ef\.desired\.x/,
    );
  });
  it('rejects an empty payload (a tombstone is not a spec)', () => {
    expectDecodeError(() => decodeEdgePodSpec(new Uint8Array()), /missing uid/);
  });
  it('rejects oversized payloads before parsing', () => {
    expectDecodeError(() => decodeEdgePodSpec(new Uint8Array(MAX_PAYLOAD_BYTES + 1)), /exceeds/);
  });
  it('rejects a spec without containers or with a bad resourceVersion', () => {
    const noContainers = spec();
    noContainers.containers = [];
    expectDecodeError(() => decodeEdgePodSpec(toBinary(EdgePodSpecSchema, noContainers)), /no containers/);
    const badRv = spec();
    badRv.resourceVersion = 'abc';
    expectDecodeError(() => decodeEdgePodSpec(toBinary(EdgePodSpecSchema, badRv)), /not a decimal/);
    const noImage = spec();
    noImage.containers[0]!.image = '';
    expectDecodeError(() => decodeEdgePodSpec(toBinary(EdgePodSpecSchema, noImage)), /missing image of c/);
  });
  it('bounds ephemeral containers and checks their target', () => {
    const ok = spec();
    ok.ephemeralContainers = [create(EdgeContainerSchema, { name: 'debugger', image: 'busybox', targetContainerName: 'c' })];
    expect(decodeEdgePodSpec(toBinary(EdgePodSpecSchema, ok)).ephemeralContainers[0]?.targetContainerName).toBe('c');
    const tooMany = spec();
    tooMany.ephemeralContainers = Array.from({ length: MAX_EPHEMERAL_CONTAINERS + 1 }, (_, i) =>
      create(EdgeContainerSchema, { name: `d${i}`, image: 'busybox' }),
    );
    expectDecodeError(() => decodeEdgePodSpec(toBinary(EdgePodSpecSchema, tooMany)), /33 ephemeral containers, more than 32/);
    const noImage = spec();
    noImage.ephemeralContainers = [create(EdgeContainerSchema, { name: 'debugger' })];
    expectDecodeError(() => decodeEdgePodSpec(toBinary(EdgePodSpecSchema, noImage)), /missing image of debugger/);
    const badTarget = spec();
    badTarget.ephemeralContainers = [create(EdgeContainerSchema, { name: 'debugger', image: 'busybox', targetContainerName: 'nope' })];
    expectDecodeError(() => decodeEdgePodSpec(toBinary(EdgePodSpecSchema, badTarget)), /targets "nope", not a container of the pod/);
  });
  it('accepts an fs_group the kernel takes, refuses one it does not', () => {
    const ok = spec();
    ok.fsGroup = 1001n;
    expect(decodeEdgePodSpec(toBinary(EdgePodSpecSchema, ok)).fsGroup).toBe(1001n);
    for (const bad of [-1n, 0xffffffffn, 2n ** 40n]) {
      const m = spec();
      m.fsGroup = bad;
      expectDecodeError(() => decodeEdgePodSpec(toBinary(EdgePodSpecSchema, m)), /fs_group .* is not a group id/);
    }
  });
  it('requires a positive generation on status reports', () => {
    const r = create(PodStatusReportSchema, { uid: 'u', namespace: 'n', name: 'p', generation: 0n });
    expectDecodeError(() => decodePodStatusReport(toBinary(PodStatusReportSchema, r)), /generation/);
    r.generation = 5n;
    expect(decodePodStatusReport(toBinary(PodStatusReportSchema, r)).generation).toBe(5n);
  });
  it('requires a node name on heartbeats', () => {
    expectDecodeError(() => decodeNodeHeartbeat(toBinary(NodeHeartbeatSchema, create(NodeHeartbeatSchema, {}))), /node_name/);
  });
  it('refuses to encode an oversized message', () => {
    const big = spec();
    big.annotations = { a: 'x'.repeat(MAX_PAYLOAD_BYTES) };
    expect(() => encode(EdgePodSpecSchema, big)).toThrow(PayloadTooLargeError);
  });
});

describe('compareResourceVersions', () => {
  it('compares numerically, beyond 2^53', () => {
    expect(compareResourceVersions('9', '10')).toBe(-1);
    expect(compareResourceVersions('18446744073709551615', '18446744073709551614')).toBe(1);
    expect(compareResourceVersions('7', '7')).toBe(0);
  });
});

describe('decodeEdgeObject', () => {
  const obj = { namespace: 'default', name: 'app-config', resourceVersion: '7', data: { 'a.conf': new TextEncoder().encode('x=1') } };
  it('round-trips', () => {
    const m = decodeEdgeObject(encode(EdgeObjectSchema, create(EdgeObjectSchema, obj)));
    expect(new TextDecoder().decode(m.data['a.conf'])).toBe('x=1');
  });
  it.each([
    [{ ...obj, name: '' }, /missing name/],
    [{ ...obj, namespace: '' }, /missing namespace/],
    [{ ...obj, resourceVersion: 'abc' }, /not a decimal/],
  ])('rejects %#', (bad, pattern) => {
    expectDecodeError(
      () => decodeEdgeObject(toBinary(EdgeObjectSchema, create(EdgeObjectSchema, bad)), 'ef.desired.n.configmap.default.x'),
      pattern,
    );
  });
  it('rejects garbage and oversized payloads', () => {
    expectDecodeError(() => decodeEdgeObject(new Uint8Array([0x0a, 0xff])), /malformed protobuf/);
    expectDecodeError(() => decodeEdgeObject(new Uint8Array(MAX_PAYLOAD_BYTES + 1)), /exceeds/);
  });
});

describe('decodeEdgeEvent', () => {
  const event = (over: Partial<import('./gen/edgefarm/v1/edge_pb.js').EdgeEvent> = {}) =>
    create(EdgeEventSchema, {
      id: 'a1-1',
      key: 'k',
      podUid: 'u1',
      podNamespace: 'default',
      podName: 'p',
      fieldPath: 'spec.containers{c}',
      type: EventType.WARNING,
      reason: 'BackOff',
      message: 'Back-off restarting failed container c in pod p_default(u1)',
      firstTimestampMs: 1000n,
      lastTimestampMs: 2000n,
      count: 3,
      nodeName: 'edge-1',
      ...over,
    });
  it('round-trips an event', () => {
    const m = decodeEdgeEvent(encode(EdgeEventSchema, event()));
    expect(m).toMatchObject({ reason: 'BackOff', count: 3, fieldPath: 'spec.containers{c}', type: EventType.WARNING });
  });
  it.each<[string, Partial<import('./gen/edgefarm/v1/edge_pb.js').EdgeEvent>, RegExp]>([
    ['no id', { id: '' }, /missing id/],
    ['no pod uid', { podUid: '' }, /missing pod_uid/],
    ['no reason', { reason: '' }, /missing reason/],
    ['no node', { nodeName: '' }, /missing node_name/],
    ['unspecified type', { type: EventType.UNSPECIFIED }, /type must be Normal or Warning/],
    ['zero count', { count: 0 }, /count must be positive/],
    ['last before first', { lastTimestampMs: 10n }, /first <= last/],
  ])('rejects an event with %s', (_, over, pattern) => {
    expectDecodeError(() => decodeEdgeEvent(toBinary(EdgeEventSchema, event(over)), 'ef.events.n.x'), pattern);
  });
  it('rejects garbage and oversized payloads', () => {
    expectDecodeError(
      () => decodeEdgeEvent(new Uint8Array([0xff, 0xff, 0xff]), 'ef.events.n.x'),
      /malformed protobuf.*subject ef.events.n.x/,
    );
    expectDecodeError(() => decodeEdgeEvent(new Uint8Array(MAX_PAYLOAD_BYTES + 1)), /exceeds/);
  });
});

describe('decodeNodeConfig', () => {
  const config = (ttl: bigint) => toBinary(NodeConfigSchema, create(NodeConfigSchema, { tombstoneTtlSeconds: ttl }));
  it('round-trips', () => {
    expect(decodeNodeConfig(encode(NodeConfigSchema, create(NodeConfigSchema, { tombstoneTtlSeconds: 86_400n }))).tombstoneTtlSeconds).toBe(
      86_400n,
    );
    expect(decodeNodeConfig(config(BigInt(MAX_TOMBSTONE_TTL_SECONDS))).tombstoneTtlSeconds).toBe(BigInt(MAX_TOMBSTONE_TTL_SECONDS));
  });
  it('rejects a TTL that is not positive or beyond ten years, garbage and oversized payloads', () => {
    expectDecodeError(() => decodeNodeConfig(config(0n), 'ef.desired.n.node.config'), /tombstone_ttl_seconds .*subject ef\.desired/);
    expectDecodeError(() => decodeNodeConfig(new Uint8Array()), /tombstone_ttl_seconds must be between 1/);
    expectDecodeError(() => decodeNodeConfig(config(-5n)), /not -5/);
    expectDecodeError(() => decodeNodeConfig(config(BigInt(MAX_TOMBSTONE_TTL_SECONDS) + 1n)), /must be between/);
    expectDecodeError(() => decodeNodeConfig(new Uint8Array([0xff, 0xff, 0xff])), /malformed protobuf/);
    expectDecodeError(() => decodeNodeConfig(new Uint8Array(MAX_PAYLOAD_BYTES + 1)), /exceeds/);
  });
});
