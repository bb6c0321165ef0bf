/**
 * @edgefarm/proto: the edge contract and nothing else. The protobuf messages (edge: generated from
 * defs/edgefarm/v1/edge.proto; cri: the CRI v1 subset, upstream field numbers), their codecs, the frames of
 * interactive sessions, and the one module that names every stream, bucket and subject (subjects.ts).
 */
export * from './subjects.js';
export * from './deliveries.js';
export * from './codec.js';
export * from './keys.js';
export * from './permissions.js';
export * from './session-frames.js';
export * from './shards.js';
export * as edge from './gen/edgefarm/v1/edge_pb.js';
export * as cri from './gen/runtime/v1/api_pb.js';
