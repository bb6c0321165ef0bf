/**
 * Heartbeater: every interval (5 s by default; the provider calls a node disconnected 12 s after the hub stored its
 * last one) writes a NodeHeartbeat to the node's outbox subject: capacity, conditions (Ready from the runtime's own
 * status; DiskPressure from the free space of the node's filesystems, disk-pressure.ts), images, system info,
 * addresses, the applied desired-state sequence and the pod count. A heartbeat is written even when the runtime is
 * down (then Ready is False), because it is also the node's liveness signal.
 */
import { create, edge, encode, outboxSubjects } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { OutboxWriter } from '../bus/outbox.js';
import type { PodRuntime, RuntimeVersion } from '../runtime/types.js';
import { errorMessage, type Clock } from '../util/time.js';
import type { DiskPressureMonitor } from './disk-pressure.js';
import type { HostInfo, NodeInfoSource } from './node-info.js';

export interface HeartbeatDeps {
  /** The Kubernetes node name (what the heartbeat says it is). */
  nodeName: string;
  /** The node's wire id (the outbox subject names it). */
  wireId: string;
  nodeIp: string;
  agentVersion: string;
  runtime: PodRuntime;
  outbox: OutboxWriter;
  nodeInfo: NodeInfoSource;
  appliedSequence: () => number;
  podCount: () => number;
  clock: Clock;
  log: Logger;
  /** The DiskPressure condition (disk-pressure.ts); unset: the heartbeat carries Ready only. */
  diskPressure?: Pick<DiskPressureMonitor, 'condition'>;
}

export const MAX_PODS = '110';

export class Heartbeater {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private host: HostInfo | undefined;
  private version: RuntimeVersion | undefined;

  constructor(
    private readonly deps: HeartbeatDeps,
    private readonly intervalMs = 5_000,
  ) {}

  /** Writes one heartbeat now, then one every interval. */
  start(): void {
    this.stopped = false;
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private tick(): void {
    this.running = this.beat()
      .then(() => undefined)
      .catch((err: unknown) => this.deps.log.warn({ err: errorMessage(err) }, 'heartbeat not written'))
      .finally(() => {
        if (!this.stopped) this.timer = setTimeout(() => this.tick(), this.intervalMs);
      });
  }

  /** Builds the heartbeat (without writing it). */
  async build(): Promise<edge.NodeHeartbeat> {
    const { runtime, nodeInfo, log } = this.deps;
    this.host ??= await nodeInfo.host();
    const host = this.host;
    if (!this.version) this.version = await runtime.version().catch(() => undefined);

    let ready: { status: string; reason: string; message: string };
    try {
      const h = await runtime.health();
      ready =
        h.runtimeReady && h.networkReady
          ? { status: 'True', reason: 'EdgeAgentReady', message: 'edge-agent is posting ready status' }
          : { status: 'False', reason: h.runtimeReady ? 'NetworkNotReady' : 'RuntimeNotReady', message: h.message };
    } catch (err) {
      ready = { status: 'False', reason: 'RuntimeUnavailable', message: errorMessage(err) };
    }
    const images = await runtime.listImages().catch((err: unknown) => {
      log.debug({ err: errorMessage(err) }, 'could not list images');
      return [];
    });
    const root = await runtime.rootDir().catch(() => '');
    const fsBytes = await nodeInfo.filesystemBytes(root || '/');
    const conditions = [{ type: 'Ready', ...ready }];
    if (this.deps.diskPressure) conditions.push(await this.deps.diskPressure.condition());

    const capacity: Record<string, string> = {
      cpu: String(host.cpus),
      memory: `${Math.floor(host.memoryBytes / 1024)}Ki`,
      pods: MAX_PODS,
    };
    if (fsBytes !== undefined) capacity['ephemeral-storage'] = `${Math.floor(fsBytes / 1024)}Ki`;

    return create(edge.NodeHeartbeatSchema, {
      nodeName: this.deps.nodeName,
      sentAtMs: BigInt(Math.trunc(this.deps.clock.now())),
      agentVersion: this.deps.agentVersion,
      capacity,
      allocatable: { ...capacity },
      conditions,
      images: images.map((i) => ({ names: i.names, sizeBytes: BigInt(i.sizeBytes) })),
      systemInfo: {
        machineId: host.machineId,
        bootId: host.bootId,
        kernelVersion: host.kernelVersion,
        osImage: host.osImage,
        containerRuntimeVersion: this.version ? `${this.version.runtimeName}://${this.version.runtimeVersion}` : '',
        operatingSystem: host.operatingSystem,
        architecture: host.architecture,
      },
      addresses: [
        { type: 'InternalIP', address: this.deps.nodeIp },
        { type: 'Hostname', address: this.deps.nodeName },
      ],
      appliedSequence: BigInt(this.deps.appliedSequence()),
      podCount: this.deps.podCount(),
    });
  }

  /** Builds and writes one heartbeat. */
  async beat(): Promise<edge.NodeHeartbeat> {
    const hb = await this.build();
    await this.deps.outbox.publish(outboxSubjects.of(this.deps.wireId, { kind: 'node' }), encode(edge.NodeHeartbeatSchema, hb));
    return hb;
  }
}
