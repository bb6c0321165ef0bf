// The edge codecs: every decoder, fed mutated encodings of generated messages (and noise), throws only DecodeError;
// what decodes encodes back to bytes that decode and encode to the same bytes (encode∘decode round trip). Messages
// are generated from the schema's descriptors, so a field added to edge.proto is fuzzed without touching this file.
// Session frames: only FrameError, and decode∘encode gives back the frame.
import { create, toBinary, ScalarType, type DescField, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { fc, fuzzDecoder, mutatedBytes } from '@edgefarm/testing/fuzz';
import {
  DecodeError,
  MAX_TOMBSTONE_TTL_SECONDS,
  PayloadTooLargeError,
  decodeDeviceStatusReport,
  decodeEdgeDevice,
  decodeMapperReport,
  decodeEdgeEvent,
  decodeEdgeObject,
  decodeEdgePodSpec,
  decodeNodeConfig,
  decodeNodeHeartbeat,
  decodePodStatusReport,
  encode,
} from './codec.js';
import {
  DeviceStatusReportSchema,
  EdgeDeviceSchema,
  MapperReportSchema,
  PropertyType,
  EdgeContainerSchema,
  EdgeEventSchema,
  EdgeObjectSchema,
  EdgePodSpecSchema,
  EventType,
  NodeConfigSchema,
  NodeHeartbeatSchema,
  PodStatusReportSchema,
} from './gen/edgefarm/v1/edge_pb.js';
import { FrameError, decodeFrame, encodeFrame, type Frame } from './session-frames.js';

type Init = Record<string, unknown>;

function scalar(t: ScalarType): fc.Arbitrary<unknown> {
  switch (t) {
    case ScalarType.DOUBLE:
      return fc.double();
    case ScalarType.FLOAT:
      return fc.float();
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.integer();
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.integer({ min: 0, max: 0xffffffff });
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.STRING:
      return fc.string({ maxLength: 12 });
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 12 });
  }
}

const enumValue = (values: readonly { number: number }[]): fc.Arbitrary<number> =>
  fc.oneof(fc.constantFrom(...values.map((v) => v.number)), fc.integer({ min: -3, max: 40 }));

/** An init object of any message of the schema: every field present or not, oneofs any case, depth-limited. */
function message(schema: DescMessage, depth = 0): fc.Arbitrary<Init> {
  if (depth > 4) return fc.constant({});
  const entries: Record<string, fc.Arbitrary<unknown>> = {};
  const one = (f: DescField): fc.Arbitrary<unknown> => {
    switch (f.fieldKind) {
      case 'scalar':
        return scalar(f.scalar);
      case 'enum':
        return enumValue(f.enum.values);
      case 'message':
        return message(f.message, depth + 1);
      case 'list': {
        const item =
          f.listKind === 'scalar' ? scalar(f.scalar) : f.listKind === 'enum' ? enumValue(f.enum.values) : message(f.message, depth + 1);
        return fc.array(item, { maxLength: 3 });
      }
      case 'map': {
        const value =
          f.mapKind === 'scalar' ? scalar(f.scalar) : f.mapKind === 'enum' ? enumValue(f.enum.values) : message(f.message, depth + 1);
        return fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: 3 });
      }
    }
  };
  for (const f of schema.fields) if (!f.oneof) entries[f.localName] = one(f);
  for (const o of schema.oneofs) {
    entries[o.localName] = fc.oneof(fc.constant(undefined), ...o.fields.map((f) => one(f).map((value) => ({ case: f.localName, value }))));
  }
  return fc.record(entries, { requiredKeys: [] }).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)));
}

const name = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,15}$/);
const decimal = fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String);
const container = fc.tuple(message(EdgeContainerSchema, 1), name, name).map(([c, n, image]) => ({ ...c, name: n, image }));

/** Generators of messages each decoder accepts (the random message with its required fields made valid). */
const valid = {
  pod: fc
    .tuple(
      message(EdgePodSpecSchema),
      name,
      name,
      name,
      decimal,
      fc.array(container, { minLength: 1, maxLength: 2 }),
      fc.array(container, { maxLength: 1 }),
      fc.array(fc.tuple(container, fc.boolean()), { maxLength: 2 }),
      fc.option(fc.bigInt({ min: 0n, max: 0xfffffffen }), { nil: undefined }),
    )
    .map(([m, uid, namespace, n, resourceVersion, containers, initContainers, ephemeral, fsGroup]) =>
      create(EdgePodSpecSchema, {
        ...m,
        uid,
        namespace,
        name: n,
        resourceVersion,
        containers,
        initContainers,
        // An ephemeral container targets one of the pod's containers, or none.
        ephemeralContainers: ephemeral.map(([c, targeted]) => ({ ...c, targetContainerName: targeted ? containers[0]!.name : '' })),
        // A group id the kernel takes, or none.
        fsGroup,
      }),
    ),
  object: fc
    .tuple(message(EdgeObjectSchema), name, name, decimal)
    .map(([m, namespace, n, resourceVersion]) => create(EdgeObjectSchema, { ...m, namespace, name: n, resourceVersion })),
  status: fc
    .tuple(message(PodStatusReportSchema), name, name, name, fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }))
    .map(([m, uid, namespace, n, generation]) => create(PodStatusReportSchema, { ...m, uid, namespace, name: n, generation })),
  heartbeat: fc.tuple(message(NodeHeartbeatSchema), name).map(([m, nodeName]) => create(NodeHeartbeatSchema, { ...m, nodeName })),
  nodeConfig: fc
    .tuple(message(NodeConfigSchema), fc.bigInt({ min: 1n, max: BigInt(MAX_TOMBSTONE_TTL_SECONDS) }))
    .map(([m, tombstoneTtlSeconds]) => create(NodeConfigSchema, { ...m, tombstoneTtlSeconds })),
  event: fc
    .tuple(
      message(EdgeEventSchema),
      fc.array(name, { minLength: 7, maxLength: 7 }),
      fc.constantFrom(EventType.NORMAL, EventType.WARNING),
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.bigInt({ min: 1n, max: 2n ** 62n }),
      fc.bigInt({ min: 0n, max: 2n ** 62n }),
    )
    .map(([m, [id, key, podUid, podNamespace, podName, reason, nodeName], type, count, first, later]) =>
      create(EdgeEventSchema, {
        ...m,
        id: id!,
        key: key!,
        podUid: podUid!,
        podNamespace: podNamespace!,
        podName: podName!,
        reason: reason!,
        nodeName: nodeName!,
        type,
        count,
        firstTimestampMs: first,
        lastTimestampMs: first + later,
      }),
    ),
};

/** A device property name (manifests/crds/devices-crd.yaml). */
const propertyName = fc.stringMatching(/^[A-Za-z0-9]([-_A-Za-z0-9]{0,10}[A-Za-z0-9])?$/);
/** configData as JSON: an object. */
const jsonObject = fc
  .dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string({ maxLength: 6 }), fc.integer()))
  .map((o) => JSON.stringify(o));
const positive = fc.bigInt({ min: 1n, max: 2n ** 63n - 1n });
const devices = {
  device: fc
    .tuple(
      message(EdgeDeviceSchema),
      fc.array(name, { minLength: 5, maxLength: 5 }),
      positive,
      jsonObject,
      fc.uniqueArray(
        fc.tuple(
          propertyName,
          fc.constantFrom(PropertyType.INT, PropertyType.DOUBLE, PropertyType.STRING, PropertyType.BOOLEAN),
          fc.boolean(),
          fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
          jsonObject,
          fc.bigInt({ min: 0n, max: 2n ** 40n }),
        ),
        { selector: (t) => t[0], maxLength: 4 },
      ),
    )
    .map(([m, [uid, namespace, n, model, protocol], generation, protocolConfigJson, props]) =>
      create(EdgeDeviceSchema, {
        ...m,
        uid: uid!,
        namespace: namespace!,
        name: n!,
        model: model!,
        protocol: protocol!,
        generation,
        protocolConfigJson,
        properties: props.map(([pn, type, writable, desired, visitorConfigJson, cycle]) => ({
          name: pn,
          type,
          writable,
          // a desired value only on a writable property
          desired: writable ? desired : undefined,
          visitorConfigJson,
          collectCycleMs: cycle,
          reportCycleMs: cycle,
        })),
      }),
    ),
  twin: fc
    .tuple(
      message(DeviceStatusReportSchema),
      fc.array(name, { minLength: 3, maxLength: 3 }),
      positive,
      fc.bigInt({ min: 0n, max: 2n ** 62n }),
      fc.uniqueArray(fc.tuple(propertyName, fc.string({ maxLength: 8 })), { selector: (t) => t[0], maxLength: 4 }),
    )
    .map(([m, [uid, namespace, n], generation, observedGeneration, twins]) =>
      create(DeviceStatusReportSchema, {
        ...m,
        uid: uid!,
        namespace: namespace!,
        name: n!,
        generation,
        observedGeneration,
        twins: twins.map(([pn, reported]) => ({ name: pn, reported })),
      }),
    ),
};

function codecCase<D extends DescMessage>(
  label: string,
  schema: D,
  gen: fc.Arbitrary<MessageShape<D>>,
  decode: (b: Uint8Array, subject?: string) => MessageShape<D>,
): void {
  const bytes = gen.map((m) => toBinary(schema, m));
  it(`${label}: valid messages decode, and encode∘decode round trips`, () => {
    fuzzDecoder(`${label} valid`, {
      inputs: bytes,
      decode: (b) => decode(b, 'ef.fuzz'),
      check: (b, m) => {
        const again = encode(schema, m as MessageShape<D>);
        return Buffer.from(again).equals(Buffer.from(b)); // the encoding is deterministic: the same bytes back
      },
    });
  });
  it(`${label}: mutated bytes throw only DecodeError, and what decodes round trips`, () => {
    fuzzDecoder(`${label} mutated`, {
      inputs: mutatedBytes(bytes),
      decode: (b) => decode(b, 'ef.fuzz'),
      errors: [DecodeError],
      check: (_b, m) => {
        const again = encode(schema, m as MessageShape<D>);
        return Buffer.from(again).equals(Buffer.from(encode(schema, decode(again))));
      },
    });
  });
}

describe('edge codecs (fuzz)', () => {
  codecCase('EdgePodSpec', EdgePodSpecSchema, valid.pod, decodeEdgePodSpec);
  codecCase('EdgeObject', EdgeObjectSchema, valid.object, decodeEdgeObject);
  codecCase('PodStatusReport', PodStatusReportSchema, valid.status, decodePodStatusReport);
  codecCase('NodeHeartbeat', NodeHeartbeatSchema, valid.heartbeat, decodeNodeHeartbeat);
  codecCase('NodeConfig', NodeConfigSchema, valid.nodeConfig, decodeNodeConfig);
  codecCase('EdgeEvent', EdgeEventSchema, valid.event, decodeEdgeEvent);
  codecCase('EdgeDevice', EdgeDeviceSchema, devices.device, decodeEdgeDevice);
  codecCase('DeviceStatusReport', DeviceStatusReportSchema, devices.twin, decodeDeviceStatusReport);
  codecCase(
    'MapperReport',
    MapperReportSchema,
    devices.twin.map((t) =>
      create(MapperReportSchema, { generation: t.observedGeneration, connected: t.connected, message: t.message, twins: t.twins }),
    ),
    decodeMapperReport,
  );

  it('encode refuses only with PayloadTooLargeError', () => {
    fuzzDecoder('encode big objects', {
      inputs: fc.integer({ min: 0, max: 2 * 1024 * 1024 }),
      decode: (n) =>
        encode(
          EdgeObjectSchema,
          create(EdgeObjectSchema, { namespace: 'n', name: 'x', resourceVersion: '1', data: { k: new Uint8Array(n) } }),
        ),
      errors: [PayloadTooLargeError],
      numRuns: 20,
    });
  });
});

const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    kind: fc.constant('data' as const),
    channel: fc.constantFrom(0 as const, 1 as const, 2 as const),
    data: fc.uint8Array({ maxLength: 64 }),
  }),
  fc.record({ kind: fc.constant('eof' as const), channel: fc.constantFrom(0 as const, 1 as const, 2 as const) }),
  fc.record({ kind: fc.constant('credit' as const), bytes: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({
    kind: fc.constant('resize' as const),
    width: fc.integer({ min: 0, max: 0xffff }),
    height: fc.integer({ min: 0, max: 0xffff }),
  }),
  fc.constant({ kind: 'ping' as const }),
  fc.record(
    { kind: fc.constant('end' as const), exitCode: fc.integer(), error: fc.string({ minLength: 1, maxLength: 20 }) },
    { requiredKeys: ['kind', 'exitCode'] },
  ),
);

describe('session frames (fuzz)', () => {
  it('decode∘encode gives back the frame', () => {
    fuzzDecoder('frame round trip', {
      inputs: frame,
      decode: (f) => decodeFrame(encodeFrame(f)),
      check: (f, out) => {
        const norm = (x: Frame) => JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? [...v] : v));
        return norm(out as Frame) === norm(f.kind === 'end' && !f.error ? { kind: 'end', exitCode: f.exitCode } : f);
      },
    });
  });

  it('mutated frames throw only FrameError', () => {
    fuzzDecoder('frame mutated', { inputs: mutatedBytes(frame.map(encodeFrame)), decode: decodeFrame, errors: [FrameError] });
  });
});
