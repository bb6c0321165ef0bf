/**
 * The join directory (default /etc/edgefarm): its files, node.json's contract, and the atomic writes of both
 * `edgefarm join` (the whole directory) and the agent's renewer (node.creds and node.json).
 *
 * `edgefarm join` writes it all at once: every file goes into a fresh temporary directory
 * beside it (mode 0700), each written and fsynced with its mode, the directory fsynced, then renamed into place and
 * the parent fsynced. A failure at any point removes the temporary directory and leaves what was there before: the
 * directory holds a whole join or nothing of this one.
 *
 *   node.json       { node, wireId, registrarUrl, hubLeafUrls, domain, issuedAt, expiresAt }    0644
 *   node.nk         the node's seed                                                             0600
 *   node.creds      its user JWT and seed (replaced atomically by the agent's renewer)          0600
 *   ca.pem          the fleet CA                                                                0644
 *   agent.nk        the agent's site-local seed                                                 0600
 *   nats-site.conf  the site nats-server's configuration (@edgefarm/identity renderSiteConfig)  0644
 *   agent.env       the agent's EF_* settings for this site                                     0600
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { isUserPublicKey } from '@edgefarm/proto';
import { isNodeName } from './fleet.js';
import { isLeafUrl, parseTime, type JoinResponse } from './protocol.js';

export interface JoinFile {
  name: string;
  content: string;
  mode: number;
}

/** A join directory file that is not what it must be (node.json malformed); `file` names it. */
export class JoinDirError extends Error {
  override name = 'JoinDirError';
  constructor(
    readonly file: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${message}`, options);
  }
}
export const isJoinDirError = (err: unknown): err is JoinDirError => err instanceof JoinDirError;

/** The file that marks a directory as a node's join directory. */
export const NODE_JSON = 'node.json';
export const JOIN_FILES = {
  nodeJson: NODE_JSON,
  nodeSeed: 'node.nk',
  creds: 'node.creds',
  ca: 'ca.pem',
  agentSeed: 'agent.nk',
  siteConfig: 'nats-site.conf',
  agentEnv: 'agent.env',
} as const;

/** node.json: what a site knows of its join. */
export interface NodeJson {
  node: string;
  wireId: string;
  registrarUrl: string;
  hubLeafUrls: string[];
  domain: string;
  issuedAt: string;
  expiresAt: string;
}

/** node.json of a join's answer: the fields a site keeps (the credentials go to node.creds). */
export function nodeJsonOf(res: JoinResponse): NodeJson {
  const { node, wireId, registrarUrl, hubLeafUrls, domain, issuedAt, expiresAt } = res;
  return { node, wireId, registrarUrl, hubLeafUrls, domain, issuedAt, expiresAt };
}

/** The most node.json may hold: what `edgefarm join` writes is well under 4 KiB. */
export const MAX_NODE_JSON_BYTES = 64 * 1024;

/** Validates node.json's content; throws {@link JoinDirError} naming the field. */
export function parseNodeJson(text: string): NodeJson {
  const fail = (field: string): never => {
    throw new JoinDirError(NODE_JSON, `${field} is missing or malformed`);
  };
  if (text.length > MAX_NODE_JSON_BYTES) fail(`the file (over ${MAX_NODE_JSON_BYTES} bytes)`);
  let o: Partial<NodeJson> | null;
  try {
    o = JSON.parse(text) as Partial<NodeJson> | null;
  } catch {
    return fail('the JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return fail('the object');
  if (typeof o.node !== 'string' || !isNodeName(o.node)) fail('node');
  if (typeof o.wireId !== 'string' || !isUserPublicKey(o.wireId)) fail('wireId');
  if (typeof o.registrarUrl !== 'string' || o.registrarUrl.length > 300 || !/^https:\/\/[^\s"]+$/.test(o.registrarUrl))
    fail('registrarUrl');
  if (!Array.isArray(o.hubLeafUrls) || o.hubLeafUrls.length === 0 || o.hubLeafUrls.length > 16 || !o.hubLeafUrls.every(isLeafUrl))
    fail('hubLeafUrls');
  if (typeof o.domain !== 'string' || o.domain.length === 0 || o.domain.length > 300) fail('domain');
  for (const f of ['issuedAt', 'expiresAt'] as const) {
    try {
      if (typeof o[f] !== 'string') fail(f);
      parseTime(o[f] as string, f);
    } catch {
      fail(f);
    }
  }
  const { node, wireId, registrarUrl, hubLeafUrls, domain, issuedAt, expiresAt } = o as NodeJson;
  return { node, wireId, registrarUrl, hubLeafUrls, domain, issuedAt, expiresAt };
}

/** What the directory holds now: absent, empty, a join (node.json), or other files. */
export async function dirState(dir: string): Promise<'absent' | 'empty' | 'joined' | 'other'> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
  if (names.includes(NODE_JSON)) return 'joined';
  return names.length === 0 ? 'empty' : 'other';
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes one file with its mode and fsyncs it; never follows or overwrites an existing path. */
export async function writeFileSynced(file: string, content: string, mode: number): Promise<void> {
  const fh = await open(file, 'wx', mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `file` atomically: a temporary file beside it (same mode), fsynced, renamed over it, the directory
 * fsynced. A reader sees the old content or the new, never a part.
 */
export async function replaceFileAtomically(file: string, content: string, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await writeFileSynced(tmp, content, mode);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncPath(path.dirname(file));
}

/**
 * Writes the files as the directory `dir` (mode 0700), all or nothing. An existing `dir` is replaced only when
 * `replace` is set (the caller decided: --force, or an empty directory).
 */
export async function writeJoinDir(dir: string, files: JoinFile[], replace: boolean): Promise<void> {
  const parent = path.dirname(dir);
  await mkdir(parent, { recursive: true });
  const suffix = randomBytes(6).toString('hex');
  const tmp = path.join(parent, `.${path.basename(dir)}.tmp-${suffix}`);
  const old = path.join(parent, `.${path.basename(dir)}.old-${suffix}`);
  await mkdir(tmp, { mode: 0o700 });
  let movedOld = false;
  try {
    for (const f of files) await writeFileSynced(path.join(tmp, f.name), f.content, f.mode);
    await fsyncPath(tmp);
    const exists = await stat(dir).then(
      () => true,
      () => false,
    );
    if (exists) {
      if (!replace) throw new Error(`${dir} exists`);
      await rename(dir, old);
      movedOld = true;
    }
    await rename(tmp, dir);
    await fsyncPath(parent);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (movedOld) await rename(old, dir).catch(() => undefined);
    throw err;
  }
  if (movedOld) await rm(old, { recursive: true, force: true });
}
