/**
 * A grpc.health.v1 client for tests: Health/Check with a hand-encoded request, so no
 * generated code is needed.
 */
import * as grpc from '@grpc/grpc-js';
import { withTimeout } from './wait';
import { walk } from './wire';

/** grpc.health.v1.HealthCheckResponse.ServingStatus values. */
export const HealthStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2 } as const;

/** HealthCheckRequest{service = 1}: a short string field, as protobuf writes it. */
function request(service: string): Buffer {
  const bytes = Buffer.from(service, 'utf8');
  if (bytes.length > 127) throw new RangeError('healthV1: service names up to 127 bytes');
  return service === '' ? Buffer.alloc(0) : Buffer.concat([Buffer.of(0x0a, bytes.length), bytes]);
}

/** grpc.health.v1.Health/Check for `service` at `address`; resolves with the status enum. */
export function healthV1(address: string, service: string): Promise<number> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      client.makeUnaryRequest(
        '/grpc.health.v1.Health/Check',
        request,
        (b: Buffer) => {
          const status = walk(b).filter((f) => f.field === 1 && f.wireType === 0);
          return status.length === 0 ? 0 : Number(status[status.length - 1].varint); // UNKNOWN = 0 is not on the wire
        },
        service,
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (err, status) => (err || status === undefined ? reject(err ?? new Error('no reply')) : resolve(status)),
      );
    }),
    6000,
    `grpc.health.v1 Check(${JSON.stringify(service)})`,
  ).finally(() => client.close());
}

export interface HealthWatch {
  /** Every status the server sent, in order. */
  readonly statuses: number[];
  close(): void;
}

/**
 * grpc.health.v1.Health/Watch for `service`: the server sends the status at once and on
 * every change, so a NOT_SERVING that lasts a few milliseconds is seen too.
 */
export function watchHealth(address: string, service: string): HealthWatch {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const statuses: number[] = [];
  const call = client.makeServerStreamRequest(
    '/grpc.health.v1.Health/Watch',
    request,
    (b: Buffer) => {
      const status = walk(b).filter((f) => f.field === 1 && f.wireType === 0);
      return status.length === 0 ? 0 : Number(status[status.length - 1].varint);
    },
    service,
  );
  call.on('data', (s: number) => statuses.push(s));
  call.on('error', () => undefined);
  return {
    statuses,
    close() {
      call.cancel();
      client.close();
    },
  };
}
