/**
 * @edgefarm/identity: the NATS identities of an EdgeFarm fleet (decision 0008). The operator, the system account and
 * the hub's accounts (proto's HUB_ACCOUNT_LAYOUT), the users of the provider and of each node (proto's permission
 * sets), their credentials files, the hub's and a site's server configuration, and the claims push that revokes.
 */
export * from './errors.js';
export * from './keys.js';
export * from './permissions.js';
export * from './accounts.js';
export * from './users.js';
export * from './fleet.js';
export * from './push.js';
export * from './store.js';
export * from './hub-config.js';
export * from './site-config.js';
