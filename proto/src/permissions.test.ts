import {
  HUB_ACCOUNT_LAYOUT,
  HubAccounts,
  agentLocalPermissions,
  claimsPusherPermissions,
  hollowLeafPermissions,
  nodeLeafPermissionTemplate,
  nodeLeafPermissions,
  providerPermissions,
} from './permissions.js';
import {
  desiredSubjects,
  encodeToken,
  nodeWireId,
  rpcSubjects,
  sessionSubjects,
  siteInboxPrefix,
  sourceDeliverPrefix,
  statusSubjects,
} from './subjects.js';

const KEY = 'UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4';

/** NATS subject matching: `*` one token, `>` one or more trailing tokens. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}
const allowed = (list: { allow: string[]; deny: string[] }, subject: string) =>
  list.allow.some((a) => matches(a, subject)) && !list.deny.some((d) => matches(d, subject));

describe('node wire ids', () => {
  it('is the public key once a node joined, its name otherwise', () => {
    expect(nodeWireId({ name: 'edge-1', publicKey: KEY })).toBe(KEY);
    expect(nodeWireId({ name: 'edge-1' })).toBe('edge-1');
    expect(nodeWireId({ name: 'edge-1', publicKey: 'not-a-key' })).toBe('edge-1');
    expect(encodeToken(KEY)).toBe(KEY); // a key is its own encoding: builders take either
  });
});

describe('a node leaf user', () => {
  const a = nodeLeafPermissions(KEY);
  const other = 'UBDQ2WJ4RMGSVKYSQR7OUXJNA6P57YDKU4BWQZCS3MW7ZLVWSIUGU5XA';

  it('may publish its own status, events, session output and hub consumer creates', () => {
    expect(allowed(a.pub, statusSubjects.of(KEY, { kind: 'node' }))).toBe(true);
    expect(allowed(a.pub, `$JS.hub.API.CONSUMER.CREATE.EF_DESIRED.src-abcd1234.${desiredSubjects.node(KEY)}`)).toBe(true);
    expect(allowed(a.pub, sessionSubjects.of(KEY, 's1', 'up'))).toBe(true);
  });

  it("may neither publish nor receive another node's subjects", () => {
    expect(allowed(a.pub, statusSubjects.of(other, { kind: 'node' }))).toBe(false);
    expect(allowed(a.pub, `$JS.hub.API.CONSUMER.CREATE.EF_DESIRED.src-abcd1234.${desiredSubjects.node(other)}`)).toBe(false);
    expect(allowed(a.pub, sessionSubjects.of(other, 's1', 'up'))).toBe(false);
    expect(allowed(a.sub, `${sourceDeliverPrefix(other)}.S.x`)).toBe(false);
    expect(allowed(a.sub, `${siteInboxPrefix(other)}.x`)).toBe(false);
    expect(allowed(a.sub, rpcSubjects.of(other, 'exec'))).toBe(false);
    expect(allowed(a.sub, sessionSubjects.of(other, 's1', 'down'))).toBe(false);
  });

  it.each([
    '$JS.hub.API.STREAM.MSG.GET.EF_DESIRED',
    '$JS.hub.API.DIRECT.GET.EF_DESIRED',
    '$JS.hub.API.STREAM.PURGE.EF_DESIRED',
    '$JS.hub.API.STREAM.DELETE.EF_STATUS',
    '$JS.hub.API.CONSUMER.CREATE.EF_DESIRED',
    '$JS.hub.API.CONSUMER.DURABLE.CREATE.EF_DESIRED.x',
    `ef.desired.${KEY}.pod.default.x`,
  ])('never publishes %s', (subject) => expect(allowed(a.pub, subject)).toBe(false));

  it.each(['_INBOX.abc', '$JS.S.abcd', '$SYS.REQ.SERVER.PING', `ef.desired.${KEY}.pod.default.x`])('never receives %s', (subject) =>
    expect(allowed(a.sub, subject)).toBe(false),
  );

  it('has no sub-deny entry overlapping a subject it must publish', () => {
    for (const d of a.sub.deny) for (const p of a.pub.allow) expect([d, p, matches(d, p) || matches(p, d)]).toEqual([d, p, false]);
  });

  it('is the template with the key in place of {{subject()}}', () => {
    const t = JSON.stringify(nodeLeafPermissionTemplate());
    expect(t).toContain('{{subject()}}');
    expect(JSON.parse(t.replaceAll('{{subject()}}', KEY))).toEqual(a);
  });
});

describe('the bench-only hollow leaf user', () => {
  it('is the node template for every node at once', () => {
    const h = hollowLeafPermissions();
    expect(JSON.parse(JSON.stringify(nodeLeafPermissionTemplate()).replaceAll('{{subject()}}', '*'))).toEqual(h);
    expect(allowed(h.pub, statusSubjects.of(KEY, { kind: 'node' }))).toBe(true);
    expect(allowed(h.sub, rpcSubjects.of('hollow-7', 'exec'))).toBe(true);
    expect(allowed(h.pub, '$JS.hub.API.STREAM.MSG.GET.EF_DESIRED')).toBe(false);
  });
});

describe('the claims pusher', () => {
  it('may only request a claims update', () => {
    const p = claimsPusherPermissions();
    expect(allowed(p.pub, '$SYS.REQ.CLAIMS.UPDATE')).toBe(true);
    expect(allowed(p.pub, '$SYS.REQ.CLAIMS.DELETE')).toBe(false);
    expect(allowed(p.pub, '$SYS.REQ.SERVER.PING')).toBe(false);
    expect(allowed(p.pub, 'ef.desired.edge-1.pod.default.x')).toBe(false);
  });
});

describe('the agent on its own site server', () => {
  it('reaches its site streams and its own hub subjects only', () => {
    const p = agentLocalPermissions('edge-1');
    expect(allowed(p.pub, '$JS.API.STREAM.INFO.EFO_edge-1')).toBe(true);
    expect(allowed(p.pub, 'ef.outbox.edge-1.node')).toBe(true);
    expect(allowed(p.pub, 'ef.outbox.edge-2.node')).toBe(false);
    expect(allowed(p.sub, 'ef.rpc.edge-2.exec')).toBe(false);
    expect(p.resp).toEqual({ max: 1, ttlMs: 60_000 });
  });
});

describe('the hub accounts', () => {
  it('import only what another account exports', () => {
    for (const [name, layout] of Object.entries(HUB_ACCOUNT_LAYOUT)) {
      for (const i of layout.imports) {
        expect([name, i.subject, HUB_ACCOUNT_LAYOUT[i.from].exports.some((e) => e.subject === i.subject && e.type === i.type)]).toEqual([
          name,
          i.subject,
          true,
        ]);
      }
    }
  });

  it('give the sites no JetStream', () => {
    expect(HUB_ACCOUNT_LAYOUT[HubAccounts.sites].jetstream).toBe(false);
  });

  it("give the provider only its own streams' API", () => {
    const d = providerPermissions.desired();
    expect(allowed(d.pub, '$JS.API.STREAM.DELETE.EF_DESIRED')).toBe(false);
    expect(allowed(d.pub, '$JS.API.DIRECT.GET.EF_DESIRED')).toBe(false);
    expect(allowed(d.pub, '$JS.API.STREAM.INFO.EF_STATUS')).toBe(false);
    expect(allowed(providerPermissions.cloud().pub, '$JS.API.STREAM.PURGE.EF_DESIRED')).toBe(false);
  });
});
