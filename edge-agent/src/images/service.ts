/**
 * ImageService: what the image manager and the image garbage collector need from the container runtime, in image
 * terms (CRI's ImageService plus the image ids the runtime's containers use). The CRI implementation is
 * {@link CriImageService}; {@link MemoryImageService} (memory.ts) holds images in memory for hollow sites and unit
 * tests.
 *
 * Rules: methods throw RuntimeErrors (runtime/types.ts); removing an image that is gone succeeds.
 */
import type { edge } from '@edgefarm/proto';
import type { RegistryAuth } from './credentials.js';

export interface ImageInfo {
  /** Image id (the config digest, sha256:...). */
  id: string;
  /** Tags and digests it is known by. */
  names: string[];
  sizeBytes: number;
  /** The runtime says it must not be removed (CRI `pinned`, e.g. the sandbox image in containerd 1.7+). */
  pinned: boolean;
}

export interface ImageFsUsage {
  /** Mount point of the image filesystem ('' when unknown). */
  mountpoint: string;
  capacityBytes: number;
  availableBytes: number;
  /** Bytes the runtime's images use on it (CRI ImageFsInfo), 0 when unknown. */
  imagesUsedBytes: number;
}

export interface ImageService {
  /** The id of the image when present, else undefined (CRI ImageStatus). */
  imageId(image: string): Promise<string | undefined>;
  /** Pulls the image (with credentials when given); returns its reference (CRI PullImage). */
  pullImage(image: string, auth: RegistryAuth | undefined, pod: edge.EdgePodSpec): Promise<string>;
  listImages(): Promise<ImageInfo[]>;
  /** Removes the image by id; gone already is success. */
  removeImage(id: string): Promise<void>;
  /** Capacity and free space of the filesystem the images are on. */
  imageFsUsage(): Promise<ImageFsUsage>;
  /** Image ids used by every container the runtime holds (running or not, managed or not). */
  imagesInUse(): Promise<Set<string>>;
  /** The sandbox (pause) image's name, never removed ('' when unknown). */
  sandboxImage(): Promise<string>;
}
