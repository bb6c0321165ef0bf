import { hostname } from 'node:os';
import { parseConfig, parseTaints, ConfigError, PROVIDER_SETTINGS } from './config.js';

describe('parseConfig', () => {
  it('applies defaults', () => {
    expect(parseConfig({ EF_PROVIDER_ID: 'provider-1' })).toEqual({
      natsUrl: 'nats://127.0.0.1:4222',
      natsCreds: undefined,
      natsCaFile: undefined,
      httpPort: 10255,
      kubeletPort: 10250,
      kubeletAddress: '127.0.0.1',
      kubeletMaxSessions: 1024,
      kubeletStreamingIdleTimeoutSeconds: 14400,
      metricsAuth: false,
      logLevel: 'info',
      hubReplicas: 1,
      hubDesiredMaxMiB: 4096,
      hubStatusMaxMiB: 1024,
      namespace: 'edgefarm-system',
      identity: 'provider-1',
      shards: 16,
      shardLeaseSeconds: 15,
      nodeTaints: [{ key: 'edgefarm.io/edge', value: 'true', effect: 'NoSchedule' }],
      tombstoneTtlSeconds: 86400,
      kubeletTls: undefined,
      kubeletNodePorts: undefined,
      eventQps: 50,
      deviceStatusIntervalSeconds: 5,
      deviceStatusQps: 20,
      nodeCredentialSeconds: 86400,
      nodeCredentialTimeoutSeconds: 60,
    });
  });
  it('reads every setting', () => {
    expect(
      parseConfig({
        EF_NATS_URL: 'nats://10.0.0.1:4222,nats://10.0.0.2:4222',
        EF_HTTP_PORT: '16080',
        EF_KUBELET_PORT: '16250',
        EF_KUBELET_ADDRESS: '10.0.0.9',
        EF_LOG_LEVEL: 'debug',
        EF_HUB_REPLICAS: '3',
        EF_NAMESPACE: 'ef',
        EF_PROVIDER_ID: 'p-2',
        EF_SHARDS: '4',
        EF_SHARD_LEASE_SECONDS: '30',
        EF_NODE_TAINTS: 'none',
        EF_TOMBSTONE_TTL_SECONDS: '30',
        EF_EVENT_QPS: '5',
        EF_HUB_DESIRED_MAX_MIB: '64',
        EF_HUB_STATUS_MAX_MIB: '32',
      }),
    ).toMatchObject({
      natsUrl: 'nats://10.0.0.1:4222,nats://10.0.0.2:4222',
      httpPort: 16080,
      kubeletPort: 16250,
      kubeletAddress: '10.0.0.9',
      logLevel: 'debug',
      hubReplicas: 3,
      namespace: 'ef',
      identity: 'p-2',
      shards: 4,
      shardLeaseSeconds: 30,
      nodeTaints: [],
      tombstoneTtlSeconds: 30,
      eventQps: 5,
      hubDesiredMaxMiB: 64,
      hubStatusMaxMiB: 32,
    });
  });
  it("reads the hub users' creds files and the fleet CA, and refuses one creds file without the other", () => {
    const c = parseConfig({
      EF_PROVIDER_ID: 'p',
      EF_NATS_DESIRED_CREDS: '/etc/edgefarm/provider-desired.creds',
      EF_NATS_CLOUD_CREDS: '/etc/edgefarm/provider-cloud.creds',
      EF_NATS_CA_FILE: '/etc/edgefarm/ca.pem',
    });
    expect(c.natsCreds).toEqual({ desired: '/etc/edgefarm/provider-desired.creds', cloud: '/etc/edgefarm/provider-cloud.creds' });
    expect(c.natsCaFile).toBe('/etc/edgefarm/ca.pem');
    expect(parseConfig({ EF_PROVIDER_ID: 'p', EF_NATS_CA_FILE: '/ca.pem' }).natsCreds).toBeUndefined();
    expect(() => parseConfig({ EF_PROVIDER_ID: 'p', EF_NATS_DESIRED_CREDS: '/d.creds' })).toThrow(/go together/);
    expect(() => parseConfig({ EF_PROVIDER_ID: 'p', EF_NATS_CLOUD_CREDS: '/c.creds' })).toThrow(/go together/);
    expect(() => parseConfig({ EF_PROVIDER_ID: 'p', EF_NATS_CA_FILE: 'ca.pem' })).toThrow(/EF_NATS_CA_FILE="ca.pem"/);
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
  it('falls back to the downward API variables, then to the host', () => {
    expect(parseConfig({ POD_NAME: 'edgefarm-provider-7d9f', POD_IP: '10.1.2.3' })).toMatchObject({
      identity: 'edgefarm-provider-7d9f',
      kubeletAddress: '10.1.2.3',
    });
    expect(parseConfig({}).identity).toBe(parseConfig({ EF_PROVIDER_ID: hostname() }).identity);
    expect(parseConfig({ EF_PROVIDER_ID: 'x', POD_NAME: 'y' }).identity).toBe('x');
  });
  it.each([
    [{ EF_NODES: 'edge-1' }, /EF_NODES is no longer read: the provider serves every EdgeNode/],
    [{ EF_HTTP_PORT: '99999' }, /EF_HTTP_PORT="99999": expected TCP port/],
    [{ EF_KUBELET_PORT: 'x' }, /EF_KUBELET_PORT="x": expected TCP port/],
    [{ EF_HUB_REPLICAS: '2' }, /EF_HUB_REPLICAS="2": must be 1, 3 or 5/],
    [{ EF_KUBELET_ADDRESS: 'my-host' }, /EF_KUBELET_ADDRESS="my-host": is not an IP address/],
    [{ POD_IP: 'my-host' }, /EF_KUBELET_ADDRESS \(unset\) default "my-host": is not an IP address/],
    [{ EF_SHARDS: '0' }, /EF_SHARDS="0": expected integer 1-1024/],
    [{ EF_SHARD_LEASE_SECONDS: '1' }, /EF_SHARD_LEASE_SECONDS="1": expected integer 3-300/],
    [{ EF_NAMESPACE: 'Bad_NS' }, /not a namespace name/],
    [{ EF_PROVIDER_ID: '___' }, /EF_PROVIDER_ID="___": does not make a DNS label/],
    [{ EF_NODE_TAINTS: 'a=b:Sometimes' }, /key\[=value\]:Effect/],
    [{ EF_KUBELET_TLS_CERT: '/c.crt' }, /go together/],
    [{ EF_KUBELET_CLIENT_CA: '/ca.crt' }, /needs EF_KUBELET_TLS_CERT/],
    [{ EF_KUBELET_NODE_PORTS: '20-10' }, /FROM-TO/],
    [{ EF_KUBELET_NODE_PORTS: '10' }, /FROM-TO/],
    [{ EF_EVENT_QPS: '0' }, /EF_EVENT_QPS="0"/],
    [{ EF_EVENT_QPS: '2.5' }, /EF_EVENT_QPS="2.5"/],
    [{ EF_LOG_LEVEL: 'verbose' }, /EF_LOG_LEVEL="verbose": expected one of fatal, error/],
    [{ EF_TOMBSTONE_TTL_SECONDS: '5' }, /EF_TOMBSTONE_TTL_SECONDS="5"/],
    [{ EF_KUBELET_SERVING_CSR: '1', EF_KUBELET_TLS_CERT: 'c', EF_KUBELET_TLS_KEY: 'k' }, /exclude each other/],
    [{ EF_KUBELET_SERVING_CSR: 'yes' }, /EF_KUBELET_SERVING_CSR="yes"/],
    [{ EF_KUBELET_CLIENT_CA: 'ca' }, /or EF_KUBELET_SERVING_CSR=1/],
  ])('rejects %p', (env, pattern) => {
    const e = { EF_PROVIDER_ID: 'p', ...env };
    expect(() => parseConfig(e)).toThrow(ConfigError);
    expect(() => parseConfig(e)).toThrow(pattern);
  });
  it('takes the kubelet serving certificate from the cluster with EF_KUBELET_SERVING_CSR=1', () => {
    expect(parseConfig({ EF_PROVIDER_ID: 'p', EF_KUBELET_SERVING_CSR: '1', EF_KUBELET_CLIENT_CA: 'ca' }).kubeletTls).toEqual({
      fromCluster: true,
      clientCAFile: 'ca',
    });
  });
  it('names every problem at once', () => {
    expect(() => parseConfig({ EF_PROVIDER_ID: 'p', EF_HTTP_PORT: '0', EF_SHARDS: 'x', EF_NODES: 'a' })).toThrow(
      /EF_NODES is no longer read.*; EF_SHARDS="x".*; EF_HTTP_PORT="0"/,
    );
  });
  it('declares every setting it reads, each with a meaning', () => {
    const names = PROVIDER_SETTINGS.rows().map((r) => r.name);
    expect(names).toHaveLength(34);
    for (const r of PROVIDER_SETTINGS.rows()) expect(r.doc).not.toBe('');
  });
});

describe('parseTaints', () => {
  it('reads kubectl taint syntax, and none', () => {
    expect(parseTaints('dedicated=edge:NoExecute, example.com/gpu:NoSchedule')).toEqual([
      { key: 'dedicated', value: 'edge', effect: 'NoExecute' },
      { key: 'example.com/gpu', effect: 'NoSchedule' },
    ]);
    expect(parseTaints('none')).toEqual([]);
    expect(parseTaints(undefined)).toEqual([{ key: 'edgefarm.io/edge', value: 'true', effect: 'NoSchedule' }]);
  });
  it('refuses a bad item with a ConfigError', () => {
    expect(() => parseTaints('a:Never')).toThrow(ConfigError);
  });
});
