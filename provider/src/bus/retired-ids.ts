/**
 * RetiredWireIds: cleans up after a node's wire id changed (it joined, or joined again with a new key). What the hub
 * holds under the old wire id (desired state, Secrets included, and the last status) is retired with
 * {@link Hub.retireWireId}: every subject still holding a value gets a tombstone, the status is purged.
 *
 * Not at once: only when the node is heard from under its new wire id (a heartbeat, which the bus takes only under a
 * node's current wire id). Until the site runs with its new identity, an agent under the old one may still be
 * connected; it would take the tombstones for deletes and stop its pods, which the new agent would start again. Once
 * the new agent reports, the site's stream sources the new wire id and never sees the old one's tombstones. A node
 * deleted before it was heard from is retired at once (it goes away anyway).
 *
 * It owns the old wire ids of the nodes it serves, in memory: a replica that hands the node over or restarts before
 * the node was heard from forgets them, and those subjects stay on the hub (provider/README.md says what to do).
 */
import type { Logger } from 'pino';
import { WorkQueue } from '@edgefarm/workqueue';
import type { MembershipListener, ReleaseReason, Rekey } from '../membership/membership.js';
import type { Hub } from './hub.js';

export interface RetiredWireIdsDeps {
  hub: Pick<Hub, 'retireWireId'>;
  log: Logger;
}

export class RetiredWireIds implements MembershipListener {
  /** Per node, its earlier wire ids not yet retired. */
  private readonly pending = new Map<string, Set<string>>();
  private readonly queue: WorkQueue;

  constructor(private readonly deps: RetiredWireIdsDeps) {
    this.queue = new WorkQueue((node) => this.retire(node), {
      onError: (node, err, attempt) =>
        deps.log.warn({ node, attempt, err: (err as Error).message }, "retiring a node's old wire id failed; will retry"),
    });
  }

  /** Old wire ids of the node waiting to be retired (tests, diagnostics). */
  waiting(node: string): string[] {
    return [...(this.pending.get(node) ?? [])];
  }

  rekeyed(node: string, { from, to }: Rekey): void {
    const ids = this.pending.get(node) ?? new Set<string>();
    ids.add(from);
    ids.delete(to); // back to an earlier wire id: that one is in use again
    if (ids.size === 0) this.pending.delete(node);
    else this.pending.set(node, ids);
  }

  /** The node's heartbeat arrived (under its current wire id): its old ones can go. */
  heard(node: string): void {
    if (this.pending.has(node)) this.queue.add(node);
  }

  released(node: string, reason: ReleaseReason): void {
    if (!this.pending.has(node)) return;
    if (reason === 'deleted') {
      this.queue.add(node);
      return;
    }
    this.deps.log.warn(
      { node, wireIds: this.waiting(node) },
      'node handed over before it was heard from under its new wire id: its old ones stay on the hub',
    );
    this.pending.delete(node);
  }

  /** Resolves once nothing is queued or running (tests). */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  async stop(): Promise<void> {
    await this.queue.stop();
  }

  private async retire(node: string): Promise<void> {
    const ids = this.pending.get(node);
    if (!ids) return;
    for (const id of [...ids]) {
      const tombstones = await this.deps.hub.retireWireId(id);
      ids.delete(id);
      this.deps.log.info({ node, wireId: id, tombstones }, 'old wire id retired: its desired subjects tombstoned, its status purged');
    }
    if (ids.size === 0 && this.pending.get(node) === ids) this.pending.delete(node);
  }
}
