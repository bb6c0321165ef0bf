import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import { PROVIDER_INBOX_PREFIX } from '@edgefarm/proto';
import { silentLogger } from '@edgefarm/testing';
import { connectHub, hubConnectionOptions, isHubCredsError } from './connections.js';

/** A creds file: a user JWT and its seed, as nsc writes them (the JWT is not checked here, only sent). */
const CREDS = `-----BEGIN NATS USER JWT-----
eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVREI1QkhSRzZGNVRHNDU0RDRGR0FYWUw0REcyUldCRFhLNkhXSFpZN0ZUM0RPQ0tWWlgyMkFORSJ9.c2ln
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
SUAD7Y5ZA3QR2OFTTAP4I3DV5J5BSMFOTI4GYXDGXMT2FP5DY2EWLMIPQI
------END USER NKEY SEED------
`;
const files: Record<string, string> = { '/etc/edgefarm/desired.creds': CREDS, '/etc/edgefarm/cloud.creds': CREDS.replace('c2ln', 'Y2xk') };
const readFile = (path: string): Uint8Array => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
  return new TextEncoder().encode(text);
};
const secured = {
  natsUrl: 'tls://hub-0:4222, tls://hub-1:4222',
  natsCreds: { desired: '/etc/edgefarm/desired.creds', cloud: '/etc/edgefarm/cloud.creds' },
  natsCaFile: '/etc/edgefarm/ca.pem',
};

/** The JWT an authenticator presents. */
function jwtOf(o: ConnectionOptions): string {
  const auth = o.authenticator;
  if (typeof auth !== 'function') throw new Error('no authenticator');
  return (auth('nonce') as { jwt: string }).jwt;
}

function fakeConnect() {
  const opened: ConnectionOptions[] = [];
  const drained: string[] = [];
  const connectFn = async (o: ConnectionOptions): Promise<NatsConnection> => {
    if (o.name === 'fail') throw new Error('refused');
    opened.push(o);
    return {
      isClosed: () => false,
      drain: async () => void drained.push(o.name!),
      close: async () => undefined,
    } as unknown as NatsConnection;
  };
  return { opened, drained, connectFn };
}

describe('hub connections', () => {
  it('without credentials: one connection serves both roles, with the provider inbox prefix, TLS only with a CA file', async () => {
    const f = fakeConnect();
    const hub = await connectHub({ natsUrl: 'nats://127.0.0.1:4222' }, silentLogger(), f.connectFn, readFile);
    expect(f.opened).toHaveLength(1);
    expect(hub.desired).toBe(hub.cloud);
    expect(f.opened[0]).toMatchObject({
      servers: ['nats://127.0.0.1:4222'],
      inboxPrefix: PROVIDER_INBOX_PREFIX,
      name: 'edgefarm-provider',
    });
    expect(f.opened[0]!.authenticator).toBeUndefined();
    expect(f.opened[0]!.tls).toBeUndefined();
    await hub.close();
    expect(f.drained).toEqual(['edgefarm-provider']);
    expect(hubConnectionOptions({ natsUrl: 'tls://h:4222', natsCaFile: '/ca.pem' }, 'both', readFile).tls).toEqual({ caFile: '/ca.pem' });
  });

  it("with credentials: one connection per account, each with its own user's creds, TLS with the fleet CA", async () => {
    const f = fakeConnect();
    const hub = await connectHub(secured, silentLogger(), f.connectFn, readFile);
    expect(hub.desired).not.toBe(hub.cloud);
    expect(f.opened.map((o) => o.name)).toEqual(['edgefarm-provider desired', 'edgefarm-provider cloud']);
    for (const o of f.opened) {
      expect(o).toMatchObject({
        servers: ['tls://hub-0:4222', 'tls://hub-1:4222'],
        inboxPrefix: PROVIDER_INBOX_PREFIX,
        tls: { caFile: '/etc/edgefarm/ca.pem' },
      });
    }
    expect(jwtOf(f.opened[0]!)).toMatch(/\.c2ln$/);
    expect(jwtOf(f.opened[1]!)).toMatch(/\.Y2xk$/);
    await hub.close();
    expect(f.drained.sort()).toEqual(['edgefarm-provider cloud', 'edgefarm-provider desired']);
  });

  it('reads the creds again at every connect, keeping the last good ones when the file is gone', () => {
    const o = hubConnectionOptions(secured, 'desired', readFile);
    files['/etc/edgefarm/desired.creds'] = CREDS.replace('c2ln', 'bmV3');
    expect(jwtOf(o)).toMatch(/\.bmV3$/);
    delete files['/etc/edgefarm/desired.creds'];
    expect(jwtOf(o)).toMatch(/\.bmV3$/);
    files['/etc/edgefarm/desired.creds'] = CREDS;
  });

  it('refuses a creds file it cannot read, and closes the first connection when the second fails', async () => {
    let err: unknown;
    try {
      hubConnectionOptions({ ...secured, natsCreds: { desired: '/nope.creds', cloud: '/nope.creds' } }, 'desired', readFile);
    } catch (e) {
      err = e;
    }
    expect(isHubCredsError(err)).toBe(true);
    expect((err as Error).message).toContain('/nope.creds');

    const f = fakeConnect();
    const connectFn = (o: ConnectionOptions) => f.connectFn(o.name === 'edgefarm-provider cloud' ? { ...o, name: 'fail' } : o);
    await expect(connectHub(secured, silentLogger(), connectFn, readFile)).rejects.toThrow('refused');
    expect(f.drained).toEqual(['edgefarm-provider desired']);
  });
});
