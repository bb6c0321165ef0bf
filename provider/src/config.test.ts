import { parseConfig, ConfigError } from './config.js';

describe('parseConfig', () => {
  it('applies defaults', () => {
    expect(parseConfig({ EF_NODES: 'edge-1, edge-2' })).toEqual({
      natsUrl: 'nats://127.0.0.1:4222',
      nodes: ['edge-1', 'edge-2'],
      httpPort: 10255,
      kubeletPort: 10250,
      kubeletAddress: '127.0.0.1',
      logLevel: 'info',
      hubReplicas: 1,
    });
  });
  it.each([
    [{}, /EF_NODES is required/],
    [{ EF_NODES: 'Edge_1' }, /not a valid Kubernetes node name/],
    [{ EF_NODES: 'a,a' }, /twice/],
    [{ EF_NODES: 'a', EF_HTTP_PORT: '99999' }, /not a TCP port/],
    [{ EF_NODES: 'a', EF_KUBELET_PORT: 'x' }, /not a TCP port/],
    [{ EF_NODES: 'a', EF_HUB_REPLICAS: '2' }, /must be 1, 3 or 5/],
    [{ EF_NODES: 'a', EF_KUBELET_ADDRESS: 'my-host' }, /not an IP address/],
  ])('rejects %p', (env, pattern) => {
    expect(() => parseConfig(env)).toThrow(ConfigError);
    expect(() => parseConfig(env)).toThrow(pattern);
  });
});
