/**
 * FakePodRuntime: a hand-written, in-memory PodRuntime for unit tests. It records every call, keeps sandboxes and
 * containers like a runtime would (so a sync followed by a re-observe sees its effects), lets a test inject an error
 * for the next call of a method, and lets a test make a container exit. A container may be told to ignore SIGTERM:
 * a stop of it then waits out its grace period on the clock (as containerd does), see {@link ignoreSigterm}.
 */
import { podKeyString, type PodKey } from '@edgefarm/proto';
import type { edge } from '@edgefarm/proto';
import { containerHash, sandboxHash } from './labels.js';
import {
  RuntimeError,
  type ContainerCreateOptions,
  type ExecResult,
  type ObservedContainer,
  type ObservedPod,
  type ObservedSandbox,
  type PodRuntime,
  type RelistSnapshot,
  type RuntimeHealth,
  type RuntimeImage,
  type RuntimeVersion,
  type SandboxRef,
} from './types.js';

export interface FakeCall {
  method: keyof PodRuntime;
  args: unknown[];
}

export class FakePodRuntime implements PodRuntime {
  readonly calls: FakeCall[] = [];
  readonly sandboxes = new Map<string, ObservedSandbox>();
  readonly containers = new Map<string, ObservedContainer>();
  readonly images = new Set<string>(['docker.io/edgefarm/busybox:1.35']);
  healthValue: RuntimeHealth = { runtimeReady: true, networkReady: true, message: '' };
  private readonly errors = new Map<string, Error[]>();
  private readonly termIgnored = new Set<string>();
  private readonly waitingStops = new Map<string, { graceSec: number; deadlineMs: number; done: () => void }[]>();
  private nextId = 1;

  constructor(private readonly clock: { now(): number } = { now: () => Date.now() }) {}

  /** The next call of `method` throws `err` (queue several for several calls). */
  failNext(method: keyof PodRuntime, err: Error = new RuntimeError(`injected ${method} failure`, 'other')): void {
    const q = this.errors.get(method) ?? [];
    q.push(err);
    this.errors.set(method, q);
  }

  /** Makes a running container exit with `exitCode`. */
  exit(id: string, exitCode: number): void {
    const c = this.mustContainer(id);
    c.state = 'exited';
    c.exitCode = exitCode;
    c.finishedAtMs = this.clock.now();
    c.reason = exitCode === 0 ? 'Completed' : 'Error';
    this.releaseStops(id);
  }

  private releaseStops(id: string): void {
    const stops = this.waitingStops.get(id) ?? [];
    this.waitingStops.delete(id);
    for (const s of stops) s.done();
  }

  /**
   * The container ignores SIGTERM (`trap "" TERM`): stopContainer with a grace period > 0 waits until the clock has
   * passed its deadline and {@link expireStops} runs, or until the container ends otherwise (a stop with timeout 0,
   * an earlier deadline, stopSandbox, exit); every waiting stop of it then returns, as with containerd.
   */
  ignoreSigterm(id: string): void {
    this.mustContainer(id);
    this.termIgnored.add(id);
  }

  /** Stops waiting out a grace period. */
  pendingStops(): { id: string; graceSec: number; deadlineMs: number }[] {
    return [...this.waitingStops].flatMap(([id, stops]) => stops.map((s) => ({ id, graceSec: s.graceSec, deadlineMs: s.deadlineMs })));
  }

  /** Kills (exit 137) every container whose earliest waiting stop has reached its deadline on the clock. */
  expireStops(): void {
    const now = this.clock.now();
    for (const [id, stops] of [...this.waitingStops]) {
      if (stops.some((s) => s.deadlineMs <= now)) this.exit(id, 137);
    }
  }

  methods(): string[] {
    return this.calls.map((c) => c.method);
  }

  private record(method: keyof PodRuntime, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const q = this.errors.get(method);
    const err = q?.shift();
    if (err) throw err;
  }

  private mustContainer(id: string): ObservedContainer {
    const c = this.containers.get(id);
    if (!c) throw new RuntimeError(`container ${id} not found`, 'not-found');
    return c;
  }

  async listPodKeys(): Promise<PodKey[]> {
    this.record('listPodKeys');
    const keys = new Map<string, PodKey>();
    for (const s of this.sandboxes.values()) keys.set(`${s.namespace}/${s.name}`, { namespace: s.namespace, name: s.name });
    return [...keys.values()];
  }

  async relist(): Promise<RelistSnapshot> {
    this.record('relist');
    const parts = new Map<string, string[]>();
    const add = (k: string, part: string) => parts.set(k, [...(parts.get(k) ?? []), part]);
    for (const s of this.sandboxes.values()) add(`${s.namespace}/${s.name}`, `s:${s.id}:${s.state}`);
    for (const c of this.containers.values()) {
      const s = this.sandboxes.get(c.sandboxId);
      if (s) add(`${s.namespace}/${s.name}`, `c:${c.id}:${c.state}`);
    }
    return new Map([...parts].map(([k, list]) => [k, list.sort().join(',')]));
  }

  async observePod(key: PodKey): Promise<ObservedPod> {
    this.record('observePod', podKeyString(key));
    const sandboxes = [...this.sandboxes.values()]
      .filter((s) => s.namespace === key.namespace && s.name === key.name)
      .map((s) => ({ ...s }))
      .sort((a, b) => b.createdAtMs - a.createdAtMs || b.attempt - a.attempt);
    const ids = new Set(sandboxes.map((s) => s.id));
    const containers = [...this.containers.values()]
      .filter((c) => ids.has(c.sandboxId))
      .map((c) => ({ ...c }))
      .sort((a, b) => b.createdAtMs - a.createdAtMs || b.attempt - a.attempt);
    return { key, sandboxes, containers };
  }

  async runSandbox(pod: edge.EdgePodSpec, attempt: number): Promise<string> {
    this.record('runSandbox', pod.uid, attempt);
    const id = `sb${this.nextId++}`;
    this.sandboxes.set(id, {
      id,
      uid: pod.uid,
      namespace: pod.namespace,
      name: pod.name,
      attempt,
      state: 'ready',
      createdAtMs: this.clock.now(),
      ip: pod.hostNetwork ? '' : `10.0.0.${this.nextId}`,
      hostNetwork: pod.hostNetwork,
      configHash: sandboxHash(pod),
      resourceVersion: pod.resourceVersion,
    });
    return id;
  }

  async sandboxIps(id: string): Promise<string[]> {
    this.record('sandboxIps', id);
    const ip = this.sandboxes.get(id)?.ip;
    return ip ? [ip] : [];
  }

  async stopSandbox(id: string): Promise<void> {
    this.record('stopSandbox', id);
    const s = this.sandboxes.get(id);
    if (!s) return;
    s.state = 'notready';
    for (const c of this.containers.values()) {
      if (c.sandboxId === id && c.state === 'running') this.exit(c.id, 137);
    }
  }

  async removeSandbox(id: string): Promise<void> {
    this.record('removeSandbox', id);
    this.sandboxes.delete(id);
    for (const c of [...this.containers.values()]) {
      if (c.sandboxId !== id) continue;
      this.containers.delete(c.id);
      this.releaseStops(c.id);
    }
  }

  async ensureImage(_pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<string> {
    this.record('ensureImage', container.image);
    if (!this.images.has(container.image)) throw new RuntimeError(`pulling ${container.image}: not found`, 'image-pull');
    return `sha256:${container.image}`;
  }

  async createContainer(
    pod: edge.EdgePodSpec,
    sandbox: SandboxRef,
    container: edge.EdgeContainer,
    options: ContainerCreateOptions,
  ): Promise<string> {
    this.record('createContainer', sandbox.id, container.name, options);
    if (!this.sandboxes.has(sandbox.id)) throw new RuntimeError(`sandbox ${sandbox.id} not found`, 'not-found');
    const id = `c${this.nextId++}`;
    this.containers.set(id, {
      id,
      sandboxId: sandbox.id,
      podUid: pod.uid,
      name: container.name,
      attempt: options.attempt,
      state: 'created',
      hash: containerHash(container),
      restartCount: options.restartCount,
      terminationGracePeriodSec: Number(pod.terminationGracePeriodSeconds),
      image: container.image,
      imageRef: `sha256:${container.image}`,
      createdAtMs: this.clock.now(),
      startedAtMs: 0,
      finishedAtMs: 0,
      exitCode: 0,
      reason: '',
      message: '',
    });
    return id;
  }

  async startContainer(id: string): Promise<void> {
    this.record('startContainer', id);
    const c = this.mustContainer(id);
    c.state = 'running';
    c.startedAtMs = this.clock.now();
  }

  async stopContainer(id: string, gracePeriodSec: number): Promise<void> {
    this.record('stopContainer', id, gracePeriodSec);
    const c = this.containers.get(id);
    if (!c || c.state !== 'running') return;
    if (!this.termIgnored.has(id) || gracePeriodSec <= 0) {
      this.exit(id, 137);
      return;
    }
    const deadlineMs = this.clock.now() + gracePeriodSec * 1000;
    await new Promise<void>((done) => {
      const stops = this.waitingStops.get(id) ?? [];
      stops.push({ graceSec: gracePeriodSec, deadlineMs, done });
      this.waitingStops.set(id, stops);
    });
  }

  async removeContainer(id: string): Promise<void> {
    this.record('removeContainer', id);
    this.containers.delete(id);
    this.releaseStops(id);
  }

  /** Answers execSync per container id (default: exit 0); a test sets it to script exec probes. */
  execHandler: (id: string, cmd: string[], timeoutSec: number) => ExecResult | Promise<ExecResult> = () => ({
    exitCode: 0,
    stdout: '',
    stderr: '',
    timedOut: false,
  });

  async execSync(id: string, cmd: string[], timeoutSec: number): Promise<ExecResult> {
    this.record('execSync', id, cmd, timeoutSec);
    const c = this.mustContainer(id);
    if (c.state !== 'running') throw new RuntimeError(`container ${id} is not running`, 'other');
    return this.execHandler(id, cmd, timeoutSec);
  }

  async health(): Promise<RuntimeHealth> {
    this.record('health');
    return this.healthValue;
  }

  async version(): Promise<RuntimeVersion> {
    this.record('version');
    return { runtimeName: 'fake', runtimeVersion: '0.0.1' };
  }

  async listImages(): Promise<RuntimeImage[]> {
    this.record('listImages');
    return [...this.images].map((name) => ({ names: [name], sizeBytes: 1024 }));
  }

  async rootDir(): Promise<string> {
    this.record('rootDir');
    return '';
  }

  close(): void {
    this.calls.push({ method: 'close', args: [] });
  }
}
