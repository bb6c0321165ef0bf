/**
 * SecureFabric: the secured NATS fabric of decision 0008 for integration tests, configured exactly as the product
 * (@edgefarm/identity's fleet, renderHubConfig and renderSiteConfig; TLS from hack/pki.sh fleet): a hub of 1 or 3
 * members, and a site server per node whose leaf dials the hub with the node's credentials (a node user minted by
 * the scoped signer, named by its public key). It hands tests connections as every party: the provider's two
 * users, a site's agent (through its site server), the claims pusher, a compromised site ({@link RawLeaf}), and
 * clients without credentials.
 *
 * Nothing here widens a permission: there is no test-only superuser. Checks read state through the provider's own
 * users or the servers' monitoring endpoints.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, credsAuthenticator, nkeyAuthenticator, nkeys, type NatsConnection } from '@nats-io/transport-node';
import { createFleet, formatCreds, mintNodeUser, pushAccountClaims, reissueSitesAccount, seedText, type Fleet } from '@edgefarm/identity';
import { PROVIDER_INBOX_PREFIX, siteInboxPrefix } from '@edgefarm/proto';
import { makeFleetTls, type FleetTls } from './fleet-tls.js';
import { waitFor } from './processes.js';
import { RawLeaf } from './raw-leaf.js';
import {
  hubLeafs,
  planHub,
  startHubMember,
  startSiteServer,
  waitMetaLeader,
  type HubMember,
  type LeafInfo,
  type SiteServer,
} from './secure-servers.js';
import { TEST } from './env.js';

export interface SecureFabricOptions {
  /** Hub members: 1 (default) or 3 (a cluster; full resolvers sync through the system account). */
  hubMembers?: 1 | 3;
  /** Nodes to join and start a site for; default node-a and node-b. */
  nodes?: string[];
  /** EF_DESIRED's consumer limit (identity's default when unset). */
  desiredConsumerLimit?: number;
}

/** A joined node: its identity (key, credentials), its agent's site-local key, its site server when running. */
export interface FabricNode {
  name: string;
  /** Its user public key: what every subject names it by. */
  wireId: string;
  seed: string;
  /** Credentials file text and the file the site reads (rewritten by {@link SecureFabric.writeCreds}). */
  creds: string;
  credsFile: string;
  agent: { publicKey: string; seed: string };
  site: SiteServer | undefined;
}

export interface SiteStartOptions {
  /** Credentials text for the site's file; default the node's. */
  creds?: string;
  /** The CA the site verifies the hub with; default the fleet CA; null: no tls block. */
  caFile?: string | null;
  /** Hub members (indices) the site dials; default all. */
  members?: number[];
}

const ONE_HOUR = 3_600_000;

export class SecureFabric {
  readonly nodes = new Map<string, FabricNode>();
  /** Nodes whose credentials file another party writes (see {@link adopt}). */
  private readonly adopted = new Set<string>();
  private readonly connections: NatsConnection[] = [];
  private readonly rawLeafs: RawLeaf[] = [];

  private constructor(
    readonly dir: string,
    readonly fleet: Fleet,
    readonly tls: FleetTls,
    /** A second CA the hub's certificate does not chain to. */
    readonly otherTls: FleetTls,
    readonly members: HubMember[],
    readonly operatorJwtFile: string,
  ) {}

  static async start(o: SecureFabricOptions = {}): Promise<SecureFabric> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ef-fabric-'));
    let f: SecureFabric | undefined;
    try {
      const [tls, otherTls] = [await makeFleetTls(path.join(dir, 'tls')), await makeFleetTls(path.join(dir, 'other-tls'))];
      const fleet = await createFleet(o.desiredConsumerLimit === undefined ? {} : { desiredConsumerLimit: o.desiredConsumerLimit });
      const operatorJwtFile = path.join(dir, 'operator.jwt');
      await writeFile(operatorJwtFile, fleet.jwts.operator);
      f = new SecureFabric(dir, fleet, tls, otherTls, await planHub(dir, o.hubMembers ?? 1), operatorJwtFile);
      for (const m of f.members) await startHubMember(m, f.members, fleet, tls, operatorJwtFile);
      await waitMetaLeader(f.members);
      for (const name of o.nodes ?? ['node-a', 'node-b']) {
        await f.join(name);
        await f.startSite(name);
      }
      for (const name of o.nodes ?? ['node-a', 'node-b']) await f.waitLeaf(name, true);
    } catch (err) {
      await f?.stop();
      if (!f) await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return f;
  }

  node(name: string): FabricNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name} in this fabric`);
    return n;
  }

  /** Makes a node's identity as `edgefarm join` would: a fresh user key, a JWT from the scoped signer, an agent key. */
  async join(name: string, o: { expiresAt?: Date; issuedAt?: Date } = {}): Promise<FabricNode> {
    const kp = nkeys.createUser();
    const agent = nkeys.createUser();
    const node: FabricNode = {
      name,
      wireId: kp.getPublicKey(),
      seed: seedText(kp),
      creds: '',
      credsFile: path.join(this.dir, 'nodes', name, 'node.creds'),
      agent: { publicKey: agent.getPublicKey(), seed: seedText(agent) },
      site: undefined,
    };
    node.creds = await this.mintCreds(node, o);
    this.nodes.set(name, node);
    return node;
  }

  /**
   * Takes in a node that joined elsewhere (through a real registrar): its seed and the credentials file its site
   * reads. The fabric never writes that file (the node's renewer owns it); it makes the agent's site-local key.
   */
  async adopt(name: string, o: { seed: string; credsFile: string }): Promise<FabricNode> {
    const agent = nkeys.createUser();
    const node: FabricNode = {
      name,
      wireId: nkeys.fromSeed(new TextEncoder().encode(o.seed)).getPublicKey(),
      seed: o.seed,
      creds: await readFile(o.credsFile, 'utf8'),
      credsFile: o.credsFile,
      agent: { publicKey: agent.getPublicKey(), seed: seedText(agent) },
      site: undefined,
    };
    this.nodes.set(name, node);
    this.adopted.add(name);
    return node;
  }

  /** A credentials file text for `node`'s key, expiring at `expiresAt` (default in 1 h). */
  async mintCreds(node: Pick<FabricNode, 'name' | 'wireId' | 'seed'>, o: { expiresAt?: Date; issuedAt?: Date } = {}): Promise<string> {
    const jwt = await mintNodeUser({
      signerSeed: this.fleet.seeds.nodeSigner,
      accountPublicKey: this.fleet.keys.accounts.sites,
      nodePublicKey: node.wireId,
      name: node.name,
      expiresAt: o.expiresAt ?? new Date(Date.now() + ONE_HOUR),
      ...(o.issuedAt ? { issuedAt: o.issuedAt } : {}),
    });
    return formatCreds(jwt, node.seed);
  }

  /** Replaces the credentials file the node's site reads at its next dial (what renewal does). */
  async writeCreds(name: string, creds: string): Promise<void> {
    const n = this.node(name);
    n.creds = creds;
    await mkdir(path.dirname(n.credsFile), { recursive: true, mode: 0o700 });
    await writeFile(n.credsFile, creds, { mode: 0o600 });
  }

  /**
   * Starts (or restarts) the node's site server: renderSiteConfig with its credentials file and the fleet CA. The
   * file is written first (`o.creds`, else the node's), except an adopted node's unless `o.creds` is given.
   */
  async startSite(name: string, o: SiteStartOptions = {}): Promise<SiteServer> {
    const n = this.node(name);
    await n.site?.process.stop();
    if (o.creds !== undefined || !this.adopted.has(name)) await this.writeCreds(name, o.creds ?? n.creds);
    const caFile = o.caFile === undefined ? this.tls.caFile : o.caFile;
    n.site = await startSiteServer(path.join(this.dir, 'sites', `${name}-${Date.now()}`), {
      node: name,
      wireId: n.wireId,
      credsFile: n.credsFile,
      agentPublicKey: n.agent.publicKey,
      ...(caFile ? { caFile } : {}),
      hubLeafUrls: (o.members ?? this.members.map((m) => m.index)).map((i) => this.member(i).leafUrl),
    });
    return n.site;
  }

  async stopSite(name: string): Promise<void> {
    const n = this.node(name);
    await n.site?.process.stop();
    n.site = undefined;
  }

  member(i = 0): HubMember {
    const m = this.members[i];
    if (!m) throw new Error(`no hub member ${i}`);
    return m;
  }

  /** The leaf connections hub member `i` holds. */
  leafs(i = 0): Promise<LeafInfo[]> {
    return hubLeafs(this.member(i));
  }

  /** Whether node `name`'s site has a leaf connection on any hub member (or on member `i`). */
  async linked(name: string, i?: number): Promise<boolean> {
    const members = i === undefined ? this.members : [this.member(i)];
    for (const m of members) if ((await hubLeafs(m)).some((l) => l.name === name)) return true;
    return false;
  }

  /** Waits until the node's site is linked (`present`) or not; resolves with the time it took (ms). */
  async waitLeaf(name: string, present: boolean, timeoutMs = 15_000, i?: number): Promise<number> {
    const t0 = performance.now();
    await waitFor(`leaf of ${name} ${present ? 'up' : 'gone'}`, async () => (await this.linked(name, i)) === present, timeoutMs, 10);
    return performance.now() - t0;
  }

  private track(nc: NatsConnection): NatsConnection {
    this.connections.push(nc);
    return nc;
  }

  /** The provider's user in EF_DESIRED or EF_CLOUD (inbox prefix ef.provider.inbox), on hub member `i`. */
  async connectProvider(which: 'desired' | 'cloud', i = 0): Promise<NatsConnection> {
    const creds = which === 'desired' ? this.fleet.creds.providerDesired : this.fleet.creds.providerCloud;
    return this.track(
      await connect({
        servers: this.member(i).clientUrl,
        authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
        tls: { caFile: this.tls.caFile },
        inboxPrefix: PROVIDER_INBOX_PREFIX,
        name: `provider-${which}`,
        reconnect: false,
      }),
    );
  }

  /** The system-account user that pushes account JWTs, on hub member `i`. */
  async connectClaimsPusher(i = 0): Promise<NatsConnection> {
    return this.track(
      await connect({
        servers: this.member(i).clientUrl,
        authenticator: credsAuthenticator(new TextEncoder().encode(this.fleet.creds.claimsPusher)),
        tls: { caFile: this.tls.caFile },
        name: 'claims-pusher',
        reconnect: false,
      }),
    );
  }

  /** The node's agent on its own site server (its nkey, inbox prefix below its wire id). */
  async connectAgent(name: string): Promise<NatsConnection> {
    const n = this.node(name);
    if (!n.site) throw new Error(`node ${name} has no site running`);
    return this.track(
      await connect({
        servers: n.site.url,
        authenticator: nkeyAuthenticator(new TextEncoder().encode(n.agent.seed)),
        inboxPrefix: siteInboxPrefix(n.wireId),
        name: `edge-agent ${name}`,
        reconnect: false,
      }),
    );
  }

  /** A client with no credentials (expected to be refused): at hub member `i`'s client port or a node's site. */
  async connectUnauthenticated(target: { hub: number } | { site: string }): Promise<NatsConnection> {
    const servers = 'hub' in target ? this.member(target.hub).clientUrl : this.node(target.site).site?.url;
    if (!servers) throw new Error('no such server');
    return this.track(
      await connect({ servers, ...('hub' in target ? { tls: { caFile: this.tls.caFile } } : {}), reconnect: false, timeout: 3_000 }),
    );
  }

  /** A standard client with a node's credentials at the hub's client port (expected to be refused: leaf only). */
  async connectWithNodeCreds(name: string, i = 0): Promise<NatsConnection> {
    return this.track(
      await connect({
        servers: this.member(i).clientUrl,
        authenticator: credsAuthenticator(new TextEncoder().encode(this.node(name).creds)),
        tls: { caFile: this.tls.caFile },
        reconnect: false,
        timeout: 3_000,
      }),
    );
  }

  /** A compromised site holding `creds` (default: the node's), dialing hub member `i`'s leaf port. */
  async rawLeaf(name: string, o: { creds?: string | null; i?: number; tls?: boolean } = {}): Promise<RawLeaf> {
    const creds = o.creds === undefined ? this.node(name).creds : o.creds;
    const leaf = await RawLeaf.connect({
      port: this.member(o.i ?? 0).leafPort,
      ...(o.tls === false ? {} : { caFile: this.tls.caFile }),
      ...(creds ? { creds } : {}),
      name: `compromised-${name}`,
    });
    this.rawLeafs.push(leaf);
    return leaf;
  }

  /**
   * Revokes node keys as the registrar's revoker does: re-issues EF_SITES with `revocations` (user key -> unix
   * seconds) and pushes it from the claims pusher on hub member `i`. Resolves with when the push was confirmed.
   */
  async revoke(revocations: Record<string, number>, i = 0): Promise<{ pushedAt: number }> {
    const jwt = await reissueSitesAccount({
      operatorSigningSeed: this.fleet.seeds.operatorSigner,
      accounts: this.fleet.keys.accounts,
      nodeSignerPublicKey: this.fleet.keys.nodeSigner,
      revocations,
    });
    const nc = await this.connectClaimsPusher(i);
    try {
      await pushAccountClaims(nc, jwt, { issuers: [this.fleet.keys.operatorSigner] });
      return { pushedAt: performance.now() };
    } finally {
      await nc.close();
    }
  }

  /** Stops hub member `i` (its store and resolver directory stay) and starts it again with the same configuration. */
  async restartMember(i = 0): Promise<void> {
    const m = this.member(i);
    await m.process?.stop();
    await startHubMember(m, this.members, this.fleet, this.tls, this.operatorJwtFile);
  }

  async stop(): Promise<void> {
    for (const l of this.rawLeafs) l.close();
    for (const nc of this.connections.reverse()) await nc.close().catch(() => undefined);
    for (const n of this.nodes.values()) await n.site?.process.stop().catch(() => undefined);
    for (const m of [...this.members].reverse()) await m.process?.stop().catch(() => undefined);
    if (TEST.keep) process.stderr.write(`EF_TEST_KEEP: secure fabric files kept in ${this.dir}\n`);
    else await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
