import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { GiveUp, freePort, waitFor } from './processes.js';

const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);

describe('freePort', () => {
  it('gives a bindable port below the kernel ephemeral range, so no outgoing connection can take it', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(24000);
      expect(port).toBeLessThan(ephemeralLow);
    }
    const srv = createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(ports[0], '127.0.0.1', () => resolve());
    });
    await new Promise((r) => srv.close(r));
  });
});

describe('waitFor', () => {
  it('keeps polling through ordinary errors until the check passes', async () => {
    let calls = 0;
    const v = await waitFor(
      'third try',
      () => {
        calls++;
        if (calls < 3) throw new Error('not yet');
        return 'ok';
      },
      5_000,
      1,
    );
    expect(v).toBe('ok');
    expect(calls).toBe(3);
  });

  it('stops at once on GiveUp (a process it waits for has exited) instead of waiting out the timeout', async () => {
    let calls = 0;
    await expect(
      waitFor(
        'server healthz',
        () => {
          calls++;
          throw new GiveUp('server exited: bind: address already in use');
        },
        60_000,
        1,
      ),
    ).rejects.toThrow('gave up waiting for server healthz: server exited: bind: address already in use');
    expect(calls).toBe(1);
  });

  it('names what it waited for and the last error on timeout', async () => {
    await expect(
      waitFor(
        'never',
        () => {
          throw new Error('still down');
        },
        20,
        1,
      ),
    ).rejects.toThrow('timed out after 20 ms waiting for never: still down');
  });
});
