import { pino } from 'pino';
import { FakeKubeClient } from '../kube/fake.js';
import type { DesiredRecord } from '../bus/hub.js';
import { DEFAULT_TAINT } from '../nodecontroller/node.js';
import { NodeIdentities } from './identities.js';
import { NodeMembership, type HubReads, type MembershipListener, type NodeMembershipOptions } from './membership.js';

const log = pino({ level: 'silent' });

/** An EdgeNode (shard 0 unless `edge-b*`, which hash to shard 1 of the fake ownership). */
const edgeNode = (name: string, spec = {}) => ({ metadata: { name }, spec });
const KEY_1 = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const KEY_2 = 'UBQ5SCOK7A6WL5ERGOBH6IXCQPLLHSSUDHXJ5PQGPM7AAJQ3NLRWUXYN';
/** An EdgeNode that joined with `key` (status.identity, as the registrar writes it). */
const joined = (name: string, key: string) => ({
  metadata: { name },
  spec: {},
  status: { connected: false, identity: { publicKey: key, issuedAt: '2026-01-01T00:00:00Z', expiresAt: '2026-02-01T00:00:00Z' } },
});

function bed(o: Partial<NodeMembershipOptions> = {}) {
  const kube = new FakeKubeClient();
  const held = new Set([0]);
  const timeline: string[] = [];
  const desired: DesiredRecord[] = [];
  const hub: HubReads = {
    readDesired: async (nodes) => {
      timeline.push(`readDesired ${nodes.join(',')}`);
      return desired.filter((r) => nodes.includes(r.node));
    },
    readStatus: async (nodes) => {
      timeline.push(`readStatus ${nodes.join(',')}`);
    },
  };
  /** EdgeNodes the watch cache has not seen (a lagging watch): the API has them. */
  const unseen = new Set<string>();
  const watch = kube.edgeNodeWatch();
  const identities = new NodeIdentities(log);
  const membership = new NodeMembership({
    kube,
    identities,
    edgeNodes: {
      ...watch,
      get: (ns, name) => (unseen.has(name) ? undefined : watch.get(ns, name)),
      list: () => watch.list().filter((en) => !unseen.has(en.metadata!.name!)),
    },
    shards: { shardOf: (node) => (node.startsWith('edge-b') ? 1 : 0), owns: (shard) => held.has(shard) },
    hub,
    log,
    defaultTaints: [DEFAULT_TAINT],
    resyncMs: 600_000,
    retryMs: 20,
    ...o,
  });
  /** A listener that writes what it is told, and whether the node is served at that moment, to the timeline. */
  const listener = (id: string): MembershipListener => ({
    taking: (t) =>
      timeline.push(
        `${id} taking ${t.nodes.map((n) => n.name).join(',')} desired=${t.desired.length} served=${membership.served().join(',')}`,
      ),
    taken: (nodes) => timeline.push(`${id} taken ${nodes.join(',')}`),
    policyChanged: (node, policy) => timeline.push(`${id} policy ${node} ${JSON.stringify(policy.labels)}`),
    released: (node, reason) => void timeline.push(`${id} released ${node} ${reason} served=${membership.serves(node)}`),
    rekeyed: (node, { from, to }) => void timeline.push(`${id} rekeyed ${node} ${from}->${to} bus=${identities.wireId(node)}`),
  });
  membership.subscribe(listener('a'));
  membership.subscribe(listener('b'));
  return { kube, held, unseen, timeline, desired, hub, membership, listener, identities };
}

describe('NodeMembership', () => {
  const running: NodeMembership[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((m) => m.stop()));
  });
  const started = async (b: ReturnType<typeof bed>) => {
    running.push(b.membership);
    await b.membership.start();
    return b;
  };

  it("takes the EdgeNodes of the shards it holds: the hub's desired state first, served, then the last status, then taken", async () => {
    const b = await started(bed());
    b.desired.push({ node: 'edge-1', kind: 'pod', key: { namespace: 'default', name: 'web' }, seq: 3 });
    b.kube.emitEdgeNode(edgeNode('edge-1'));
    b.kube.emitEdgeNode(edgeNode('edge-b1')); // shard 1: not held
    await b.membership.reconcile();
    expect(b.timeline).toEqual([
      'readDesired edge-1',
      'a taking edge-1 desired=1 served=edge-1',
      'b taking edge-1 desired=1 served=edge-1',
      'readStatus edge-1',
      'a taken edge-1',
      'b taken edge-1',
    ]);
    expect(b.membership.served()).toEqual(['edge-1']);
    expect(b.membership.serves('edge-b1')).toBe(false);
  });

  it('says taken even when reading the last status failed, and retries a failed reconcile', async () => {
    const b = await started(bed());
    const readStatus = b.hub.readStatus.bind(b.hub);
    b.hub.readStatus = async () => {
      b.hub.readStatus = readStatus;
      throw new Error('hub unreachable');
    };
    b.kube.emitEdgeNode(edgeNode('edge-1'));
    await b.membership.reconcile();
    expect(b.timeline.slice(-2)).toEqual(['a taken edge-1', 'b taken edge-1']);

    const readDesired = b.hub.readDesired.bind(b.hub);
    b.hub.readDesired = async () => {
      b.hub.readDesired = readDesired;
      throw new Error('hub unreachable');
    };
    b.kube.emitEdgeNode(edgeNode('edge-2'));
    await b.membership.reconcile();
    expect(b.membership.serves('edge-2')).toBe(false); // nothing told, nothing served
    await new Promise((r) => setTimeout(r, 60)); // the retry
    await b.membership.reconcile();
    expect(b.membership.serves('edge-2')).toBe(true);
  });

  it('gives a node up as handed over while its EdgeNode exists, and as deleted only once the API confirms it is gone', async () => {
    const b = await started(bed());
    b.kube.emitEdgeNode(edgeNode('edge-1'));
    b.kube.emitEdgeNode(edgeNode('edge-2'));
    b.kube.emitEdgeNode(edgeNode('edge-3'));
    await b.membership.reconcile();
    b.timeline.length = 0;

    b.held.clear(); // shard lost: the EdgeNodes are still there
    await b.membership.reconcile();
    expect(b.timeline.filter((l) => l.startsWith('a'))).toEqual([
      'a released edge-1 handed-over served=false',
      'a released edge-2 handed-over served=false',
      'a released edge-3 handed-over served=false',
    ]);
    expect(b.kube.calls.filter((c) => c.startsWith('getEdgeNode'))).toEqual([]); // the cache said enough

    b.held.add(0);
    await b.membership.reconcile();
    b.timeline.length = 0;
    // Gone from the cache, but the API still has edge-2 (a watch that lags): handed over, never deleted.
    b.unseen.add('edge-2');
    b.kube.emitEdgeNodeDelete('edge-3');
    await b.membership.reconcile();
    expect(b.timeline.filter((l) => l.startsWith('a'))).toEqual([
      'a released edge-2 handed-over served=false',
      'a released edge-3 deleted served=false',
    ]);
    expect(b.kube.calls.filter((c) => c.startsWith('getEdgeNode'))).toEqual(['getEdgeNode edge-2', 'getEdgeNode edge-3']);
  });

  it('tells every listener of a release in the same tick, then waits for all of them', async () => {
    const b = await started(bed());
    let finish!: () => void;
    const slow = new Promise<void>((r) => (finish = r));
    const order: string[] = [];
    b.membership.subscribe({ released: () => (order.push('slow told'), slow.then(() => void order.push('slow done'))) });
    b.membership.subscribe({ released: () => void order.push('last told') });
    b.kube.emitEdgeNode(edgeNode('edge-1'));
    await b.membership.reconcile();
    b.held.clear();
    const done = b.membership.reconcile();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['slow told', 'last told']);
    finish();
    await done;
    expect(order).toEqual(['slow told', 'last told', 'slow done']);
  });

  it('announces a policy change of a served node once', async () => {
    const b = await started(bed());
    b.kube.emitEdgeNode(edgeNode('edge-1'));
    await b.membership.reconcile();
    b.timeline.length = 0;
    b.kube.emitEdgeNode(edgeNode('edge-1', { labels: { site: 'a' } }));
    await b.membership.reconcile();
    b.kube.emitEdgeNode(edgeNode('edge-1', { labels: { site: 'a' } })); // a new resourceVersion, the same policy
    await b.membership.reconcile();
    expect(b.timeline).toEqual(['a policy edge-1 {"site":"a"}', 'b policy edge-1 {"site":"a"}']);
  });

  it('decommissions a served EdgeNode that is being deleted (finalizers keep it in the API): from the cache or the API', async () => {
    const b = await started(bed());
    b.kube.emitEdgeNode(edgeNode('edge-1'));
    b.kube.emitEdgeNode(edgeNode('edge-2'));
    await b.membership.reconcile();
    b.timeline.length = 0;
    // The watch shows the deletionTimestamp: deleted, without asking the API.
    b.kube.emitEdgeNode({ metadata: { name: 'edge-1', deletionTimestamp: new Date(), finalizers: ['example.com/keep'] } });
    // The watch lags, the API has it terminating: deleted too.
    b.unseen.add('edge-2');
    b.kube.edgeNodes.set('edge-2', { metadata: { name: 'edge-2', deletionTimestamp: new Date(), finalizers: ['example.com/keep'] } });
    await b.membership.reconcile();
    expect(b.timeline.filter((l) => l.startsWith('a'))).toEqual([
      'a released edge-1 deleted served=false',
      'a released edge-2 deleted served=false',
    ]);
    expect(b.kube.calls.filter((c) => c.startsWith('getEdgeNode'))).toEqual(['getEdgeNode edge-2']);
    expect(b.membership.served()).toEqual([]);
  });

  it("names nodes by their key from the watch event on, and announces a served node's new wire id once", async () => {
    const b = await started(bed());
    b.kube.emitEdgeNode(edgeNode('edge-1'));
    await b.membership.reconcile();
    expect(b.identities.wireId('edge-1')).toBe('edge-1');
    b.timeline.length = 0;

    b.kube.emitEdgeNode(joined('edge-1', KEY_1)); // joined: the bus names it by its key at once
    expect(b.identities.wireId('edge-1')).toBe(KEY_1);
    expect(b.identities.nodeOf(KEY_1)).toBe('edge-1');
    expect(b.identities.nodeOf('edge-1')).toBeUndefined();
    await b.membership.reconcile();
    b.kube.emitEdgeNode(joined('edge-1', KEY_1)); // a status update that keeps the key
    await b.membership.reconcile();
    b.kube.emitEdgeNode(joined('edge-1', KEY_2)); // joined again
    await b.membership.reconcile();
    expect(b.timeline).toEqual([
      `a rekeyed edge-1 edge-1->${KEY_1} bus=${KEY_1}`,
      `b rekeyed edge-1 edge-1->${KEY_1} bus=${KEY_1}`,
      `a rekeyed edge-1 ${KEY_1}->${KEY_2} bus=${KEY_2}`,
      `b rekeyed edge-1 ${KEY_1}->${KEY_2} bus=${KEY_2}`,
    ]);
    expect(b.identities.nodeOf(KEY_1)).toBeUndefined();
  });

  it('takes a joined node on under its key, and announces no rekey for it', async () => {
    const b = await started(bed());
    b.kube.emitEdgeNode(joined('edge-1', KEY_1));
    await b.membership.reconcile();
    await b.membership.reconcile();
    expect(b.timeline.some((l) => l.includes('rekeyed'))).toBe(false);
    expect(b.identities.wireId('edge-1')).toBe(KEY_1);
  });

  it('does not serve an EdgeNode being deleted', async () => {
    const b = await started(bed());
    b.kube.emitEdgeNode({ metadata: { name: 'edge-1', deletionTimestamp: new Date() } });
    await b.membership.reconcile();
    expect(b.membership.served()).toEqual([]);
  });

  it('coalesces the requests made while a reconcile runs into one more', async () => {
    const b = await started(bed());
    let lists = 0;
    const watch = b.kube.edgeNodeWatch();
    const list = watch.list.bind(watch);
    (b.membership as unknown as { o: { edgeNodes: { list: () => unknown } } }).o.edgeNodes.list = () => (lists++, list());
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const readDesired = b.hub.readDesired.bind(b.hub);
    b.hub.readDesired = async (nodes) => {
      await gate;
      return readDesired(nodes);
    };
    b.kube.emitEdgeNode(edgeNode('edge-1')); // one reconcile, held at readDesired
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 5; i++) void b.membership.reconcile();
    release();
    await b.membership.reconcile();
    expect(lists).toBe(2);
  });

  it('stops its timers and the watch: no reconcile after stop', async () => {
    const b = bed({ resyncMs: 10 });
    await b.membership.start();
    b.kube.emitEdgeNode(edgeNode('edge-1'));
    await b.membership.stop();
    const reads = b.timeline.length;
    b.kube.emitEdgeNode(edgeNode('edge-2'));
    await new Promise((r) => setTimeout(r, 50));
    expect(b.timeline.length).toBe(reads);
  });
});
