/**
 * VolumeManager: owns the pods' volume directories on the node,
 *
 *   <root>/<uid>/pod.json            {"namespace","name"} of the pod (written first: a restarted agent knows whose
 *                                    directory it is and removes it once nothing of that pod remains)
 *   <root>/<uid>/volumes/<name>/     emptyDir (a tmpfs for medium Memory) and projected volumes
 *   <root>/<uid>/containers/<name>/<random>   one empty file per container instance, mounted at its
 *                                    terminationMessagePath (as the kubelet's pods/<uid>/containers/<name>/<id>)
 *   <root>/<uid>/volume-subpaths/<volume>/<container>/<index>   a bind mount of each subPath mount's opened
 *                                    directory or file (as the kubelet's pods/<uid>/volume-subpaths/...)
 *
 * and turns a container's volumeMounts into runtime mounts. hostPath volumes stay where they are. With a pod
 * fsGroup, emptyDir and projected volumes are given to that group as the kubelet does (ownership.ts).
 *
 * Contract:
 * - setUp(pod, volume) is idempotent and cheap when nothing changed; the executor calls it for every volume before
 *   the sandbox and the containers start, and on every later sync (projected volumes then follow their objects).
 *   A projected volume is written with the AtomicWriter, in place, only when its files differ. Volumes holding
 *   Secret or token data live on a tmpfs, as the kubelet keeps them. It throws a {@link VolumeSetUpError} in the
 *   kubelet's words; `usable` says whether an earlier setup still serves (a failed refresh keeps the old files).
 * - mounts(pod, container) opens subPaths inside the volume safely (subpath.ts: created when missing, as the kubelet
 *   does; never through a symlink; one resolving outside its volume, or a symlink met while opening, is refused),
 *   bind-mounts each opened directory or file under volume-subpaths/ and hands THAT path to the runtime; it throws a
 *   ContainerConfigError when a mount cannot be made, and counts refusals (`subpath_rejected_total{reason}`).
 * - cleanUp(key, ...) removes the directories of the key's pod UIDs of which nothing remains (tmpfs and subPath binds
 *   unmounted first;
 *   nothing is removed while anything below stays mounted). keys() names every key with a directory, so a resync
 *   finds leftovers of a crash.
 * Calls for one pod UID are serialized by the caller (one sync per key at a time).
 */
import { podKeyString, type PodKey } from '@edgefarm/proto';
import { createHash, randomUUID } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { edge } from '@edgefarm/proto';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { ContainerConfigError, type ObjectSource } from '../runtime/env.js';
import type { ContainerMount, ObservedPod } from '../runtime/types.js';
import { errorMessage } from '../util/time.js';
import { AtomicWriter, type Payload } from './atomic-writer.js';
import { checkHostPath } from './host-path.js';
import { etcHostsMount } from '../hosts/hosts.js';
import type { Mounter } from './mounter.js';
import { setVolumeOwnership } from './ownership.js';
import { holdsSecrets, projectedPayload } from './projection.js';
import { SUBPATH_REJECT_REASONS, SubPathError, openSubPath, type SubPathRejectReason } from './subpath.js';

export interface VolumeManagerDeps {
  /** Root of the per-pod directories (EF_VOLUME_DIR). */
  root: string;
  mounter: Mounter;
  objects: ObjectSource;
  log: Logger;
  now?: () => Date;
  /** Where `edgefarm_agent_subpath_rejected_total` is registered (the agent's registry); none: not exported. */
  registry?: Registry;
  /** The node's hosts file, the base of a hostNetwork pod's managed /etc/hosts (default /etc/hosts). */
  nodeHostsPath?: string;
}

/** What the executor needs of a volume manager (a fake may implement it). */
export interface PodVolumes {
  setUp(pod: edge.EdgePodSpec, volume: edge.EdgeVolume): Promise<void>;
  mounts(pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<ContainerMount[]>;
  cleanUp(key: string, desired: edge.EdgePodSpec | undefined, observed: ObservedPod): Promise<void>;
  keys(): string[];
  /** Creates the empty host file for a new container instance's termination message; returns its path. */
  terminationLogFile?(pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<string>;
  /** The container's managed /etc/hosts mount (hosts/hosts.ts), or undefined when it gets none. */
  etcHosts?(pod: edge.EdgePodSpec, container: edge.EdgeContainer, podIps: () => Promise<string[]>): Promise<ContainerMount | undefined>;
}

/** A volume could not be set up: `MountVolume.SetUp failed for volume "<name>" : <why>`, as the kubelet says it. */
export class VolumeSetUpError extends Error {
  override name = 'VolumeSetUpError';
  constructor(
    readonly volume: string,
    readonly usable: boolean,
    cause: unknown,
  ) {
    super(`MountVolume.SetUp failed for volume "${volume}" : ${errorMessage(cause)}`, { cause });
  }
}
export function isVolumeSetUpError(err: unknown): err is VolumeSetUpError {
  return err instanceof VolumeSetUpError;
}

const MARKER = 'pod.json';
const isNotFound = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

function fingerprint(payload: Payload): string {
  const h = createHash('sha256');
  for (const p of [...payload.keys()].sort()) {
    const f = payload.get(p)!;
    h.update(`${p}\0${f.mode}\0${f.data.length}\0`).update(f.data);
  }
  return h.digest('hex');
}

export class VolumeManager implements PodVolumes {
  /** Pod UID -> pod key, for every directory under the root. */
  private readonly owners = new Map<string, string>();
  /** `<uid>/<volume>` set up by this process at least once. */
  private readonly ready = new Set<string>();
  /** `<uid>/<volume>` -> fingerprint of the projected payload last written. */
  private readonly written = new Map<string, string>();
  /** Directories known to carry our tmpfs. */
  private readonly tmpfs = new Set<string>();

  private readonly rejected: Counter<'reason'>;

  constructor(private readonly deps: VolumeManagerDeps) {
    this.rejected = new Counter({
      name: 'edgefarm_agent_subpath_rejected_total',
      help: 'subPath mounts refused, by reason.',
      labelNames: ['reason'],
      registers: deps.registry ? [deps.registry] : [],
    });
    for (const reason of SUBPATH_REJECT_REASONS) this.rejected.inc({ reason }, 0);
  }

  /** subPath mounts refused so far, by reason (what the metric counts). */
  async rejectedSubPaths(reason: SubPathRejectReason): Promise<number> {
    return (await this.rejected.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  }

  /** Reads which pod owns each directory under the root (after a restart). */
  async start(): Promise<void> {
    let entries: string[];
    try {
      entries = await readdir(this.deps.root);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for (const uid of entries) {
      try {
        const { namespace, name } = JSON.parse(await readFile(path.join(this.deps.root, uid, MARKER), 'utf8')) as PodKey;
        if (namespace && name) this.owners.set(uid, podKeyString({ namespace, name }));
      } catch (err) {
        this.deps.log.warn(
          { dir: path.join(this.deps.root, uid), err: errorMessage(err) },
          'pod volume directory without a readable owner; left alone',
        );
      }
    }
    this.deps.log.info({ root: this.deps.root, pods: this.owners.size }, 'pod volume directories');
  }

  keys(): string[] {
    return [...new Set(this.owners.values())];
  }

  /** UIDs of the pods with a directory under the root. */
  podUids(): string[] {
    return [...this.owners.keys()];
  }

  podDir(uid: string): string {
    return path.join(this.deps.root, uid);
  }

  volumeDir(uid: string, volume: string): string {
    return path.join(this.deps.root, uid, 'volumes', volume);
  }

  async setUp(pod: edge.EdgePodSpec, volume: edge.EdgeVolume): Promise<void> {
    const id = `${pod.uid}/${volume.name}`;
    const dir = this.volumeDir(pod.uid, volume.name);
    try {
      const { source } = volume;
      switch (source.case) {
        case 'emptyDir':
          if (this.ready.has(id)) return;
          await this.ensurePodDir(pod);
          await mkdir(dir, { recursive: true });
          if (source.value.memory) await this.ensureTmpfs(dir, Number(source.value.sizeLimitBytes));
          await chmod(dir, 0o777); // the kubelet's emptyDir mode: any container user may write
          if (pod.fsGroup !== undefined) {
            await setVolumeOwnership(dir, { fsGroup: Number(pod.fsGroup), readOnly: false, policy: pod.fsGroupChangePolicy });
          }
          break;
        case 'hostPath':
          if (this.ready.has(id)) return;
          await checkHostPath(source.value);
          break;
        case 'projected': {
          const payload = projectedPayload(pod, source.value, this.deps.objects);
          const fp = fingerprint(payload);
          if (this.ready.has(id) && this.written.get(id) === fp) return;
          await this.ensurePodDir(pod);
          await mkdir(dir, { recursive: true });
          if (holdsSecrets(source.value)) await this.ensureTmpfs(dir, 0);
          const wrote = await new AtomicWriter(dir, this.deps.now).write(payload);
          // The kubelet gives configMap, secret, downwardAPI and projected volumes to the fsGroup after each write.
          if (pod.fsGroup !== undefined && (wrote || !this.ready.has(id))) {
            await setVolumeOwnership(dir, { fsGroup: Number(pod.fsGroup), readOnly: true });
          }
          if (wrote && this.ready.has(id)) this.deps.log.info({ pod: podKeyString(pod), volume: volume.name }, 'projected volume updated');
          this.written.set(id, fp);
          break;
        }
        default:
          throw new Error('volume of an unknown kind');
      }
      this.ready.add(id);
    } catch (err) {
      let usable = this.ready.has(id);
      if (!usable && volume.source.case === 'projected') usable = await exists(path.join(dir, '..data'));
      throw new VolumeSetUpError(volume.name, usable, err);
    }
  }

  async terminationLogFile(pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<string> {
    await this.ensurePodDir(pod);
    const dir = path.join(this.podDir(pod.uid), 'containers', container.name);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, randomUUID().slice(0, 8));
    await writeFile(file, '', { flag: 'wx' });
    await chmod(file, 0o666); // any container user may write it, whatever the umask
    return file;
  }

  /** Writes the pod's file `name` in place (a bind mount of it sees the new content, as the kubelet's etc-hosts). */
  async podFile(pod: edge.EdgePodSpec, name: string, content: string): Promise<string> {
    await this.ensurePodDir(pod);
    const file = path.join(this.podDir(pod.uid), name);
    await writeFile(file, content, { mode: 0o644 });
    return file;
  }

  async etcHosts(
    pod: edge.EdgePodSpec,
    container: edge.EdgeContainer,
    podIps: () => Promise<string[]>,
  ): Promise<ContainerMount | undefined> {
    return etcHostsMount(pod, container, podIps, { files: this, nodeHostsPath: this.deps.nodeHostsPath });
  }

  async mounts(pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<ContainerMount[]> {
    const out: ContainerMount[] = [];
    for (const [index, m] of container.volumeMounts.entries()) {
      const volume = pod.volumes.find((v) => v.name === m.name);
      if (!volume) throw new ContainerConfigError(`cannot find volume "${m.name}" to mount into container "${container.name}"`);
      const base = volume.source.case === 'hostPath' ? volume.source.value.path : this.volumeDir(pod.uid, volume.name);
      const hostPath = m.subPath ? await this.subPath(pod, base, m, container, index) : base;
      // Kubernetes mounts configMap, secret, downwardAPI and projected volumes read-only, whatever the mount says.
      out.push({ containerPath: m.mountPath, hostPath, readOnly: m.readOnly || volume.source.case === 'projected' });
    }
    return out;
  }

  /** Where the subPath of mount `index` of `container` is bind-mounted (the kubelet's volume-subpaths layout). */
  subPathTarget(uid: string, volume: string, container: string, index: number): string {
    return path.join(this.podDir(uid), 'volume-subpaths', volume, container, String(index));
  }

  /**
   * Opens `<base>/<subPath>` safely (created when missing; subpath.ts) and bind-mounts the opened directory or file on
   * its stable target, replacing an earlier bind of the same mount (a restarted container gets what the volume holds
   * now). Returns the target, never a path resolved again.
   */
  private async subPath(
    pod: edge.EdgePodSpec,
    base: string,
    m: edge.VolumeMount,
    container: edge.EdgeContainer,
    index: number,
  ): Promise<string> {
    const fail = (why: string, cause?: unknown): ContainerConfigError =>
      new ContainerConfigError(`failed to prepare subPath for volumeMount "${m.name}" of container "${container.name}": ${why}`, {
        cause,
      });
    let opened;
    try {
      opened = await openSubPath(base, m.subPath, { create: true });
    } catch (err) {
      const reason = err instanceof SubPathError ? err.reason : 'io';
      this.rejected.inc({ reason });
      this.deps.log.warn(
        { pod: podKeyString(pod), volume: m.name, container: container.name, reason, err: errorMessage(err) },
        'subPath refused',
      );
      throw fail(errorMessage(err), err);
    }
    const target = this.subPathTarget(pod.uid, m.name, container.name, index);
    try {
      await this.ensurePodDir(pod);
      for (const p of await this.deps.mounter.mountsUnder(target)) await this.deps.mounter.unmount(p);
      if ((await this.deps.mounter.mountsUnder(target)).length > 0) throw new Error(`${target} is still mounted`);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o750 });
      const held = await lstat(target).catch(() => undefined);
      if (held && held.isDirectory() !== opened.isDirectory) await rm(target, { recursive: true, force: true });
      if (opened.isDirectory) await mkdir(target, { recursive: true });
      else await writeFile(target, '', { flag: 'a' });
      await this.deps.mounter.bindMount(`/proc/${process.pid}/fd/${opened.fd}`, target);
    } catch (err) {
      throw fail(errorMessage(err), err);
    } finally {
      opened.close();
    }
    return target;
  }

  async cleanUp(key: string, desired: edge.EdgePodSpec | undefined, observed: ObservedPod): Promise<void> {
    const keep = new Set(observed.sandboxes.map((s) => s.uid));
    if (desired && !desired.deleting) keep.add(desired.uid);
    for (const [uid, owner] of [...this.owners]) {
      if (owner !== key || keep.has(uid)) continue;
      try {
        await this.removePodDir(uid);
        this.deps.log.info({ pod: key, uid }, 'pod volume directory removed');
      } catch (err) {
        this.deps.log.warn(
          { pod: key, uid, err: errorMessage(err) },
          'could not remove the pod volume directory; retrying on the next sync',
        );
      }
    }
  }

  private async removePodDir(uid: string): Promise<void> {
    const dir = this.podDir(uid);
    for (const m of await this.deps.mounter.mountsUnder(dir)) await this.deps.mounter.unmount(m);
    const left = await this.deps.mounter.mountsUnder(dir);
    if (left.length > 0) throw new Error(`still mounted: ${left.join(', ')}`);
    await rm(dir, { recursive: true, force: true });
    this.owners.delete(uid);
    const prefix = `${uid}/`;
    for (const id of [...this.ready]) if (id.startsWith(prefix)) this.ready.delete(id);
    for (const id of [...this.written.keys()]) if (id.startsWith(prefix)) this.written.delete(id);
    for (const d of [...this.tmpfs]) if (d.startsWith(`${dir}/`)) this.tmpfs.delete(d);
  }

  /** Creates `<root>/<uid>` with its owner file, once. */
  private async ensurePodDir(pod: edge.EdgePodSpec): Promise<void> {
    if (this.owners.has(pod.uid)) return;
    const dir = this.podDir(pod.uid);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const tmp = path.join(dir, `.${MARKER}.tmp`);
    await writeFile(tmp, JSON.stringify({ namespace: pod.namespace, name: pod.name }));
    await rename(tmp, path.join(dir, MARKER));
    this.owners.set(pod.uid, podKeyString(pod));
  }

  private async ensureTmpfs(dir: string, sizeBytes: number): Promise<void> {
    if (this.tmpfs.has(dir)) return;
    const mounted = (await this.deps.mounter.mountsUnder(dir)).includes(path.resolve(dir));
    if (!mounted) await this.deps.mounter.mountTmpfs(dir, { sizeBytes });
    this.tmpfs.add(dir);
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
