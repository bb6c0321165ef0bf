import { pino } from 'pino';
import type { ObjectKey } from '@edgefarm/proto';
import { ApiError, FakeKubeClient } from './fake.js';
import type { KubeClient } from './client.js';
import type { NodeClients } from './node-clients.js';
import { ObjectWatchError, ObjectWatches } from './object-watches.js';

const log = pino({ level: 'silent' });
const DB: ObjectKey = 'secret/default/db';

/** Every node on one fake API; records which node each client was asked for. */
function bed(retryMs = 5) {
  const kube = new FakeKubeClient();
  const asked: string[] = [];
  const nodes: NodeClients = {
    client: (node) => {
      asked.push(node);
      return Promise.resolve(kube as KubeClient);
    },
    forget: () => undefined,
  };
  const changed: ObjectKey[] = [];
  const watches = new ObjectWatches({ nodes, changed: (k) => changed.push(k), log, retryMs });
  return { kube, asked, changed, watches };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe('ObjectWatches', () => {
  it('opens one watch per object however many nodes use it, as the first of them, and closes it after the last', async () => {
    const { kube, asked, watches } = bed();
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' }, data: { pw: 'eA==' } });
    kube.secrets.set({ metadata: { namespace: 'default', name: 'other' } });
    expect((await watches.get('edge-1', DB))?.metadata?.name).toBe('db');
    expect((await watches.get('edge-2', DB))?.metadata?.name).toBe('db');
    expect(kube.objectWatches).toEqual(['secret default/db']);
    expect(asked).toEqual(['edge-1']);
    expect(watches.size).toBe(1);
    watches.release('edge-2', DB);
    expect(kube.secrets.openWatches).toBe(1);
    watches.release('edge-1', DB);
    expect(kube.secrets.openWatches).toBe(0);
    expect(watches.size).toBe(0);
  });

  it('answers undefined for an object that does not exist, and reports it once it is created', async () => {
    const { kube, changed, watches } = bed();
    expect(await watches.get('edge-1', DB)).toBeUndefined();
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' } });
    kube.secrets.set({ metadata: { namespace: 'default', name: 'unrelated' } });
    expect(changed).toEqual([DB]);
    expect((await watches.get('edge-1', DB))?.metadata?.name).toBe('db');
    kube.secrets.delete('default', 'db');
    expect(changed).toEqual([DB, DB]);
  });

  it('opens the watch again as another user when the node it was opened as lets go', async () => {
    const { kube, asked, watches } = bed();
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' } });
    await watches.get('edge-1', DB);
    await watches.get('edge-2', DB);
    watches.release('edge-1', DB);
    expect((await watches.get('edge-2', DB))?.metadata?.name).toBe('db');
    expect(asked).toEqual(['edge-1', 'edge-2']);
    expect(kube.secrets.openWatches).toBe(1);
    watches.releaseNode('edge-2');
    expect(kube.secrets.openWatches).toBe(0);
  });

  it('a watch that cannot list is an ObjectWatchError with the API error as cause; the next get tries again', async () => {
    const { kube, watches } = bed();
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' } });
    kube.failObjectWatch.set('secret default/db', new ApiError(403, 'forbidden', 'Forbidden'));
    const err = await watches.get('edge-1', DB).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ObjectWatchError);
    expect(((err as ObjectWatchError).cause as ApiError).code).toBe(403);
    expect((await watches.get('edge-1', DB))?.metadata?.name).toBe('db');
    expect(kube.objectWatches).toEqual(['secret default/db', 'secret default/db']);
  });

  it('a running watch that fails is opened again after the retry delay, and what changed meanwhile is reported', async () => {
    const { kube, changed, watches } = bed();
    let fail!: (err: unknown) => void;
    const real = kube.objectWatch.bind(kube);
    kube.objectWatch = (kind, ns, name) => {
      const w = real(kind, ns, name);
      return {
        ...w,
        start: async (h) => {
          fail = (err) => h.error?.(err);
          await w.start(h);
        },
      };
    };
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' } });
    await watches.get('edge-1', DB);
    changed.length = 0;
    fail(new ApiError(500, 'gone'));
    expect(watches.size).toBe(0);
    await tick();
    expect(watches.size).toBe(1);
    expect(kube.objectWatches).toHaveLength(2);
    expect(changed).toEqual([DB]); // the new watch's first list
    await watches.stop();
    expect(kube.secrets.openWatches).toBe(0);
  });

  it('a get in flight while the watch is opened again as another node answers from the new watch, not "missing"', async () => {
    const { kube, watches } = bed();
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' } });
    await watches.get('edge-1', DB);
    const pending = watches.get('edge-2', DB);
    watches.release('edge-1', DB); // reopened as edge-2 while edge-2's get waits
    expect((await pending)?.metadata?.name).toBe('db');
  });

  it('a get waiting on a watch that fails because it was closed for another (as another node) answers from that one', async () => {
    const { kube, watches } = bed();
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' } });
    let abort!: () => void;
    const aborted = new Promise<void>((r) => (abort = r));
    const real = kube.objectWatch.bind(kube);
    let opened = 0;
    kube.objectWatch = (kind, ns, name) => {
      const w = real(kind, ns, name);
      if (opened++ > 0) return w;
      // The first watch is still listing when it is closed; its list then fails (an aborted request).
      return {
        ...w,
        start: async (h) => {
          await aborted;
          h.error?.(new Error('aborted'));
        },
      };
    };
    const first = watches.get('edge-1', DB).catch((e: unknown) => e);
    const pending = watches.get('edge-2', DB);
    await tick();
    watches.release('edge-1', DB); // opened again as edge-2
    abort();
    expect((await pending)?.metadata?.name).toBe('db');
    await first;
  });
});
