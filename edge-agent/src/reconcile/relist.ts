/**
 * Relister: the kubelet's generic PLEG for a runtime without container events (containerd 1.6 has no CRI
 * GetContainerEvents; it came with 1.7). Every period it takes one relist of the runtime (one ListPodSandbox and one
 * ListContainers for all pods), compares each pod key's digest with the previous one, and hands the keys whose
 * sandboxes or containers changed state (or appeared, or went away) to `onChange`, which queues them for a sync.
 * Unchanged pods cost nothing beyond the two list calls, so the period can be short: a container's exit reaches its
 * pod's sync within about one period.
 *
 * The first relist after start() reports every key it sees. A failed relist is logged and the next one compares
 * against the last good snapshot. start()/stop() leave no timer behind.
 */
import type { Logger } from 'pino';
import type { PodRuntime, RelistSnapshot } from '../runtime/types.js';
import { errorMessage } from '../util/time.js';

export interface RelisterDeps {
  runtime: Pick<PodRuntime, 'relist'>;
  log: Logger;
  /** Called once per changed key per relist. */
  onChange: (key: string) => void;
}

export class Relister {
  private last: RelistSnapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = true;

  constructor(
    private readonly deps: RelisterDeps,
    readonly periodMs: number,
  ) {}

  /** One relist: the keys whose state changed since the previous one (all keys the first time). */
  async relistOnce(): Promise<string[]> {
    const now = await this.deps.runtime.relist();
    const before = this.last;
    this.last = now;
    const changed: string[] = [];
    for (const [key, digest] of now) if (before?.get(key) !== digest) changed.push(key);
    if (before) for (const key of before.keys()) if (!now.has(key)) changed.push(key);
    for (const key of changed) this.deps.onChange(key);
    return changed;
  }

  start(): void {
    if (!this.stopped || this.periodMs <= 0) return;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.relistOnce()
        .catch((err: unknown) => this.deps.log.warn({ err: errorMessage(err) }, 'relist failed'))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.schedule(this.periodMs);
        });
    }, delayMs);
  }
}
