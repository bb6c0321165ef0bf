import { parseAckReply } from './deliveries.js';

describe('parseAckReply', () => {
  it.each([
    ['$JS.ACK.EF_DESIRED.list-x.1.42.3.1700000000000000000.7', { pending: 7 }],
    ['$JS.ACK.hub.AHASH.EF_DESIRED.list-x.1.42.3.1700000000000000000.0.r4nd0m', { pending: 0 }],
    ['$JS.ACK.hub.AHASH.EF_DESIRED.list-x.1.42.3.1700000000000000000.12', { pending: 12 }],
    [
      '$JS.ACK.EF_DESIRED.src-x.1.42.3.1700000000000000000.5@ef.desired.n.pod.default.p',
      { pending: 5, subject: 'ef.desired.n.pod.default.p' },
    ],
    [undefined, undefined],
    ['', undefined],
    ['_INBOX.abc', undefined],
    ['$JS.ACK.EF_DESIRED.c.1.2.3', undefined],
    ['$JS.ACK.EF_DESIRED.list-x.1.42.3.1700000000000000000.x', undefined],
    ['$JS.ACK.hub.AHASH.EF_DESIRED.list-x.1.42.3.1700000000000000000.99999999999999999999', undefined],
  ])('parseAckReply(%j) -> %j', (reply, want) => expect(parseAckReply(reply)).toEqual(want));
});
