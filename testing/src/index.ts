/**
 * @edgefarm/testing, the integration-test harness: real nats-server hub + site leaf pairs (plain, or secured as the
 * product configures them: SecureFabric), a throwaway containerd, kube-apiserver and registry, hub-side publish/watch
 * helpers, fixtures.
 */
export * from './processes.js';
export * from './proxy.js';
export * from './nats.js';
export * from './containerd.js';
export * from './hub.js';
export * from './fixtures.js';
export * from './site.js';
export * from './registry.js';
export * from './http.js';
export * from './settings.js';
export * from './env.js';
export * from './fleet-tls.js';
export * from './raw-leaf.js';
export * from './secure-servers.js';
export * from './secure-fabric.js';
export * from './pki.js';
export * from './kube-apiserver.js';
