import { jest } from '@jest/globals';
import { create, edge } from '@edgefarm/proto';
import { silentLogger } from '@edgefarm/testing';
import { FakeKubeClient } from '../kube/fake.js';
import { DeviceStatusWriter, deviceStatus } from './status.js';
import type { Device } from './types.js';

const device = (over: { generation?: number; nodeName?: string; uid?: string } = {}): Device => ({
  apiVersion: 'devices.edgefarm.io/v1beta1',
  kind: 'Device',
  metadata: { namespace: 'plant', name: 'pump-1', uid: over.uid ?? 'u-1', generation: over.generation ?? 3 },
  spec: {
    deviceModelRef: { name: 'pump' },
    nodeName: over.nodeName ?? 'edge-1',
    protocol: { protocolName: 'modbus' },
    properties: [{ name: 'speed', desired: { value: '1200' } }, { name: 'temperature' }],
  },
});
const twin = (generation: bigint, over: Partial<{ uid: string; connected: boolean; speed: string; gen: bigint }> = {}) =>
  create(edge.DeviceStatusReportSchema, {
    uid: over.uid ?? 'u-1',
    namespace: 'plant',
    name: 'pump-1',
    generation,
    observedGeneration: 3n,
    connected: over.connected ?? true,
    lastSeenMs: 1_796_668_160_000n,
    twins: [
      {
        name: 'speed',
        reported: over.speed ?? '1200',
        reportedAtMs: 10n,
        observedDesired: over.speed ?? '1200',
        observedDesiredGeneration: over.gen ?? 3n,
      },
      { name: 'temperature', reported: '41.5', reportedAtMs: 11n },
    ],
  });

function setup(intervalMs = 5000) {
  const kube = new FakeKubeClient();
  kube.devices.items.set('plant/pump-1', device());
  let now = 1_000_000;
  const outcomes: string[] = [];
  const writer = new DeviceStatusWriter({
    kube,
    devices: kube.devices,
    log: silentLogger(),
    intervalMs,
    qps: 1000,
    now: () => now,
    outcome: (r) => outcomes.push(r),
  });
  const writes = () => kube.calls.filter((c) => c.startsWith('patchDeviceStatus'));
  return { kube, writer, outcomes, writes, tick: (ms: number) => (now += ms) };
}

describe('DeviceStatusWriter', () => {
  afterEach(() => jest.useRealTimers());

  it("writes a twin from the device's own node into its status", async () => {
    const { kube, writer, outcomes } = setup();
    writer.onReport('edge-1', twin(5n));
    await writer.flush();
    const status = kube.devices.get('plant', 'pump-1')!.status!;
    expect(status.twins?.map((t) => [t.propertyName, t.reported?.value, t.observedDesired?.metadata?.generation])).toEqual([
      ['speed', '1200', '3'],
      ['temperature', '41.5', '0'],
    ]);
    expect(status.state).toBe('online');
    expect(status.lastOnlineTime).toBe(new Date(1_796_668_160_000).toISOString());
    expect(status.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Connected', 'True', 'MapperConnected'],
      ['Synced', 'True', 'InSync'],
    ]);
    expect(outcomes).toEqual(['written']);
    writer.stop();
  });

  it('drops a twin from a node the device is not on, of another UID, or of no Device', async () => {
    const { writer, outcomes, writes } = setup();
    writer.onReport('edge-2', twin(5n));
    writer.onReport('edge-1', twin(5n, { uid: 'u-old' }));
    writer.onReport('edge-1', create(edge.DeviceStatusReportSchema, { uid: 'u-x', namespace: 'plant', name: 'nope', generation: 1n }));
    await writer.flush();
    expect(writes()).toEqual([]);
    expect(outcomes).toEqual(['foreign', 'unknown', 'unknown']);
    writer.stop();
  });

  it('coalesces twins due in one interval (the newest wins) and never goes back', async () => {
    jest.useFakeTimers();
    const { kube, writer, outcomes, writes, tick } = setup(5000);
    writer.onReport('edge-1', twin(5n, { speed: '1000' }));
    await jest.advanceTimersByTimeAsync(0);
    expect(writes()).toHaveLength(1);
    tick(1000);
    writer.onReport('edge-1', twin(6n, { speed: '1100' }));
    writer.onReport('edge-1', twin(7n, { speed: '1200' }));
    writer.onReport('edge-1', twin(4n, { speed: '1' })); // older than one written
    await jest.advanceTimersByTimeAsync(1000);
    expect(writes()).toHaveLength(1); // not due yet
    tick(4000);
    await jest.advanceTimersByTimeAsync(4000);
    expect(writes()).toHaveLength(2);
    expect(kube.devices.get('plant', 'pump-1')!.status!.twins![0]!.reported!.value).toBe('1200');
    expect(outcomes).toEqual(['written', 'coalesced', 'stale', 'written']);
    writer.stop();
  });
});

describe('deviceStatus', () => {
  it('is Synced only when every desired value is reported at the current generation; keeps transition times', () => {
    const d = device({ generation: 4 });
    const old = deviceStatus(d, twin(1n, { gen: 3n }), new Date('2026-12-07T10:00:00Z'));
    expect(old.conditions?.find((c) => c.type === 'Synced')).toMatchObject({
      status: 'False',
      reason: 'Pending',
      message: 'not yet reported at generation 4: speed',
    });
    d.status = old;
    const later = deviceStatus(d, twin(2n, { gen: 3n, connected: false }), new Date('2026-12-07T10:05:00Z'));
    expect(later.conditions?.find((c) => c.type === 'Synced')?.lastTransitionTime).toBe('2026-12-07T10:00:00.000Z');
    expect(later.conditions?.find((c) => c.type === 'Connected')).toMatchObject({
      status: 'False',
      reason: 'DeviceUnreachable',
      lastTransitionTime: '2026-12-07T10:05:00.000Z',
    });
    expect(later.state).toBe('offline');
    const synced = deviceStatus(d, twin(3n, { gen: 4n }), new Date('2026-12-07T10:06:00Z'));
    expect(synced.conditions?.find((c) => c.type === 'Synced')).toMatchObject({ status: 'True', reason: 'InSync' });
  });
});
