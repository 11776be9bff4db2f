/**
 * The export tests' other half: a paced producer on the socket source, a gRPC client
 * that keeps the raw bytes of every message (no decode: 200,000 of them), and the serve
 * arguments of a feeder exporting to NATS.
 */
import * as grpc from '@grpc/grpc-js';
import type { IngestEvent } from '../../src/event';
import { FrameProducer } from '../../src/producer';
import { feederTypes } from '../../src/wire/proto';
import { seqLog } from './events';
import { delay } from './wait';

export interface RawWatcher {
  readonly raw: Buffer[];
  waitFor(n: number, timeoutMs: number): Promise<void>;
  close(): void;
}

/** A WatchLogs (or WatchAlerts) client of `address` that keeps each message's bytes as received. */
export function rawWatch(address: string, rpc: 'WatchLogs' | 'WatchAlerts' = 'WatchLogs'): RawWatcher {
  const t = feederTypes();
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const call = client.makeServerStreamRequest(
    `/feeder.LogService/${rpc}`,
    (v: { Filter: string }) => Buffer.from(t.RequestMessage.encode(v).finish()),
    (b: Buffer) => b,
    { Filter: 'all' },
  );
  const raw: Buffer[] = [];
  call.on('data', (b: Buffer) => raw.push(b));
  call.on('error', () => undefined);
  return {
    raw,
    async waitFor(n, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (raw.length < n) {
        if (Date.now() > deadline) throw new Error(`${rpc}: got ${raw.length} of ${n} messages in ${timeoutMs} ms`);
        await delay(20);
      }
    },
    close() {
      call.cancel();
      client.close();
    },
  };
}

export interface PacedRun {
  /** Events handed to the producer so far. */
  sent(): number;
  /** Resolves once all are sent and flushed to the socket. */
  readonly done: Promise<void>;
}

/**
 * Sends events numbered 1..count to the socket source at `perSecond`, in 10 ms ticks, and
 * calls `at(ms)` hooks (kill a server, stop one) as the run passes them. Event `seq` is
 * `eventOf(seq)`: by default a ContainerLog with `seq` in hostPid.
 */
export function pacedSend(socket: string, count: number, perSecond: number, hooks: { atMs: number; run: () => Promise<void> | void }[] = [], eventOf: (seq: number) => IngestEvent = seqLog): PacedRun {
  const producer = new FrameProducer({ socket }, { reconnect: false });
  let sent = 0;
  const pending = [...hooks].sort((a, b) => a.atMs - b.atMs);
  const hookRuns: Promise<void>[] = [];
  const done = (async () => {
    const start = Date.now();
    while (sent < count) {
      const elapsed = Date.now() - start;
      while (pending.length > 0 && pending[0].atMs <= elapsed) {
        const hook = pending.shift();
        if (hook !== undefined) hookRuns.push(Promise.resolve(hook.run()));
      }
      const due = Math.min(count, Math.floor((elapsed * perSecond) / 1000) + 1);
      while (sent < due) {
        sent++;
        producer.write(eventOf(sent));
      }
      await producer.room();
      await delay(10);
    }
    for (const hook of pending) hookRuns.push(Promise.resolve(hook.run()));
    await Promise.all(hookRuns);
    await producer.close();
  })();
  return { sent: () => sent, done };
}

/** serve flags for a feeder on loopback with a socket source, metrics on, exporting to `nats`. */
export function exportServeArgs(socket: string, nats: string, extra: string[] = []): string[] {
  return [
    'serve', '--bind', '127.0.0.1', '--gRPC', '0', '--gRPCHealthPort', '-1', '--metricsPort', '0',
    '--source', 'socket', '--socket', socket, '--cluster', 'test-cluster', '--host', 'node.a',
    '--export', nats, ...extra,
  ];
}
