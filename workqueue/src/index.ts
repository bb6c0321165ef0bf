/** @edgefarm/workqueue: the keyed work queue behind every controller of the provider and the agent. */
export * from './workqueue.js';
