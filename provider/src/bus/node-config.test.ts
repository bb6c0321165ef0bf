import { create, edge } from '@edgefarm/proto';
import { silentLogger } from '@edgefarm/testing';
import { FakeMembership } from '../membership/fake.js';
import { FakeBus } from './fake.js';
import { NodeConfigs } from './node-config.js';

function bed(ttl = 86_400) {
  const bus = new FakeBus();
  const membership = new FakeMembership();
  const configs = new NodeConfigs({ bus, served: membership, log: silentLogger(), tombstoneTtlSeconds: ttl });
  membership.subscribe(configs);
  return { bus, membership, configs };
}

const onHub = (node: string, ttl: bigint) => ({
  node,
  kind: 'node' as const,
  seq: 1,
  config: create(edge.NodeConfigSchema, { tombstoneTtlSeconds: ttl }),
});

describe('NodeConfigs', () => {
  it("publishes a served node's NodeConfig with the bus's tombstone TTL, unless the hub has that one already", async () => {
    const b = bed();
    await b.membership.take(['edge-1', 'edge-2', 'edge-3'], [onHub('edge-2', 86_400n), onHub('edge-3', 60n)]);
    await b.configs.drained();
    expect(b.bus.log.sort()).toEqual(['node edge-1 ttl=86400', 'node edge-3 ttl=86400']);
    await b.configs.stop();
  });

  it('publishes it again under a new wire id, and tombstones it once the EdgeNode is deleted; a handed-over node is left alone', async () => {
    const b = bed();
    await b.membership.take(['edge-1', 'edge-2'], [onHub('edge-1', 86_400n), onHub('edge-2', 86_400n)]);
    await b.configs.drained();
    expect(b.bus.log).toEqual([]);
    b.membership.rekey('edge-1', { from: 'edge-1', to: 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX' });
    await b.configs.drained();
    await b.membership.release('edge-1', 'deleted');
    await b.membership.release('edge-2', 'handed-over');
    await b.configs.drained();
    expect(b.bus.log).toEqual(['node edge-1 ttl=86400', '-node edge-1']);
    await b.configs.stop();
  });

  it('a publish begun before a rekey does not count as on the hub under the new wire id', async () => {
    const b = bed();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const publish = b.bus.publishNodeConfig.bind(b.bus);
    let calls = 0;
    b.bus.publishNodeConfig = async (node, config) => {
      if (calls++ === 0) await gate;
      return publish(node, config);
    };
    await b.membership.take(['edge-1']);
    await new Promise((r) => setImmediate(r));
    b.membership.rekey('edge-1', { from: 'edge-1', to: 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX' });
    release();
    await b.configs.drained();
    expect(calls).toBe(2);
    await b.configs.stop();
  });
});
