/**
 * @edgefarm/cri: typed gRPC clients of the container runtime (CRI v1: RuntimeService and ImageService) over a unix
 * socket. The messages are proto's CRI subset (`cri` from @edgefarm/proto, upstream field numbers).
 */
export * from './client.js';
