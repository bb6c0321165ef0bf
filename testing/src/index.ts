/**
 * Shared integration-test harness (exported as @edgefarm/edge-agent/testing for the provider's and e2e tests):
 * real nats-server hub + site leaf pair, a throwaway containerd, hub-side publish/watch helpers, fixtures.
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
export * from './pki.js';
export * from './kube-apiserver.js';
export * from './operator-hub.js';
