/**
 * @edgefarm/registrar: registration of edge nodes. The protocol between a site and the registrar (protocol.ts), the
 * fleet's Kubernetes objects of identity (fleet.ts: join tokens, revocations, the fleet ConfigMap), the site's
 * client (client.ts) and the registrar service itself (registrar.ts, server.ts; its binary is main.ts).
 */
export * from './fleet.js';
export * from './protocol.js';
export * from './signing.js';
export * from './client.js';
export * from './kube-errors.js';
export { Registrar, type RegistrarOptions, type MintNodeUser } from './registrar.js';
export { RegistrarServer, registrarApp, type RegistrarServerOptions } from './server.js';
export { RegistrarMetrics } from './metrics.js';
export { RealRegistrarKube, EDGENODE_API, type RegistrarKube, type EdgeNodeLike } from './kube.js';
export { REGISTRAR_SETTINGS, parseConfig, parseDuration, type RegistrarConfig } from './config.js';
export * from './join-dir.js';
