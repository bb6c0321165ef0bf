/**
 * `edgefarm join` at the site: numbered steps with their progress on stderr, refusing before anything is sent when a
 * check fails, and writing the join directory all at once at the end (@edgefarm/registrar join-dir.ts).
 *
 *   1. the join directory: not joined already (node.json), unless --force
 *   2. the token: well formed
 *   3. the registrar: reachable, and its chain holds the CA whose hash the token carries, which signed its certificate
 *      (client.ts pinFleetCa); from here on HTTPS verifies against that CA only
 *   4. the clock: within MAX_CLOCK_SKEW_MS of the registrar's Date header (credentials carry validity times)
 *   5. keys: the node's and the agent's nkeys, made here; their seeds never leave the device
 *   6. register: POST /v1/join; the answer's CA must be the pinned one
 *   7. write the join directory: node.json, node.nk, node.creds, ca.pem, agent.nk, nats-site.conf, agent.env
 */
import path from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { formatCreds } from '@edgefarm/identity';
import {
  MAX_CLOCK_SKEW_MS,
  RegistrarClient,
  caHashOf,
  isCaPinError,
  isFleetFormatError,
  isRegistrarRefused,
  isRegistrarUnreachable,
  parseJoinToken,
  pinFleetCa,
  type JoinResponse,
  type JoinToken,
  NODE_JSON,
  dirState,
  writeJoinDir,
  type JoinFile,
  nodeJsonOf,
} from '@edgefarm/registrar';
import { CliError, EXIT } from './errors.js';
import { structured, type Format, type Streams } from './output.js';
import { renderSite } from './site.js';

export interface JoinOptions {
  token: string;
  /** The registrar's https URL. */
  hub: string;
  dir: string;
  force: boolean;
  /** The node this site must be (refused when the token is another node's). */
  node?: string;
  /** The site server's client listener (the agent connects here). */
  listen: string;
  /** Its monitoring listener, or undefined for none. */
  monitor?: string;
  /** Its JetStream store. */
  storeDir: string;
  /** -o json|yaml: the summary on stdout instead of the text. */
  format: Format;
  timeoutMs: number;
}

export interface JoinContext extends Streams {
  now: () => number;
}

export interface JoinSummary {
  node: string;
  wireId: string;
  dir: string;
  expiresAt: string;
  hubLeafUrls: string[];
  registrarUrl: string;
  siteConfig: string;
  agentEnv: string;
  durationMs: number;
  /** Each step's name and how long it took. */
  steps: { step: string; ms: number }[];
}

const STEPS = 7;
const td = new TextDecoder();

function refusal(err: unknown): CliError {
  if (isRegistrarUnreachable(err)) return new CliError(EXIT.unreachable, `the registrar is unreachable: ${err.message}`, { cause: err });
  if (isCaPinError(err)) return new CliError(EXIT.caMismatch, err.message, { cause: err });
  if (isRegistrarRefused(err)) {
    const code =
      err.code === 'name-taken' || err.code === 'revoked'
        ? EXIT.nameTaken
        : err.code === 'clock-skew'
          ? EXIT.clockSkew
          : err.code.startsWith('token-') || err.code === 'malformed'
            ? EXIT.tokenRefused
            : EXIT.failed;
    return new CliError(code, `the registrar refused the join (${err.code}): ${err.message}`, { cause: err });
  }
  return new CliError(EXIT.failed, (err as Error).message, { cause: err });
}

export async function join(ctx: JoinContext, o: JoinOptions): Promise<JoinSummary> {
  const t0 = ctx.now();
  let n = 0;
  const steps: { step: string; ms: number }[] = [];
  let stepStart = t0;
  const step = (what: string) => {
    const now = ctx.now();
    if (steps.length > 0) steps[steps.length - 1]!.ms = now - stepStart;
    stepStart = now;
    steps.push({ step: what, ms: 0 });
    ctx.err(`[${++n}/${STEPS}] ${what}\n`);
  };
  const dir = path.resolve(o.dir);

  step(`checking the join directory ${dir}`);
  const state = await dirState(dir).catch((err: unknown) => {
    throw new CliError(EXIT.writeFailed, `cannot read ${dir}: ${(err as Error).message}`);
  });
  if (state === 'joined' && !o.force)
    throw new CliError(EXIT.alreadyJoined, `${dir} holds a join already (${NODE_JSON}); use --force to join again`);
  if (state === 'other' && !o.force) throw new CliError(EXIT.alreadyJoined, `${dir} is not empty; use --force to replace it`);

  step('reading the token');
  let token: JoinToken;
  try {
    token = parseJoinToken(o.token.trim());
  } catch (err) {
    if (isFleetFormatError(err)) throw new CliError(EXIT.tokenRefused, 'the token is not a join token (ef1.<id>.<secret>.<cahash>)');
    throw err;
  }

  step(`pinning the fleet CA of ${o.hub} (sha256 ${token.caHash.slice(0, 12)}...)`);
  const caPem = await pinFleetCa(o.hub, token.caHash, o.timeoutMs).catch((err: unknown) => {
    throw refusal(err);
  });
  const client = new RegistrarClient({ url: o.hub, caPem, timeoutMs: o.timeoutMs });

  step("comparing the clock with the registrar's");
  const { serverMs, roundTripMs } = await client.serverTime().catch((err: unknown) => {
    throw refusal(err);
  });
  const skew = ctx.now() - (serverMs + roundTripMs / 2);
  // the Date header has whole seconds: allow one more
  if (Math.abs(skew) > MAX_CLOCK_SKEW_MS + 1000) {
    throw new CliError(
      EXIT.clockSkew,
      `this clock is ${Math.round(skew / 1000)} s off the registrar's (at most ${MAX_CLOCK_SKEW_MS / 1000} s): set the time (NTP) and retry`,
    );
  }

  step("making the node's and the agent's keys");
  const nodeKp = createUser();
  const agentKp = createUser();
  const nodeSeed = td.decode(nodeKp.getSeed());
  const agentSeed = td.decode(agentKp.getSeed());

  step('registering');
  let res: JoinResponse;
  try {
    res = await client.join({
      token: o.token.trim(),
      publicKey: nodeKp.getPublicKey(),
      agentPublicKey: agentKp.getPublicKey(),
      clientTime: new Date(ctx.now()).toISOString(),
      ...(o.node ? { node: o.node } : {}),
    });
  } catch (err) {
    throw refusal(err);
  }
  if (caHashOf(res.caPem) !== token.caHash)
    throw new CliError(EXIT.caMismatch, "the registrar's answer carries a CA other than the pinned one");
  if (res.wireId !== nodeKp.getPublicKey()) throw new CliError(EXIT.failed, 'the registrar answered for another key');

  step(`writing ${dir}`);
  const files = joinFiles(dir, res, nodeSeed, agentSeed, agentKp.getPublicKey(), o);
  await writeJoinDir(dir, files.list, state !== 'absent').catch((err: unknown) => {
    throw new CliError(
      EXIT.writeFailed,
      `could not write ${dir} (nothing of it was kept): ${(err as Error).message}; the token is spent, create a new one`,
      { cause: err },
    );
  });
  nodeKp.clear();
  agentKp.clear();
  steps[steps.length - 1]!.ms = ctx.now() - stepStart;

  const summary: JoinSummary = {
    node: res.node,
    wireId: res.wireId,
    dir,
    expiresAt: res.expiresAt,
    hubLeafUrls: res.hubLeafUrls,
    registrarUrl: res.registrarUrl,
    siteConfig: path.join(dir, 'nats-site.conf'),
    agentEnv: path.join(dir, 'agent.env'),
    durationMs: ctx.now() - t0,
    steps,
  };
  const data = structured(o.format, summary);
  if (data) ctx.out(data);
  else {
    ctx.out(
      `joined as node ${res.node} (key ${res.wireId}), credentials valid until ${res.expiresAt}\n` +
        `  start the site server:  nats-server -c ${summary.siteConfig}\n` +
        `  start the agent with:   ${summary.agentEnv} (plus EF_CRI_ENDPOINT and EF_NODE_IP)\n`,
    );
  }
  return summary;
}

/** The files of the join directory, naming each other by their final paths. */
export function joinFiles(
  dir: string,
  res: JoinResponse,
  nodeSeed: string,
  agentSeed: string,
  agentPublicKey: string,
  o: Pick<JoinOptions, 'listen' | 'monitor' | 'storeDir'>,
): { list: JoinFile[] } {
  const nodeJson = nodeJsonOf(res);
  const { siteConfig, agentEnv } = renderSite(dir, { node: res.node, wireId: res.wireId, hubLeafUrls: res.hubLeafUrls, agentPublicKey }, o);
  return {
    list: [
      { name: 'node.nk', content: `${nodeSeed}\n`, mode: 0o600 },
      { name: 'agent.nk', content: `${agentSeed}\n`, mode: 0o600 },
      { name: 'node.creds', content: formatCreds(res.jwt, nodeSeed), mode: 0o600 },
      { name: 'ca.pem', content: res.caPem.endsWith('\n') ? res.caPem : `${res.caPem}\n`, mode: 0o644 },
      { name: 'nats-site.conf', content: siteConfig, mode: 0o644 },
      { name: 'agent.env', content: agentEnv, mode: 0o600 },
      { name: NODE_JSON, content: JSON.stringify(nodeJson, null, 2) + '\n', mode: 0o644 },
    ],
  };
}
