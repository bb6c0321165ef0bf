import { decodeEdgeDevice, edge, encode } from '@edgefarm/proto';
import { pino } from 'pino';
import { FakeKubeClient } from '../kube/fake.js';
import { FakeBus } from '../bus/fake.js';
import { DesiredSequences } from '../bus/sequences.js';
import { FakeMembership } from '../membership/fake.js';
import { DeviceController } from './controller.js';
import type { Device, DeviceModel, DeviceSpec } from './types.js';

const log = pino({ level: 'silent' });

function bed() {
  const kube = new FakeKubeClient();
  const bus = new FakeBus();
  const membership = new FakeMembership();
  const sequences = new DesiredSequences(bus, membership);
  const ctl = new DeviceController({
    kube,
    bus: sequences,
    devices: kube.deviceWatch(),
    models: kube.deviceModelWatch(),
    served: membership,
    log,
    now: () => new Date('2026-01-01T00:00:00Z'),
  });
  membership.subscribe(sequences);
  membership.subscribe(ctl);
  return { kube, bus, membership, sequences, ctl };
}

const PUMP_MODEL: DeviceModel = {
  metadata: { namespace: 'default', name: 'pump' },
  spec: {
    protocol: 'modbus',
    properties: [
      { name: 'speed', type: 'INT', accessMode: 'ReadWrite', minimum: '0', maximum: '3000', unit: 'rpm' },
      { name: 'temperature', type: 'DOUBLE', unit: 'celsius' },
      { name: 'on', type: 'BOOLEAN', accessMode: 'ReadWrite' },
      { name: 'setpoint', type: 'FLOAT', accessMode: 'ReadWrite', minimum: '-10.5', maximum: '99.5' },
    ],
  },
};

const PUMP_SPEC: DeviceSpec = {
  deviceModelRef: { name: 'pump' },
  nodeName: 'edge-1',
  protocol: { protocolName: 'modbus', configData: { unitId: 1, address: '10.0.0.5:502' } },
  properties: [
    {
      name: 'speed',
      desired: { value: '1200' },
      visitors: { protocolName: 'modbus', configData: { register: 'HoldingRegister', offset: 1 } },
      collectCycle: 1_000_000_000,
      reportCycle: 2_500_000,
    },
    {
      name: 'temperature',
      visitors: { protocolName: 'modbus', configData: { register: 'InputRegister', offset: 3 } },
      reportToCloud: false,
    },
  ],
};

function device(
  spec: Partial<DeviceSpec> = {},
  meta: { name?: string; generation?: number; uid?: string; namespace?: string } = {},
): Device {
  const name = meta.name ?? 'pump-1';
  return {
    metadata: { namespace: meta.namespace ?? 'default', name, uid: meta.uid ?? `uid-${name}`, generation: meta.generation ?? 1 },
    spec: { ...PUMP_SPEC, ...spec },
  };
}

const warnings = (kube: FakeKubeClient) => kube.events.map((e) => `${e.involvedObject.name} ${e.reason}: ${e.message}`);

describe('DeviceController', () => {
  it("publishes a served node's device with its model's properties merged, decodable by the agent, at the node's desired sequence", async () => {
    const { kube, bus, membership, sequences, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device());
    kube.devices.set(device({ nodeName: 'edge-2' }, { name: 'elsewhere' }));
    await ctl.drained();

    expect(bus.log).toEqual(['device edge-1 default/pump-1@1']);
    expect(sequences.sequence('edge-1')).toBe(1);
    const d = bus.devices[0]!.device;
    // what was published is what an agent accepts
    expect(decodeEdgeDevice(encode(edge.EdgeDeviceSchema, d))).toEqual(d);
    expect(d).toMatchObject({
      namespace: 'default',
      name: 'pump-1',
      uid: 'uid-pump-1',
      generation: 1n,
      model: 'pump',
      protocol: 'modbus',
      protocolConfigJson: '{"address":"10.0.0.5:502","unitId":1}',
    });
    const props = Object.fromEntries(d.properties.map((p) => [p.name, p]));
    expect(Object.keys(props)).toEqual(['speed', 'temperature', 'on', 'setpoint']); // the model's, in its order
    expect(props.speed).toMatchObject({
      type: edge.PropertyType.INT,
      writable: true,
      minimum: '0',
      maximum: '3000',
      unit: 'rpm',
      desired: '1200',
      visitorConfigJson: '{"offset":1,"register":"HoldingRegister"}',
      collectCycleMs: 1000n,
      reportCycleMs: 3n, // 2.5 ms, rounded
      reportToCloud: true,
    });
    expect(props.temperature).toMatchObject({ type: edge.PropertyType.DOUBLE, writable: false, unit: 'celsius', reportToCloud: false });
    expect(props.temperature!.desired).toBeUndefined();
    // a model property the device does not mention: the model's declaration, no visitor
    expect(props.on).toMatchObject({ type: edge.PropertyType.BOOLEAN, writable: true, visitorConfigJson: '{}', reportToCloud: true });
    expect(props.setpoint!.type).toBe(edge.PropertyType.FLOAT);
    expect(kube.events).toEqual([]);
    await ctl.stop();
  });

  it('publishes "{}" for a device without configData', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device({ protocol: { protocolName: 'modbus' }, properties: undefined }));
    await ctl.drained();
    expect(bus.devices[0]!.device.protocolConfigJson).toBe('{}');
    expect(bus.devices[0]!.device.properties.every((p) => p.visitorConfigJson === '{}' && p.desired === undefined)).toBe(true);
    await ctl.stop();
  });

  it('republishes only on change: a status write or a resync publishes nothing, a new generation does', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device());
    await ctl.drained();
    kube.devices.set({ ...device(), status: { state: 'online' } }); // new resourceVersion, same generation
    kube.deviceModels.set({ ...PUMP_MODEL, metadata: { ...PUMP_MODEL.metadata, labels: { a: 'b' } } }); // nothing for the site
    await ctl.drained();
    expect(bus.log).toEqual(['device edge-1 default/pump-1@1']);
    kube.devices.set(device({ properties: [{ name: 'speed', desired: { value: '1500' } }] }, { generation: 2 }));
    await ctl.drained();
    expect(bus.log).toEqual(['device edge-1 default/pump-1@1', 'device edge-1 default/pump-1@2']);
    expect(bus.devices[1]!.device.properties[0]!.desired).toBe('1500');
    await ctl.stop();
  });

  it('republishes every device of a changed model on served nodes, and no device of another model', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    kube.deviceModels.set({ metadata: { namespace: 'default', name: 'fan' }, spec: { properties: [{ name: 'rpm', type: 'INT' }] } });
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device({}, { name: 'pump-1' }));
    kube.devices.set(device({}, { name: 'pump-2' }));
    kube.devices.set(device({ deviceModelRef: { name: 'fan' }, properties: [] }, { name: 'fan-1' }));
    await ctl.drained();
    expect(bus.log).toHaveLength(3);

    const props = PUMP_MODEL.spec!.properties!;
    kube.deviceModels.set({
      ...PUMP_MODEL,
      spec: { ...PUMP_MODEL.spec, properties: [{ ...props[0]!, unit: 'rev/min' }, ...props.slice(1)] },
    });
    await ctl.drained();
    expect(bus.log.slice(3).sort()).toEqual(['device edge-1 default/pump-1@1', 'device edge-1 default/pump-2@1']);
    expect(bus.devices.slice(3).map((d) => d.device.properties[0]!.unit)).toEqual(['rev/min', 'rev/min']);
    await ctl.stop();
  });

  it('sends nothing for a device whose model is missing (a DeviceModelNotFound Warning, once), and publishes it once the model is made', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set({ ...PUMP_MODEL, metadata: { namespace: 'other', name: 'pump' } }); // another namespace's
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device());
    await ctl.drained();
    kube.devices.set({ ...device(), status: { state: 'x' } }); // a resync: no second Event
    await ctl.drained();
    expect(bus.log).toEqual([]);
    expect(kube.events.map((e) => [e.type, e.reason, e.involvedObject.kind, e.involvedObject.apiVersion, e.metadata.namespace])).toEqual([
      ['Warning', 'DeviceModelNotFound', 'Device', 'devices.edgefarm.io/v1beta1', 'default'],
    ]);
    expect(kube.events[0]!.message).toMatch(/DeviceModel "pump" not found in namespace default/);

    kube.deviceModels.set(PUMP_MODEL);
    await ctl.drained();
    expect(bus.log).toEqual(['device edge-1 default/pump-1@1']);
    await ctl.stop();
  });

  it('tombstones a published device whose model is deleted, and warns', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device());
    await ctl.drained();
    kube.deviceModels.delete('default', 'pump');
    await ctl.drained();
    expect(bus.log).toEqual(['device edge-1 default/pump-1@1', '-device edge-1 default/pump-1']);
    expect(kube.events.map((e) => e.reason)).toEqual(['DeviceModelNotFound']);
    await ctl.stop();
  });

  it.each<[string, DeviceSpec['properties'], string, RegExp]>([
    [
      'a property the model lacks',
      [{ name: 'pressure', desired: { value: '1' } }],
      'UnknownProperty',
      /"pressure" is not one of DeviceModel pump's/,
    ],
    [
      'a desired value on a ReadOnly property',
      [{ name: 'temperature', desired: { value: '20' } }],
      'ReadOnlyProperty',
      /temperature is ReadOnly/,
    ],
    ['an INT that is not an integer', [{ name: 'speed', desired: { value: '12.5' } }], 'InvalidDesiredValue', /"12.5" is not an integer/],
    ['an INT below the minimum', [{ name: 'speed', desired: { value: '-1' } }], 'InvalidDesiredValue', /-1 is below the minimum 0/],
    ['an INT above the maximum', [{ name: 'speed', desired: { value: '3001' } }], 'InvalidDesiredValue', /3001 is above the maximum 3000/],
    [
      'a FLOAT that is not a number',
      [{ name: 'setpoint', desired: { value: 'warm' } }],
      'InvalidDesiredValue',
      /"warm" is not a finite number/,
    ],
    ['a FLOAT that is not finite', [{ name: 'setpoint', desired: { value: 'Infinity' } }], 'InvalidDesiredValue', /not a finite number/],
    ['a FLOAT above the maximum', [{ name: 'setpoint', desired: { value: '99.6' } }], 'InvalidDesiredValue', /above the maximum 99.5/],
    ['a BOOLEAN that is neither', [{ name: 'on', desired: { value: 'yes' } }], 'InvalidDesiredValue', /"yes" is not true or false/],
  ])('warns of %s and leaves the bad part out, publishing the rest', async (_what, properties, reason, message) => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device({ properties }));
    await ctl.drained();
    kube.devices.set({ ...device({ properties }), status: { state: 'resync' } });
    await ctl.drained();
    expect(kube.events.map((e) => [e.type, e.reason])).toEqual([['Warning', reason]]);
    expect(kube.events[0]!.message).toMatch(message);
    expect(bus.devices).toHaveLength(1);
    const d = bus.devices[0]!.device;
    expect(d.properties.map((p) => p.name)).toEqual(['speed', 'temperature', 'on', 'setpoint']);
    expect(d.properties.every((p) => p.desired === undefined)).toBe(true);
    await ctl.stop();
  });

  it('accepts valid desired values of every type, and warns again when a problem that went away comes back', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    const ok = [
      { name: 'speed', desired: { value: '3000' } },
      { name: 'on', desired: { value: 'false' } },
      { name: 'setpoint', desired: { value: '-1.05e1' } },
    ];
    kube.devices.set(device({ properties: ok }));
    await ctl.drained();
    expect(bus.devices[0]!.device.properties.map((p) => p.desired)).toEqual(['3000', undefined, 'false', '-1.05e1']);
    expect(kube.events).toEqual([]);

    const bad = [{ name: 'on', desired: { value: 'TRUE' } }];
    kube.devices.set(device({ properties: bad }, { generation: 2 }));
    await ctl.drained();
    kube.devices.set(device({ properties: ok }, { generation: 3 }));
    await ctl.drained();
    kube.devices.set(device({ properties: bad }, { generation: 4 }));
    await ctl.drained();
    expect(warnings(kube)).toEqual([
      'pump-1 InvalidDesiredValue: desired value of BOOLEAN property on: "TRUE" is not true or false; it is not sent',
      'pump-1 InvalidDesiredValue: desired value of BOOLEAN property on: "TRUE" is not true or false; it is not sent',
    ]);
    expect(bus.log).toHaveLength(4);
    await ctl.stop();
  });

  it("tombstones a deleted device and drops its last twin from the hub's status", async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device());
    await ctl.drained();
    const uid = kube.devices.get('default', 'pump-1')!.metadata!.uid!;
    kube.devices.delete('default', 'pump-1');
    await ctl.drained();
    expect(bus.log).toEqual(['device edge-1 default/pump-1@1', '-device edge-1 default/pump-1']);
    expect(bus.forgotten).toEqual([`device edge-1/${uid}`]);
    await ctl.stop();
  });

  it('moves a device: tombstoned on the node it left, published on a served node it goes to, tombstoned only when it goes to one not served', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1', 'edge-2']);
    kube.devices.set(device());
    await ctl.drained();
    kube.devices.set(device({ nodeName: 'edge-2' }, { generation: 2 }));
    await ctl.drained();
    kube.devices.set(device({ nodeName: 'edge-9' }, { generation: 3 }));
    await ctl.drained();
    expect(bus.log).toEqual([
      'device edge-1 default/pump-1@1',
      '-device edge-1 default/pump-1',
      'device edge-2 default/pump-1@2',
      '-device edge-2 default/pump-1',
    ]);
    await ctl.stop();
  });

  it('republishes a device made anew under the same name (a new UID)', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device());
    await ctl.drained();
    kube.devices.set(device({}, { uid: 'uid-new' }));
    await ctl.drained();
    expect(bus.devices.map((d) => d.device.uid)).toEqual(['uid-pump-1', 'uid-new']);
    await ctl.stop();
  });

  it('at takeover, republishes nothing the hub has already, publishes what changed, and tombstones what has no Device any more', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    kube.devices.set(device({}, { name: 'same' }));
    kube.devices.set(device({}, { name: 'changed', generation: 2 }));
    await ctl.start();
    // What a previous owner published (same controller, other fakes): the EdgeDevices as this one would build them.
    const before = bed();
    before.kube.deviceModels.set(PUMP_MODEL);
    before.kube.devices.set(device({}, { name: 'same' }));
    before.kube.devices.set(device({}, { name: 'changed', generation: 1 }));
    before.kube.devices.set(device({}, { name: 'gone' }));
    await before.ctl.start();
    await before.membership.take(['edge-1']);
    await before.ctl.drained();
    const desired = before.bus.devices.map((p, i) => ({
      node: 'edge-1',
      kind: 'device' as const,
      key: { namespace: 'default', name: p.device.name },
      device: decodeEdgeDevice(encode(edge.EdgeDeviceSchema, p.device)), // as read back from the hub
      seq: 40 + i,
    }));
    await before.ctl.stop();
    // and a tombstone on the hub: nothing to do for it
    const tomb = { node: 'edge-1', kind: 'device' as const, key: { namespace: 'default', name: 'old' }, seq: 50 };

    await membership.take(['edge-1'], [...desired, tomb]);
    await ctl.drained();
    expect(bus.log.sort()).toEqual(['-device edge-1 default/gone', 'device edge-1 default/changed@2']);
    await ctl.stop();
  });

  it('at handover forgets the node without tombstones; a deleted EdgeNode gets tombstones', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1', 'edge-2']);
    kube.devices.set(device({}, { name: 'a' }));
    kube.devices.set(device({ nodeName: 'edge-2' }, { name: 'b' }));
    await ctl.drained();
    await membership.release('edge-1', 'handed-over');
    kube.devices.delete('default', 'a'); // the new owner's to tombstone
    await ctl.drained();
    expect(bus.log.filter((l) => l.startsWith('-'))).toEqual([]);

    await membership.release('edge-2', 'deleted');
    await ctl.drained();
    expect(bus.log.filter((l) => l.startsWith('-'))).toEqual(['-device edge-2 default/b']);
    await ctl.stop();
  });

  it('publishes every device again under a new wire id', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device());
    await ctl.drained();
    membership.rekey('edge-1', { from: 'old', to: 'new' });
    await ctl.drained();
    expect(bus.log).toEqual(['device edge-1 default/pump-1@1', 'device edge-1 default/pump-1@1']);
    await ctl.stop();
  });

  it('retries a failed publish', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    bus.failNextPublish = new Error('hub down');
    kube.devices.set(device());
    await ctl.drained();
    expect(bus.log).toEqual([]);
    await new Promise((r) => setTimeout(r, 400)); // the queue's first backoff is 200 ms
    await ctl.drained();
    expect(bus.log).toEqual(['device edge-1 default/pump-1@1']);
    await ctl.stop();
  });

  it('never publishes what an agent would refuse: a configData too large for the wire is an InvalidDevice Warning', async () => {
    const { kube, bus, membership, ctl } = bed();
    kube.deviceModels.set(PUMP_MODEL);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.devices.set(device());
    await ctl.drained();
    kube.devices.set(device({ protocol: { protocolName: 'modbus', configData: { blob: 'x'.repeat(70_000) } } }, { generation: 2 }));
    await ctl.drained();
    expect(bus.log).toEqual(['device edge-1 default/pump-1@1', '-device edge-1 default/pump-1']);
    expect(kube.events.map((e) => e.reason)).toEqual(['InvalidDevice']);
    expect(kube.events[0]!.message).toMatch(/protocol_config_json: \d+ characters, more than 65536/);
    await ctl.stop();
  });
});
