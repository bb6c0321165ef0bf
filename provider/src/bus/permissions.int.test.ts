/**
 * The provider's hub calls against a real nats-server that grants its two users exactly proto's providerPermissions
 * (one account each, as on a secured hub: EF_DESIRED and EF_CLOUD; plain users here, the JWTs and the accounts'
 * imports are the fabric's): every HubBus call and a request to a node succeed, and none is a permission violation.
 * Without it, a call the provider makes but its user may not would first show on a secured hub.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { create } from '@bufbuild/protobuf';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  HUB_DOMAIN,
  PROVIDER_INBOX_PREFIX,
  edge,
  encode,
  providerPermissions,
  statusSubjects,
  type SubjectPermissions,
} from '@edgefarm/proto';
import { GiveUp, NATS_SERVER, freePort, silentLogger, spawnLogged, waitFor, type ManagedProcess } from '@edgefarm/testing';
import { NodeIdentities } from '../membership/identities.js';
import { isEdgeNodeOfflineError } from '../kubelet/edge-streams.js';
import { NatsEdgeStreams } from '../kubelet/nats-streams.js';
import { HubBus } from './hub.js';

const T = 60_000;
const KEY = 'UDB5BHRG6F5TG454D4FGAXYL4DG2RWBDXK6HWHZY7FT3DOCKVZX22ANE';
let dir: string;
let server: ManagedProcess;
let desired: NatsConnection;
let cloud: NatsConnection;
let site: NatsConnection;
/** Every error the connections report (a permission violation arrives here when nothing awaits it). */
const errors: string[] = [];

/** A user's permissions in nats-server's configuration syntax. */
function permissions(p: SubjectPermissions): string {
  const list = (l: string[]) => JSON.stringify(l);
  return `{ publish: { allow: ${list(p.pub.allow)} }, subscribe: { allow: ${list(p.sub.allow)} } }`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-provider-perms-'));
  const [port, monitor] = [await freePort(), await freePort()];
  const config = path.join(dir, 'hub.conf');
  await writeFile(
    config,
    [
      `listen: "127.0.0.1:${port}"`,
      `http: "127.0.0.1:${monitor}"`,
      `jetstream { store_dir: "${path.join(dir, 'js')}", domain: "${HUB_DOMAIN}" }`,
      'accounts {',
      `  EF_DESIRED: { jetstream: enabled, users: [ { user: desired, password: d, permissions: ${permissions(providerPermissions.desired())} } ] }`,
      // `site` stands in for the sites' publishes (on a secured hub they come through EF_SITES' imports)
      `  EF_CLOUD: { jetstream: enabled, users: [ { user: cloud, password: c, permissions: ${permissions(providerPermissions.cloud())} }, { user: site, password: s } ] }`,
      '}',
      '',
    ].join('\n'),
  );
  server = spawnLogged('nats-hub', NATS_SERVER, ['-c', config], { logFile: path.join(dir, 'hub.log') });
  await waitFor(
    'hub healthz',
    async () => {
      if (!server.alive()) throw new GiveUp(`nats-server exited: ${server.tail(10)}`);
      return (await fetch(`http://127.0.0.1:${monitor}/healthz?js-enabled-only=true`)).ok;
    },
    20_000,
  );
  const open = async (user: string, pass: string) => {
    const nc = await connect({ servers: `nats://127.0.0.1:${port}`, user, pass, inboxPrefix: PROVIDER_INBOX_PREFIX, name: user });
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') errors.push(`${user}: ${String((s as { error?: unknown }).error)}`);
    })();
    return nc;
  };
  desired = await open('desired', 'd');
  cloud = await open('cloud', 'c');
  site = await connect({ servers: `nats://127.0.0.1:${port}`, user: 'site', pass: 's' });
}, T);

afterAll(async () => {
  await desired?.close();
  await cloud?.close();
  await site?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it(
  "does everything the provider does on the hub within its two users' permissions",
  async () => {
    const ids = new NodeIdentities(silentLogger());
    ids.observe({ metadata: { name: 'edge-1' }, status: { connected: true, identity: { publicKey: KEY } } });
    const bus = new HubBus({ hub: { desired, cloud }, log: silentLogger(), wireIds: ids }, { tombstoneTtlSeconds: 60 });
    await bus.ensureStreams();
    await bus.ensureStreams(); // update path (STREAM.INFO, STREAM.UPDATE)

    const spec = create(edge.EdgePodSpecSchema, {
      uid: 'u1',
      namespace: 'default',
      name: 'web',
      resourceVersion: '1',
      containers: [{ name: 'c', image: 'i' }],
    });
    const object = create(edge.EdgeObjectSchema, { namespace: 'default', name: 'app', resourceVersion: '2', data: {} });
    await bus.publishPod('edge-1', spec);
    await bus.publishObject('edge-1', 'configmap', object);
    await bus.publishNodeConfig('edge-1', create(edge.NodeConfigSchema, { tombstoneTtlSeconds: 60n }));
    await bus.tombstoneObject('edge-1', 'configmap', { namespace: 'default', name: 'app' });
    const records = await bus.readDesired(['edge-1']);
    expect(records.map((r) => r.kind).sort()).toEqual(['configmap', 'node', 'pod']);

    const seen: string[] = [];
    const handlers = { pod: (node: string, r: edge.PodStatusReport) => seen.push(`${node}/${r.uid}`), heartbeat: () => undefined };
    await bus.followStatus(handlers);
    await bus.followEvents({ event: async () => undefined });
    const report = create(edge.PodStatusReportSchema, { uid: 'u1', namespace: 'default', name: 'web', generation: 1n });
    await jetstream(site).publish(statusSubjects.of(KEY, { kind: 'pod', uid: 'u1' }), encode(edge.PodStatusReportSchema, report));
    await waitFor('the report followed', async () => seen.length === 1, 10_000, 50);
    await bus.readStatus(['edge-1'], handlers);
    expect(seen).toEqual(['edge-1/u1', 'edge-1/u1']);
    await bus.forgetPodStatus('edge-1', 'u1');

    // A wire id no node has any more: its desired subjects tombstoned, its status purged.
    await bus.publishPod('edge-1', spec);
    expect(await bus.retireWireId(KEY)).toBe(2); // the pod and the NodeConfig (the ConfigMap is a tombstone already)

    const streams = new NatsEdgeStreams({ nc: cloud, log: silentLogger(), offlineSince: () => undefined, wireIds: ids });
    let offline: unknown;
    try {
      await streams.statsSummary('edge-1', new AbortController().signal);
    } catch (err) {
      offline = err;
    }
    expect(isEdgeNodeOfflineError(offline)).toBe(true); // no agent: no responders, not a permission violation

    await bus.stop();
    await desired.flush();
    await cloud.flush();
    expect(errors).toEqual([]);
  },
  T,
);
