/**
 * AgentBed: what most agent integration tests start from: a {@link TestSite}, a {@link StatusWatcher} on its hub
 * (started first: it delivers only what is stored after it starts), and an {@link Agent} on the site. Not exported
 * from the testing index, so the provider's tests that use the harness do not load the agent.
 */
import type { cri } from '@edgefarm/proto';
import { Agent, Labels, type AgentConfig } from '@edgefarm/edge-agent';
import { StatusWatcher } from './hub.js';
import { TestSite, type TestSiteOptions } from './site.js';

export class AgentBed {
  agent!: Agent;
  watcher!: StatusWatcher;

  private constructor(
    readonly site: TestSite,
    private readonly over: Partial<AgentConfig>,
  ) {}

  /** `over`: agent configuration beside the site's test defaults (TestSite.agentConfig). */
  static async start(over: Partial<AgentConfig> = {}, options: TestSiteOptions = {}): Promise<AgentBed> {
    const bed = new AgentBed(await TestSite.start(options), over);
    try {
      bed.watcher = await new StatusWatcher(bed.site.hubNc, bed.site.wireId).start();
      await bed.startAgent();
    } catch (err) {
      await bed.stop();
      throw err;
    }
    return bed;
  }

  /** Starts a new Agent with the bed's configuration (after the previous one was stopped, e.g. to test a restart). */
  async startAgent(): Promise<Agent> {
    this.agent = new Agent(this.site.agentConfig(this.over), this.site.logger('agent'));
    await this.agent.start();
    return this.agent;
  }

  /** Runs a command in a container through CRI ExecSync (the id with or without its `containerd://` prefix). */
  async exec(containerId: string, cmd: string[]): Promise<{ out: string; err: string; code: number }> {
    const res = await this.site.containerd!.runtime.execSync({
      containerId: containerId.replace(/^containerd:\/\//, ''),
      cmd,
      timeout: 10n,
    });
    return { out: Buffer.from(res.stdout).toString('utf8'), err: Buffer.from(res.stderr).toString('utf8'), code: res.exitCode };
  }

  /** The containers the runtime holds for a pod UID (by the agent's CRI label). */
  async containers(uid: string): Promise<cri.Container[]> {
    return (await this.site.containerd!.runtime.listContainers({ filter: { labelSelector: { [Labels.podUid]: uid } } })).containers;
  }

  /** The sandboxes the runtime holds for a pod UID. */
  async sandboxes(uid: string): Promise<cri.PodSandbox[]> {
    return (await this.site.containerd!.runtime.listPodSandbox({ filter: { labelSelector: { [Labels.podUid]: uid } } })).items;
  }

  async stop(): Promise<void> {
    await this.watcher?.stop();
    await this.agent?.stop();
    await this.site.stop();
  }
}
