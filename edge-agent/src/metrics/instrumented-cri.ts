/**
 * The one place CRI calls are measured (as the kubelet's instrumented_services.go): {@link instrumentCri} wraps the
 * agent's one pair of runtime and image clients, so every call of every user (CriPodRuntime, CriImageService, probes'
 * ExecSync, the streaming server) is observed once, with the CRI method name and the gRPC status name of its outcome.
 */
import { CriError } from '@edgefarm/cri';
import type { CriClients } from '../runtime/cri-runtime.js';

/** gRPC status code -> name (grpc/status.proto). */
const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** The gRPC status name of a call's outcome: OK, the CriError's code, else UNKNOWN. */
export function grpcCodeName(err: unknown): string {
  if (err === undefined) return 'OK';
  const code = err instanceof CriError ? err.code : 2;
  return GRPC_CODES[code] ?? 'UNKNOWN';
}

export interface CriObserver {
  criRequest(service: 'runtime' | 'image', method: string, code: string, seconds: number): void;
}

/** `runPodSandbox` -> `RunPodSandbox` (the CRI method name; client methods are the protobuf local names). */
function criMethodName(localName: string): string {
  return localName.charAt(0).toUpperCase() + localName.slice(1);
}

function wrap<C extends { close(): void }>(client: C, service: 'runtime' | 'image', observer: CriObserver, now: () => number): C {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(client as Record<string, unknown>)) {
    if (typeof fn !== 'function') continue;
    if (name === 'close') {
      out.close = () => client.close();
      continue;
    }
    const method = criMethodName(name);
    out[name] = async (...args: unknown[]) => {
      const start = now();
      try {
        const res = await (fn as (...a: unknown[]) => Promise<unknown>).apply(client, args);
        observer.criRequest(service, method, 'OK', (now() - start) / 1000);
        return res;
      } catch (err) {
        observer.criRequest(service, method, grpcCodeName(err ?? new Error('rejected')), (now() - start) / 1000);
        throw err;
      }
    };
  }
  return out as C;
}

/** Both clients with every call observed; `now` in ms (default performance.now). */
export function instrumentCri(clients: CriClients, observer: CriObserver, now: () => number = () => performance.now()): CriClients {
  return { runtime: wrap(clients.runtime, 'runtime', observer, now), image: wrap(clients.image, 'image', observer, now) };
}
