import { create, edge, encode, eventSubjects, isSubjectError, Streams } from '@edgefarm/proto';
import { eventsRoute } from './forwarder.js';

const KEY = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const OLD = 'UBQ5SCOK7A6WL5ERGOBH6IXCQPLLHSSUDHXJ5PQGPM7AAJQ3NLRWUXYN';

const event = encode(
  edge.EdgeEventSchema,
  create(edge.EdgeEventSchema, {
    id: 'e1',
    key: 'k',
    podUid: 'u',
    podNamespace: 'default',
    podName: 'p',
    type: edge.EventType.NORMAL,
    reason: 'Pulled',
    firstTimestampMs: 1n,
    lastTimestampMs: 1n,
    count: 1,
    nodeName: 'edge-1',
  }),
);

describe('eventsRoute', () => {
  it("drains the node's events stream (named by the node) to the hub subject of its wire id", () => {
    const route = eventsRoute('edge-1', KEY);
    expect(route.stream).toBe(Streams.siteEvents('edge-1'));
    const site = eventSubjects.site(KEY, 'e1');
    expect(route.target(site, event)).toEqual({ subject: eventSubjects.of(KEY, 'e1'), msgId: site });
  });

  it('refuses an event of another wire id (left from before the node joined again): its permissions would refuse it', () => {
    let err: unknown;
    try {
      eventsRoute('edge-1', KEY).target(eventSubjects.site(OLD, 'e1'), event);
    } catch (e) {
      err = e;
    }
    expect(isSubjectError(err)).toBe(true);
    expect((err as Error).message).toMatch(/names wire id UBQ5.*not this node's UAUG/);
  });
});
