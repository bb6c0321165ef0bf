// Hostile heartbeats: whatever a site sends, what reaches the node facts and the Node is within the allow list, the
// check throws nothing and never hangs, and what it admitted is admitted again unchanged (a fixed point).
import { create, toBinary } from '@bufbuild/protobuf';
import { isIP } from 'node:net';
import { decodeNodeHeartbeat, edge, isDecodeError } from '@edgefarm/proto';
import { fc, fuzzDecoder, hostileString, mutatedBytes } from '@edgefarm/testing/fuzz';
import { parseQuantity } from '../kube/quantity.js';
import { ADDRESS_TYPES, CONDITION_TYPES, LIMITS, RESOURCE_BOUNDS, admitHeartbeat, type Admitted } from './admission.js';
import { nodeStatus, policyOf } from './node.js';

const resourceName = fc.oneof(
  fc.constantFrom(
    'cpu',
    'memory',
    'pods',
    'ephemeral-storage',
    'hugepages-2Mi',
    'hugepages-1Gi',
    'example.com/gpu',
    'nvidia.com/gpu',
    'hugepages-',
  ),
  hostileString(),
);
const quantity = fc.oneof(
  fc.constantFrom('2', '4000m', '8Gi', '110', '-1', '1e9', '1e400', '0.5', 'NaN', '', ' 1', '1Ki '),
  fc.integer().map(String),
  hostileString('0123456789.eEkKMGTPi+-m '),
);
const text = fc.oneof(fc.constantFrom('', 'Ready', 'True', '10.0.0.1', '::1', 'edge-1', 'a'.repeat(300)), hostileString());
const heartbeat = fc
  .record({
    nodeName: fc.oneof(fc.constant('edge-1'), fc.constant('edge-1'), text),
    agentVersion: fc.oneof(fc.constant('0.1.0'), text),
    capacity: fc.dictionary(resourceName, quantity, { maxKeys: 8 }),
    allocatable: fc.dictionary(resourceName, quantity, { maxKeys: 8 }),
    conditions: fc.array(
      fc.record({
        type: fc.oneof(fc.constantFrom(...CONDITION_TYPES, 'EdgeConnected', 'ready'), text),
        status: fc.oneof(fc.constantFrom('True', 'False', 'Unknown'), text),
        reason: fc.oneof(fc.constantFrom('', 'KubeletReady', 'A,b:c_d'), text),
        message: fc.oneof(text, fc.string({ maxLength: 2000 })),
      }),
      { maxLength: 8 },
    ),
    images: fc.array(
      fc.record({
        names: fc.array(fc.oneof(fc.constant('registry.k8s.io/pause:3.6'), text), { maxLength: 12 }),
        sizeBytes: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      }),
      { maxLength: 60 },
    ),
    systemInfo: fc.record({ kernelVersion: text, osImage: text, architecture: text, machineId: text }),
    addresses: fc.array(
      fc.record({
        type: fc.oneof(fc.constantFrom(...ADDRESS_TYPES), text),
        address: fc.oneof(
          fc.constantFrom('10.0.0.1', 'fe80::1%eth0', '::1', 'edge-1.example', '-bad-', '1.2.3.4.5'),
          fc.ipV4(),
          fc.ipV6(),
          fc.domain(),
          text,
        ),
      }),
      { maxLength: 24 },
    ),
    appliedSequence: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    podCount: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  })
  .map((init) => toBinary(edge.NodeHeartbeatSchema, create(edge.NodeHeartbeatSchema, init)));

const allowedResource = (name: string) => name in RESOURCE_BOUNDS || /^hugepages-[0-9]+(Ki|Mi|Gi)$/.test(name);
const printable = (s: string, max: number) => s.length <= max && ![...s].some((c) => c < ' ' || c === '\u007f');

/** Throws unless `a` is within the allow list. */
function withinAllowList(a: Admitted): void {
  const hb = a.heartbeat;
  if (!hb) {
    if (!a.refusals.some((r) => r.reason === 'node-name')) throw new Error('refused whole without node-name');
    return;
  }
  if (hb.nodeName !== 'edge-1') throw new Error(`node_name ${hb.nodeName} admitted`);
  for (const res of [hb.capacity, hb.allocatable]) {
    for (const [k, v] of Object.entries(res)) {
      if (!allowedResource(k)) throw new Error(`resource ${k} admitted`);
      const q = parseQuantity(v);
      if (!(q >= 0 && q <= (RESOURCE_BOUNDS[k] ?? RESOURCE_BOUNDS.memory!))) throw new Error(`${k}=${v} admitted`);
    }
  }
  const types = hb.conditions.map((c) => c.type);
  if (new Set(types).size !== types.length) throw new Error('a condition type twice');
  for (const c of hb.conditions) {
    if (!(CONDITION_TYPES as readonly string[]).includes(c.type)) throw new Error(`condition ${c.type} admitted`);
    if (!['True', 'False', 'Unknown'].includes(c.status)) throw new Error(`status ${c.status} admitted`);
    if (c.message.length > LIMITS.messageLength || c.reason.length > LIMITS.reasonLength) throw new Error('condition text too long');
  }
  if (hb.addresses.length > LIMITS.addresses) throw new Error('too many addresses');
  for (const { type, address } of hb.addresses) {
    if (!(ADDRESS_TYPES as readonly string[]).includes(type)) throw new Error(`address type ${type} admitted`);
    if (type.endsWith('IP') ? isIP(address) === 0 : !/^[A-Za-z0-9.-]{1,253}$/.test(address)) throw new Error(`address ${address} admitted`);
  }
  if (hb.images.length > LIMITS.images) throw new Error('too many images');
  for (const i of hb.images) {
    if (i.names.length === 0 || i.names.length > LIMITS.imageNames) throw new Error('image names count');
    for (const n of i.names) if (!printable(n, LIMITS.imageNameLength)) throw new Error('image name admitted');
    if (i.sizeBytes < 0n) throw new Error('negative image size');
  }
  for (const v of Object.values(hb.systemInfo ?? {}))
    if (typeof v === 'string' && !printable(v, LIMITS.infoLength)) throw new Error('info admitted');
  if (hb.agentVersion.length > LIMITS.agentVersionLength) throw new Error('agent version admitted');
  if (hb.podCount < 0) throw new Error('negative pod count');
}

describe('heartbeat admission, fuzzed', () => {
  it('any decoded heartbeat becomes a Node status within the allow list, and admission is a fixed point', () => {
    const { policy } = policyOf({ metadata: { name: 'edge-1', uid: 'u' }, spec: {} }, []);
    fuzzDecoder('provider heartbeat admission', {
      inputs: mutatedBytes(heartbeat),
      isExpected: isDecodeError,
      decode: (bytes) => admitHeartbeat('edge-1', decodeNodeHeartbeat(bytes)),
      check: (_, out) => {
        const a = out as Admitted;
        withinAllowList(a);
        if (!a.heartbeat) return true;
        const again = admitHeartbeat('edge-1', a.heartbeat);
        if (again.refusals.length > 0) throw new Error(`admitted twice, refused: ${JSON.stringify(again.refusals)}`);
        const view = { name: 'edge-1', heartbeat: a.heartbeat, heartbeatAtMs: 0, kubeletPort: 10250, kubeletAddress: '10.0.0.9' };
        const status = nodeStatus(view, undefined, new Date(0), 12_000, policy);
        for (const k of [...Object.keys(status.capacity ?? {}), ...Object.keys(status.allocatable ?? {})])
          if (!allowedResource(k)) throw new Error(`Node ${k}`);
        return (
          (status.images?.length ?? 0) <= LIMITS.images && status.conditions!.every((c) => (c.message?.length ?? 0) <= LIMITS.messageLength)
        );
      },
    });
  });
});
