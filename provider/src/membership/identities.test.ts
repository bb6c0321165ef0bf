import { LEVEL, recordingLogger } from '@edgefarm/testing';
import type { EdgeNode } from '../kube/client.js';
import { NAME_WIRE_IDS, NodeIdentities } from './identities.js';

const KEY_1 = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const KEY_2 = 'UBQ5SCOK7A6WL5ERGOBH6IXCQPLLHSSUDHXJ5PQGPM7AAJQ3NLRWUXYN';

const edgeNode = (name: string, publicKey?: string): EdgeNode => ({
  metadata: { name },
  ...(publicKey === undefined ? {} : { status: { connected: true, identity: { publicKey, issuedAt: '2026-01-01T00:00:00Z' } } }),
});

function ids() {
  const { log, records } = recordingLogger();
  return { ids: new NodeIdentities(log), records };
}

describe('NodeIdentities', () => {
  it('names a node that never joined by its name, both ways', () => {
    const { ids: i } = ids();
    i.observe(edgeNode('edge-1'));
    expect(i.wireId('edge-1')).toBe('edge-1');
    expect(i.nodeOf('edge-1')).toBe('edge-1');
    expect(i.nodeOf('edge-2')).toBeUndefined(); // no EdgeNode
    expect(i.wireId('edge-2')).toBe('edge-2'); // what a node without an EdgeNode would be called (nothing serves it)
  });

  it('names a joined node by its key, both ways; its name no longer names it', () => {
    const { ids: i } = ids();
    i.observe(edgeNode('edge-1', KEY_1));
    expect(i.wireId('edge-1')).toBe(KEY_1);
    expect(i.nodeOf(KEY_1)).toBe('edge-1');
    expect(i.nodeOf('edge-1')).toBeUndefined();
  });

  it('follows a new key (joined again): the old key names nobody any more', () => {
    const { ids: i } = ids();
    i.observe(edgeNode('edge-1'));
    i.observe(edgeNode('edge-1', KEY_1));
    i.observe(edgeNode('edge-1', KEY_2));
    expect(i.wireId('edge-1')).toBe(KEY_2);
    expect(i.nodeOf(KEY_2)).toBe('edge-1');
    expect(i.nodeOf(KEY_1)).toBeUndefined();
    expect(i.nodeOf('edge-1')).toBeUndefined();
  });

  it("a key claimed by two EdgeNodes names neither (one may not read the other's desired state), until one lets go", () => {
    const { ids: i, records } = ids();
    i.observe(edgeNode('edge-1', KEY_1));
    i.observe(edgeNode('edge-2', KEY_1));
    expect(i.wireId('edge-1')).toBe('edge-1');
    expect(i.wireId('edge-2')).toBe('edge-2');
    expect(i.nodeOf(KEY_1)).toBeUndefined();
    expect(i.nodeOf('edge-1')).toBe('edge-1'); // the two ways agree: named by its name while the key is disputed
    expect(records.some((r) => r.level === LEVEL.error && /claimed by several EdgeNodes/.test(String(r.msg)))).toBe(true);
    i.observe(edgeNode('edge-2', KEY_2));
    expect(i.wireId('edge-1')).toBe(KEY_1);
    expect(i.nodeOf(KEY_1)).toBe('edge-1');
    expect(i.nodeOf(KEY_2)).toBe('edge-2');
  });

  it('takes a status.identity that is not a user public key as no key, and says so', () => {
    const { ids: i, records } = ids();
    for (const bad of ['edge-9', 'ABUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX', `${KEY_1}X`, '*', 'U.>']) {
      i.observe(edgeNode('edge-1', bad));
      expect(i.wireId('edge-1')).toBe('edge-1');
      expect(i.nodeOf('edge-1')).toBe('edge-1');
      expect(i.nodeOf(bad)).toBeUndefined();
    }
    expect(records.filter((r) => r.level === LEVEL.warn)).toHaveLength(5);
  });

  it('keeps what it knows of an EdgeNode it saw (a deleted node still has its tombstones sent under its key)', () => {
    const { ids: i } = ids();
    i.observe(edgeNode('edge-1', KEY_1));
    i.observe({});
    expect(i.wireId('edge-1')).toBe(KEY_1);
  });

  it('NAME_WIRE_IDS names every node by its name', () => {
    expect(NAME_WIRE_IDS.wireId('edge-1')).toBe('edge-1');
    expect(NAME_WIRE_IDS.nodeOf('edge-1')).toBe('edge-1');
  });
});
