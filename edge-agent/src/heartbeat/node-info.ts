/**
 * NodeInfoSource: facts about the host for the node heartbeat (system info, capacity). The OS implementation reads
 * them from Node's os module and the usual files; tests pass a fixed one.
 */
import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';

export interface HostInfo {
  machineId: string;
  bootId: string;
  kernelVersion: string;
  osImage: string;
  operatingSystem: string;
  architecture: string;
  cpus: number;
  memoryBytes: number;
}

export interface NodeInfoSource {
  host(): Promise<HostInfo>;
  /** Capacity in bytes of the filesystem holding `dir`, or undefined when unknown. */
  filesystemBytes(dir: string): Promise<number | undefined>;
}

const GOARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
};

async function readTrimmed(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return '';
  }
}

export function parseOsRelease(text: string): string {
  const line = text.split('\n').find((l) => l.startsWith('PRETTY_NAME='));
  if (!line) return '';
  return line
    .slice('PRETTY_NAME='.length)
    .trim()
    .replace(/^"(.*)"$/, '$1');
}

export const osNodeInfo: NodeInfoSource = {
  async host() {
    const [machineId, bootId, osRelease] = await Promise.all([
      readTrimmed('/etc/machine-id'),
      readTrimmed('/proc/sys/kernel/random/boot_id'),
      readTrimmed('/etc/os-release'),
    ]);
    return {
      machineId,
      bootId,
      kernelVersion: os.release(),
      osImage: parseOsRelease(osRelease) || os.version(),
      operatingSystem: process.platform,
      architecture: GOARCH[process.arch] ?? process.arch,
      cpus: os.availableParallelism(),
      memoryBytes: os.totalmem(),
    };
  },
  async filesystemBytes(dir) {
    try {
      const s = await statfs(dir || '/');
      return s.blocks * s.bsize;
    } catch {
      return undefined;
    }
  },
};
