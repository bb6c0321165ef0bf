import { AGENT_SETTINGS, configFromEnv, isConfigError } from './config.js';

const env = {
  EF_NODE_NAME: 'edge-1',
  EF_SITE: 'plant-a',
  EF_NATS_URL: 'nats://127.0.0.1:4222',
  EF_CRI_ENDPOINT: '/run/edgefarm/dev/edge-1/containerd.sock',
  EF_NODE_IP: '10.201.1.2',
};

describe('configFromEnv', () => {
  it('builds a config with defaults', () => {
    const c = configFromEnv(env, '1.2.3');
    expect(c).toMatchObject({
      nodeName: 'edge-1',
      wireId: 'edge-1',
      logLevel: 'info',
      podLogRoot: '/var/log/edgefarm/edge-1/pods',
      cgroupParent: '/edgefarm/edge-1',
      volumeRoot: '/var/lib/edgefarm/edge-1/pods',
      stateDir: '/var/lib/edgefarm/edge-1/agent',
      resyncMs: 10_000,
      relistMs: 500,
      heartbeatMs: 5_000,
      concurrency: 4,
      restartBackoffBaseMs: 10_000,
      restartBackoffMaxMs: 300_000,
      agentVersion: '1.2.3',
    });
  });

  it('takes a NATS user public key as wire id, and the seed file when absolute', () => {
    const key = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
    const c = configFromEnv({ ...env, EF_NODE_WIRE_ID: key, EF_NATS_SEED_FILE: '/etc/edgefarm/agent.nk' }, '0');
    expect(c).toMatchObject({ nodeName: 'edge-1', wireId: key, natsSeedFile: '/etc/edgefarm/agent.nk' });
    expect(configFromEnv(env, '0').natsSeedFile).toBeUndefined();
    expect(configFromEnv({ ...env, EF_NODE_WIRE_ID: 'edge-1' }, '0').wireId).toBe('edge-1');
    expect(() => configFromEnv({ ...env, EF_NATS_SEED_FILE: 'agent.nk' }, '0')).toThrow(/EF_NATS_SEED_FILE="agent.nk"/);
  });

  it("refuses a wire id that is neither a user public key nor the node's name", () => {
    const key = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
    for (const bad of ['edge-2', key.replace('U', 'A'), key.slice(0, -1), 'edge.*', 'edge 1']) {
      expect(() => configFromEnv({ ...env, EF_NODE_WIRE_ID: bad }, '0')).toThrow(/EF_NODE_WIRE_ID/);
    }
  });

  it('takes the relist off with 0, and refuses a negative one', () => {
    expect(configFromEnv({ ...env, EF_RELIST_MS: '0' }, '0').relistMs).toBe(0);
    expect(() => configFromEnv({ ...env, EF_RELIST_MS: '-1' }, '0')).toThrow(/EF_RELIST_MS="-1"/);
  });

  it('treats empty and blank values as unset', () => {
    expect(configFromEnv({ ...env, EF_LOG_LEVEL: '', EF_RESYNC_MS: '  ' }, '0')).toMatchObject({ logLevel: 'info', resyncMs: 10_000 });
  });

  it('refuses a restart backoff cap below its base', () => {
    expect(() => configFromEnv({ ...env, EF_RESTART_BACKOFF_BASE_MS: '5000', EF_RESTART_BACKOFF_MAX_MS: '1000' }, '0')).toThrow(
      'EF_RESTART_BACKOFF_MAX_MS must not be below EF_RESTART_BACKOFF_BASE_MS',
    );
  });

  it('accepts unix:// endpoints and overrides', () => {
    const c = configFromEnv({ ...env, EF_CRI_ENDPOINT: 'unix:///run/c.sock', EF_LOG_LEVEL: 'debug', EF_HEARTBEAT_MS: '500' }, '0');
    expect(c.criEndpoint).toBe('unix:///run/c.sock');
    expect(c.heartbeatMs).toBe(500);
  });

  it('takes EF_VOLUME_DIR when absolute and refuses it otherwise', () => {
    expect(configFromEnv({ ...env, EF_VOLUME_DIR: '/srv/ef/pods/' }, '0').volumeRoot).toBe('/srv/ef/pods');
    for (const bad of ['relative/dir', '/', '/..']) {
      expect(() => configFromEnv({ ...env, EF_VOLUME_DIR: bad }, '0')).toThrow(/EF_VOLUME_DIR/);
    }
  });

  it('names every problem at once', () => {
    let err: unknown;
    try {
      configFromEnv(
        { EF_NODE_NAME: 'Bad_Name', EF_NATS_URL: 'http://x', EF_NODE_IP: '1.2.3', EF_LOG_LEVEL: 'loud', EF_RESYNC_MS: '-1' },
        '0',
      );
    } catch (e) {
      err = e;
    }
    expect(isConfigError(err)).toBe(true);
    const m = (err as Error).message;
    for (const part of [
      'EF_SITE is required',
      'EF_CRI_ENDPOINT is required',
      'EF_NODE_NAME="Bad_Name": is not a DNS subdomain',
      'EF_NATS_URL',
      'EF_NODE_IP',
      'EF_LOG_LEVEL',
      'EF_RESYNC_MS',
    ]) {
      expect(m).toContain(part);
    }
  });
});

describe('configFromEnv image GC thresholds', () => {
  it('defaults to the kubelet 85/80 and accepts overrides', () => {
    expect(configFromEnv(env, '0')).toMatchObject({ imageGcHighPercent: 85, imageGcLowPercent: 80 });
    expect(configFromEnv({ ...env, EF_IMAGE_GC_HIGH_PERCENT: '100', EF_IMAGE_GC_LOW_PERCENT: '100' }, '0')).toMatchObject({
      imageGcHighPercent: 100,
      imageGcLowPercent: 100,
    });
  });

  it.each([
    [{ EF_IMAGE_GC_HIGH_PERCENT: '101' }, 'EF_IMAGE_GC_HIGH_PERCENT="101": expected integer 0-100'],
    [{ EF_IMAGE_GC_LOW_PERCENT: 'x' }, 'EF_IMAGE_GC_LOW_PERCENT="x": expected integer 0-100'],
    [
      { EF_IMAGE_GC_HIGH_PERCENT: '70', EF_IMAGE_GC_LOW_PERCENT: '70' },
      'EF_IMAGE_GC_LOW_PERCENT (70) must be below EF_IMAGE_GC_HIGH_PERCENT (70)',
    ],
  ])('rejects %j', (over, message) => {
    expect(() => configFromEnv({ ...env, ...over }, '0')).toThrow(message);
  });
});

describe('configFromEnv container logs and disk', () => {
  it("defaults to the kubelet's 10Mi x 5 checked every 10 s, nodefs 10 %, imagefs 15 %, a 1Gi store reserve", () => {
    expect(configFromEnv(env, '0')).toMatchObject({
      containerLogMaxSizeBytes: 10 * 1024 * 1024,
      containerLogMaxFiles: 5,
      containerLogMonitorIntervalMs: 10_000,
      nodefsMinFreePercent: 10,
      imagefsMinFreePercent: 15,
      storeReserveBytes: 1024 ** 3,
    });
    expect(configFromEnv({ ...env, EF_CONTAINER_LOG_MAX_SIZE: '512Ki', EF_STORE_RESERVE: '0' }, '0')).toMatchObject({
      containerLogMaxSizeBytes: 512 * 1024,
      storeReserveBytes: 0,
    });
  });

  it.each([
    [{ EF_CONTAINER_LOG_MAX_SIZE: '10MB' }, 'EF_CONTAINER_LOG_MAX_SIZE="10MB"'],
    [{ EF_CONTAINER_LOG_MAX_SIZE: '0' }, 'must be at least 1 byte'],
    [{ EF_CONTAINER_LOG_MAX_FILES: '1' }, 'EF_CONTAINER_LOG_MAX_FILES="1": expected integer >= 2'],
    [{ EF_NODEFS_MIN_FREE_PERCENT: '100' }, 'EF_NODEFS_MIN_FREE_PERCENT="100"'],
    [{ EF_STORE_RESERVE: '-1' }, 'EF_STORE_RESERVE="-1"'],
  ])('rejects %j', (over, message) => {
    expect(() => configFromEnv({ ...env, ...over }, '0')).toThrow(message);
  });
});

describe('configFromEnv metrics', () => {
  it('defaults to 127.0.0.1:10255 and a 30 s publish; off disables the server', () => {
    expect(configFromEnv(env, '0')).toMatchObject({ metricsAddr: { host: '127.0.0.1', port: 10255 }, metricsPublishSeconds: 30 });
    expect(configFromEnv({ ...env, EF_METRICS_ADDR: 'off', EF_METRICS_PUBLISH_SECONDS: '0' }, '0')).toMatchObject({
      metricsAddr: undefined,
      metricsPublishSeconds: 0,
    });
    expect(configFromEnv({ ...env, EF_METRICS_ADDR: '[::1]:9100' }, '0').metricsAddr).toEqual({ host: '::1', port: 9100 });
    expect(configFromEnv({ ...env, EF_METRICS_ADDR: '0.0.0.0:1' }, '0').metricsAddr).toEqual({ host: '0.0.0.0', port: 1 });
    expect(configFromEnv({ ...env, EF_METRICS_ADDR: 'localhost:8080' }, '0').metricsAddr).toEqual({ host: 'localhost', port: 8080 });
  });

  it.each(['10255', ':10255', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', 'host:port', '[zz]:80', '::1:80', 'a b:80'])(
    'refuses EF_METRICS_ADDR %j',
    (bad) => {
      expect(() => configFromEnv({ ...env, EF_METRICS_ADDR: bad }, '0')).toThrow(/EF_METRICS_ADDR/);
    },
  );

  it.each(['-1', '1.5', 'x'])('refuses EF_METRICS_PUBLISH_SECONDS %j', (bad) => {
    expect(() => configFromEnv({ ...env, EF_METRICS_PUBLISH_SECONDS: bad }, '0')).toThrow(/EF_METRICS_PUBLISH_SECONDS/);
  });
});

describe('AGENT_SETTINGS', () => {
  it('declares each setting once, with a meaning', () => {
    const rows = AGENT_SETTINGS.rows();
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
    for (const r of rows) expect(r.doc).not.toBe('');
    expect(rows.map((r) => r.name)).not.toContain('EF_POD_CIDR');
  });
});
