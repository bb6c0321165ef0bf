/**
 * HollowFleet: the hollow sites of the scale benchmarks, through the hack/ scripts. Site `hNN` is a netns with its own
 * veth, a leaf nats-server and one hollow-site process serving `perSite` hollow nodes (hack/site.sh, EF_SITE_HOLLOW);
 * nodes are numbered across sites: h01 serves hollow-0001..hollow-<perSite>, h02 the next ones, and so on. A
 * partition is hack/fault.sh's: iptables DROP of the hub's leaf ports on the site's veth (a real cut link).
 *
 * The fleet only grows (grow), and every site it started is listed by `sites` for hack/clean.sh.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

export interface FleetOptions {
  root: string;
  /** Environment of the bench instance (EF_INSTANCE, ports, ...). */
  env: NodeJS.ProcessEnv;
  /** Sites that are not hollow and come first in EF_SITES (their netns indexes stay as hack/up.sh made them). */
  realSites: string[];
  perSite: number;
  /** Sites started in parallel. */
  parallel?: number;
  /** Agent timers of the hollow nodes (their EF_RESYNC_MS, EF_RELIST_MS, EF_METRICS_PUBLISH_SECONDS; unset: the agent's). */
  timers: { resyncMs?: number; relistMs?: number; metricsPublishSeconds?: number };
  log: (line: string) => void;
}

/** A hollow node's name, as the hollow site names its nodes (edge-agent/src/hollow/config.ts HOLLOW_NODE_PREFIX). */
export const hollowNodeName = (i: number): string => `hollow-${String(i).padStart(4, '0')}`;
const siteName = (k: number): string => `h${String(k).padStart(2, '0')}`;

export class HollowFleet {
  private readonly up: string[] = [];
  /** Hollow sites ever begun (up or failed half-way): what hack/clean.sh must be told of. */
  private begun = 0;
  nodes = 0;

  constructor(private readonly o: FleetOptions) {}

  /** The hollow agents' timers (as given; unset ones are the agent's defaults). */
  get timers(): FleetOptions['timers'] {
    return this.o.timers;
  }

  /** Every hollow site started so far. */
  get sites(): string[] {
    return [...this.up];
  }

  /** EF_SITES naming the real sites and `count` hollow sites (site indexes, hence netns/veth/IPs, stay stable). */
  sitesEnv(count = Math.max(this.begun, 1)): string {
    return [...this.o.realSites, ...Array.from({ length: count }, (_, k) => siteName(k + 1))].join(' ');
  }

  /** Names of the hollow nodes running now. */
  nodeNames(): string[] {
    return Array.from({ length: this.nodes }, (_, i) => hollowNodeName(i + 1));
  }

  /** Adds hollow sites until `nodes` hollow nodes run (whole sites; the last one may be smaller). */
  async grow(nodes: number): Promise<void> {
    const todo: { site: string; first: number; count: number }[] = [];
    let first = this.nodes + 1;
    let k = this.up.length;
    while (first <= nodes) {
      const count = Math.min(this.o.perSite, nodes - first + 1);
      todo.push({ site: siteName(++k), first, count });
      first += count;
    }
    this.begun = Math.max(this.begun, k);
    const sitesEnv = this.sitesEnv(k);
    const parallel = this.o.parallel ?? 2;
    for (let i = 0; i < todo.length; i += parallel) {
      // All of a batch are waited for, failed or not, so nothing is still starting when the caller cleans up.
      const results = await Promise.allSettled(
        todo.slice(i, i + parallel).map(async (t) => {
          await this.hack('site.sh', ['up', t.site], { EF_SITES: sitesEnv, EF_SITE_HOLLOW: `${t.first} ${t.count}` });
          this.up.push(t.site);
          this.o.log(`hollow site ${t.site}: ${hollowNodeName(t.first)}..${hollowNodeName(t.first + t.count - 1)} up`);
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    this.up.sort();
    this.nodes = Math.max(this.nodes, nodes);
  }

  /** Cuts every hollow site's leaf link at once (all rules in one shell). */
  partitionAll(): Promise<void> {
    return this.faultAll('partition');
  }

  healAll(): Promise<void> {
    return this.faultAll('heal');
  }

  private faultAll(what: 'partition' | 'heal'): Promise<void> {
    const script = this.up.map((s) => `bash "${path.join(this.o.root, 'hack', 'fault.sh')}" ${what} ${s} >/dev/null &`).join('\n');
    return this.run('bash', ['-c', `${script}\nwait`], { EF_SITES: this.sitesEnv() });
  }

  /** Runs a hack/ script with the hollow nodes' timers in its environment (hack/site.sh passes it on to them). */
  private hack(script: string, args: string[], extra: NodeJS.ProcessEnv): Promise<void> {
    const t = this.o.timers;
    const timers = Object.entries({
      EF_RESYNC_MS: t.resyncMs,
      EF_RELIST_MS: t.relistMs,
      EF_METRICS_PUBLISH_SECONDS: t.metricsPublishSeconds,
    })
      .filter((e): e is [string, number] => e[1] !== undefined)
      .map(([name, value]) => [name, String(value)]);
    return this.run('bash', [path.join(this.o.root, 'hack', script), ...args], { ...extra, ...Object.fromEntries(timers) });
  }

  private run(cmd: string, args: string[], extra: NodeJS.ProcessEnv): Promise<void> {
    return new Promise((resolve, reject) => {
      const p = spawn(cmd, args, { env: { ...this.o.env, ...extra }, stdio: ['ignore', 'ignore', 'inherit'] });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
    });
  }
}
