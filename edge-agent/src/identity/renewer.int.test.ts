/**
 * Renewal at a site, end to end: a real registrar over TLS (the fleet's CA and certificate; running as its
 * ServiceAccount against a real kube-apiserver), the secured fabric's hub (SecureFabric: configured as the product)
 * and a real site server linked with the node's credentials from the join. The credentials live 6 s; the renewer
 * replaces node.creds at 70-90 % of that, the hub closes the leaf at the old JWT's expiry and the site redials with
 * the new file. Prints how long the link was down.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { NodeJson } from '@edgefarm/registrar';
import { SecureFabric, TEST } from '@edgefarm/testing';
import { RegistrarBed } from './registrar-bed.fixtures.js';
import { CredentialRenewer } from './renewer.js';

const LIFETIME_S = 6;
let dir: string;
let fabric: SecureFabric;
let bed: RegistrarBed;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-renew-'));
  fabric = await SecureFabric.start({ nodes: [] });
  bed = await RegistrarBed.start(dir, fabric, LIFETIME_S);
}, 180_000);

afterAll(async () => {
  await bed?.stop();
  await fabric?.stop();
  if (!TEST.keep) await rm(dir, { recursive: true, force: true });
});

/** The port the hub sees the node's leaf connection from (a redial has another one), or undefined when unlinked. */
async function leafPort(name: string): Promise<number | undefined> {
  const leaf = (await fabric.leafs()).find((l) => l.name === name);
  return leaf ? (leaf.port ?? 0) : undefined;
}

it('renews before expiry; the site is back on the new credentials after the old expire', async () => {
  const site = await bed.join('gw-r', path.join(dir, 'site', 'edgefarm'));
  await fabric.adopt('gw-r', { seed: site.seed, credsFile: site.credsFile });
  await fabric.startSite('gw-r', { caFile: site.caFile });
  await fabric.waitLeaf('gw-r', true, 20_000);
  const firstPort = await leafPort('gw-r');

  const registry = new Registry();
  const renewer = new CredentialRenewer({ dir: site.dir, log: pino({ level: 'silent' }), registry });
  await renewer.start();
  try {
    // watch the link across the first expiry until it is back on a new connection (the old one ends at the expiry)
    const firstExpiry = Date.parse(site.res.expiresAt);
    let downSince: number | undefined;
    let longestDownMs = 0;
    let port = firstPort;
    const deadline = firstExpiry + 30_000;
    while (port === undefined || port === firstPort) {
      if (Date.now() > deadline) throw new Error(`the site's leaf was not back on a new connection 30 s after the old credentials expired`);
      port = await leafPort('gw-r');
      if (port === undefined) downSince ??= Date.now();
      else if (downSince !== undefined) {
        longestDownMs = Math.max(longestDownMs, Date.now() - downSince);
        downSince = undefined;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`renewal: the leaf was down ${longestDownMs} ms around the old credentials' expiry`);
    const renewed = JSON.parse(await readFile(path.join(site.dir, 'node.json'), 'utf8')) as NodeJson;
    expect(Date.parse(renewed.expiresAt)).toBeGreaterThan(firstExpiry);
    expect(await registry.metrics()).toMatch(/edgefarm_agent_credential_renewals_total\{result="ok"\} [1-9]/);
    expect(await bed.recordedExpiry('gw-r')).toBeGreaterThan(firstExpiry);
  } finally {
    await renewer.stop();
  }
}, 90_000);
