/**
 * @edgefarm/identity: the NATS identities of an EdgeFarm fleet (decision 0008). The operator, the system account and
 * the hub's accounts (proto's HUB_ACCOUNT_LAYOUT), the users of the provider and of each node (proto's permission
 * sets), their credentials files, and the hub's and a site's server configuration.
 */
export * from './site-config.js';
