/**
 * The kubelet's SetVolumeOwnership (pkg/volume/volume_linux.go) for the volumes the agent writes: with a pod
 * fsGroup, every file and directory of the volume gets that group (lchown, the owner unchanged), group read
 * (read-only volumes: projected) or read-write (emptyDir) added to its mode, and directories also group execute and
 * setgid, so what containers create later inherits the group. Symlinks get the group only (their mode means nothing).
 * The walk never follows a symlink, so a link a container planted cannot point it at the node's files.
 *
 * fsGroupChangePolicy "OnRootMismatch" skips the walk when the volume's root has the group, setgid and the mask's
 * bits already (the kubelet's skipPermissionChange); any other value walks.
 */
import { chmod, lchown, lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

const RW_MASK = 0o660;
const RO_MASK = 0o440;
const EXEC_MASK = 0o110;
const SETGID = 0o2000;

export interface OwnershipOptions {
  fsGroup: number;
  readOnly: boolean;
  /** pod.spec.securityContext.fsGroupChangePolicy ('' = Always). */
  policy?: string;
}

/** Whether the root of `dir` already has the group and the bits the walk would give it. */
async function rootMatches(dir: string, o: OwnershipOptions): Promise<boolean> {
  const st = await lstat(dir);
  const mask = (o.readOnly ? RO_MASK : RW_MASK) | EXEC_MASK | SETGID;
  return st.gid === o.fsGroup && (st.mode & mask) === mask;
}

/** Applies fsGroup ownership to everything under `dir` (dir included); returns how many entries it changed. */
export async function setVolumeOwnership(dir: string, o: OwnershipOptions): Promise<number> {
  if (!Number.isSafeInteger(o.fsGroup) || o.fsGroup < 0 || o.fsGroup > 0xffffffff - 1) {
    throw new Error(`fsGroup ${o.fsGroup} is not a valid group id`);
  }
  if (o.policy === 'OnRootMismatch' && (await rootMatches(dir, o))) return 0;
  let changed = 0;
  const visit = async (p: string): Promise<void> => {
    const st = await lstat(p);
    await lchown(p, -1, o.fsGroup);
    changed++;
    if (st.isSymbolicLink()) return;
    let mask = o.readOnly ? RO_MASK : RW_MASK;
    if (st.isDirectory()) mask |= SETGID | EXEC_MASK;
    const mode = (st.mode & 0o7777) | mask;
    if (mode !== (st.mode & 0o7777)) await chmod(p, mode);
    if (st.isDirectory()) {
      for (const name of await readdir(p)) await visit(path.join(p, name));
    }
  };
  await visit(dir);
  return changed;
}
