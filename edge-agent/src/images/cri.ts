/**
 * ImageService over CRI v1 (containerd): ImageStatus, PullImage (with AuthConfig), ListImages, RemoveImage,
 * ImageFsInfo, plus ListContainers for the images in use and the CRI plugin's config (Status verbose) for the
 * sandbox image and containerd's root. Capacity and free space come from statfs of the image filesystem's mount
 * point (CRI reports only what images use). The clients are lent (see CriPodRuntime): their owner closes them.
 */
import { statfs } from 'node:fs/promises';
import { type edge } from '@edgefarm/proto';
import { CriError, type ImageServiceClient, type RuntimeServiceClient } from '@edgefarm/cri';
import { sandboxConfig, type NodeLayout } from '../runtime/cri-config.js';
import type { CriClients } from '../runtime/cri-runtime.js';
import { RuntimeError } from '../runtime/types.js';
import { errorMessage } from '../util/time.js';
import type { RegistryAuth } from './credentials.js';
import type { ImageFsUsage, ImageInfo, ImageService } from './service.js';

const GRPC_NOT_FOUND = 5;
const GRPC_UNAVAILABLE = 14;
/** A pull of a large image over a slow link may take long; the sync waits for it. */
const PULL_DEADLINE_MS = 30 * 60_000;

function runtimeError(err: unknown, what: string, kind?: 'image-pull'): RuntimeError {
  if (err instanceof RuntimeError) return err;
  const code = err instanceof CriError ? err.code : -1;
  const k = kind ?? (code === GRPC_NOT_FOUND ? 'not-found' : code === GRPC_UNAVAILABLE ? 'unavailable' : 'other');
  return new RuntimeError(`${what}: ${errorMessage(err)}`, k, { cause: err });
}

export class CriImageService implements ImageService {
  private pluginConfig: { sandboxImage?: string; containerdRootDir?: string } | undefined;
  private readonly image: ImageServiceClient;
  private readonly runtime: RuntimeServiceClient;

  constructor(
    clients: CriClients,
    private readonly layout: NodeLayout,
  ) {
    this.image = clients.image;
    this.runtime = clients.runtime;
  }

  async imageId(image: string): Promise<string | undefined> {
    try {
      const res = await this.image.imageStatus({ image: { image } });
      return res.image?.id || undefined;
    } catch (err) {
      throw runtimeError(err, 'ImageStatus');
    }
  }

  async pullImage(image: string, auth: RegistryAuth | undefined, pod: edge.EdgePodSpec): Promise<string> {
    try {
      const res = await this.image.pullImage(
        {
          image: { image },
          auth: auth ? { username: auth.username, password: auth.password } : undefined,
          sandboxConfig: sandboxConfig(this.layout, pod, 0),
        },
        { deadlineMs: PULL_DEADLINE_MS },
      );
      return res.imageRef;
    } catch (err) {
      // The runtime's own words (containerd: `failed to pull and unpack image "...": ...`), as the kubelet shows them.
      const message =
        err instanceof CriError ? err.message.replace(/^CRI PullImage: /, '').replace(/ \(grpc code \d+\)$/, '') : errorMessage(err);
      throw new RuntimeError(message, 'image-pull', { cause: err });
    }
  }

  async listImages(): Promise<ImageInfo[]> {
    try {
      const res = await this.image.listImages({});
      return res.images.map((i) => ({ id: i.id, names: [...i.repoTags, ...i.repoDigests], sizeBytes: Number(i.size), pinned: i.pinned }));
    } catch (err) {
      throw runtimeError(err, 'ListImages');
    }
  }

  async removeImage(id: string): Promise<void> {
    try {
      await this.image.removeImage({ image: { image: id } });
    } catch (err) {
      const e = runtimeError(err, 'RemoveImage');
      if (e.kind !== 'not-found') throw e;
    }
  }

  async imageFsUsage(): Promise<ImageFsUsage> {
    let mountpoint: string;
    let imagesUsedBytes: number;
    try {
      const res = await this.image.imageFsInfo({});
      const fs = res.imageFilesystems[0];
      mountpoint = fs?.fsId?.mountpoint ?? '';
      imagesUsedBytes = Number(fs?.usedBytes?.value ?? 0n);
    } catch (err) {
      throw runtimeError(err, 'ImageFsInfo');
    }
    if (!mountpoint) mountpoint = (await this.config()).containerdRootDir ?? '';
    if (!mountpoint) throw new RuntimeError('ImageFsInfo: the runtime names no image filesystem', 'other');
    const st = await statfs(mountpoint);
    return { mountpoint, capacityBytes: st.blocks * st.bsize, availableBytes: st.bavail * st.bsize, imagesUsedBytes };
  }

  async imagesInUse(): Promise<Set<string>> {
    try {
      const res = await this.runtime.listContainers({});
      const ids = new Set<string>();
      for (const c of res.containers) {
        if (c.imageRef) ids.add(c.imageRef);
        if (c.imageId) ids.add(c.imageId);
        if (c.image?.image) ids.add(c.image.image);
      }
      return ids;
    } catch (err) {
      throw runtimeError(err, 'ListContainers');
    }
  }

  async sandboxImage(): Promise<string> {
    return (await this.config()).sandboxImage ?? '';
  }

  private async config(): Promise<{ sandboxImage?: string; containerdRootDir?: string }> {
    if (this.pluginConfig) return this.pluginConfig;
    try {
      const res = await this.runtime.status({ verbose: true });
      this.pluginConfig = JSON.parse(res.info.config ?? '{}') as { sandboxImage?: string; containerdRootDir?: string };
    } catch (err) {
      if (err instanceof SyntaxError) this.pluginConfig = {};
      else throw runtimeError(err, 'Status');
    }
    return this.pluginConfig;
  }
}
