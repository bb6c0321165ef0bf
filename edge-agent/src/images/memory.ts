/**
 * MemoryImageService: an ImageService in memory, the image side of {@link MemoryPodRuntime} (runtime/memory.ts). It
 * serves hollow sites (edge-agent/src/hollow/, scale tests) and unit tests.
 *
 * - Images are held by name ({@link present}). The sandbox (pause) image is present from the start, as a site's
 *   containerd has it imported (hack/site.sh).
 * - A pull finds the image in {@link registry} when it is there (its id and size, and the credentials it requires:
 *   other credentials fail with 401), else, while {@link pullAny} is on (the default: a registry that holds every
 *   image), under an id derived from its name, so all hollow nodes agree on it; else it fails as not found.
 * - The image filesystem is large and nearly empty unless a test sets {@link fs}, so the real image GC runs its
 *   checks and removes nothing. Which images are in use is asked of `inUse` (the runtime that holds the containers).
 * - Unit tests turn on `recordCalls` ({@link calls}, {@link pulls}) and inject errors with {@link failNext}; off,
 *   nothing is recorded (util/call-log.ts).
 */
import { createHash } from 'node:crypto';
import { RuntimeError } from '../runtime/types.js';
import { CallLog, type Call } from '../util/call-log.js';
import type { RegistryAuth } from './credentials.js';
import type { ImageFsUsage, ImageInfo, ImageService } from './service.js';

/** Bytes an image pulled without a registry entry counts as (busybox-sized). */
const IMAGE_BYTES = 1_048_576;
const FS_BYTES = 100 * 1024 ** 3;

/** An image a pull finds: its id, size and the credentials it requires (none: anonymous). */
export interface RegistryImage {
  id: string;
  sizeBytes: number;
  auth?: RegistryAuth;
}

export interface MemoryImageOptions {
  /** Keep every call in {@link MemoryImageService.calls}; default off. */
  recordCalls?: boolean;
  /** Image ids the runtime's containers use (default: none). */
  inUse?: () => Set<string>;
  /** The sandbox (pause) image's name (default registry.k8s.io/pause:3.6). */
  sandboxImage?: string;
  /** Whether an image not in the registry can be pulled (default true). */
  pullAny?: boolean;
}

export class MemoryImageService implements ImageService {
  /** Present images by name. */
  readonly present = new Map<string, ImageInfo>();
  /** Images a pull finds by name, before {@link pullAny} applies. */
  readonly registry = new Map<string, RegistryImage>();
  /** Whether a pull of an image not in the registry succeeds (under {@link MemoryImageService.idOf} its name). */
  pullAny: boolean;
  /** The image filesystem imageFsUsage() reports; undefined: 100 GiB holding only the present images. */
  fs: ImageFsUsage | undefined;
  private readonly record: CallLog<keyof ImageService>;
  private readonly inUse: () => Set<string>;
  private readonly sandbox: string;

  constructor(options: MemoryImageOptions = {}) {
    this.record = new CallLog(options.recordCalls ?? false);
    this.inUse = options.inUse ?? (() => new Set());
    this.sandbox = options.sandboxImage ?? 'registry.k8s.io/pause:3.6';
    this.pullAny = options.pullAny ?? true;
    this.present.set(this.sandbox, {
      id: MemoryImageService.idOf(this.sandbox),
      names: [this.sandbox],
      sizeBytes: IMAGE_BYTES,
      pinned: false,
    });
  }

  /** The id an image pulled without a registry entry gets (the same on every node). */
  static idOf(image: string): string {
    return `sha256:${createHash('sha256').update(image).digest('hex')}`;
  }

  /** Every call so far (with recordCalls). */
  get calls(): Call<keyof ImageService>[] {
    return this.record.calls;
  }

  /** The next call of `method` throws `err`. */
  failNext(method: keyof ImageService, err: Error = new RuntimeError(`injected ${method} failure`, 'other')): void {
    this.record.failNext(method, err);
  }

  /** The pulls so far (with recordCalls): image and credentials. */
  pulls(): { image: string; auth: RegistryAuth | undefined }[] {
    return this.calls
      .filter((c) => c.method === 'pullImage')
      .map((c) => ({ image: c.args[0] as string, auth: c.args[1] as RegistryAuth | undefined }));
  }

  async imageId(image: string): Promise<string | undefined> {
    this.record.enter('imageId', image);
    return this.present.get(image)?.id;
  }

  async pullImage(image: string, auth?: RegistryAuth): Promise<string> {
    this.record.enter('pullImage', image, auth);
    const found = this.registry.get(image) ?? (this.pullAny ? { id: MemoryImageService.idOf(image), sizeBytes: IMAGE_BYTES } : undefined);
    if (!found) throw new RuntimeError(`failed to pull and unpack image "${image}": not found`, 'image-pull');
    if (found.auth && (auth?.username !== found.auth.username || auth?.password !== found.auth.password)) {
      throw new RuntimeError(`failed to pull and unpack image "${image}": 401 Unauthorized`, 'image-pull');
    }
    const held = [...this.present.values()].find((i) => i.id === found.id);
    if (held && !held.names.includes(image)) held.names = [...held.names, image];
    this.present.set(image, held ?? { id: found.id, names: [image], sizeBytes: found.sizeBytes, pinned: false });
    return found.id;
  }

  async listImages(): Promise<ImageInfo[]> {
    this.record.enter('listImages');
    return this.distinct();
  }

  async removeImage(id: string): Promise<void> {
    this.record.enter('removeImage', id);
    for (const [name, info] of this.present) if (info.id === id) this.present.delete(name);
  }

  async imageFsUsage(): Promise<ImageFsUsage> {
    this.record.enter('imageFsUsage');
    if (this.fs) return { ...this.fs };
    const used = this.distinct().reduce((sum, i) => sum + i.sizeBytes, 0);
    return { mountpoint: '', capacityBytes: FS_BYTES, availableBytes: FS_BYTES - used, imagesUsedBytes: used };
  }

  async imagesInUse(): Promise<Set<string>> {
    this.record.enter('imagesInUse');
    return this.inUse();
  }

  async sandboxImage(): Promise<string> {
    this.record.enter('sandboxImage');
    return this.sandbox;
  }

  /** Present images, each id once. */
  private distinct(): ImageInfo[] {
    const byId = new Map<string, ImageInfo>();
    for (const i of this.present.values()) byId.set(i.id, i);
    return [...byId.values()];
  }
}
