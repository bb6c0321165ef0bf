import { pino } from 'pino';
import { PATHS, SIGNATURE_HEADER } from './protocol.js';
import { registrarApp } from './server.js';
import { registrarBed } from './registrar.fixtures.js';
import { signBody } from './signing.js';

function app() {
  const bed = registrarBed();
  return { bed, app: registrarApp({ registrar: bed.registrar, metrics: bed.metrics, log: pino({ level: 'silent' }) }) };
}

describe('registrar HTTP surface (hostile input)', () => {
  it('answers a join and counts it', async () => {
    const { bed, app: a } = app();
    const { text } = bed.token('gw-1');
    const res = await a.inject({
      method: 'POST',
      url: PATHS.join,
      payload: { token: text, publicKey: bed.userKeys().publicKey, clientTime: new Date(bed.clock.now).toISOString() },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ node: 'gw-1' });
    const metrics = (await a.inject({ method: 'GET', url: PATHS.metrics })).body;
    expect(metrics).toContain('registrar_requests_total{endpoint="join",result="ok"} 1');
    await a.close();
  });

  it('refuses a body over 16 KiB, a wrong media type, non-JSON and unknown paths, each with a code and a count', async () => {
    const { bed, app: a } = app();
    const big = await a.inject({
      method: 'POST',
      url: PATHS.join,
      headers: { 'content-type': 'application/json' },
      payload: `{"token":"${'x'.repeat(17 * 1024)}"}`,
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('too-large');
    const media = await a.inject({ method: 'POST', url: PATHS.join, headers: { 'content-type': 'text/plain' }, payload: 'hi' });
    expect(media.statusCode).toBe(415);
    expect(media.json().error.code).toBe('unsupported-media-type');
    const junk = await a.inject({ method: 'POST', url: PATHS.join, headers: { 'content-type': 'application/json' }, payload: '{not json' });
    expect(junk.statusCode).toBe(400);
    expect(junk.json().error.code).toBe('malformed');
    const nested = await a.inject({
      method: 'POST',
      url: PATHS.join,
      headers: { 'content-type': 'application/json' },
      payload: '['.repeat(5000) + ']'.repeat(5000),
    });
    expect(nested.statusCode).toBe(400);
    expect((await a.inject({ method: 'GET', url: '/v1/../etc/passwd' })).statusCode).toBe(404);
    expect(await bed.metrics.count('join', 'too-large')).toBe(1);
    expect(await bed.metrics.count('join', 'unsupported-media-type')).toBe(1);
    expect(await bed.metrics.count('join', 'malformed')).toBe(2);
    await a.close();
  });

  it('passes the raw renewal body to the signature check', async () => {
    const { bed, app: a } = app();
    const keys = bed.userKeys();
    await bed.registrar.join({
      token: bed.token('gw-1').text,
      publicKey: keys.publicKey,
      clientTime: new Date(bed.clock.now).toISOString(),
    });
    // whitespace the JSON parser would drop is still covered by the signature
    const body = ` {"node":"gw-1","publicKey":"${keys.publicKey}","time":"${new Date(bed.clock.now).toISOString()}","nonce":"abcdefghijklmnop"} `;
    const ok = await a.inject({
      method: 'POST',
      url: PATHS.renew,
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(keys.seed, Buffer.from(body)) },
      payload: body,
    });
    expect(ok.statusCode).toBe(200);
    const tampered = await a.inject({
      method: 'POST',
      url: PATHS.renew,
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(keys.seed, Buffer.from(body)) },
      payload: body.trim(),
    });
    expect(tampered.statusCode).toBe(401);
    expect(tampered.json().error.code).toBe('bad-signature');
    expect((await a.inject({ method: 'GET', url: PATHS.healthz })).body).toBe('ok');
    await a.close();
  });
});
