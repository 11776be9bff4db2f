/**
 * A small real gRPC client for tests: protobufjs codecs over @grpc/grpc-js, no mocks.
 * `watch()` collects decoded messages (and, for byte-level checks, the raw bytes), and
 * can pause reading to play a slow or stalled consumer.
 */
import * as grpc from '@grpc/grpc-js';
import type * as protobuf from 'protobufjs';
import { feederTypes } from '../../src/wire/proto';

export type Rpc = 'WatchAlerts' | 'WatchLogs' | 'WatchMessages';

export interface Watcher {
  readonly raw: Buffer[];
  readonly messages: Record<string, unknown>[];
  /** Resolves with the final status when the stream ends (OK or error). */
  readonly ended: Promise<grpc.StatusObject>;
  readonly call: grpc.ClientReadableStream<Buffer>;
  /** Resolves once at least n messages have arrived (rejects after timeoutMs). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  pause(): void;
  resume(): void;
  cancel(): void;
}

export interface TestClient {
  readonly client: grpc.Client;
  health(nonce: number): Promise<number>;
  watch(rpc: Rpc, filter: string, metadata?: Record<string, string>): Watcher;
  close(): void;
}

const identity = (b: Buffer): Buffer => b;

export interface OpenStreams {
  tc: TestClient;
  /** One per requested stream, in the order asked for. */
  watchers: Watcher[];
  /** Cancels the watchers, then closes the client. */
  close(): void;
}

/** Opens several streams on one new client: the setup (and teardown) most stream tests begin with. */
export function openStreams(address: string, streams: readonly (readonly [Rpc, string, Record<string, string>?])[]): OpenStreams {
  const tc = connect(address);
  const watchers = streams.map(([rpc, filter, metadata]) => tc.watch(rpc, filter, metadata));
  return {
    tc,
    watchers,
    close: () => {
      for (const w of watchers) w.cancel();
      tc.close();
    },
  };
}

/** A client of `address`, plaintext unless `credentials` say otherwise (TLS tests). */
export function connect(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()): TestClient {
  const t = feederTypes();
  const client = new grpc.Client(address, credentials);
  const typeOf: Record<Rpc, protobuf.Type> = { WatchAlerts: t.Alert, WatchLogs: t.Log, WatchMessages: t.Message };
  return {
    client,
    health(nonce) {
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          '/feeder.LogService/HealthCheck',
          (v: { nonce: number }) => Buffer.from(t.NonceMessage.encode(v).finish()),
          (b: Buffer) => t.ReplyMessage.toObject(t.ReplyMessage.decode(b), { defaults: true }) as { Retval: number },
          { nonce },
          (err, reply) => (err || reply === undefined ? reject(err ?? new Error('no reply')) : resolve(reply.Retval)),
        );
      });
    },
    watch(rpc, filter, metadata = {}) {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      const call = client.makeServerStreamRequest(
        `/feeder.LogService/${rpc}`,
        (v: { Filter: string }) => Buffer.from(t.RequestMessage.encode(v).finish()),
        identity,
        { Filter: filter },
        md,
      );
      const raw: Buffer[] = [];
      const messages: Record<string, unknown>[] = [];
      let waiters: { n: number; resolve: () => void }[] = [];
      call.on('data', (b: Buffer) => {
        raw.push(b);
        messages.push(typeOf[rpc].toObject(typeOf[rpc].decode(b), { longs: Number }) as Record<string, unknown>);
        waiters = waiters.filter((w) => {
          if (messages.length >= w.n) w.resolve();
          return messages.length < w.n;
        });
      });
      const ended = new Promise<grpc.StatusObject>((resolve) => {
        call.on('status', (s: grpc.StatusObject) => resolve(s));
      });
      call.on('error', () => undefined);
      return {
        raw,
        messages,
        ended,
        call,
        waitFor(n, timeoutMs = 10_000) {
          if (messages.length >= n) return Promise.resolve();
          return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${rpc}: got ${messages.length} of ${n} messages in ${timeoutMs} ms`)), timeoutMs);
            waiters.push({ n, resolve: () => { clearTimeout(timer); resolve(); } });
          });
        },
        pause: () => call.pause(),
        resume: () => call.resume(),
        cancel: () => call.cancel(),
      };
    },
    close: () => client.close(),
  };
}

/** Node (HostName) -> the HostPIDs a watcher received from it, in arrival order (the relay tests number events by HostPID). */
export function hostPidsByNode(w: Watcher): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const m of w.messages) {
    const list = out.get(String(m.HostName)) ?? [];
    list.push(Number(m.HostPID));
    out.set(String(m.HostName), list);
  }
  return out;
}
