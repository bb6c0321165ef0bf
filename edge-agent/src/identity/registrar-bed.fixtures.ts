/**
 * The registration side of the renewal tests: a real kube-apiserver (+etcd) with the EdgeNode CRD and the registrar's
 * RBAC, and a real registrar over HTTPS running as its ServiceAccount. It serves with the fleet's certificate and CA
 * (hack/pki.sh fleet makes one serving certificate for the hub and the registrar) and mints with the fabric's scoped
 * node signer, so what it hands a site links to the fabric's hub. {@link RegistrarBed.join} joins a site as
 * `edgefarm join` does: a token Secret, the join over TLS with a fresh node key, the join directory written.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { createUser } from '@nats-io/nkeys';
import { pino } from 'pino';
import {
  EDGENODE_API,
  FLEET_NAMESPACE,
  JOIN_FILES,
  Registrar,
  RegistrarClient,
  RegistrarMetrics,
  RegistrarServer,
  RealRegistrarKube,
  caHashOf,
  formatJoinToken,
  joinTokenSecret,
  newJoinToken,
  writeJoinDir,
  type JoinResponse,
  nodeJsonOf,
} from '@edgefarm/registrar';
import { formatCreds, mintNodeUser } from '@edgefarm/identity';
import { KubeApiServer, freePort, type SecureFabric } from '@edgefarm/testing';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const REGISTRAR_USER = 'system:serviceaccount:edgefarm-system:edgefarm-registrar';

/** A site joined through the registrar: its join directory and what the registrar answered. */
export interface JoinedSite {
  dir: string;
  /** The node's seed (node.nk). */
  seed: string;
  res: JoinResponse;
  credsFile: string;
  /** The fleet CA as the join wrote it (ca.pem): what the site verifies the hub with. */
  caFile: string;
}

export class RegistrarBed {
  private constructor(
    readonly api: KubeApiServer,
    readonly server: RegistrarServer,
    readonly url: string,
    readonly caPem: string,
  ) {}

  /** Starts the kube-apiserver under `dir` and a registrar minting credentials that live `lifetimeSeconds`. */
  static async start(dir: string, fabric: SecureFabric, lifetimeSeconds: number): Promise<RegistrarBed> {
    const api = await KubeApiServer.start({
      dir: path.join(dir, 'kube'),
      users: [{ user: REGISTRAR_USER, groups: ['system:serviceaccounts', 'system:serviceaccounts:edgefarm-system'] }],
    });
    try {
      await api.apply(
        ...['base/namespace.yaml', 'crds/edgenode-crd.yaml', 'base/registrar-rbac.yaml'].map((f) => path.join(ROOT, 'manifests', f)),
      );
      const caPem = await readFile(fabric.tls.caFile, 'utf8');
      const port = await freePort();
      const url = `https://127.0.0.1:${port}`;
      const metrics = new RegistrarMetrics();
      const log = pino({ level: 'silent' });
      const registrar = new Registrar({
        kube: new RealRegistrarKube(api.kubeConfigFor(REGISTRAR_USER)),
        mint: mintNodeUser,
        signerSeed: fabric.fleet.seeds.nodeSigner,
        sitesAccount: fabric.fleet.keys.accounts.sites,
        caPem,
        hubLeafUrls: fabric.members.map((m) => m.leafUrl),
        registrarUrl: url,
        credentialLifetimeSeconds: lifetimeSeconds,
        metrics,
        log,
      });
      const server = new RegistrarServer({
        registrar,
        metrics,
        log,
        tls: { cert: await readFile(fabric.tls.certFile, 'utf8'), key: await readFile(fabric.tls.keyFile, 'utf8'), caPem },
        host: '127.0.0.1',
        port,
      });
      await server.start();
      return new RegistrarBed(api, server, url, caPem);
    } catch (err) {
      await api.stop();
      throw err;
    }
  }

  /** Joins `node` with a fresh key into the join directory `dir` (node.json, node.nk, node.creds, ca.pem). */
  async join(node: string, dir: string): Promise<JoinedSite> {
    const token = newJoinToken(caHashOf(this.caPem));
    await this.api
      .kubeConfigFor()
      .makeApiClient(k8s.CoreV1Api)
      .createNamespacedSecret({
        namespace: FLEET_NAMESPACE,
        body: joinTokenSecret(token, node, new Date(Date.now() + 600_000)) as k8s.V1Secret,
      });
    const key = createUser();
    const seed = new TextDecoder().decode(key.getSeed());
    const res = await new RegistrarClient({ url: this.url, caPem: this.caPem }).join({
      token: formatJoinToken(token),
      publicKey: key.getPublicKey(),
      clientTime: new Date().toISOString(),
    });
    const nodeJson = nodeJsonOf(res);
    await writeJoinDir(
      dir,
      [
        { name: JOIN_FILES.nodeJson, content: JSON.stringify(nodeJson), mode: 0o644 },
        { name: JOIN_FILES.nodeSeed, content: seed, mode: 0o600 },
        { name: JOIN_FILES.creds, content: formatCreds(res.jwt, seed), mode: 0o600 },
        { name: JOIN_FILES.ca, content: res.caPem, mode: 0o644 },
      ],
      false,
    );
    return { dir, seed, res, credsFile: path.join(dir, JOIN_FILES.creds), caFile: path.join(dir, JOIN_FILES.ca) };
  }

  /** Writes the agent's site-local seed where `edgefarm join` puts it (agent.nk); returns the file. */
  static async writeAgentSeed(site: JoinedSite, seed: string): Promise<string> {
    const file = path.join(site.dir, JOIN_FILES.agentSeed);
    await writeFile(file, `${seed}\n`, { mode: 0o600 });
    return file;
  }

  /** The EdgeNode's status.identity.expiresAt (what the registrar recorded last). */
  async recordedExpiry(node: string): Promise<number> {
    const en = (await this.api
      .kubeConfigFor()
      .makeApiClient(k8s.CustomObjectsApi)
      .getClusterCustomObject({ ...EDGENODE_API, name: node })) as { status: { identity: { expiresAt: string } } };
    return Date.parse(en.status.identity.expiresAt);
  }

  async stop(): Promise<void> {
    await this.server.stop();
    await this.api.stop();
  }
}
