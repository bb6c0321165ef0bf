/**
 * StreamingServer's admission with hand-written fakes (a NATS connection whose subscription the test feeds, a CRI
 * runtime and a stats collector that hold every call until released): the cap of concurrent sessions holds under a
 * burst, and stats requests are bounded too. Sessions end to end: provider/src/kubelet/nats-streams.int.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import type { RuntimeServiceClient } from '@edgefarm/cri';
import { edge, rpcSubjects, type RpcOp } from '@edgefarm/proto';
import { pino } from 'pino';
import { StreamingServer } from './server.js';
import type { StatsCollector } from './stats.js';

/** A subscription the test pushes messages into. */
class FeedSub {
  private readonly queue: Msg[] = [];
  private wake?: () => void;
  private ended = false;
  push(m: Msg): void {
    this.queue.push(m);
    this.wake?.();
  }
  unsubscribe(): void {
    this.ended = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<Msg> {
    for (;;) {
      while (this.queue.length > 0) yield this.queue.shift()!;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

function rig(options: ConstructorParameters<typeof StreamingServer>[1]) {
  const sub = new FeedSub();
  let release!: () => void;
  const gate = new Promise<never>((_, reject) => (release = () => reject(new Error('released by the test'))));
  gate.catch(() => undefined);
  const held = { runtime: 0, stats: 0 };
  const nc = { subscribe: () => sub, flush: async () => undefined, publish: () => undefined } as unknown as NatsConnection;
  const hold = (what: 'runtime' | 'stats') => async () => {
    held[what]++;
    return gate;
  };
  const runtime = { listContainers: hold('runtime'), listPodSandbox: hold('runtime') } as unknown as RuntimeServiceClient;
  const stats = { summary: hold('stats') } as unknown as StatsCollector;
  const server = new StreamingServer({ nc, node: 'edge-1', wireId: 'w1', runtime, stats, log: pino({ level: 'silent' }) }, options);
  const replies: edge.StreamReply[] = [];
  let n = 0;
  const send = (op: RpcOp) => {
    const req = create(edge.StreamRequestSchema, {
      session: `s${n++}`,
      window: 65536,
      namespace: 'default',
      pod: 'web',
      container: 'app',
      op: op === 'stats' ? { case: 'stats', value: {} } : { case: 'exec', value: { command: ['id'], stdout: true } },
    });
    sub.push({
      subject: rpcSubjects.of('w1', op),
      data: toBinary(edge.StreamRequestSchema, req),
      respond: (d: Uint8Array) => {
        replies.push(fromBinary(edge.StreamReplySchema, d));
        return true;
      },
    } as unknown as Msg);
  };
  const settle = async (until: () => boolean) => {
    for (let i = 0; i < 200 && !until(); i++) await new Promise((r) => setTimeout(r, 5));
  };
  return { server, send, replies, held, release, settle };
}

describe('StreamingServer admission (issue 20)', () => {
  it('a burst of session requests passes the cap only up to it; the rest are refused at once', async () => {
    const r = rig({ maxSessions: 3 });
    await r.server.start();
    for (let i = 0; i < 20; i++) r.send('exec');
    await r.settle(() => r.replies.length >= 17);
    expect(r.replies).toHaveLength(17);
    expect(r.replies.every((x) => x.error.includes('too many streaming sessions'))).toBe(true);
    expect(r.held.runtime).toBe(3); // only the admitted ones reached CRI
    r.release();
    await r.settle(() => r.replies.length >= 20);
    // Their slots are free again: a new request gets as far as CRI.
    r.send('exec');
    await r.settle(() => r.replies.length >= 21);
    expect(r.replies.at(-1)!.error).toContain('released by the test');
    await r.server.stop();
  });

  it('bounds stats requests in flight', async () => {
    const r = rig({ maxStatsRequests: 2 });
    await r.server.start();
    for (let i = 0; i < 10; i++) r.send('stats');
    await r.settle(() => r.replies.length >= 8);
    expect(r.replies).toHaveLength(8);
    expect(r.replies.every((x) => x.error.includes('too many stats requests'))).toBe(true);
    expect(r.held.stats).toBe(2);
    r.release();
    await r.settle(() => r.replies.length >= 10);
    await r.server.stop();
  });
});
