import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { LimitSettings } from './limits.js';
import { PATHS, SIGNATURE_HEADER } from './protocol.js';
import { registrarApp } from './server.js';
import { registrarBed } from './registrar.fixtures.js';
import { signBody } from './signing.js';

function app(limits: Partial<LimitSettings> = {}, timeouts?: { requestMs: number; idleMs: number; checkIntervalMs: number }) {
  const bed = registrarBed();
  return {
    bed,
    app: registrarApp({
      registrar: bed.registrar,
      metrics: bed.metrics,
      log: pino({ level: 'silent' }),
      limits,
      timeouts,
      now: () => bed.clock.now,
    }),
  };
}

const json = { 'content-type': 'application/json' };
const joinFrom = (a: ReturnType<typeof app>['app'], remoteAddress: string, payload: unknown = {}) =>
  a.inject({ method: 'POST', url: PATHS.join, headers: json, payload: JSON.stringify(payload), remoteAddress });

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

  it('refuses a client over its rate with 429 rate-limited and Retry-After, before reading the body; other clients are served', async () => {
    const { bed, app: a } = app({ clientPerMinute: 3 });
    for (let i = 0; i < 3; i++) expect((await joinFrom(a, '10.0.0.1')).json().error.code).toBe('malformed');
    const limited = await joinFrom(a, '10.0.0.1');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('rate-limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await joinFrom(a, '10.0.0.2')).json().error.code).toBe('malformed');
    // a minute later the client has its budget back
    bed.clock.now += 60_000;
    expect((await joinFrom(a, '10.0.0.1')).json().error.code).toBe('malformed');
    expect(await bed.metrics.rejectedCount('client-rate')).toBe(1);
    expect(await bed.metrics.count('join', 'rate-limited')).toBe(1);
    expect((await a.inject({ method: 'GET', url: PATHS.metrics })).body).toContain(
      'edgefarm_registrar_requests_rejected_total{reason="client-rate"} 1',
    );
    await a.close();
  });

  it('refuses requests over the overall rate (ten seconds of it at once) from any client with 429', async () => {
    const { bed, app: a } = app({ overallPerSecond: 0.5 });
    for (let i = 0; i < 5; i++) expect((await joinFrom(a, `10.0.1.${i}`)).statusCode).toBe(400);
    const limited = await joinFrom(a, '10.0.1.99');
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('rate-limited');
    expect(await bed.metrics.rejectedCount('overall-rate')).toBe(1);
    // healthz and metrics are not limited
    expect((await a.inject({ method: 'GET', url: PATHS.healthz, remoteAddress: '10.0.1.99' })).statusCode).toBe(200);
    await a.close();
  });

  it('refuses a request beyond the bound in flight with 503 busy, and serves again once one is answered', async () => {
    const { bed, app: a } = app({ maxInFlight: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    bed.kube.before = (method) => (method === 'getSecret' ? gate : undefined);
    const keys = [bed.userKeys(), bed.userKeys()];
    const body = (i: number) => ({
      token: bed.token(`gw-${i}`).text,
      publicKey: keys[i]!.publicKey,
      clientTime: new Date(bed.clock.now).toISOString(),
    });
    const pending = [0, 1].map((i) => joinFrom(a, `10.0.2.${i}`, body(i)));
    // both are in flight once both wait in getSecret
    while (bed.kube.calls.filter((c) => c.method === 'getSecret').length < 2) await new Promise((r) => setTimeout(r, 5));
    const busy = await joinFrom(a, '10.0.2.9');
    expect(busy.statusCode).toBe(503);
    expect(busy.json().error.code).toBe('busy');
    expect(await bed.metrics.rejectedCount('in-flight')).toBe(1);
    release();
    expect((await Promise.all(pending)).map((r) => r.statusCode)).toEqual([200, 200]);
    expect((await joinFrom(a, '10.0.2.9')).statusCode).toBe(400);
    await a.close();
  });

  it('counts a body over the limit and a wrong media type in requests_rejected_total', async () => {
    const { bed, app: a } = app();
    await a.inject({ method: 'POST', url: PATHS.renew, headers: json, payload: `"${'x'.repeat(17 * 1024)}"` });
    await a.inject({ method: 'POST', url: PATHS.renew, headers: { 'content-type': 'text/plain' }, payload: 'x' });
    expect(await bed.metrics.rejectedCount('too-large')).toBe(1);
    expect(await bed.metrics.rejectedCount('unsupported-media-type')).toBe(1);
    await a.close();
  });

  it('closes a connection that sends its request too slowly (408) or nothing at all, and counts both', async () => {
    const { bed, app: a } = app({}, { requestMs: 300, idleMs: 400, checkIntervalMs: 50 });
    await a.listen({ host: '127.0.0.1', port: 0 });
    const port = (a.server.address() as AddressInfo).port;
    const closed = (sock: Socket) =>
      new Promise<string>((resolve) => {
        let got = '';
        sock.on('data', (d) => (got += d.toString()));
        sock.on('close', () => resolve(got));
        sock.on('error', () => undefined);
      });
    // a slow client: a byte every 100 ms, never idle long enough for the idle timeout, never done
    const slow = connect(port, '127.0.0.1');
    const slowClosed = closed(slow);
    const drip = setInterval(() => slow.write('X-A: b\r\n'), 100);
    slow.write('POST /v1/join HTTP/1.1\r\nHost: x\r\n');
    const answer = await slowClosed;
    clearInterval(drip);
    expect(answer).toMatch(/^HTTP\/1.1 408/);
    expect(await bed.metrics.rejectedCount('request-timeout')).toBe(1);
    await a.close();
    // an idle client (a connection that never sends a request is closed by the request timeout too, whichever is first)
    const b = app({}, { requestMs: 5_000, idleMs: 200, checkIntervalMs: 50 });
    await b.app.listen({ host: '127.0.0.1', port: 0 });
    const idle = connect((b.app.server.address() as AddressInfo).port, '127.0.0.1');
    idle.write('POST /v1/join HTTP/1.1\r\n');
    await closed(idle);
    expect(await b.bed.metrics.rejectedCount('idle-timeout')).toBe(1);
    await b.app.close();
  });
});
