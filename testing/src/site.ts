/**
 * TestSite: everything one edge site needs for an integration test, in a temp dir (long paths) and a short run dir
 * under /run/edgefarm/int-<pid>/ (sockets): a NATS hub + site pair with the hub streams created, and a containerd.
 */
import { mkdtemp, rm, rmdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import type { AgentConfig } from '@edgefarm/edge-agent';
import { removeCgroupTree, removePodCgroup } from '@edgefarm/edge-agent/cgroups';
import { Containerd, unmountUnder } from './containerd.js';
import { silentLogger } from './fixtures.js';
import { NatsPair, createHubStreams } from './nats.js';
import { TEST } from './env.js';

let instances = 0;

export interface TestSiteOptions {
  node?: string;
  /** The node's wire id (proto nodeWireId): its subjects name it (default: the node name, as an unjoined node). */
  wireId?: string;
  site?: string;
  /** Start a containerd (default true). */
  containerd?: boolean;
}

export class TestSite {
  hubNc!: NatsConnection;
  containerd: Containerd | undefined;
  nats!: NatsPair;
  readonly n: number;

  private constructor(
    readonly dir: string,
    readonly runDir: string,
    readonly node: string,
    readonly site: string,
    readonly wireId: string,
  ) {
    this.n = instances;
  }

  static async start(options: TestSiteOptions = {}): Promise<TestSite> {
    instances++;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ef-int-'));
    const runDir = `/run/edgefarm/int-${process.pid}/${instances}`;
    const node = options.node ?? `node-${instances}`;
    const s = new TestSite(dir, runDir, node, options.site ?? `site${instances}`, options.wireId ?? node);
    try {
      s.nats = await NatsPair.start({ dir: path.join(dir, 'nats'), site: s.site });
      s.hubNc = await s.nats.connectHub();
      await createHubStreams(s.hubNc);
      if (options.containerd !== false) {
        s.containerd = await Containerd.start({
          dir: path.join(dir, 'containerd'),
          runDir,
          podCidr: `10.250.${(process.pid + instances) % 250}.0/24`,
          bridge: `efi${process.pid % 100000}x${instances}`.slice(0, 15),
        });
      }
    } catch (err) {
      await s.stop();
      throw err;
    }
    return s;
  }

  /**
   * An agent configuration for this site (fast resync and heartbeat for tests). The site's wire id goes with the
   * site's node; another node (`over.nodeName`) is named by its name unless `over.wireId` says otherwise.
   */
  agentConfig(over: Partial<AgentConfig> = {}): AgentConfig {
    return {
      nodeName: this.node,
      wireId: over.nodeName !== undefined && over.nodeName !== this.node ? over.nodeName : this.wireId,
      site: this.site,
      natsUrl: this.nats.siteUrl,
      criEndpoint: this.containerd?.socket ?? '/nonexistent.sock',
      nodeIp: '127.0.0.1',
      podLogRoot: path.join(this.dir, 'logs', this.node, 'pods'),
      cgroupParent: `/edgefarm-int/${this.node}-${process.pid}`,
      volumeRoot: path.join(this.dir, 'volumes', this.node, 'pods'),
      logLevel: 'info',
      agentVersion: '0.0.0-test',
      resyncMs: 500,
      heartbeatMs: 1000,
      concurrency: 4,
      ...over,
    };
  }

  /** A debug-level logger writing to <dir>/<name>.log (kept when EF_TEST_KEEP=1). */
  logger(name = 'agent'): Logger {
    return pino({ level: TEST.logLevel ?? 'debug' }, pino.destination({ dest: path.join(this.dir, `${name}.log`), sync: true }));
  }

  async stop(): Promise<void> {
    await this.hubNc?.close().catch(() => undefined);
    await this.containerd?.stop().catch(() => undefined);
    await unmountUnder([path.join(this.dir, 'volumes')]); // tmpfs volumes an agent left behind
    await this.nats?.stop().catch(() => undefined);
    if (TEST.keep) process.stderr.write(`EF_TEST_KEEP: test site files kept in ${this.dir}\n`);
    else await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
    await rm(this.runDir, { recursive: true, force: true }).catch(() => undefined);
    await rmdir(path.dirname(this.runDir)).catch(() => undefined);
    const cgroupParent = this.agentConfig().cgroupParent;
    await removeCgroupTree('/sys/fs/cgroup', cgroupParent, silentLogger());
    await removePodCgroup('/sys/fs/cgroup', path.dirname(cgroupParent), silentLogger());
  }
}
