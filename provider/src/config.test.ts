import { parseConfig, parseTaints, ConfigError } from './config.js';

describe('parseConfig', () => {
  it('applies defaults', () => {
    expect(parseConfig({ EF_PROVIDER_ID: 'provider-1' })).toEqual({
      natsUrl: 'nats://127.0.0.1:4222',
      httpPort: 10255,
      kubeletPort: 10250,
      kubeletAddress: '127.0.0.1',
      logLevel: 'info',
      hubReplicas: 1,
      namespace: 'edgefarm-system',
      identity: 'provider-1',
      shards: 16,
      shardLeaseSeconds: 15,
      nodeTaints: [{ key: 'edgefarm.io/edge', value: 'true', effect: 'NoSchedule' }],
      tombstoneTtlSeconds: 86400,
      kubeletTls: undefined,
      kubeletNodePorts: undefined,
      eventQps: 50,
    });
  });
  it('reads the kubelet API certificates and node ports', () => {
    const c = parseConfig({
      EF_PROVIDER_ID: 'p',
      EF_KUBELET_TLS_CERT: '/c.crt',
      EF_KUBELET_TLS_KEY: '/c.key',
      EF_KUBELET_CLIENT_CA: '/ca.crt',
      EF_KUBELET_NODE_PORTS: '19300-19349',
    });
    expect(c.kubeletTls).toEqual({ certFile: '/c.crt', keyFile: '/c.key', clientCAFile: '/ca.crt' });
    expect(c.kubeletNodePorts).toEqual({ from: 19300, to: 19349 });
  });
  it('makes a DNS label of the identity', () => {
    expect(parseConfig({ EF_PROVIDER_ID: 'My_Host.example' }).identity).toBe('my-host-example');
  });
  it.each([
    [{ EF_NODES: 'edge-1' }, /EF_NODES is no longer read/],
    [{ EF_HTTP_PORT: '99999' }, /not a TCP port/],
    [{ EF_KUBELET_PORT: 'x' }, /not a TCP port/],
    [{ EF_HUB_REPLICAS: '2' }, /must be 1, 3 or 5/],
    [{ EF_KUBELET_ADDRESS: 'my-host' }, /not an IP address/],
    [{ EF_SHARDS: '0' }, /not a shard count/],
    [{ EF_SHARD_LEASE_SECONDS: '1' }, /not a lease duration/],
    [{ EF_NAMESPACE: 'Bad_NS' }, /not a namespace name/],
    [{ EF_PROVIDER_ID: '___' }, /does not make a DNS label/],
    [{ EF_NODE_TAINTS: 'a=b:Sometimes' }, /key\[=value\]:Effect/],
    [{ EF_KUBELET_TLS_CERT: '/c.crt' }, /go together/],
    [{ EF_KUBELET_CLIENT_CA: '/ca.crt' }, /needs EF_KUBELET_TLS_CERT/],
    [{ EF_KUBELET_NODE_PORTS: '20-10' }, /FROM-TO/],
    [{ EF_KUBELET_NODE_PORTS: '10' }, /FROM-TO/],
    [{ EF_EVENT_QPS: '0' }, /not an event rate/],
    [{ EF_EVENT_QPS: '2.5' }, /not an event rate/],
  ])('rejects %p', (env, pattern) => {
    expect(() => parseConfig(env)).toThrow(ConfigError);
    expect(() => parseConfig(env)).toThrow(pattern);
  });
});

describe('parseTaints', () => {
  it('reads kubectl taint syntax, and none', () => {
    expect(parseTaints('dedicated=edge:NoExecute, example.com/gpu:NoSchedule')).toEqual([
      { key: 'dedicated', value: 'edge', effect: 'NoExecute' },
      { key: 'example.com/gpu', effect: 'NoSchedule' },
    ]);
    expect(parseTaints('none')).toEqual([]);
  });
});
