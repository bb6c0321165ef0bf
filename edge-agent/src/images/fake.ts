/**
 * FakeImageService: an in-memory ImageService for unit tests. Images are held by name; a pull succeeds when the
 * test has put the image in `registry` and its credentials (if any are required) match; it records every call
 * and lets a test inject an error for the next call of a method.
 */
import type { edge } from '@edgefarm/proto';
import { RuntimeError } from '../runtime/types.js';
import type { RegistryAuth } from './credentials.js';
import type { ImageFsUsage, ImageInfo, ImageService } from './service.js';

export interface FakeImageCall {
  method: keyof ImageService;
  args: unknown[];
}

export class FakeImageService implements ImageService {
  readonly calls: FakeImageCall[] = [];
  /** Present images: name -> info. */
  readonly present = new Map<string, ImageInfo>();
  /** Pullable images: name -> { id, size, required credentials ('' : anonymous) }. */
  readonly registry = new Map<string, { id: string; sizeBytes: number; auth?: RegistryAuth }>();
  readonly inUse = new Set<string>();
  fs: ImageFsUsage = { mountpoint: '/fake', capacityBytes: 100, availableBytes: 50, imagesUsedBytes: 0 };
  sandbox = 'registry.k8s.io/pause:3.6';
  private readonly errors = new Map<string, Error[]>();

  failNext(method: keyof ImageService, err: Error = new RuntimeError(`injected ${method} failure`, 'other')): void {
    this.errors.set(method, [...(this.errors.get(method) ?? []), err]);
  }

  pulls(): { image: string; auth: RegistryAuth | undefined }[] {
    return this.calls
      .filter((c) => c.method === 'pullImage')
      .map((c) => ({ image: c.args[0] as string, auth: c.args[1] as RegistryAuth | undefined }));
  }

  async imageId(image: string): Promise<string | undefined> {
    this.record('imageId', image);
    return this.present.get(image)?.id;
  }

  async pullImage(image: string, auth: RegistryAuth | undefined, _pod: edge.EdgePodSpec): Promise<string> {
    this.record('pullImage', image, auth);
    const r = this.registry.get(image);
    if (!r) throw new RuntimeError(`failed to pull and unpack image "${image}": not found`, 'image-pull');
    if (r.auth && (auth?.username !== r.auth.username || auth?.password !== r.auth.password)) {
      throw new RuntimeError(`failed to pull and unpack image "${image}": 401 Unauthorized`, 'image-pull');
    }
    const held = [...this.present.values()].find((i) => i.id === r.id);
    if (held) held.names = [...new Set([...held.names, image])];
    this.present.set(image, held ?? { id: r.id, names: [image], sizeBytes: r.sizeBytes, pinned: false });
    return r.id;
  }

  async listImages(): Promise<ImageInfo[]> {
    this.record('listImages');
    const byId = new Map<string, ImageInfo>();
    for (const i of this.present.values()) byId.set(i.id, i);
    return [...byId.values()];
  }

  async removeImage(id: string): Promise<void> {
    this.record('removeImage', id);
    for (const [name, i] of this.present) if (i.id === id) this.present.delete(name);
  }

  async imageFsUsage(): Promise<ImageFsUsage> {
    this.record('imageFsUsage');
    return { ...this.fs };
  }

  async imagesInUse(): Promise<Set<string>> {
    this.record('imagesInUse');
    return new Set(this.inUse);
  }

  async sandboxImage(): Promise<string> {
    this.record('sandboxImage');
    return this.sandbox;
  }

  private record(method: keyof ImageService, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const q = this.errors.get(method);
    const err = q?.shift();
    if (err) throw err;
  }
}
