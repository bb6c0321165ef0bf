// StreamLink.receive (link.ts) fed hostile session frames: it never throws (a bad frame ends the session with a
// protocol error), never holds more than its receive window, and a session it ended stays ended.
import { fc, fuzzProperty, mutatedBytes } from '@edgefarm/testing/fuzz';
import { Channel, encodeFrame, type Frame } from '@edgefarm/proto';
import { StreamLink } from './link.js';

const channel = fc.constantFrom(Channel.stdin, Channel.stdout, Channel.stderr);
const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ kind: fc.constant('data' as const), channel, data: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ kind: fc.constant('eof' as const), channel }),
  fc.record({ kind: fc.constant('credit' as const), bytes: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  fc.record({
    kind: fc.constant('resize' as const),
    width: fc.integer({ min: 0, max: 65535 }),
    height: fc.integer({ min: 0, max: 65535 }),
  }),
  fc.constant({ kind: 'ping' as const }),
  fc.record({
    kind: fc.constant('end' as const),
    exitCode: fc.integer({ min: 0, max: 255 }),
    error: fc.option(fc.string(), { nil: undefined }),
  }),
);

describe('StreamLink under fuzzing', () => {
  it('receive never throws, never buffers beyond the window, ends on bad frames', () => {
    const WINDOW = 1024;
    fuzzProperty(
      'streaming StreamLink.receive',
      [fc.array(mutatedBytes(frame.map((f) => encodeFrame(f))), { maxLength: 24 })],
      (frames) => {
        const sent: Uint8Array[] = [];
        const link = new StreamLink({
          send: (f) => sent.push(f),
          recvWindow: WINDOW,
          sendWindow: WINDOW,
          inputs: [Channel.stdin],
          peer: 'the fuzzer',
        });
        let resizes = 0;
        link.onResize = () => resizes++;
        for (const f of frames) {
          link.receive(f);
          if (link.stats.bufferedBytes > WINDOW) return false;
        }
        link.end({ exitCode: 0 });
        return link.ended && resizes <= frames.length;
      },
    );
  });
});
