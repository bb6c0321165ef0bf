/**
 * ContainerStopper: carries out the container kills of syncs, and lets a shorter grace period reach a kill that is
 * already waiting, as the kubelet's pod worker does when a terminating pod's grace period is shortened
 * (`kubectl delete pod x --grace-period=1` on a pod already terminating, or `--force --grace-period=0`).
 *
 * A sync stops a container with StopContainer(timeout = grace) and so holds its key in the work queue for up to the
 * grace period; a newer desired spec with a shorter grace would only be acted on after it. shorten() therefore issues
 * StopContainer with the shorter timeout at once, beside the running call: containerd kills the container at the
 * earlier deadline and both calls return then (pinned in runtime/stop.int.test.ts).
 *
 * Rules:
 * - A grace period only shrinks: a running stop is shortened only when now + new grace falls before the deadline it
 *   runs under; a longer grace changes nothing. 0 kills at once (containerd sends SIGKILL without a SIGTERM wait).
 * - A kill that starts after a shorter grace arrived uses it: the ceiling is read from the desired state when the
 *   kill starts. Together with shorten() (called when the desired state changes) no shorter grace is missed, since
 *   both run synchronously on the one event loop.
 * - Stops issued out of band are never awaited by a sync; their failures are logged (the running stop and the next
 *   sync still stand), and drain() waits for them.
 */
import type { Logger } from 'pino';
import type { PodRuntime } from '../runtime/types.js';
import { errorMessage, type Clock } from '../util/time.js';
import type { ContainerToKill } from './actions.js';

export interface ContainerStopperDeps {
  runtime: Pick<PodRuntime, 'stopContainer'>;
  clock: Clock;
  log: Logger;
  /**
   * The longest grace period (s) the desired state now allows for stopping a container of pod `podUid` under `key`
   * (a deleting spec's deletion grace period), or undefined when it sets none.
   */
  graceCeiling(key: string, podUid: string): number | undefined;
}

/** A running stop whose grace period was shortened. */
export interface ShortenedStop {
  id: string;
  name: string;
  fromSec: number;
  toSec: number;
}

interface RunningStop {
  key: string;
  podUid: string;
  name: string;
  graceSec: number;
  /** When the runtime kills the container at the latest (clock ms). */
  deadlineMs: number;
}

export class ContainerStopper {
  /** By container id: at most one sync stops a container at a time (one sync per key). */
  private readonly running = new Map<string, RunningStop>();
  private readonly outOfBand = new Set<Promise<void>>();

  constructor(private readonly deps: ContainerStopperDeps) {}

  /** Stops a container with the kill's grace period, or the desired state's shorter one. */
  async stop(key: string, kill: ContainerToKill): Promise<void> {
    const ceiling = this.deps.graceCeiling(key, kill.podUid);
    const graceSec = ceiling !== undefined && ceiling < kill.gracePeriodSec ? ceiling : kill.gracePeriodSec;
    if (graceSec !== kill.gracePeriodSec) {
      this.deps.log.info(
        { pod: key, container: kill.name, id: kill.id, from: kill.gracePeriodSec, to: graceSec },
        'stopping with the shorter grace period of the desired state',
      );
    }
    const entry: RunningStop = { key, podUid: kill.podUid, name: kill.name, graceSec, deadlineMs: this.deps.clock.now() + graceSec * 1000 };
    this.running.set(kill.id, entry);
    try {
      await this.deps.runtime.stopContainer(kill.id, graceSec);
    } finally {
      if (this.running.get(kill.id) === entry) this.running.delete(kill.id);
    }
  }

  /**
   * The desired state now allows `graceSec` for stopping the containers of pod `podUid` under `key`: every running
   * stop of them with a later deadline gets StopContainer(graceSec) at once. Returns what was shortened.
   */
  shorten(key: string, podUid: string, graceSec: number): ShortenedStop[] {
    const grace = Math.max(0, Math.trunc(graceSec));
    const deadlineMs = this.deps.clock.now() + grace * 1000;
    const shortened: ShortenedStop[] = [];
    for (const [id, s] of this.running) {
      if (s.key !== key || s.podUid !== podUid || deadlineMs >= s.deadlineMs) continue;
      shortened.push({ id, name: s.name, fromSec: s.graceSec, toSec: grace });
      s.graceSec = grace;
      s.deadlineMs = deadlineMs;
      const p: Promise<void> = this.deps.runtime
        .stopContainer(id, grace)
        .catch((err: unknown) => this.deps.log.warn({ pod: key, container: s.name, id, err: errorMessage(err) }, 'shortened stop failed'))
        .finally(() => this.outOfBand.delete(p));
      this.outOfBand.add(p);
    }
    if (shortened.length > 0) {
      this.deps.log.info(
        { pod: key, stops: shortened.map((s) => `${s.name}/${s.id.slice(0, 12)} ${s.fromSec}s -> ${s.toSec}s`).join(', ') },
        'grace period shortened',
      );
    }
    return shortened;
  }

  /** Containers being stopped, for tests and diagnostics. */
  stopping(): { id: string; key: string; graceSec: number; deadlineMs: number }[] {
    return [...this.running].map(([id, s]) => ({ id, key: s.key, graceSec: s.graceSec, deadlineMs: s.deadlineMs }));
  }

  /** Resolves when every out-of-band stop has returned. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.outOfBand]);
  }
}
