/**
 * HollowImageService: the image side of a hollow (in-memory) node, for scale tests (edge-agent/src/hollow/). Every
 * pull succeeds at once (a registry that holds every image); an image's id is derived from its name, so all hollow
 * nodes agree on it. Lean on purpose: no call log, no injected errors (that is FakeImageService, for unit tests).
 *
 * The image filesystem is reported as large and nearly empty, so the real image GC runs its checks but never removes
 * anything. Which images are in use is asked of the runtime that holds the containers (`inUse`).
 */
import { createHash } from 'node:crypto';
import type { ImageFsUsage, ImageInfo, ImageService } from './service.js';

/** Bytes a hollow image counts as (busybox-sized). */
const IMAGE_BYTES = 1_048_576;
const FS_BYTES = 100 * 1024 ** 3;

export class HollowImageService implements ImageService {
  /** Present images by name. */
  private readonly present = new Map<string, ImageInfo>();

  /** Starts with the sandbox (pause) image present, as a site's containerd has it imported (hack/site.sh). */
  constructor(
    private readonly inUse: () => Set<string> = () => new Set(),
    private readonly pause = 'registry.k8s.io/pause:3.6',
  ) {
    this.present.set(pause, { id: HollowImageService.idOf(pause), names: [pause], sizeBytes: IMAGE_BYTES, pinned: false });
  }

  /** The id every hollow node gives the image of this name. */
  static idOf(image: string): string {
    return `sha256:${createHash('sha256').update(image).digest('hex')}`;
  }

  async imageId(image: string): Promise<string | undefined> {
    return this.present.get(image)?.id;
  }

  async pullImage(image: string): Promise<string> {
    const id = HollowImageService.idOf(image);
    if (!this.present.has(image)) this.present.set(image, { id, names: [image], sizeBytes: IMAGE_BYTES, pinned: false });
    return id;
  }

  async listImages(): Promise<ImageInfo[]> {
    return [...this.present.values()];
  }

  async removeImage(id: string): Promise<void> {
    for (const [name, info] of this.present) if (info.id === id) this.present.delete(name);
  }

  async imageFsUsage(): Promise<ImageFsUsage> {
    const used = this.present.size * IMAGE_BYTES;
    return { mountpoint: '', capacityBytes: FS_BYTES, availableBytes: FS_BYTES - used, imagesUsedBytes: used };
  }

  async imagesInUse(): Promise<Set<string>> {
    return this.inUse();
  }

  async sandboxImage(): Promise<string> {
    return this.pause;
  }
}
