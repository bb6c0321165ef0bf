import { create, toBinary } from '@bufbuild/protobuf';
import type { NatsConnection } from '@nats-io/transport-node';
import { edge, parseRpcSubject, rpcSubjects } from '@edgefarm/proto';
import { silentLogger } from '@edgefarm/testing';
import { NodeIdentities } from '../membership/identities.js';
import { isEdgeStreamError } from './edge-streams.js';
import { NatsEdgeStreams } from './nats-streams.js';

const KEY = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';

/** The hub connection as the transport uses it: records subscriptions and requests; the edge answers `reply`. */
function fakeHub(reply: (subject: string) => edge.StreamReply) {
  const subscribed: string[] = [];
  const requested: string[] = [];
  const nc = {
    subscribe: (subject: string) => {
      subscribed.push(subject);
      return { unsubscribe: () => undefined, async *[Symbol.asyncIterator]() {} };
    },
    publish: () => undefined,
    request: async (subject: string) => {
      requested.push(subject);
      return { data: toBinary(edge.StreamReplySchema, reply(subject)) };
    },
  } as unknown as NatsConnection;
  return { nc, subscribed, requested };
}

describe('NatsEdgeStreams on the wire', () => {
  const ids = new NodeIdentities(silentLogger());
  ids.observe({ metadata: { name: 'edge-1' }, status: { connected: true, identity: { publicKey: KEY } } });

  it("sends requests and opens sessions under the node's wire id", async () => {
    const hub = fakeHub(() => create(edge.StreamReplySchema, { errorCode: edge.StreamErrorCode.NOT_FOUND, error: 'pod web not found' }));
    const streams = new NatsEdgeStreams({ nc: hub.nc, log: silentLogger(), offlineSince: () => undefined, wireIds: ids });
    let err: unknown;
    try {
      await streams.logs(
        { node: 'edge-1', namespace: 'default', pod: 'web', container: 'c' },
        { follow: false, previous: false, timestamps: false },
        new AbortController().signal,
      );
    } catch (e) {
      err = e;
    }
    expect(isEdgeStreamError(err)).toBe(true);
    expect(hub.requested).toEqual([rpcSubjects.of(KEY, 'logs')]);
    expect(parseRpcSubject(hub.requested[0]!).node).toBe(KEY);
    expect(hub.subscribed).toHaveLength(1);
    expect(hub.subscribed[0]).toMatch(new RegExp(`^ef\\.session\\.${KEY}\\.[A-Za-z0-9]+\\.up$`));
  });

  it('asks for stats under the wire id, and names nodes that never joined by their name', async () => {
    const hub = fakeHub(() =>
      create(edge.StreamReplySchema, { statsJson: new TextEncoder().encode('{"node":{"nodeName":"edge-1"},"pods":[]}') }),
    );
    const streams = new NatsEdgeStreams({ nc: hub.nc, log: silentLogger(), offlineSince: () => undefined, wireIds: ids });
    expect((await streams.statsSummary('edge-1', new AbortController().signal)).node.nodeName).toBe('edge-1');
    await streams.statsSummary('edge-2', new AbortController().signal);
    expect(hub.requested).toEqual([rpcSubjects.of(KEY, 'stats'), rpcSubjects.of('edge-2', 'stats')]);
  });
});
