/**
 * A typed gRPC client for the CRI v1 subset in proto/defs/runtime/v1/api.proto, built with @grpc/grpc-js from the
 * protobuf-es service descriptors (so one code generator serves both the edge contract and CRI).
 * Split by role like the kubelet's: {@link RuntimeServiceClient} and {@link ImageServiceClient}.
 */
import { fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape, create } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import * as grpc from '@grpc/grpc-js';
import { cri } from '@edgefarm/proto';

interface RawClient {
  close(): void;
  [method: string]: unknown;
}

type Unary<I extends DescMessage, O extends DescMessage> = (
  request: MessageInitShape<I>,
  options?: { deadlineMs?: number },
) => Promise<MessageShape<O>>;

export type ServiceClient<S extends GenServiceMethods> = {
  [K in keyof S]: Unary<S[K]['input'], S[K]['output']>;
} & { close(): void };

export type RuntimeServiceClient = ServiceClient<(typeof cri.RuntimeService)['method']>;
export type ImageServiceClient = ServiceClient<(typeof cri.ImageService)['method']>;

/** Raised for a failed CRI call; `code` is the gRPC status code (5 = NOT_FOUND). */
export class CriError extends Error {
  override name = 'CriError';
  constructor(
    readonly method: string,
    readonly code: number,
    details: string,
    options?: { cause?: unknown },
  ) {
    super(`CRI ${method}: ${details} (grpc code ${code})`, options);
  }
}
export function isCriNotFound(err: unknown): boolean {
  return err instanceof CriError && err.code === 5;
}

function makeClient<S extends GenServiceMethods>(service: GenService<S>, address: string, defaultDeadlineMs: number): ServiceClient<S> {
  const definition: Record<string, unknown> = {};
  for (const m of service.methods) {
    definition[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (msg: MessageShape<DescMessage>) => Buffer.from(toBinary(m.input, msg)),
      requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
      responseSerialize: (msg: MessageShape<DescMessage>) => Buffer.from(toBinary(m.output, msg)),
      responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(definition as grpc.ServiceDefinition, service.typeName);
  const raw = new Ctor(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  }) as unknown as RawClient;
  const client: Record<string, unknown> = { close: () => raw.close() };
  for (const m of service.methods) {
    // grpc-js accepts (request, options, callback): metadata is optional and must be a Metadata when given.
    const fn = raw[m.localName] as (req: unknown, opts: unknown, cb: (e: unknown, r: unknown) => void) => void;
    client[m.localName] = (request: MessageInitShape<DescMessage>, options?: { deadlineMs?: number }) =>
      new Promise((resolve, reject) => {
        const deadline = new Date(Date.now() + (options?.deadlineMs ?? defaultDeadlineMs));
        fn.call(raw, create(m.input, request), { deadline }, (err: unknown, res: unknown) => {
          if (err) {
            const e = err as { code?: number; details?: string; message?: string };
            reject(new CriError(m.name, e.code ?? 2, e.details ?? e.message ?? 'unknown gRPC error', { cause: err }));
          } else resolve(res);
        });
      });
  }
  return client as ServiceClient<S>;
}

/** `endpoint` is a path to a unix socket (or a `unix://` URL). */
export function criClients(endpoint: string, defaultDeadlineMs = 2 * 60_000): { runtime: RuntimeServiceClient; image: ImageServiceClient } {
  const address = endpoint.startsWith('unix:') ? endpoint : `unix://${endpoint}`;
  return {
    runtime: makeClient(cri.RuntimeService, address, defaultDeadlineMs),
    image: makeClient(cri.ImageService, address, defaultDeadlineMs),
  };
}
