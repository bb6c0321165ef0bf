/**
 * The desired state across agent restarts and long partitions, on a real hub + site pair (the runtime is the
 * in-memory fake: this is about the stream, not containers):
 * - a restarted agent restores its snapshot and resumes the site stream after the snapshot's sequence, and ends with
 *   exactly what a full list would give (updates, deletes and new pods made while it was down included);
 * - a delete whose tombstone the hub compacted while the site was cut off is found by the compaction check: the pod is
 *   forgotten in the store and purged from the site stream.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, desiredSubjects } from '@edgefarm/proto';
import path from 'node:path';
import { Agent } from '../agent.js';
import { MemoryPodRuntime } from '../runtime/memory.js';
import { TestSite, podSpec, publishDesired, publishNodeConfig, publishTombstone, waitFor } from '@edgefarm/testing';

const T = 120_000;
let site: TestSite;
let hubJsm: JetStreamManager;
let siteNc: NatsConnection;

function newAgent(runtime: MemoryPodRuntime, state: string): Agent {
  return new Agent(
    site.agentConfig({ stateDir: path.join(site.dir, state), metricsAddr: undefined, metricsPublishSeconds: 0 }),
    site.logger('agent'),
    { runtime, forwarder: { backoffBaseMs: 100, backoffMaxMs: 1000, publishTimeoutMs: 1000, pullExpiresMs: 1000 } },
  );
}

/** Sets the tombstone horizon as the provider tells it the node: its NodeConfig. */
async function setTombstoneTtl(seconds: number): Promise<void> {
  await publishNodeConfig(site.hubNc, site.node, seconds);
}

beforeAll(async () => {
  site = await TestSite.start({ containerd: false });
  hubJsm = await jetstreamManager(site.hubNc);
  siteNc = await site.nats.connectSite();
}, T);

afterAll(async () => {
  await siteNc?.close();
  await site?.stop();
}, T);

describe('desired state: resume and compaction check', () => {
  it(
    'resumes from the snapshot after a restart and converges to what the hub holds',
    async () => {
      await setTombstoneTtl(3600);
      const runtime = new MemoryPodRuntime();
      const keep = podSpec({ name: 'keep' });
      const change = podSpec({ name: 'change' });
      const gone = podSpec({ name: 'gone' });
      for (const s of [keep, change, gone]) await publishDesired(site.hubNc, site.node, s);
      let agent = newAgent(runtime, 'state-resume');
      await agent.start();
      try {
        await waitFor('three pods desired', async () => agent.parts.desired.size === 3, 20_000, 100);
        expect(agent.parts.desired.get('default/change')?.resourceVersion).toBe('100');
      } finally {
        await agent.stop();
      }

      // While the agent is down: an update, a delete and a new pod.
      await publishDesired(site.hubNc, site.node, podSpec({ ...change, resourceVersion: '200' }));
      await publishTombstone(site.hubNc, site.node, gone);
      const added = podSpec({ name: 'added' });
      const lastHubSeq = await publishDesired(site.hubNc, site.node, added);
      const siteJsm = await jetstreamManager(siteNc);
      await waitFor(
        'the site stream sourced the changes',
        async () => (await siteJsm.streams.info(Streams.siteDesired(site.node))).state.last_seq >= 7, // the NodeConfig, three pods, three changes
        20_000,
        100,
      );

      agent = newAgent(runtime, 'state-resume');
      await agent.start();
      try {
        await agent.parts.desired.whenSynced();
        await waitFor('all changes applied', async () => agent.parts.desired.appliedHubSequence >= lastHubSeq, 20_000, 100);
        expect(agent.parts.desired.keys().sort()).toEqual(['default/added', 'default/change', 'default/keep']);
        expect(agent.parts.desired.get('default/change')?.resourceVersion).toBe('200');
        const { startMode } = agent.parts.informer;
        expect(startMode.mode).toBe('resume');
        expect(startMode.mode === 'resume' && startMode.fromSeq).toBe(5);
      } finally {
        await agent.stop();
      }
    },
    T,
  );

  it(
    'finds a delete whose tombstone the hub compacted while the site was cut off, and forgets the pod',
    async () => {
      // Horizon 4 s: a silence of 12 s (more than the 10 s of a quiet link, more than half the horizon) checks.
      await setTombstoneTtl(4);
      const runtime = new MemoryPodRuntime();
      const victim = podSpec({ name: 'victim' });
      const survivor = podSpec({ name: 'survivor' });
      await publishDesired(site.hubNc, site.node, victim);
      await publishDesired(site.hubNc, site.node, survivor);
      const agent = newAgent(runtime, 'state-check'); // no snapshot: checks at the first hub contact
      await agent.start();
      try {
        await waitFor(
          'victim and survivor desired',
          async () => agent.parts.desired.get('default/victim') !== undefined && agent.parts.desired.get('default/survivor') !== undefined,
          20_000,
          100,
        );
        await waitFor('first check done (no snapshot contact before)', async () => agent.parts.compactionCheck.checks >= 1, 20_000, 100);

        site.nats.proxy.sever();
        try {
          await publishTombstone(site.hubNc, site.node, victim, 2);
          await waitFor(
            'the hub dropped the tombstone',
            async () => {
              const m = await hubJsm.streams
                .getMessage(Streams.desired, { last_by_subj: desiredSubjects.pod(site.node, victim) })
                .catch(() => null);
              return m === null;
            },
            20_000,
            250,
          );
          await new Promise((r) => setTimeout(r, 11_000));
          expect(agent.parts.desired.get('default/victim')).toBeDefined(); // the site never saw the delete
        } finally {
          site.nats.proxy.heal();
        }
        await waitFor('the check forgot the victim', async () => agent.parts.desired.get('default/victim') === undefined, 40_000, 200);
        expect(agent.parts.desired.get('default/survivor')).toBeDefined();
        const siteJsm = await jetstreamManager(siteNc);
        const left = await siteJsm.streams
          .getMessage(Streams.siteDesired(site.node), { last_by_subj: desiredSubjects.pod(site.node, victim) })
          .catch(() => null);
        expect(left).toBeNull(); // a later list of the site stream agrees
      } finally {
        await agent.stop();
      }
    },
    T,
  );
});
