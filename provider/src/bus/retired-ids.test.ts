import { LEVEL, recordingLogger } from '@edgefarm/testing';
import { FakeMembership } from '../membership/fake.js';
import { FakeBus } from './fake.js';
import { RetiredWireIds } from './retired-ids.js';

const K1 = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const K2 = 'UBQ5SCOK7A6WL5ERGOBH6IXCQPLLHSSUDHXJ5PQGPM7AAJQ3NLRWUXYN';

function bed() {
  const bus = new FakeBus();
  const membership = new FakeMembership();
  const { log, records } = recordingLogger();
  const retired = new RetiredWireIds({ hub: bus, log });
  membership.subscribe(retired);
  return { bus, membership, retired, records };
}

describe('RetiredWireIds', () => {
  it('retires the old wire id only once the node was heard from under its new one', async () => {
    const b = bed();
    await b.membership.take(['edge-1']);
    b.membership.rekey('edge-1', { from: 'edge-1', to: K1 });
    b.retired.heard('edge-2'); // another node
    await b.retired.drained();
    expect(b.bus.retired).toEqual([]);
    expect(b.retired.waiting('edge-1')).toEqual(['edge-1']);
    b.retired.heard('edge-1');
    await b.retired.drained();
    expect(b.bus.retired).toEqual(['edge-1']);
    b.retired.heard('edge-1'); // nothing left
    await b.retired.drained();
    expect(b.bus.retired).toEqual(['edge-1']);
    await b.retired.stop();
  });

  it('keeps every old wire id until then, but never the one in use again', async () => {
    const b = bed();
    await b.membership.take(['edge-1']);
    b.membership.rekey('edge-1', { from: 'edge-1', to: K1 });
    b.membership.rekey('edge-1', { from: K1, to: K2 });
    b.membership.rekey('edge-1', { from: K2, to: K1 }); // back: K1 is in use again
    expect(b.retired.waiting('edge-1').sort()).toEqual([K2, 'edge-1'].sort());
    b.retired.heard('edge-1');
    await b.retired.drained();
    expect(b.bus.retired.sort()).toEqual([K2, 'edge-1'].sort());
    await b.retired.stop();
  });

  it('retries a failed retirement; retires at once when the EdgeNode is deleted; forgets (and says so) on a handover', async () => {
    const b = bed();
    await b.membership.take(['edge-1', 'edge-2', 'edge-3']);
    b.membership.rekey('edge-1', { from: 'edge-1', to: K1 });
    b.bus.failNextPublish = new Error('hub unreachable');
    b.retired.heard('edge-1');
    await new Promise((r) => setTimeout(r, 400)); // the first retry comes after 200 ms
    await b.retired.drained();
    expect(b.bus.retired).toEqual(['edge-1']);

    b.membership.rekey('edge-2', { from: 'edge-2', to: K2 });
    await b.membership.release('edge-2', 'deleted');
    await b.retired.drained();
    expect(b.bus.retired).toEqual(['edge-1', 'edge-2']);

    b.membership.rekey('edge-3', { from: 'edge-3', to: 'UDB5BHRG6F5TG454D4FGAXYL4DG2RWBDXK6HWHZY7FT3DOCKVZX22ANE' });
    await b.membership.release('edge-3', 'handed-over');
    expect(b.retired.waiting('edge-3')).toEqual([]);
    expect(b.records.some((r) => r.level === LEVEL.warn && /old ones stay on the hub/.test(String(r.msg)))).toBe(true);
    await b.retired.stop();
  });
});
