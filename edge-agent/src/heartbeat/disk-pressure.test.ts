import { silentLogger } from '@edgefarm/testing';
import { Registry } from 'prom-client';
import { DiskPressureMonitor, diskPressure, freePercent, type FsReading } from './disk-pressure.js';

const reading = (kind: FsReading['kind'], availableBytes: number): FsReading => ({
  kind,
  path: `/${kind}`,
  capacityBytes: 1000,
  availableBytes,
});

describe('diskPressure', () => {
  it('is Unknown without readings, and a threshold of 0 never signals', () => {
    expect(diskPressure([], { nodefsMinFreePercent: 10, imagefsMinFreePercent: 15 }).status).toBe('Unknown');
    expect(diskPressure([reading('nodefs', 0)], { nodefsMinFreePercent: 0, imagefsMinFreePercent: 15 }).status).toBe('False');
    expect(diskPressure([reading('imagefs', 149)], { nodefsMinFreePercent: 10, imagefsMinFreePercent: 15 }).status).toBe('True');
    expect(diskPressure([reading('nodefs', 149)], { nodefsMinFreePercent: 10, imagefsMinFreePercent: 15 }).status).toBe('False');
  });

  it("is True when the filesystem beside the site's store has less than its reserve available", async () => {
    const monitor = new DiskPressureMonitor({
      nodefs: [],
      store: { path: '/state', reserveBytes: 5000 },
      imagefs: () => Promise.resolve(''),
      log: silentLogger(),
      statfs: () => Promise.resolve({ bsize: 1, blocks: 10_000, bavail: 4999 }), // 50 % available: the percentage alone is fine
    });
    expect(await monitor.condition()).toMatchObject({
      status: 'True',
      message: "edge-agent has disk pressure: nodefs /state: 4999 bytes available, below the 5000 reserved for the site's JetStream store",
    });
  });

  it('treats a filesystem without capacity as free and a negative available as none', () => {
    expect(freePercent({ capacityBytes: 0, availableBytes: 0 })).toBe(100);
    expect(freePercent({ capacityBytes: 100, availableBytes: -5 })).toBe(0);
  });

  it('exports the lowest available share per kind; an unreadable filesystem is left out', async () => {
    const registry = new Registry();
    const monitor = new DiskPressureMonitor({
      nodefs: ['/a', '/b'],
      imagefs: () => Promise.reject(new Error('runtime down')),
      log: silentLogger(),
      registry,
      statfs: (p) =>
        p === '/a'
          ? Promise.resolve({ bsize: 1, blocks: 100, bavail: 50 })
          : p === '/b'
            ? Promise.resolve({ bsize: 1, blocks: 100, bavail: 20 })
            : Promise.reject(Object.assign(new Error('EACCES'), { code: 'EACCES' })),
    });
    expect((await monitor.condition()).status).toBe('False');
    const text = await registry.getSingleMetricAsString('edgefarm_agent_filesystem_available_ratio');
    expect(text).toContain('{fs="nodefs"} 0.2');
    expect(text).not.toContain('imagefs');
  });
});
