/** @edgefarm/proto: the edge contract, the CRI v1 subset and the names of every stream and subject. */
export * from './subjects.js';
export * from './codec.js';
export * from './cri.js';
export * as edge from './gen/edgefarm/v1/edge_pb.js';
export * as cri from './gen/runtime/v1/api_pb.js';
