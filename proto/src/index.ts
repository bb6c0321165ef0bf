/**
 * @edgefarm/proto: the edge contract, the CRI v1 subset, the names of every stream and subject, and the few
 * dependency-free utilities both sides share (the keyed work queue, SPDY/3.1 framing).
 */
export * from './subjects.js';
export * from './codec.js';
export * from './cri.js';
export * from './workqueue.js';
export * as edge from './gen/edgefarm/v1/edge_pb.js';
export * as cri from './gen/runtime/v1/api_pb.js';
export * from './streams/frames.js';
export * from './streams/link.js';
export * from './streams/queue.js';
export * as spdy from './spdy/index.js';
