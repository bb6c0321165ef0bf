import { desiredSubjects, edge, encode } from '@edgefarm/proto';
import { DesiredStore, type DesiredMessage } from './store.js';
import { LEVEL, fieldsOf, podSpec, recordingLogger } from '../testing/fixtures.js';

const NODE = 'node-1.example';

function msg(spec: edge.EdgePodSpec, seq: number, over: Partial<DesiredMessage> = {}): DesiredMessage {
  return {
    subject: desiredSubjects.pod(NODE, { namespace: spec.namespace, name: spec.name }),
    seq,
    data: encode(edge.EdgePodSpecSchema, spec),
    ...over,
  };
}

function setup() {
  const { log, records } = recordingLogger();
  const changes: string[] = [];
  const store = new DesiredStore(NODE, log, (k) => changes.push(k));
  return { store, changes, records };
}

describe('DesiredStore', () => {
  it('keeps the newest spec per key and notifies by key', () => {
    const { store, changes } = setup();
    const a = podSpec({ name: 'a.b', resourceVersion: '10' });
    expect(store.apply(msg(a, 1))).toEqual({ kind: 'upsert', key: 'default/a.b' });
    const a2 = podSpec({ ...fieldsOf(a), resourceVersion: '11' });
    expect(store.apply(msg(a2, 2)).kind).toBe('upsert');
    expect(store.get('default/a.b')?.resourceVersion).toBe('11');
    expect(changes).toEqual(['default/a.b', 'default/a.b']);
    expect(store.appliedSequence).toBe(2);
  });

  it('ignores a spec older than the one held for the same UID', () => {
    const { store, changes, records } = setup();
    const a = podSpec({ resourceVersion: '200' });
    store.apply(msg(a, 1));
    const older = podSpec({ ...fieldsOf(a), resourceVersion: '99' });
    expect(store.apply(msg(older, 2))).toMatchObject({ kind: 'stale' });
    expect(store.get(`default/${a.name}`)?.resourceVersion).toBe('200');
    expect(changes).toHaveLength(1);
    expect(store.appliedSequence).toBe(2);
    expect(records.some((r) => r.msg === 'ignoring stale desired pod')).toBe(true);
  });

  it('compares resourceVersions as numbers, not strings', () => {
    const { store } = setup();
    const a = podSpec({ resourceVersion: '9' });
    store.apply(msg(a, 1));
    expect(store.apply(msg(podSpec({ ...fieldsOf(a), resourceVersion: '10' }), 2)).kind).toBe('upsert');
  });

  it('accepts an older resourceVersion for a different UID (pod re-created under the same name)', () => {
    const { store } = setup();
    const a = podSpec({ resourceVersion: '500' });
    store.apply(msg(a, 1));
    const b = podSpec({ name: a.name, uid: 'other-uid', resourceVersion: '400' });
    expect(store.apply(msg(b, 2)).kind).toBe('upsert');
    expect(store.get(`default/${a.name}`)?.uid).toBe('other-uid');
  });

  it('does not let a later spec take back a deletion of the same UID', () => {
    const { store } = setup();
    const a = podSpec({ resourceVersion: '5', deleting: true });
    store.apply(msg(a, 1));
    expect(store.apply(msg(podSpec({ ...fieldsOf(a), resourceVersion: '6', deleting: false }), 2)).kind).toBe('stale');
    expect(store.get(`default/${a.name}`)?.deleting).toBe(true);
  });

  it('reports an identical re-delivery as unchanged, without notifying', () => {
    const { store, changes } = setup();
    const a = podSpec();
    store.apply(msg(a, 1));
    expect(store.apply(msg(a, 1)).kind).toBe('unchanged');
    expect(changes).toHaveLength(1);
  });

  it('deletes on a tombstone (DEL or PURGE, empty payload) and notifies', () => {
    const { store, changes } = setup();
    const a = podSpec();
    const b = podSpec();
    store.apply(msg(a, 1));
    store.apply(msg(b, 2));
    expect(store.apply(msg(a, 3, { data: new Uint8Array(), operation: 'DEL' }))).toEqual({ kind: 'delete', key: `default/${a.name}` });
    expect(store.apply(msg(b, 4, { data: new Uint8Array(), operation: 'PURGE' })).kind).toBe('delete');
    expect(store.size).toBe(0);
    expect(changes).toEqual([`default/${a.name}`, `default/${b.name}`, `default/${a.name}`, `default/${b.name}`]);
  });

  it('notifies a tombstone for a key it never held (the runtime may still have the pod)', () => {
    const { store, changes } = setup();
    const a = podSpec();
    expect(store.apply(msg(a, 1, { data: new Uint8Array(), operation: 'DEL' })).kind).toBe('delete');
    expect(changes).toEqual([`default/${a.name}`]);
  });

  it('logs and skips undecodable payloads without losing the others', () => {
    const { store, records } = setup();
    const a = podSpec();
    const garbage = msg(a, 1, { data: new Uint8Array([0xff, 0xff, 0xff, 0x01]) });
    expect(store.apply(garbage).kind).toBe('invalid');
    const noContainers = msg(podSpec({ ...fieldsOf(a), containers: [] }), 2);
    expect(store.apply(noContainers).kind).toBe('invalid');
    expect(store.apply(msg(a, 3)).kind).toBe('upsert');
    const errors = records.filter((r) => r.level === LEVEL.error);
    expect(errors).toHaveLength(2);
    expect(errors[0]!.subject).toBe(garbage.subject);
    expect(store.size).toBe(1);
    expect(store.appliedSequence).toBe(3);
  });

  it('skips messages whose subject is malformed, of another node, or disagrees with the payload', () => {
    const { store, records } = setup();
    const a = podSpec();
    expect(store.apply(msg(a, 1, { subject: 'ef.desired.x' })).kind).toBe('invalid');
    expect(store.apply(msg(a, 2, { subject: desiredSubjects.pod('other-node', { namespace: a.namespace, name: a.name }) })).kind).toBe('invalid');
    expect(store.apply(msg(a, 3, { subject: desiredSubjects.pod(NODE, { namespace: 'kube-system', name: a.name }) })).kind).toBe('invalid');
    expect(records.filter((r) => r.level === LEVEL.error)).toHaveLength(3);
    expect(store.size).toBe(0);
  });

  it('skips specs whose names are unusable in paths and CRI names', () => {
    const { store } = setup();
    const bad = [
      podSpec({ uid: '../../etc' }),
      podSpec({ containers: [{ name: '../x', image: 'i' }] }),
      podSpec({ containers: [{ name: 'a', image: 'i' }, { name: 'a', image: 'i' }] }),
    ];
    bad.forEach((b, i) => expect(store.apply(msg(b, i + 1)).kind).toBe('invalid'));
    expect(store.size).toBe(0);
  });

  it('resolves whenSynced once marked', async () => {
    const { store } = setup();
    let synced = false;
    const p = store.whenSynced().then(() => (synced = true));
    await Promise.resolve();
    expect(synced).toBe(false);
    store.markSynced();
    await p;
    expect(store.synced).toBe(true);
  });
});
