/**
 * The standard gRPC health check (grpc.health.v1.Health/Check), written by hand: the two messages have one field
 * each (HealthCheckRequest.service = 1, string; HealthCheckResponse.status = 1, enum), so a few lines of protobuf
 * encoding replace generated code. The client side is what the kubelet's grpc prober does; the server side is for
 * tests (a health server the agent can probe).
 */
import * as grpc from '@grpc/grpc-js';
import type { ProbeOutcome } from './prober.js';

export const HEALTH_CHECK_METHOD = '/grpc.health.v1.Health/Check';

export enum ServingStatus {
  UNKNOWN = 0,
  SERVING = 1,
  NOT_SERVING = 2,
  SERVICE_UNKNOWN = 3,
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** Reads field 1 (string or varint) of a one-field message; other fields are skipped. */
function readField1(buf: Buffer): { str?: string; num?: number } {
  let i = 0;
  const readVarint = (): number => {
    let shift = 0;
    let v = 0;
    for (;;) {
      const b = buf[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  };
  const out: { str?: string; num?: number } = {};
  while (i < buf.length) {
    const tag = readVarint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const v = readVarint();
      if (field === 1) out.num = v;
    } else if (wire === 2) {
      const len = readVarint();
      if (field === 1) out.str = buf.subarray(i, i + len).toString('utf8');
      i += len;
    } else if (wire === 5) i += 4;
    else if (wire === 1) i += 8;
    else break;
  }
  return out;
}

const encodeString1 = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  return b.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, ...varint(b.length)]), b]);
};
const encodeEnum1 = (n: number): Buffer => (n === 0 ? Buffer.alloc(0) : Buffer.from([0x08, ...varint(n)]));

/** One Health/Check call against `address` (host:port), judged as the kubelet's grpc prober judges it. */
export function grpcHealthCheck(address: string, service: string, timeoutMs: number, userAgent: string): Promise<ProbeOutcome> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.primary_user_agent': userAgent });
  return new Promise<ProbeOutcome>((resolve) => {
    client.makeUnaryRequest<string, number>(
      HEALTH_CHECK_METHOD,
      encodeString1,
      (b: Buffer) => readField1(b).num ?? 0,
      service,
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + timeoutMs) },
      (err, status) => {
        if (err) {
          if (err.code === grpc.status.UNIMPLEMENTED)
            resolve({ result: 'failure', output: 'this server does not implement the grpc health protocol (grpc.health.v1.Health)' });
          else if (err.code === grpc.status.DEADLINE_EXCEEDED)
            resolve({ result: 'failure', output: `timeout: health rpc did not complete within ${timeoutMs}ms` });
          else resolve({ result: 'failure', output: `error: health rpc probe failed: ${err.details || err.message}` });
          return;
        }
        if (status !== ServingStatus.SERVING)
          resolve({ result: 'failure', output: `service unhealthy (responded with "${ServingStatus[status ?? 0] ?? status}")` });
        else resolve({ result: 'success', output: '' });
      },
    );
  }).finally(() => client.close());
}

/** A grpc-js service definition of Health/Check, for a test server: `server.addService(healthService, { Check })`. */
export const healthService: grpc.ServiceDefinition = {
  Check: {
    path: HEALTH_CHECK_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: (service: string) => encodeString1(service),
    requestDeserialize: (b: Buffer) => readField1(b).str ?? '',
    responseSerialize: (status: number) => encodeEnum1(status),
    responseDeserialize: (b: Buffer) => readField1(b).num ?? 0,
  },
};
