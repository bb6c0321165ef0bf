/**
 * ObjectWatches: a watch per ConfigMap or Secret that served pods use, as the kubelet's watch-based configmap and
 * secret managers keep them (list+watch with fieldSelector metadata.name=<name> in its namespace), instead of a
 * cluster-wide watch of every Secret. It owns, per object, which served nodes use it and the one watch, opened as one
 * of those nodes (NodeClients): the Node authorizer allows a node to read exactly the objects its pods use, so that
 * is all the provider can read. One watch per object, however many nodes use it.
 *
 * - {@link get} adds the node to the object's users, opens the watch if there is none (waiting for its first list)
 *   and answers from it: the object, or undefined when it does not exist (the watch stays, to see it created).
 * - {@link release} / {@link releaseNode}: the node no longer uses it; the last user's release closes the watch. When
 *   the node the watch was opened as leaves, the watch is opened again as another user (the first may no longer read
 *   it once its pods are gone).
 * - A watch that fails (403, the apiserver gone, a credential expired) is closed and opened again after `retryMs`,
 *   with a fresh client of a node still using it.
 * - `changed` gets the key of every object added, updated or deleted (from a watch's first list, too).
 */
import type { Logger } from 'pino';
import { parseObjectKey, type ObjectKey } from '@edgefarm/proto';
import type { Watcher, WatchedObject } from './client.js';
import type { NodeClients } from './node-clients.js';

export interface ObjectWatchesDeps {
  nodes: NodeClients;
  changed: (ref: ObjectKey) => void;
  log: Logger;
  /** Delay before a failed watch is opened again (default 2 s). */
  retryMs?: number;
}

/** The watch of an object could not be opened (its first list failed); the cause is the API's error. */
export class ObjectWatchError extends Error {
  override name = 'ObjectWatchError';
  constructor(
    readonly ref: ObjectKey,
    readonly node: string,
    options: { cause: unknown },
  ) {
    super(`watching ${ref} as node ${node} failed: ${(options.cause as Error)?.message ?? String(options.cause)}`, options);
  }
}

interface Entry {
  users: Set<string>;
  /** The node the current watch is opened as. */
  holder?: string;
  watcher?: Watcher<WatchedObject>;
  /** Resolves once the current watch has listed; rejects when it could not. */
  ready?: Promise<void>;
  /** Bumped on every open and close: a callback of an older watch is ignored. */
  generation: number;
  retry?: NodeJS.Timeout;
}

export class ObjectWatches {
  private readonly entries = new Map<ObjectKey, Entry>();
  private stopped = false;

  constructor(private readonly deps: ObjectWatchesDeps) {}

  /** Open watches (metrics, tests). */
  get size(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.watcher) n++;
    return n;
  }

  /** The object as its watch holds it, watching it for `node` from now on; undefined when it does not exist. */
  async get(node: string, ref: ObjectKey): Promise<WatchedObject | undefined> {
    let e = this.entries.get(ref);
    if (!e) this.entries.set(ref, (e = { users: new Set(), generation: 0 }));
    e.users.add(node);
    const { key } = parseObjectKey(ref);
    // Until the watch awaited is still the current one: it may be opened again (as another node, after a failure)
    // meanwhile, and its empty cache is not "the object does not exist".
    for (;;) {
      const ready = (e.ready ??= this.open(ref, e, node));
      try {
        await ready;
      } catch (err) {
        if (e.ready === ready || e.ready === undefined || this.entries.get(ref) !== e) throw err;
        continue; // that watch was closed and another opened meanwhile: wait for that one
      }
      if (e.ready === ready && e.watcher) return e.watcher.get(key.namespace, key.name);
      if (this.stopped || this.entries.get(ref) !== e || !e.users.has(node))
        throw new ObjectWatchError(ref, node, { cause: new Error('the watch was closed') });
    }
  }

  /** `node` no longer uses the object. */
  release(node: string, ref: ObjectKey): void {
    const e = this.entries.get(ref);
    if (!e?.users.delete(node)) return;
    if (e.users.size === 0) {
      this.close(e);
      this.entries.delete(ref);
    } else if (e.holder === node) {
      this.close(e);
      e.ready = this.open(ref, e, this.nextUser(e));
      e.ready.catch(() => undefined);
    }
  }

  /** `node` no longer uses anything (given up). */
  releaseNode(node: string): void {
    for (const [ref, e] of [...this.entries]) if (e.users.has(node)) this.release(node, ref);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) this.close(e);
  }

  private nextUser(e: Entry): string {
    return e.users.values().next().value!;
  }

  private close(e: Entry): void {
    e.generation++;
    clearTimeout(e.retry);
    const w = e.watcher;
    e.watcher = undefined;
    e.holder = undefined;
    e.ready = undefined;
    if (w) void w.stop().catch(() => undefined);
  }

  /** Opens the watch as `node`; resolves after its first list. */
  private async open(ref: ObjectKey, e: Entry, node: string): Promise<void> {
    const generation = ++e.generation;
    e.holder = node;
    const current = () => e.generation === generation && !this.stopped;
    try {
      const client = await this.deps.nodes.client(node);
      if (!current()) return;
      const { kind, key } = parseObjectKey(ref);
      if (kind === 'token') throw new Error(`${ref}: tokens are not watched`);
      const w = client.objectWatch(kind, key.namespace, key.name);
      e.watcher = w;
      let failed: { err: unknown } | undefined;
      let listed = false;
      const changed = () => {
        if (current()) this.deps.changed(ref);
      };
      await w.start({
        changed,
        deleted: changed,
        error: (err) => {
          void w.stop().catch(() => undefined);
          if (!listed) failed ??= { err };
          else if (current()) this.failed(ref, e, err);
        },
      });
      listed = true;
      if (failed) throw failed.err;
    } catch (err) {
      if (e.generation === generation) {
        e.watcher = undefined;
        e.holder = undefined;
        e.ready = undefined;
      }
      throw new ObjectWatchError(ref, node, { cause: err });
    }
  }

  /** A running watch failed: closed, and opened again later as a node still using the object. */
  private failed(ref: ObjectKey, e: Entry, err: unknown): void {
    this.deps.log.warn({ object: ref, node: e.holder, err: (err as Error)?.message }, 'object watch failed; opening it again');
    e.watcher = undefined;
    e.ready = undefined;
    this.reopenLater(ref, e);
  }

  private reopenLater(ref: ObjectKey, e: Entry): void {
    const generation = e.generation;
    clearTimeout(e.retry);
    e.retry = setTimeout(() => {
      if (e.generation !== generation || this.stopped || e.users.size === 0 || e.ready) return;
      const holder = e.holder && e.users.has(e.holder) ? e.holder : this.nextUser(e);
      const ready = (e.ready = this.open(ref, e, holder));
      ready.catch((err: unknown) => {
        this.deps.log.warn({ object: ref, err: (err as Error).message }, 'object watch could not be opened again');
        if (!e.ready && this.entries.get(ref) === e) this.reopenLater(ref, e);
      });
    }, this.deps.retryMs ?? 2_000);
  }
}
