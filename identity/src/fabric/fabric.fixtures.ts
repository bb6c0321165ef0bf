/**
 * Shared pieces of the secured-fabric integration tests: the table of verdicts they print, the hub and site streams
 * as the provider and the agent make them, the desired objects of a node, and requests through a compromised site.
 */
import { jetstream, jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  DESIRED_KINDS,
  HUB_DOMAIN,
  HUB_STREAM_CONFIGS,
  Streams,
  desiredSubjects,
  domainApiPrefix,
  siteInboxPrefix,
  sourceDeliverPrefix,
  type KeyedKind,
} from '@edgefarm/proto';
import type { RawLeaf, SecureFabric } from '@edgefarm/testing';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const te = new TextEncoder();

/** One check of the least-privilege table: what was tried, what must happen, what did. */
export interface Verdict {
  operation: string;
  expected: string;
  observed: string;
  detail?: string;
}

/** Collects verdicts and prints them as a table (the figures a reader can quote). */
export class Verdicts {
  readonly rows: Verdict[] = [];

  constructor(private readonly title: string) {}

  /** Records a verdict and returns `observed`, so the test can assert on it. */
  record(operation: string, expected: string, observed: string, detail = ''): string {
    const short = detail.replace(/\s+/g, ' ');
    this.rows.push({ operation, expected, observed, detail: short.length > 110 ? `${short.slice(0, 107)}...` : short });
    return observed;
  }

  print(): void {
    const w1 = Math.max(9, ...this.rows.map((r) => r.operation.length));
    const w2 = Math.max(8, ...this.rows.map((r) => r.expected.length));
    const w3 = Math.max(8, ...this.rows.map((r) => r.observed.length));
    const line = (a: string, b: string, c: string, d: string) => `| ${a.padEnd(w1)} | ${b.padEnd(w2)} | ${c.padEnd(w3)} | ${d}`;
    const out = [
      `\n${this.title}`,
      line('operation', 'expected', 'observed', 'detail'),
      `|${'-'.repeat(w1 + 2)}|${'-'.repeat(w2 + 2)}|${'-'.repeat(w3 + 2)}|`,
      ...this.rows.map((r) => line(r.operation, r.expected, r.observed, r.detail ?? '')),
      '',
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  }
}

/** The hub streams as the provider creates them: EF_DESIRED with its desired user, the others with its cloud user. */
export async function createHubStreams(desired: NatsConnection, cloud: NatsConnection, replicas = 1): Promise<void> {
  for (const c of HUB_STREAM_CONFIGS) {
    const jsm = await jetstreamManager(c.name === Streams.desired ? desired : cloud);
    await jsm.streams.add({ ...c, subjects: [...c.subjects], num_replicas: replicas });
  }
}

/** The key of the test objects: one of each kind per node. */
export const OBJECT_KEY = { namespace: 'default', name: 'one' };

/** Every desired subject of the test objects of a node (its pod, ConfigMap, Secret and token). */
/** The kinds of desired objects that have a key (every kind but the node's own config). */
export const KEYED_KINDS = DESIRED_KINDS.filter((k): k is KeyedKind => k !== 'node');

export function desiredOf(wireId: string): Record<KeyedKind, string> {
  const kinds = KEYED_KINDS;
  return Object.fromEntries(kinds.map((k) => [k, desiredSubjects.of(wireId, k, OBJECT_KEY)])) as Record<KeyedKind, string>;
}

/** Publishes the node's pod, ConfigMap, Secret, token and device as the provider does. */
export async function publishDesired(desired: NatsConnection, wireId: string, tag = 'v1'): Promise<void> {
  const js = jetstream(desired);
  for (const [kind, subject] of Object.entries(desiredOf(wireId))) await js.publish(subject, te.encode(`${kind} of ${wireId} ${tag}`));
}

/** The site's copy of the node's desired state, as the agent creates it: sourced through the leaf, node-scoped. */
export function siteDesiredConfig(node: string, wireId: string): Partial<StreamConfig> & { name: string } {
  return {
    name: Streams.siteDesired(node),
    sources: [
      {
        name: Streams.desired,
        filter_subject: desiredSubjects.node(wireId),
        external: { api: domainApiPrefix(HUB_DOMAIN), deliver: sourceDeliverPrefix(wireId) },
      },
    ],
    max_msgs_per_subject: 1,
    num_replicas: 1,
  };
}

/** Creates the node's site-desired stream with its agent's connection; returns the site's JetStream manager. */
export async function createSiteStream(agent: NatsConnection, node: string, wireId: string): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(agent);
  await jsm.streams.add(siteDesiredConfig(node, wireId));
  return jsm;
}

/** The subjects a stream holds (via STREAM.INFO with a subject filter). */
export async function streamSubjects(jsm: JetStreamManager, stream: string, filter = '>'): Promise<string[]> {
  const si = await jsm.streams.info(stream, { subjects_filter: filter });
  return Object.keys(si.state.subjects ?? {}).sort();
}

/**
 * A request from a compromised site: subscribes its own inbox (below the node's site inbox prefix), sends `subject`
 * with that reply, and returns the answer's data, or undefined when none came within `ms`.
 */
export async function rawRequest(leaf: RawLeaf, wireId: string, subject: string, body: unknown, ms = 1_000): Promise<string | undefined> {
  const inbox = `${siteInboxPrefix(wireId)}.raw${Math.random().toString(36).slice(2, 10)}`;
  leaf.sub(inbox);
  await leaf.ping();
  leaf.pub(subject, body === undefined ? '' : JSON.stringify(body), inbox);
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !leaf.closed) {
    const m = leaf.messages.find((x) => x.subject === inbox);
    if (m) return m.data;
    await sleep(20);
  }
  return leaf.messages.find((x) => x.subject === inbox)?.data;
}

/** A raw leaf for `node` that is connected: the one given while it is, else a fresh one. */
export async function liveLeaf(fabric: SecureFabric, node: string, leaf: RawLeaf | undefined): Promise<RawLeaf> {
  if (leaf && !leaf.closed) return leaf;
  const fresh = await fabric.rawLeaf(node);
  if (!fresh.ok) throw new Error(`compromised site ${node} could not connect: ${fresh.errors.join('; ')}`);
  return fresh;
}

/** 'refused' when `fn` rejects, 'connected' otherwise (closing what it connected). */
export async function connectVerdict(fn: () => Promise<NatsConnection>): Promise<{ observed: string; detail: string }> {
  try {
    const nc = await fn();
    await nc.close();
    return { observed: 'connected', detail: '' };
  } catch (err) {
    return { observed: 'refused', detail: (err as Error).message.split('\n')[0]!.slice(0, 100) };
  }
}

/** A fabric with nodes A and B joined, hub and site streams made, both nodes' desired objects published and sourced. */
export interface TwoNodes {
  fabric: SecureFabric;
  desired: NatsConnection;
  cloud: NatsConnection;
  agentA: NatsConnection;
  agentB: NatsConnection;
  siteA: JetStreamManager;
  siteB: JetStreamManager;
  A: string;
  B: string;
}

export async function startTwoNodes(start: () => Promise<SecureFabric>): Promise<TwoNodes> {
  const fabric = await start();
  try {
    const A = fabric.node('node-a').wireId;
    const B = fabric.node('node-b').wireId;
    const desired = await fabric.connectProvider('desired');
    const cloud = await fabric.connectProvider('cloud');
    await createHubStreams(desired, cloud);
    await publishDesired(desired, A);
    await publishDesired(desired, B);
    const agentA = await fabric.connectAgent('node-a');
    const agentB = await fabric.connectAgent('node-b');
    const siteA = await createSiteStream(agentA, 'node-a', A);
    const siteB = await createSiteStream(agentB, 'node-b', B);
    await waitForSubjects(siteA, 'node-a', 4);
    await waitForSubjects(siteB, 'node-b', 4);
    return { fabric, desired, cloud, agentA, agentB, siteA, siteB, A, B };
  } catch (err) {
    await fabric.stop();
    throw err;
  }
}

/** Waits until the node's site stream holds at least `n` subjects. */
export async function waitForSubjects(site: JetStreamManager, node: string, n: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await streamSubjects(site, Streams.siteDesired(node))).length < n) {
    if (Date.now() > deadline) throw new Error(`site ${node} has fewer than ${n} subjects after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Waits until the site's copy of `subject` has the payload `data`. */
export async function waitForPayload(
  site: JetStreamManager,
  node: string,
  subject: string,
  data: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await site.streams.getMessage(Streams.siteDesired(node), { last_by_subj: subject }).catch(() => undefined);
    if (m && new TextDecoder().decode(m.data) === data) return;
    if (Date.now() > deadline) throw new Error(`site ${node} did not get ${data} on ${subject}`);
    await sleep(50);
  }
}
