/** @edgefarm/edge-agent as a library: the Agent and the contracts of its parts (the binary is main.ts). */
export { Agent, type AgentDeps, type AgentParts } from './agent.js';
export { configFromEnv, ConfigError, isConfigError, type AgentConfig } from './config.js';
export * from './runtime/types.js';
export { MemoryPodRuntime } from './runtime/memory.js';
export { CriPodRuntime } from './runtime/cri-runtime.js';
export { Labels, Annotations } from './runtime/labels.js';
export { computePodActions, describePodActions, type PodActions } from './reconcile/actions.js';
export { buildPodStatus } from './status/build.js';
export { siteDesiredStreamConfig, outboxStreamConfig, ensureSiteStreams } from './bus/site-streams.js';
export { AgentMetrics, type AgentStateSource } from './metrics/metrics.js';
export { DeviceBoard, type DeviceSource } from './devices/board.js';
export { DeviceTwins } from './devices/twins.js';
export { JetStreamOutbox } from './bus/outbox.js';
