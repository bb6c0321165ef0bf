import { createAccount, createUser } from '@nats-io/nkeys';
import { ACCOUNT_ROLES } from './accounts.js';
import { isIdentityInputError } from './errors.js';
import { fleetJwts, fleetKeys, newFleetSeeds, type Fleet } from './fleet.js';
import { renderHubConfig, type HubConfigOptions } from './hub-config.js';

/** A fleet's keys and JWTs (createFleet without the standing users: a hub configuration names none). */
let fleet: Pick<Fleet, 'keys' | 'jwts'>;
beforeAll(async () => {
  const seeds = newFleetSeeds();
  fleet = { keys: fleetKeys(seeds), jwts: await fleetJwts(seeds) };
});

const options = (over: Partial<HubConfigOptions> = {}): HubConfigOptions => ({
  serverName: 'hub-1',
  listen: '0.0.0.0:4222',
  monitor: '127.0.0.1:8222',
  leaf: { listen: '0.0.0.0:7422' },
  tls: { certFile: '/etc/ef/hub.crt', keyFile: '/etc/ef/hub.key', caFile: '/etc/ef/ca.crt' },
  storeDir: '/var/lib/ef/js',
  operatorJwtFile: '/etc/ef/operator.jwt',
  systemAccount: fleet.keys.accounts.system,
  resolverDir: '/var/lib/ef/jwt',
  preload: Object.fromEntries(ACCOUNT_ROLES.map((r) => [fleet.keys.accounts[r], fleet.jwts.accounts[r]])),
  ...over,
});

describe('renderHubConfig', () => {
  it('runs operator mode with a full resolver preloaded with every account, JetStream in domain hub, TLS, loopback monitoring', () => {
    const conf = renderHubConfig(options());
    expect(conf).toContain('operator: "/etc/ef/operator.jwt"');
    expect(conf).toContain(`system_account: ${fleet.keys.accounts.system}`);
    expect(conf).toMatch(/resolver: \{\n {2}type: full\n {2}dir: "\/var\/lib\/ef\/jwt"\n {2}allow_delete: false/);
    for (const r of ACCOUNT_ROLES) expect(conf).toContain(`  ${fleet.keys.accounts[r]}: "${fleet.jwts.accounts[r]}"`);
    expect(conf).toContain('domain: "hub"');
    expect(conf).toContain('http: "127.0.0.1:8222"');
    expect(conf).toContain('ping_interval: "2s"\nping_max: 2');
    // client and leaf ports both carry the fleet's TLS; no cluster for one member
    expect(conf.match(/cert_file: "\/etc\/ef\/hub.crt"/g)).toHaveLength(2);
    expect(conf).not.toContain('cluster {');
    expect(conf).toContain('no_advertise: true');
  });

  it('renders one configuration for every member of a StatefulSet: $POD_NAME, every route, monitoring on the pod', () => {
    const conf = renderHubConfig(
      options({
        serverName: '$POD_NAME',
        monitor: '0.0.0.0:8222',
        monitorInPod: true,
        cluster: { listen: '0.0.0.0:6222', routes: [0, 1, 2].map((i) => `nats-route://edgefarm-hub-${i}.edgefarm-hub:6222`) },
      }),
    );
    expect(conf).toContain('server_name: $POD_NAME\n');
    expect(conf).toContain('http: "0.0.0.0:8222"');
    expect(conf).toContain('nats-route://edgefarm-hub-2.edgefarm-hub:6222');
  });

  it('routes a 3-member hub to the other members over TLS', () => {
    const conf = renderHubConfig(
      options({ cluster: { listen: '10.0.0.1:6222', routes: ['nats-route://10.0.0.2:6222', 'nats-route://10.0.0.3:6222'] } }),
    );
    expect(conf).toContain('name: "ef-hub"');
    expect(conf).toContain('routes: [ "nats-route://10.0.0.2:6222", "nats-route://10.0.0.3:6222" ]');
    expect(conf.match(/cert_file: "\/etc\/ef\/hub.crt"/g)).toHaveLength(3);
  });

  it.each<[string, Partial<HubConfigOptions>]>([
    ['a monitoring listener off loopback', { monitor: '0.0.0.0:8222' }],
    ['a server name with a space', { serverName: 'hub 1' }],
    ['a listener without a port', { listen: '0.0.0.0' }],
    ['a path with a quote', { storeDir: '/var/lib/"ef' }],
    ['a path with a line break', { resolverDir: '/var/lib/ef\nresolver: MEMORY' }],
    ['a path with a variable', { operatorJwtFile: '$HOME/operator.jwt' }],
    ['six routes', { cluster: { listen: '10.0.0.1:6222', routes: [1, 2, 3, 4, 5, 6].map((i) => `nats-route://10.0.0.${i}:6222`) } }],
    ['a server name that is neither a name nor an environment reference', { serverName: '$pod-name' }],
    ['a monitoring listener off loopback outside a pod', { monitor: '0.0.0.0:8222' }],
    ['one route (a 2-member cluster)', { cluster: { listen: '10.0.0.1:6222', routes: ['nats-route://10.0.0.2:6222'] } }],
    [
      'a route that is no route URL',
      { cluster: { listen: '10.0.0.1:6222', routes: ['nats://10.0.0.2:4222', 'nats-route://10.0.0.3:6222'] } },
    ],
    ['a system account that is a user key', { systemAccount: createUser().getPublicKey() }],
  ])('refuses %s', (_what, over) => {
    expect(() => renderHubConfig(options(over))).toThrow(expect.objectContaining({ name: 'IdentityInputError' }));
  });

  it('refuses a preload entry under another key, a forged JWT, and a preload without the system account', () => {
    const preload = options().preload;
    const [k1, k2] = [fleet.keys.accounts.desired, fleet.keys.accounts.cloud];
    const swapped = { ...preload, [k1]: preload[k2]!, [k2]: preload[k1]! };
    expect(() => renderHubConfig(options({ preload: swapped }))).toThrow(/not the account JWT of this key/);
    const jwt = preload[k1]!;
    const forged = { ...preload, [k1]: `${jwt.slice(0, -4)}AAAA` };
    expect(() => renderHubConfig(options({ preload: forged }))).toThrow(/validly signed/);
    const { [fleet.keys.accounts.system]: _sys, ...noSystem } = preload;
    expect(() => renderHubConfig(options({ preload: noSystem }))).toThrow(/system account/);
    const err = (() => {
      try {
        renderHubConfig(options({ preload: { ...preload, [createAccount().getPublicKey()]: jwt } }));
      } catch (e) {
        return e;
      }
    })();
    expect(isIdentityInputError(err)).toBe(true);
  });
});
