/**
 * @edgefarm/streaming: the plumbing of interactive streams (logs, exec, attach, port-forward) on both sides.
 * StreamLink: one end of a session over proto's session frames, with credit-based flow control and keepalive;
 * ChunkQueue: received chunks for one consumer; `spdy`: SPDY/3.1 framing (frames, header blocks), spoken by the
 * provider's kubelet API towards the apiserver and by the agent towards containerd's streaming server.
 */
export * from './link.js';
export * from './queue.js';
export * as spdy from './spdy/index.js';
