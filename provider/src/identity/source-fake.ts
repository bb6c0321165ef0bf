/** A hand-written {@link RevocationSource}: the test plays the Secret and EdgeNode events; writes are recorded. */
import { revocationEntry } from '@edgefarm/registrar';
import type { RevocationHandlers, RevocationSource } from './source.js';

export class FakeRevocationSource implements RevocationSource {
  handlers?: RevocationHandlers;
  data: Record<string, string> | undefined;
  readonly added: { publicKey: string; at: Date }[] = [];
  stopped = false;
  failAdd?: Error;

  async start(h: RevocationHandlers): Promise<void> {
    this.handlers = h;
    h.revocations(this.data);
  }
  /** The Secret changed (as a watch event would say). */
  setData(data: Record<string, string> | undefined): void {
    this.data = data;
    this.handlers?.revocations(data);
  }
  async addRevocation(publicKey: string, at: Date): Promise<void> {
    if (this.failAdd) {
      const e = this.failAdd;
      this.failAdd = undefined;
      throw e;
    }
    this.added.push({ publicKey, at });
    this.setData({ ...this.data, ...revocationEntry(publicKey, at) });
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}
