import { createUser } from '@nats-io/nkeys';
import { agentLocalPermissions, siteDomain } from '@edgefarm/proto';
import { isIdentityInputError } from './errors.js';
import { renderSiteConfig, type SiteConfigOptions } from './site-config.js';

const wireId = createUser().getPublicKey();
const agent = createUser().getPublicKey();
const options = (over: Partial<SiteConfigOptions> = {}): SiteConfigOptions => ({
  node: 'edge-1',
  wireId,
  listen: '127.0.0.1:4222',
  monitor: '127.0.0.1:8222',
  storeDir: '/var/lib/edgefarm/js',
  hubLeafUrls: ['tls://hub-1.example:7422', 'tls://hub-2.example:7422'],
  credsFile: '/etc/edgefarm/node.creds',
  caFile: '/etc/edgefarm/ca.pem',
  agentPublicKey: agent,
  ...over,
});

describe('renderSiteConfig', () => {
  it("gives the agent's key proto's local permissions for the node's wire id, and dials the hub with the node's credentials over TLS", () => {
    const conf = renderSiteConfig(options());
    expect(conf).toContain(`domain: "${siteDomain('edge-1')}"`);
    expect(conf).toContain('sync_interval: always');
    expect(conf).toContain(`nkey: ${agent}`);
    for (const s of [...agentLocalPermissions(wireId).pub.allow, ...agentLocalPermissions(wireId).sub.allow])
      expect(conf).toContain(JSON.stringify(s));
    expect(conf).toContain('credentials: "/etc/edgefarm/node.creds"');
    expect(conf).toContain('tls: { ca_file: "/etc/edgefarm/ca.pem" }');
    expect(conf).toContain('urls: [ "tls://hub-1.example:7422", "tls://hub-2.example:7422" ]');
    expect(conf).not.toContain('no_auth_user');
  });

  it('caps the JetStream file store: 1 GiB unless told', () => {
    expect(renderSiteConfig(options())).toContain('max_file_store: 1073741824');
    expect(renderSiteConfig(options({ maxFileStoreBytes: 64 * 1024 * 1024 }))).toContain('max_file_store: 67108864');
  });

  it('takes the node name as wire id for a node that never joined (tests, hollow)', () => {
    expect(renderSiteConfig(options({ wireId: 'edge-1', caFile: undefined, hubLeafUrls: ['nats-leaf://127.0.0.1:7422'] }))).toContain(
      '"ef.outbox.edge-1.>"',
    );
  });

  it.each<[string, Partial<SiteConfigOptions>]>([
    ['an agent key that is not a user nkey', { agentPublicKey: `${agent} }, { user: root` }],
    ['a wire id of another node', { wireId: 'edge-2' }],
    ['a wire id with a wildcard', { wireId: '*' }],
    ['a node name that is not one', { node: 'Edge_1' }],
    ['a hub URL that is not tls:// with a CA', { hubLeafUrls: ['nats-leaf://hub:7422'] }],
    ['no hub URL', { hubLeafUrls: [] }],
    ['a monitoring listener off loopback', { monitor: '0.0.0.0:8222' }],
    ['a credentials path with a quote', { credsFile: '/etc/"x' }],
    ['a store cap below 1 MiB', { maxFileStoreBytes: 1000 }],
    ['a store cap that is not whole bytes', { maxFileStoreBytes: 1024 * 1024 + 0.5 }],
    ['a store cap that is not a number', { maxFileStoreBytes: Number.NaN }],
  ])('refuses %s', (_what, over) => {
    let err: unknown;
    try {
      renderSiteConfig(options(over));
    } catch (e) {
      err = e;
    }
    expect(isIdentityInputError(err)).toBe(true);
  });
});
