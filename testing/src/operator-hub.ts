/**
 * A hub in operator mode for the registration tests (STAND-IN until the fabric's secured harness is on this branch;
 * then these tests move onto it): an operator with a signing key, the system account and the three hub accounts of
 * proto's HUB_ACCOUNT_LAYOUT (EF_SITES with the scoped node signing key and its template), a full resolver with
 * the accounts preloaded, and plain leaf site servers that dial it with a node's credentials file (re-read at every
 * dial). No TLS: the tests here are about credentials, expiry and revocation.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { createAccount, createOperator, createUser, fromSeed, type KeyPair } from '@nats-io/nkeys';
import { HUB_ACCOUNT_LAYOUT, HubAccounts, NODE_SIGNER_ROLE, nodeLeafPermissionTemplate, type HubAccount } from '@edgefarm/proto';
import { GiveUp, freePort, spawnLogged, waitFor, type ManagedProcess } from './processes.js';
import { NATS_SERVER } from './nats.js';

const td = new TextDecoder();
const seedOf = (kp: KeyPair) => td.decode(kp.getSeed());
const NO_LIMITS = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
const JS_ON = {
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
  max_ack_pending: -1,
  mem_max_stream_bytes: -1,
  disk_max_stream_bytes: -1,
  max_bytes_required: false,
};
const JS_OFF = { mem_storage: 0, disk_storage: 0, streams: 0, consumer: 0 };

export interface HubKeys {
  operatorSigningSeed: string;
  accounts: { system: string; desired: string; cloud: string; sites: string };
  nodeSignerSeed: string;
  nodeSignerPublicKey: string;
}

export class OperatorHub {
  process?: ManagedProcess;
  readonly sites: ManagedProcess[] = [];
  keys!: HubKeys;
  clientPort = 0;
  leafPort = 0;
  monitorPort = 0;
  systemCreds = '';

  private constructor(readonly dir: string) {}

  static async start(dir: string): Promise<OperatorHub> {
    const hub = new OperatorHub(dir);
    try {
      await hub.init();
    } catch (err) {
      await hub.stop();
      throw err;
    }
    return hub;
  }

  get clientUrl(): string {
    return `nats://127.0.0.1:${this.clientPort}`;
  }
  get leafUrl(): string {
    return `nats-leaf://127.0.0.1:${this.leafPort}`;
  }

  private async init(): Promise<void> {
    await mkdir(path.join(this.dir, 'jwt'), { recursive: true });
    const operator = createOperator();
    const osk = createOperator();
    const kp: Record<'system' | HubAccount, KeyPair> = {
      system: createAccount(),
      [HubAccounts.desired]: createAccount(),
      [HubAccounts.cloud]: createAccount(),
      [HubAccounts.sites]: createAccount(),
    };
    const nodeSigner = createAccount();
    const pub = (a: 'system' | HubAccount) => kp[a].getPublicKey();
    this.keys = {
      operatorSigningSeed: seedOf(osk),
      accounts: { system: pub('system'), desired: pub(HubAccounts.desired), cloud: pub(HubAccounts.cloud), sites: pub(HubAccounts.sites) },
      nodeSignerSeed: seedOf(nodeSigner),
      nodeSignerPublicKey: nodeSigner.getPublicKey(),
    };
    const operatorJwt = await encodeOperator('EF_OPERATOR', operator, {
      system_account: pub('system'),
      signing_keys: [osk.getPublicKey()],
    });
    const jwts: Record<string, string> = {
      [pub('system')]: await encodeAccount('SYS', kp.system, { limits: { ...NO_LIMITS, ...JS_OFF } }, { signer: osk }),
    };
    const t = nodeLeafPermissionTemplate();
    for (const name of [HubAccounts.desired, HubAccounts.cloud, HubAccounts.sites] as const) {
      const layout = HUB_ACCOUNT_LAYOUT[name];
      const body = {
        limits: { ...NO_LIMITS, ...(layout.jetstream ? JS_ON : JS_OFF) },
        exports: layout.exports.map((e) => ({
          name: e.name,
          subject: e.subject,
          type: e.type,
          ...(e.type === 'service' ? { response_type: 'Singleton' } : {}),
        })),
        imports: layout.imports.map((i) => ({ name: i.name, subject: i.subject, type: i.type, account: pub(i.from) })),
        ...(name === HubAccounts.sites
          ? {
              signing_keys: [
                {
                  kind: 'user_scope',
                  key: nodeSigner.getPublicKey(),
                  role: NODE_SIGNER_ROLE,
                  template: { pub: t.pub, sub: t.sub, allowed_connection_types: ['LEAFNODE'] },
                },
              ],
            }
          : {}),
      };
      jwts[pub(name)] = await encodeAccount(name, kp[name], body as Parameters<typeof encodeAccount>[2], { signer: osk });
    }
    const sys = createUser();
    this.systemCreds = path.join(this.dir, 'sys.creds');
    await writeFile(this.systemCreds, fmtCreds(await encodeUser('sys', sys, kp.system), sys), { mode: 0o600 });
    await writeFile(path.join(this.dir, 'operator.jwt'), operatorJwt);
    [this.clientPort, this.leafPort, this.monitorPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const preload = Object.entries(jwts)
      .map(([k, v]) => `  ${k}: "${v}"`)
      .join('\n');
    const conf = path.join(this.dir, 'hub.conf');
    await writeFile(
      conf,
      `server_name: hub
listen: "127.0.0.1:${this.clientPort}"
http: "127.0.0.1:${this.monitorPort}"
ping_interval: "2s"
ping_max: 2
jetstream { domain: hub, store_dir: "${path.join(this.dir, 'js')}" }
leafnodes { listen: "127.0.0.1:${this.leafPort}", no_advertise: true }
operator: "${path.join(this.dir, 'operator.jwt')}"
system_account: ${pub('system')}
resolver: { type: full, dir: "${path.join(this.dir, 'jwt')}", allow_delete: false, interval: "2m", timeout: "1.9s" }
resolver_preload: {
${preload}
}
`,
    );
    this.process = spawnLogged('hub', NATS_SERVER, ['-c', conf], { logFile: path.join(this.dir, 'hub.log') });
    await waitFor(
      'operator hub healthz',
      async () => {
        if (!this.process!.alive()) throw new GiveUp(`hub exited: ${this.process!.tail(10)}`);
        return (await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`)).ok;
      },
      20_000,
    );
  }

  /** A node user's credentials (signed by the scoped key), written to `file`. */
  async nodeCreds(file: string, name: string, expiresAt: Date): Promise<{ publicKey: string; seed: string }> {
    const u = createUser();
    const jwt = await encodeUser(
      name,
      u,
      this.keys.accounts.sites,
      {},
      {
        signer: fromSeed(new TextEncoder().encode(this.keys.nodeSignerSeed)),
        scopedUser: true,
        exp: Math.floor(expiresAt.getTime() / 1000),
      },
    );
    await writeFile(file, fmtCreds(jwt, u), { mode: 0o600 });
    return { publicKey: u.getPublicKey(), seed: seedOf(u) };
  }

  /** A plain site server (server name `name`) whose leaf remote dials the hub with `credsFile`, re-read at each dial. */
  async startSite(name: string, credsFile: string): Promise<ManagedProcess> {
    const [port, mon] = await Promise.all([freePort(), freePort()]);
    const conf = path.join(this.dir, `site-${name}.conf`);
    await writeFile(
      conf,
      `server_name: ${JSON.stringify(name)}
listen: "127.0.0.1:${port}"
http: "127.0.0.1:${mon}"
leafnodes { reconnect: "1s", remotes: [ { url: "${this.leafUrl}", credentials: ${JSON.stringify(credsFile)} } ] }
`,
    );
    const p = spawnLogged(`site-${name}`, NATS_SERVER, ['-c', conf], { logFile: path.join(this.dir, `site-${name}.log`) });
    this.sites.push(p);
    return p;
  }

  /** The server names of the leafs connected to the hub now. */
  async leafNames(): Promise<string[]> {
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}/leafz`);
    const body = (await res.json()) as { leafs?: { name?: string }[] };
    return (body.leafs ?? []).map((l) => l.name ?? '');
  }

  async stop(): Promise<void> {
    for (const s of this.sites) await s.stop().catch(() => undefined);
    await this.process?.stop().catch(() => undefined);
  }
}
