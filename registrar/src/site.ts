/**
 * @edgefarm/registrar/site: the site's side of registration, without the service (no HTTP server, no Kubernetes
 * client): the protocol, request signing with the node's key, the client that pins the fleet CA, and the join
 * directory. What the agent's credential renewer and `edgefarm join` load.
 */
export * from './protocol.js';
export * from './signing.js';
export * from './client.js';
export * from './join-dir.js';
export { formatCreds } from '@edgefarm/identity';
