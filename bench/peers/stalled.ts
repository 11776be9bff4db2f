/**
 * Clients that connect and then never read: each is its own gRPC connection (a local
 * subchannel pool, so grpc-js does not share one HTTP/2 session between them) with a
 * WatchAlerts("policy") and a WatchLogs("system") stream. Each stream takes exactly one
 * message and pauses inside that 'data' handler, and is never resumed.
 *
 * Why pause there and not before: a grpc-js stream that is paused before its first
 * message still pulls messages off the HTTP/2 stream and buffers them in this process.
 * Once it has delivered a message and is paused in flowing mode, it stops reading,
 * HTTP/2 flow control closes the window, and the server sees a consumer that has
 * stopped, which is what a hung `karmor logs` looks like to the feeder.
 */
import * as grpc from '@grpc/grpc-js';
import { onBenchExit } from './children';

export interface StalledStreamState {
  client: number;
  rpc: 'WatchAlerts' | 'WatchLogs';
  /** Messages taken before pausing: 1 once the first event arrived. */
  received: number;
  /** Final status if the stream ended (before we cancelled it). */
  status?: { code: number; details: string };
}

export interface StalledClients {
  streams: StalledStreamState[];
  /** Streams that ended with a non-OK status before `close()` (other than our own cancel). */
  failures(): string[];
  close(): void;
}

/** RequestMessage { string Filter = 1; } encoded by hand: tag 0x0a, length, bytes. */
function encodeRequest(req: { Filter: string }): Buffer {
  const filter = Buffer.from(req.Filter, 'utf8');
  if (filter.length > 127) throw new Error('filter too long for a one-byte length');
  return Buffer.concat([Buffer.from([0x0a, filter.length]), filter]);
}

/** Keeps only the size: a stalled client must not be the one holding memory. */
const messageSize = (b: Buffer): number => b.length;

export function openStalledClients(addr: string, count: number): StalledClients {
  const clients: grpc.Client[] = [];
  const calls: grpc.ClientReadableStream<number>[] = [];
  const streams: StalledStreamState[] = [];
  let closing = false;
  for (let i = 0; i < count; i++) {
    const client = new grpc.Client(addr, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
    });
    clients.push(client);
    for (const [rpc, filter] of [
      ['WatchAlerts', 'policy'],
      ['WatchLogs', 'system'],
    ] as const) {
      const state: StalledStreamState = { client: i, rpc, received: 0 };
      streams.push(state);
      const md = new grpc.Metadata();
      md.set('x-armorfeed-client', `stalled-${i}`);
      const call = client.makeServerStreamRequest(`/feeder.LogService/${rpc}`, encodeRequest, messageSize, { Filter: filter }, md);
      calls.push(call);
      call.on('data', () => {
        state.received++;
        call.pause();
      });
      call.on('status', (s: grpc.StatusObject) => {
        state.status = { code: s.code, details: s.details };
      });
      call.on('error', (err: grpc.ServiceError) => {
        state.status ??= { code: err.code, details: err.details };
      });
    }
  }
  const close = (): void => {
    if (closing) return;
    closing = true;
    for (const call of calls) call.cancel();
    for (const client of clients) client.close();
  };
  const unregister = onBenchExit(close);
  return {
    streams,
    failures: () =>
      streams
        .filter((s) => s.status !== undefined && s.status.code !== grpc.status.OK && s.status.code !== grpc.status.CANCELLED)
        .map((s) => `stalled client ${s.client} ${s.rpc}: status ${s.status?.code} ${s.status?.details}`),
    close: () => {
      close();
      unregister();
    },
  };
}
