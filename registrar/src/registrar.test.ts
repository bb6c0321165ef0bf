import { decode } from '@nats-io/jwt';
import { FLEET_NAMESPACE, REVOCATIONS_SECRET, revocationEntry, tokenSecretName } from './fleet.js';
import { RegistrarError, type RenewRequest } from './protocol.js';
import { signBody } from './signing.js';
import { registrarBed, type Bed } from './registrar.fixtures.js';

const iso = (ms: number) => new Date(ms).toISOString();

async function refused(p: Promise<unknown>): Promise<RegistrarError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RegistrarError);
    return err as RegistrarError;
  }
  throw new Error('expected a refusal');
}

function join(bed: Bed, token: string, publicKey: string, extra: Record<string, unknown> = {}) {
  return bed.registrar.join({ token, publicKey, clientTime: iso(bed.clock.now), ...extra });
}

function renewBody(bed: Bed, node: string, publicKey: string, over: Partial<RenewRequest> = {}): Buffer {
  const req: RenewRequest = { node, publicKey, time: iso(bed.clock.now), nonce: `nonce-${Math.random().toString(36).slice(2)}-x`, ...over };
  return Buffer.from(JSON.stringify(req));
}

describe('Registrar.join', () => {
  it('mints a JWT for the key, spends the token and records the identity', async () => {
    const bed = registrarBed();
    const { text, token } = bed.token('gw-1');
    const node = bed.userKeys();
    const agent = bed.userKeys();
    const res = await join(bed, text, node.publicKey, { agentPublicKey: agent.publicKey });

    expect(res).toMatchObject({ node: 'gw-1', wireId: node.publicKey, domain: 'site-gw-1', hubLeafUrls: ['tls://hub.example:7422'] });
    const claims = decode<{ issuer_account: string }>(res.jwt);
    expect(claims.sub).toBe(node.publicKey);
    expect(claims.iss).toBe(bed.signerPublicKey);
    expect(claims.nats.issuer_account).toBe(bed.sitesAccount);
    expect(claims.exp).toBe(Math.floor(bed.clock.now / 1000) + 7 * 24 * 3600);
    expect(res.expiresAt).toBe(iso(claims.exp! * 1000));
    expect(bed.kube.secrets.has(`${FLEET_NAMESPACE}/${tokenSecretName(token.id)}`)).toBe(false);
    expect(bed.kube.edgeNodes.get('gw-1')?.status?.identity).toEqual({
      publicKey: node.publicKey,
      issuedAt: res.issuedAt,
      expiresAt: res.expiresAt,
    });
    expect(await bed.metrics.count('join', 'ok')).toBe(1);
  });

  it("creates a missing EdgeNode with the token's labels", async () => {
    const bed = registrarBed();
    await join(bed, bed.token('gw-9', 60_000, { zone: 'west', 'edgefarm.io/site': 'plant-1' }).text, bed.userKeys().publicKey);
    expect(bed.kube.edgeNodes.get('gw-9')?.spec?.labels).toEqual({ zone: 'west', 'edgefarm.io/site': 'plant-1' });
  });

  it('refuses a token used before, telling reuse from an unknown token while it remembers', async () => {
    const bed = registrarBed();
    const { text } = bed.token('gw-1');
    await join(bed, text, bed.userKeys().publicKey);
    bed.kube.edgeNodes.get('gw-1')!.status = {};
    expect((await refused(join(bed, text, bed.userKeys().publicKey))).code).toBe('token-reused');
    const other = registrarBed();
    expect((await refused(join(other, text, other.userKeys().publicKey))).code).toBe('token-unknown');
    expect(await bed.metrics.count('join', 'token-reused')).toBe(1);
  });

  it('lets exactly one of two racing joins with one token through', async () => {
    const bed = registrarBed();
    const { text } = bed.token('gw-1');
    const results = await Promise.allSettled([join(bed, text, bed.userKeys().publicKey), join(bed, text, bed.userKeys().publicKey)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(['token-reused', 'name-taken']).toContain((failed.reason as RegistrarError).code);
  });

  it('refuses an expired token and keeps its Secret', async () => {
    const bed = registrarBed();
    const { text, token } = bed.token('gw-1', 1000);
    bed.clock.now += 1000;
    const e = await refused(join(bed, text, bed.userKeys().publicKey));
    expect(e.code).toBe('token-expired');
    expect(e.message).toContain('edgefarm token create gw-1');
    expect(bed.kube.secrets.has(`${FLEET_NAMESPACE}/${tokenSecretName(token.id)}`)).toBe(true);
  });

  it("refuses another node's token, a wrong secret and a malformed token", async () => {
    const bed = registrarBed();
    const { text } = bed.token('gw-2');
    expect((await refused(join(bed, text, bed.userKeys().publicKey, { node: 'gw-1' }))).code).toBe('token-wrong-node');
    const wrongSecret = text.replace(/\.([a-z0-9]{32})\./, (_m, s: string) => `.${s.startsWith('a') ? 'b' : 'a'}${s.slice(1)}.`);
    expect((await refused(join(bed, wrongSecret, bed.userKeys().publicKey))).code).toBe('token-unknown');
    expect((await refused(join(bed, 'ef1.x.y.z', bed.userKeys().publicKey))).code).toBe('malformed');
    expect(bed.kube.calls.filter((c) => c.method === 'deleteSecret')).toHaveLength(0);
  });

  it('refuses a node that has joined ("name taken") without spending the token', async () => {
    const bed = registrarBed();
    await join(bed, bed.token('gw-1').text, bed.userKeys().publicKey);
    const { text, token } = bed.token('gw-1');
    const e = await refused(join(bed, text, bed.userKeys().publicKey));
    expect(e.code).toBe('name-taken');
    expect(e.message).toContain('edgefarm node revoke gw-1');
    expect(bed.kube.secrets.has(`${FLEET_NAMESPACE}/${tokenSecretName(token.id)}`)).toBe(true);
  });

  it("refuses a revoked key and another node's key", async () => {
    const bed = registrarBed();
    const a = bed.userKeys();
    await join(bed, bed.token('gw-1').text, a.publicKey);
    expect((await refused(join(bed, bed.token('gw-2').text, a.publicKey))).code).toBe('name-taken');
    const r = bed.userKeys();
    bed.kube.putSecret(FLEET_NAMESPACE, {
      metadata: { name: REVOCATIONS_SECRET },
      data: revocationEntry(r.publicKey, new Date(bed.clock.now)),
    });
    expect((await refused(join(bed, bed.token('gw-3').text, r.publicKey))).code).toBe('revoked');
  });

  it('refuses a site whose clock is off by more than five minutes', async () => {
    const bed = registrarBed();
    const { text } = bed.token('gw-1');
    const e = await refused(
      bed.registrar.join({ token: text, publicKey: bed.userKeys().publicKey, clientTime: iso(bed.clock.now + 6 * 60_000) }),
    );
    expect(e.code).toBe('clock-skew');
  });

  it('says the token is spent when the identity cannot be recorded after it was', async () => {
    const bed = registrarBed();
    const { text } = bed.token('gw-1');
    bed.kube.failNext('patchIdentity', new Error('apiserver down'));
    const e = await refused(join(bed, text, bed.userKeys().publicKey));
    expect(e.code).toBe('unavailable');
    expect(e.message).toContain('is spent: create a new token (edgefarm token create gw-1)');
  });

  it('retries the status patch when the provider wrote the EdgeNode meanwhile', async () => {
    const bed = registrarBed();
    const { text } = bed.token('gw-1');
    bed.kube.putEdgeNode({ metadata: { name: 'gw-1' } });
    let touched = false;
    bed.kube.before = (m) => {
      if (m === 'patchIdentity' && !touched) {
        touched = true;
        bed.kube.touchEdgeNode('gw-1', { connected: true });
      }
    };
    const node = bed.userKeys();
    await join(bed, text, node.publicKey);
    expect(bed.kube.edgeNodes.get('gw-1')?.status).toMatchObject({ connected: true, identity: { publicKey: node.publicKey } });
  });

  it('counts an error of the API as unavailable without spending the token', async () => {
    const bed = registrarBed();
    const { text } = bed.token('gw-1');
    bed.kube.failNext('getEdgeNode', new Error('timeout'));
    expect((await refused(join(bed, text, bed.userKeys().publicKey))).code).toBe('unavailable');
    expect(bed.kube.secrets.size).toBe(1);
    expect(await bed.metrics.count('join', 'unavailable')).toBe(1);
  });
});

describe('Registrar.renew', () => {
  async function joined(bed: Bed) {
    const keys = bed.userKeys();
    await join(bed, bed.token('gw-1').text, keys.publicKey);
    return keys;
  }

  it('renews with a signature of the recorded key and records the new expiry', async () => {
    const bed = registrarBed();
    const keys = await joined(bed);
    bed.clock.now += 3600_000;
    const body = renewBody(bed, 'gw-1', keys.publicKey);
    const res = await bed.registrar.renew(body, signBody(keys.seed, body));
    expect(res.expiresAt).toBe(iso(bed.clock.now + 7 * 24 * 3600_000));
    expect(decode(res.jwt).sub).toBe(keys.publicKey);
    expect(bed.kube.edgeNodes.get('gw-1')?.status?.identity?.expiresAt).toBe(res.expiresAt);
    expect(await bed.metrics.count('renew', 'ok')).toBe(1);
  });

  it('refuses a bad signature, a replayed nonce and a stale time', async () => {
    const bed = registrarBed();
    const keys = await joined(bed);
    const body = renewBody(bed, 'gw-1', keys.publicKey);
    expect((await refused(bed.registrar.renew(body, signBody(bed.userKeys().seed, body)))).code).toBe('bad-signature');
    expect((await refused(bed.registrar.renew(body, undefined))).code).toBe('bad-signature');
    await bed.registrar.renew(body, signBody(keys.seed, body));
    expect((await refused(bed.registrar.renew(body, signBody(keys.seed, body)))).code).toBe('replay');
    const stale = renewBody(bed, 'gw-1', keys.publicKey, { time: iso(bed.clock.now - 10 * 60_000) });
    expect((await refused(bed.registrar.renew(stale, signBody(keys.seed, stale)))).code).toBe('clock-skew');
  });

  it('refuses a key that is not the node identity, a revoked key and an unknown node', async () => {
    const bed = registrarBed();
    const keys = await joined(bed);
    const other = bed.userKeys();
    const b1 = renewBody(bed, 'gw-1', other.publicKey);
    expect((await refused(bed.registrar.renew(b1, signBody(other.seed, b1)))).code).toBe('key-mismatch');
    const b2 = renewBody(bed, 'nope', keys.publicKey);
    expect((await refused(bed.registrar.renew(b2, signBody(keys.seed, b2)))).code).toBe('unknown-node');
    bed.kube.putSecret(FLEET_NAMESPACE, {
      metadata: { name: REVOCATIONS_SECRET },
      data: revocationEntry(keys.publicKey, new Date(bed.clock.now)),
    });
    const b3 = renewBody(bed, 'gw-1', keys.publicKey);
    expect((await refused(bed.registrar.renew(b3, signBody(keys.seed, b3)))).code).toBe('revoked');
  });

  it('refuses with busy rather than forget a nonce early, and forgets nonces after the window', async () => {
    const bed = registrarBed({ maxNonces: 2 });
    const keys = await joined(bed);
    for (let i = 0; i < 2; i++) {
      const b = renewBody(bed, 'gw-1', keys.publicKey);
      await bed.registrar.renew(b, signBody(keys.seed, b));
    }
    const b = renewBody(bed, 'gw-1', keys.publicKey);
    expect((await refused(bed.registrar.renew(b, signBody(keys.seed, b)))).code).toBe('busy');
    bed.clock.now += 11 * 60_000;
    const later = renewBody(bed, 'gw-1', keys.publicKey);
    await expect(bed.registrar.renew(later, signBody(keys.seed, later))).resolves.toBeDefined();
  });

  it("does not remember the nonces of keys that are not the node's (they cannot fill the memory)", async () => {
    const bed = registrarBed({ maxNonces: 1 });
    const keys = await joined(bed);
    for (let i = 0; i < 3; i++) {
      const stranger = bed.userKeys();
      const b = renewBody(bed, 'gw-1', stranger.publicKey);
      expect((await refused(bed.registrar.renew(b, signBody(stranger.seed, b)))).code).toBe('key-mismatch');
    }
    const b = renewBody(bed, 'gw-1', keys.publicKey);
    await expect(bed.registrar.renew(b, signBody(keys.seed, b))).resolves.toBeDefined();
  });

  it('refuses malformed bodies', async () => {
    const bed = registrarBed();
    for (const raw of ['', 'null', '[]', '{"node":"gw-1"}', '\xff', '{"node":"gw-1","publicKey":"x","time":"t","nonce":"n","extra":1}']) {
      expect((await refused(bed.registrar.renew(Buffer.from(raw, 'latin1'), 'sig'))).code).toBe('malformed');
    }
  });
});
