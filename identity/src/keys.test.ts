import { createAccount, createOperator, createUser } from '@nats-io/nkeys';
import { confString, dateAfter, hostPort, isLoopback, nodeName, publicKey, seedKeyPair, seedText, serverUrl } from './keys.js';

describe('key checks', () => {
  it('take a public key of the asked kind only, checksum verified', () => {
    const u = createUser().getPublicKey();
    expect(publicKey('user', u, 'k')).toBe(u);
    expect(() => publicKey('account', u, 'k')).toThrow(/^k: not an account public nkey/);
    expect(() => publicKey('user', `${u.slice(0, 55)}${u[55] === 'A' ? 'B' : 'A'}`, 'k')).toThrow(/checksum/);
    expect(() => publicKey('user', seedText(createUser()), 'k')).toThrow(/not a user public nkey/);
    expect(() => publicKey('user', 42, 'k')).toThrow();
  });

  it('take a seed of the asked kind only, never quoting it', () => {
    const op = seedText(createOperator());
    expect(seedKeyPair('operator', op, 's').getPublicKey()).toMatch(/^O/);
    const acc = seedText(createAccount());
    // a character in the middle changed (the last one has spare bits: 'A' for some seeds decodes the same, so this
    // test failed about one run in eight)
    const flipped = `${op.slice(0, 20)}${op[20] === 'A' ? 'B' : 'A'}${op.slice(21)}`;
    for (const bad of [acc, flipped, 'SUnotaseed', createUser().getPublicKey()]) {
      let msg = '';
      try {
        seedKeyPair('operator', bad, 's');
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).toMatch(/^s: /);
      expect(msg).not.toContain(bad);
    }
  });
});

describe('value checks', () => {
  it.each(['edge-1', 'a', 'edge-1.site-3', '0'])('take the node name %j', (n) => expect(nodeName(n)).toBe(n));
  it.each(['', 'Edge', 'Edge-1', 'edge_1', '-a', '-edge', 'a-', 'a..b', '*', 'a.>', 'a b', 'edge 1', 'edge\n1', 'x'.repeat(254)])(
    'refuse the node name %j',
    (n) => expect(() => nodeName(n)).toThrow(),
  );

  it('take host:port listeners (IPv6 in brackets) and tell loopback hosts', () => {
    expect(hostPort('127.0.0.1:4222', 'l')).toEqual({ host: '127.0.0.1', port: 4222 });
    expect(hostPort('[::1]:8222', 'l')).toEqual({ host: '[::1]', port: 8222 });
    for (const bad of ['127.0.0.1', ':4222', '127.0.0.1:0', '127.0.0.1:65536', 'a b:1', 'h:1\nx'])
      expect(() => hostPort(bad, 'l')).toThrow(/^l: /);
    expect(['127.0.0.1', '127.9.9.9', 'localhost', '[::1]'].every(isLoopback)).toBe(true);
    expect(['0.0.0.0', '10.0.0.1', 'hub.example', '[::]'].some(isLoopback)).toBe(false);
  });

  it('take URLs of the given schemes only, and config strings without quote, backslash, $ or control characters', () => {
    expect(serverUrl('tls://hub:7422', ['tls'], 'u')).toBe('tls://hub:7422');
    for (const bad of ['nats://hub:7422', 'tls://hub', 'tls://user:pw@hub:7422', 'tls://hub:7422/x'])
      expect(() => serverUrl(bad, ['tls'], 'u')).toThrow();
    expect(confString('/etc/edgefarm/node.creds', 'p')).toBe('/etc/edgefarm/node.creds');
    for (const bad of ['', 'a"b', 'a\\b', '$HOME', 'a\nb', 'a\u0000b', 'x'.repeat(4097)])
      expect(() => confString(bad, 'p')).toThrow(/^p: /);
  });

  it('take dates after a point and within a span', () => {
    const now = new Date();
    expect(() => dateAfter(new Date(now.getTime() + 1000), now, 'd', 500)).toThrow(/at most/);
    expect(() => dateAfter(now, now, 'd')).toThrow(/after/);
    expect(() => dateAfter('2030-01-01', now, 'd')).toThrow(/valid date/);
  });
});
