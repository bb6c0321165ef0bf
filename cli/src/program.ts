/**
 * The `edgefarm` command line (commander): parsing and dispatch only; the commands are in admin.ts and join.ts.
 * {@link run} returns the exit code instead of exiting, so tests drive the whole command in-process.
 */
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { MAX_TOKEN_TTL_SECONDS, checkLabels } from '@edgefarm/registrar';
import {
  DEFAULT_NAMESPACE,
  nodeAdd,
  nodeDelete,
  nodeList,
  nodeRevoke,
  tokenCreate,
  tokenDelete,
  tokenList,
  type AdminContext,
} from './admin.js';
import { bashCompletion, zshCompletion } from './completion.js';
import { doctorNode } from './doctor-node.js';
import { doctorSite } from './doctor-site.js';
import { CliError, EXIT } from './errors.js';
import { fleetInit, fleetSecrets, tlsDirOf } from './fleet.js';
import { hubLeafUrls, localLayout, registrarUrl, type HubLayout } from './fleet-objects.js';
import { HUB_MEMBER_COUNTS, sanName } from './fleet-tls.js';
import type { CliKube } from './kube.js';
import { join } from './join.js';
import { parseTtl, type Format, type Streams } from './output.js';
import type { SiteProbe } from './probe.js';
import { siteConfig } from './site.js';
import { status } from './status.js';

export interface CliDeps extends Streams {
  /** The Kubernetes client for a kubeconfig file (undefined: $KUBECONFIG, in-cluster, ~/.kube/config). */
  kube: (kubeconfig: string | undefined) => CliKube;
  now: () => number;
  /** The text of a file, or of standard input for `-` (`join --token-file`). */
  readInput: (file: string) => Promise<string>;
  /** What `doctor --dir` asks of the machine (default: the real one, loaded when first used). */
  probe?: SiteProbe;
}

/** A host:port listener value (--listen, --monitor). */
const HOST_PORT = /^[^\s:]+:\d{1,5}$/;

/** A --timeout value: whole seconds from 1 to 300. */
function seconds(v: string): number {
  const n = Number(v);
  if (!/^\d{1,3}$/.test(v) || !Number.isInteger(n) || n < 1 || n > 300) throw new InvalidArgumentError('expected 1-300');
  return n;
}

/** A --days value: whole days from 1 to 3650. */
function days(v: string): number {
  const n = Number(v);
  if (!/^\d{1,4}$/.test(v) || n < 1 || n > 3650) throw new InvalidArgumentError('expected 1-3650');
  return n;
}

/** The most a token file may hold (a token is ~110 characters; anything much longer is not one). */
const MAX_TOKEN_FILE = 4096;

/** The join token from --token or --token-file (exactly one), trimmed. */
async function tokenOf(deps: CliDeps, o: { token?: string; tokenFile?: string }): Promise<string> {
  if ((o.token === undefined) === (o.tokenFile === undefined))
    throw new CliError(EXIT.usage, 'give the join token with exactly one of --token and --token-file');
  if (o.token !== undefined) return o.token;
  let text: string;
  try {
    text = await deps.readInput(o.tokenFile!);
  } catch (err) {
    throw new CliError(EXIT.usage, `--token-file ${o.tokenFile}: ${(err as Error).message}`, { cause: err });
  }
  if (text.length > MAX_TOKEN_FILE) throw new CliError(EXIT.tokenRefused, `--token-file ${o.tokenFile}: not a join token (too long)`);
  return text.trim();
}

/** A --hub value: an https:// URL without credentials, query or fragment, at most 300 characters. */
function hubUrl(text: string): string {
  let u: URL | undefined;
  try {
    u = text.length <= 300 ? new URL(text) : undefined;
  } catch {
    u = undefined;
  }
  if (!u || u.protocol !== 'https:' || !u.hostname || u.username || u.password || u.search || u.hash)
    throw new CliError(EXIT.usage, `--hub ${JSON.stringify(text.slice(0, 60))}: expected the registrar's https:// URL`);
  return text;
}

const formats = (allowed: Format[]) =>
  new Option('-o, --output <format>', `output format: ${allowed.join(', ')}`).choices(allowed).default('table', 'table');

function labelsOf(values: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const v of values) {
    const at = v.indexOf('=');
    if (at < 1) throw new CliError(EXIT.usage, `--label ${JSON.stringify(v)}: expected key=value`);
    labels[v.slice(0, at)] = v.slice(at + 1);
  }
  try {
    return checkLabels(labels);
  } catch (err) {
    throw new CliError(EXIT.usage, `--label: ${(err as Error).message}`);
  }
}

export function buildProgram(deps: CliDeps, name = 'edgefarm'): Command {
  const program = new Command(name)
    .description('EdgeFarm: join tokens, edge nodes, and joining a site to the fleet')
    .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, in-cluster, ~/.kube/config)')
    .option('-n, --namespace <namespace>', "the fleet's namespace", DEFAULT_NAMESPACE)
    .exitOverride()
    .configureOutput({ writeOut: deps.out, writeErr: deps.err })
    .showHelpAfterError();
  const admin = (): AdminContext => {
    const g = program.opts<{ kubeconfig?: string; namespace: string }>();
    return { kube: deps.kube(g.kubeconfig), namespace: g.namespace, now: deps.now, out: deps.out, err: deps.err };
  };

  const token = program.command('token').description('single-use join tokens');
  token
    .command('create <node>')
    .description('create a join token for NODE and print it with the join command')
    .option('--ttl <duration>', `how long it is valid: <n>s, <n>m or <n>h, at most ${MAX_TOKEN_TTL_SECONDS / 3600}h`, '1h')
    .option(
      '--label <key=value>',
      'a label of the Node the join creates (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .addOption(formats(['table', 'json', 'yaml']))
    .action(async (node: string, o: { ttl: string; label: string[]; output: Format }) => {
      await tokenCreate(admin(), node, parseTtl(o.ttl, MAX_TOKEN_TTL_SECONDS), o.output, labelsOf(o.label));
    });
  token
    .command('list')
    .description('list join tokens not used yet')
    .addOption(formats(['table', 'wide', 'json', 'yaml']))
    .action(async (o: { output: Format }) => tokenList(admin(), o.output));
  token
    .command('delete <id>')
    .description('delete a join token')
    .action(async (id: string) => tokenDelete(admin(), id));

  const node = program.command('node').description('edge nodes (EdgeNodes)');
  node
    .command('add <node>')
    .description('create an EdgeNode (a join creates it too)')
    .option('--label <key=value>', 'a label of its Node (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .action(async (n: string, o: { label: string[] }) => nodeAdd(admin(), n, labelsOf(o.label)));
  node
    .command('list')
    .description('list edge nodes: connected, credentials expiry')
    .addOption(formats(['table', 'wide', 'json', 'yaml']))
    .action(async (o: { output: Format }) => nodeList(admin(), o.output));
  node
    .command('revoke <node>')
    .description("revoke the node's key (its link closes) and clear its identity, so it can join again")
    .action(async (n: string) => nodeRevoke(admin(), n));
  node
    .command('delete <node>')
    .description('delete the EdgeNode, revoking its key')
    .action(async (n: string) => nodeDelete(admin(), n));

  program
    .command('join')
    .description('join this site to the fleet (run at the site, as root)')
    .option('--token <token>', 'the join token (edgefarm token create)')
    .option('--token-file <file>', 'read the join token from a file, - for standard input (keeps it out of the process list)')
    .requiredOption('--hub <url>', "the fleet registrar's https URL (printed with the token)")
    .option('--dir <dir>', 'the join directory', '/etc/edgefarm')
    .option('--node <name>', 'refuse unless the token is for this node')
    .option('--force', 'replace an existing join directory', false)
    .option('--listen <host:port>', "the site nats-server's client listener", '127.0.0.1:4222')
    .option('--monitor <host:port|off>', 'its monitoring listener', '127.0.0.1:8222')
    .option('--store-dir <dir>', 'its JetStream store', '/var/lib/edgefarm/nats')
    .option('--timeout <seconds>', 'per request to the registrar', seconds, 15)
    .addOption(formats(['table', 'json', 'yaml']))
    .action(
      async (o: {
        token?: string;
        tokenFile?: string;
        hub: string;
        dir: string;
        node?: string;
        force: boolean;
        listen: string;
        monitor: string;
        storeDir: string;
        timeout: number;
        output: Format;
      }) => {
        if (!HOST_PORT.test(o.listen)) throw new CliError(EXIT.usage, '--listen: expected host:port');
        if (o.monitor !== 'off' && !HOST_PORT.test(o.monitor)) throw new CliError(EXIT.usage, '--monitor: expected host:port or off');
        hubUrl(o.hub);
        const token = await tokenOf(deps, o);
        await join(deps, {
          token,
          hub: o.hub,
          dir: o.dir,
          force: o.force,
          node: o.node,
          listen: o.listen,
          monitor: o.monitor === 'off' ? undefined : o.monitor,
          storeDir: o.storeDir,
          format: o.output,
          timeoutMs: o.timeout * 1000,
        });
      },
    );

  program
    .command('status [nodes...]')
    .description(
      `the fleet at a glance: connected, heartbeat, lag, pods, agent, credentials, Ready; exits ${EXIT.unhealthy} when a listed node is disconnected or not Ready`,
    )
    .addOption(formats(['table', 'wide', 'json', 'yaml']))
    .action(async (names: string[], o: { output: Format }) => status(admin(), names, o.output));

  const site = program.command('site').description("a site's configuration");
  site
    .command('config <node>')
    .description('print the site configuration a join writes for NODE (nats-site.conf and agent.env; credentials by path)')
    .option('--hub-leaf-urls <urls>', "the hub's leaf URLs, comma-separated (default: ConfigMap edgefarm-fleet's hubLeafUrls)")
    .option('--agent-key <key>', "the agent's public key at the site (agent.nk's); default: a placeholder")
    .option('--dir <dir>', 'the join directory', '/etc/edgefarm')
    .option('--listen <host:port>', "the site nats-server's client listener", '127.0.0.1:4222')
    .option('--monitor <host:port|off>', 'its monitoring listener', '127.0.0.1:8222')
    .option('--store-dir <dir>', 'its JetStream store', '/var/lib/edgefarm/nats')
    .addOption(formats(['table', 'json', 'yaml']))
    .action(
      async (
        n: string,
        o: { hubLeafUrls?: string; agentKey?: string; dir: string; listen: string; monitor: string; storeDir: string; output: Format },
      ) => {
        if (!HOST_PORT.test(o.listen)) throw new CliError(EXIT.usage, '--listen: expected host:port');
        if (o.monitor !== 'off' && !HOST_PORT.test(o.monitor)) throw new CliError(EXIT.usage, '--monitor: expected host:port or off');
        await siteConfig(admin(), n, {
          dir: o.dir,
          listen: o.listen,
          ...(o.monitor === 'off' ? {} : { monitor: o.monitor }),
          storeDir: o.storeDir,
          ...(o.hubLeafUrls !== undefined ? { hubLeafUrls: o.hubLeafUrls } : {}),
          ...(o.agentKey !== undefined ? { agentKey: o.agentKey } : {}),
          format: o.output,
        });
      },
    );

  program
    .command('doctor [node]')
    .description('diagnose a site (at the site: --dir, the join directory) or a node (from the cloud: NODE); exits 1 when a check fails')
    .option('--dir <dir>', 'at the site: the join directory to check (default /etc/edgefarm when no NODE is given)')
    .option(
      '--cri-endpoint <socket>',
      "containerd's CRI socket (default: agent.env's EF_CRI_ENDPOINT, else /run/containerd/containerd.sock)",
    )
    .option('--timeout <seconds>', 'per network check', seconds, 5)
    .addOption(formats(['table', 'json', 'yaml']))
    .action(async (n: string | undefined, o: { dir?: string; criEndpoint?: string; timeout: number; output: Format }) => {
      if (n !== undefined && (o.dir !== undefined || o.criEndpoint !== undefined))
        throw new CliError(EXIT.usage, 'give NODE (from the cloud) or --dir (at the site), not both');
      if (n !== undefined) return doctorNode(admin(), n, o.output);
      if (o.criEndpoint !== undefined && (o.criEndpoint.length > 300 || /\s/.test(o.criEndpoint)))
        throw new CliError(EXIT.usage, '--cri-endpoint: expected a socket path or unix:// URL');
      const probe = deps.probe ?? new (await import('./probe.js')).RealSiteProbe();
      await doctorSite(
        { probe, now: deps.now, out: deps.out, err: deps.err },
        {
          dir: o.dir ?? '/etc/edgefarm',
          ...(o.criEndpoint !== undefined ? { criEndpoint: o.criEndpoint } : {}),
          timeoutMs: o.timeout * 1000,
          format: o.output,
        },
      );
    });

  const fleet = program.command('fleet').description("the fleet's identity, TLS and the Secrets an install creates (reference/install.md)");
  const members = (flag: string) =>
    new Option(`${flag} <n>`, `members of the hub's StatefulSet: ${HUB_MEMBER_COUNTS.join(', ')}`).argParser((v: string) => {
      const n = Number(v);
      if (!(HUB_MEMBER_COUNTS as readonly number[]).includes(n) || !/^\d$/.test(v))
        throw new InvalidArgumentError(`expected ${HUB_MEMBER_COUNTS.join(', ')}`);
      return n;
    });
  const namespace = (): string => {
    const ns = program.opts<{ namespace: string }>().namespace;
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(ns))
      throw new CliError(EXIT.usage, `-n ${JSON.stringify(ns.slice(0, 80))}: not a namespace`);
    return ns;
  };
  fleet
    .command('init')
    .description(
      "make the fleet's NATS identity in DIR and its TLS in DIR/tls (a fleet CA, the hub's and the registrar's certificates); keeps what exists",
    )
    .requiredOption('--dir <dir>', 'the fleet directory (created 0700; seeds and keys 0600)')
    .requiredOption('--hub-name <names...>', "names and IP addresses sites and the provider dial the hub at (the leaf port's public name)")
    .requiredOption('--registrar-name <names...>', "names and IP addresses of the registrar's public URL")
    .addOption(members('--hub-members').default(3, '3'))
    .option('--days <days>', "validity of the hub's and the registrar's certificates", days, 825)
    .action(async (o: { dir: string; hubName: string[]; registrarName: string[]; hubMembers: number; days: number }) => {
      if (o.hubName.length > 64 || o.registrarName.length > 64) throw new CliError(EXIT.usage, 'at most 64 names per certificate');
      await fleetInit(
        { now: deps.now, out: deps.out, err: deps.err },
        {
          dir: o.dir,
          hubNames: o.hubName.map((n) => sanName(n, '--hub-name')),
          registrarNames: o.registrarName.map((n) => sanName(n, '--registrar-name')),
          hubMembers: o.hubMembers,
          namespace: namespace(),
          days: o.days,
        },
      );
    });
  fleet
    .command('secrets')
    .description(
      'print (default: YAML, for GitOps with sealed-secrets or SOPS) or --apply ConfigMap edgefarm-fleet and Secrets edgefarm-hub, edgefarm-provider, edgefarm-registrar',
    )
    .requiredOption('--dir <dir>', 'the fleet directory (edgefarm fleet init)')
    .option('--tls-dir <dir>', 'ca.crt, hub.crt, hub.key, registrar.crt, registrar.key (default: DIR/tls)')
    .requiredOption('--registrar-url <url>', "the registrar's public https://host[:port]")
    .requiredOption('--hub-leaf-urls <urls>', "tls://host:port of the hub's leaf port as sites dial it, comma-separated")
    .addOption(members('--hub-members').conflicts('local'))
    .option('--local <listen,monitor,leaf>', "the local stack's single host-network hub server (hack/install.sh): its three listeners")
    .option('--apply', 'apply server-side through the Kubernetes API (field manager edgefarm-fleet) instead of printing', false)
    .addOption(new Option('-o, --output <format>', 'output format: yaml, json').choices(['yaml', 'json']).conflicts('apply'))
    .action(
      async (o: {
        dir: string;
        tlsDir?: string;
        registrarUrl: string;
        hubLeafUrls: string;
        hubMembers?: number;
        local?: string;
        apply: boolean;
        output?: 'yaml' | 'json';
      }) => {
        const hub: HubLayout = o.local !== undefined ? localLayout(o.local) : { kind: 'statefulset', members: o.hubMembers ?? 3 };
        await fleetSecrets(
          { now: deps.now, out: deps.out, err: deps.err, kube: () => admin().kube },
          {
            dir: o.dir,
            tlsDir: o.tlsDir ?? tlsDirOf(o.dir),
            namespace: namespace(),
            registrarUrl: registrarUrl(o.registrarUrl),
            hubLeafUrls: hubLeafUrls(o.hubLeafUrls),
            hub,
            mode: o.apply ? 'apply' : (o.output ?? 'yaml'),
          },
        );
      },
    );

  program
    .command('completion')
    .description('print a shell completion script (generated from this command tree): source <(edgefarm completion bash)')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      const names = name === 'edgefarm' ? ['edgefarm', 'kubectl-edgefarm'] : [name.replace(/ /g, '-'), 'edgefarm'];
      deps.out(shell === 'bash' ? bashCompletion(program, names) : zshCompletion(program, names));
    });
  return program;
}

/** Runs the command line `argv` (without node and script); resolves with the exit code. */
export async function run(argv: string[], deps: CliDeps, name?: string): Promise<number> {
  const program = buildProgram(deps, name);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version print and end with 0; every other parse error is a usage error
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliError) {
      deps.err(`${name ?? 'edgefarm'}: ${err.message}\n`);
      return err.exitCode;
    }
    deps.err(`${name ?? 'edgefarm'}: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
}
