/**
 * The devices.edgefarm.io/v1beta1 objects as manifests/crds/devices-crd.yaml defines them (KubeEdge v1beta1's field
 * names and shapes; docs/decisions/0012-devices.md). The apiserver validated them against that schema; the device
 * controller still reads every field defensively (a field the schema makes optional may be absent).
 */
import type { V1ObjectMeta } from '@kubernetes/client-node';

export const DEVICES_GROUP = 'devices.edgefarm.io';
export const DEVICES_VERSION = 'v1beta1';
export const DEVICE = { group: DEVICES_GROUP, version: DEVICES_VERSION, plural: 'devices' } as const;
export const DEVICE_MODEL = { group: DEVICES_GROUP, version: DEVICES_VERSION, plural: 'devicemodels' } as const;

export type ModelPropertyType = 'INT' | 'FLOAT' | 'DOUBLE' | 'STRING' | 'BOOLEAN' | 'BYTES';
export type AccessMode = 'ReadWrite' | 'ReadOnly';

/** One property of a DeviceModel. `accessMode` defaults to ReadOnly (the schema's default). */
export interface ModelProperty {
  name: string;
  description?: string;
  type: ModelPropertyType;
  accessMode?: AccessMode;
  minimum?: string;
  maximum?: string;
  unit?: string;
}

export interface DeviceModelSpec {
  protocol?: string;
  properties?: ModelProperty[];
}

export interface DeviceModel {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: DeviceModelSpec;
}

/** One property of a Device: how to reach it and, for a ReadWrite one, its desired value. */
export interface DeviceSpecProperty {
  name: string;
  desired?: { value: string; metadata?: Record<string, string> };
  visitors?: { protocolName?: string; configData?: Record<string, unknown> };
  /** Nanoseconds (0: the mapper's default). */
  collectCycle?: number;
  /** Nanoseconds (0: on change). */
  reportCycle?: number;
  /** Defaults to true. */
  reportToCloud?: boolean;
}

export interface DeviceSpec {
  deviceModelRef: { name: string };
  nodeName: string;
  protocol: { protocolName: string; configData?: Record<string, unknown> };
  properties?: DeviceSpecProperty[];
}

/** Device.status (the status subresource, written by the provider only; phase 2). */
export interface DeviceStatus {
  observedGeneration?: number;
  state?: string;
  lastOnlineTime?: string;
  twins?: {
    propertyName: string;
    reported?: { value?: string; metadata?: Record<string, string> };
    observedDesired?: { value?: string; metadata?: Record<string, string> };
  }[];
  conditions?: {
    type: string;
    status: 'True' | 'False' | 'Unknown';
    reason?: string;
    message?: string;
    lastTransitionTime?: string;
    observedGeneration?: number;
  }[];
}

export interface Device {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: DeviceSpec;
  status?: DeviceStatus;
}
