/**
 * One load client: one gRPC connection (its own subchannel, like a separate karmor)
 * with a WatchAlerts and/or WatchLogs stream. It records what arrives by sequence
 * number, the latency from UpdatedTime and from the producer's send, and events
 * per second.
 *
 * It runs inside a worker thread (src/load/load.worker.ts) with a few other clients
 * at most, and reads without decoding events: grpc-js hands over the message bytes
 * (an identity deserializer) and a top-level protobuf wire walk (./peek.ts) reads only
 * the sequence number (HostPID) and UpdatedTime, as the Go loadclient's lazy mode does.
 * Times are epoch ms (performance.timeOrigin + performance.now()), which every
 * thread of the process shares.
 *
 * Slow clients really stop reading: after each event the stream is paused
 * (grpc-js then stops pulling messages, HTTP/2 flow control closes the window and
 * the broker's per-client queue fills) and resumed once the per-event delay has
 * passed. Stalled clients stop after their first event until the producer has
 * finished; then they drain, so that every event is either received or counted as
 * dropped by the broker.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthMismatchError } from '../errors';
import { feederTypes, filterMetadataKeys, rpcPath, type EventStreamKind } from '../wire/proto';
import { formatHostPort, type HostPort } from './addresses';
import { LatencyRecorder } from './latency';
import { makeEventPeeker, type PeekedEvent } from './peek';
import { epochMs, type SendTimes } from './send-times';
import { SequenceTracker, type SequenceState } from './sequence';

export type ClientBehaviour = { kind: 'fast' } | { kind: 'slow'; delayUs: number } | { kind: 'stalled' };
export type StreamEnd = 'open' | 'stopped' | 'eof' | 'error';

export interface SubscriberSettings {
  index: number;
  addr: HostPort;
  /** Sent as x-armorfeed-client; armorfeed uses it as the client's name in /stats. */
  name: string;
  streams: EventStreamKind[];
  behaviour: ClientBehaviour;
  alertFilter: string;
  logFilter: string;
  /** Track sequence numbers (only meaningful when our producer numbered the events). */
  trackSequence: boolean;
  sendTimes?: SendTimes;
  /** Debug: burn this many µs of CPU per event, to make the client's own thread the limit. */
  burnUsPerEvent?: number;
}

/** What a subscriber hands back to the main thread at the end of a run. */
export interface SubscriberResult {
  index: number;
  streams: StreamState[];
  failures: string[];
  received: number;
  bytes: number;
  firstReceiveAt: number;
  lastReceiveAt: number;
  receivedPerSecond: number[];
  sequence: SequenceState;
  latencyFromUpdated: string;
  latencyFromSend: string;
}

export interface StreamState {
  kind: EventStreamKind;
  received: number;
  bytes: number;
  end: StreamEnd;
  reconnects: number;
  lastError?: string;
}

/** A stream that failed is reopened after this long, while the run lasts. */
const reconnectDelayMs = 200;
/** HTTP/2 flow-control window of a fast client (connection and streams). */
export const fastClientWindowBytes = 4 << 20;
const healthDeadlineMs = 5000;

export class Subscriber {
  readonly tracker = new SequenceTracker();
  readonly latencyFromUpdated = new LatencyRecorder();
  readonly latencyFromSend = new LatencyRecorder();
  readonly streams: StreamState[];
  readonly failures: string[] = [];
  received = 0;
  bytes = 0;
  /** Epoch ms of the first and last event received. */
  firstReceiveAt = Number.NaN;
  lastReceiveAt = Number.NaN;
  /** Events received per second since `timeOrigin`. */
  readonly receivedPerSecond: number[] = [];
  private timeOrigin = epochMs();
  private readonly client: grpc.Client;
  private readonly calls = new Map<EventStreamKind, grpc.ClientReadableStream<Buffer>>();
  private released: boolean;
  private stopping = false;

  constructor(readonly settings: SubscriberSettings) {
    this.client = new grpc.Client(formatHostPort(settings.addr), grpc.credentials.createInsecure(), {
      // One connection per load client, as separate karmor processes would have.
      'grpc.use_local_subchannel_pool': 1,
      // A fast client gets an HTTP/2 window like the one grpc-go's BDP estimator grows for
      // a karmor reading at full speed on loopback, so that a scheduling hiccup of its thread
      // is absorbed as it is in a Go client. Slow and stalled clients keep the 64 KB default:
      // they model consumers that push back on the broker's queue.
      // (So does a debug client that burns CPU per event: it shows a client's own limit.)
      ...(settings.behaviour.kind === 'fast' && (settings.burnUsPerEvent ?? 0) === 0 ? { 'grpc-node.flow_control_window': fastClientWindowBytes } : {}),
    });
    this.streams = settings.streams.map((kind) => ({ kind, received: 0, bytes: 0, end: 'open' as StreamEnd, reconnects: 0 }));
    this.released = settings.behaviour.kind !== 'stalled';
  }

  get behaviour(): ClientBehaviour {
    return this.settings.behaviour;
  }

  /** Sets the origin (epoch ms) of the per-second buckets (the producer's start). */
  setTimeOrigin(at: number): void {
    this.timeOrigin = at;
  }

  /** HealthCheck with a random nonce (as karmor does), then opens the streams. */
  async connect(): Promise<void> {
    const nonce = 1 + Math.floor(Math.random() * 0x7ffffffe);
    const { NonceMessage, ReplyMessage } = feederTypes();
    const retval = await new Promise<number>((resolve, reject) => {
      this.client.makeUnaryRequest(
        rpcPath.HealthCheck,
        (m: { nonce: number }) => Buffer.from(NonceMessage.encode(m).finish()),
        (b: Buffer) => (ReplyMessage.toObject(ReplyMessage.decode(b), { defaults: true }) as { Retval: number }).Retval,
        { nonce },
        new grpc.Metadata(),
        { deadline: Date.now() + healthDeadlineMs },
        (err, value) => (err !== null ? reject(err) : resolve(value ?? 0)),
      );
    });
    if (retval !== nonce) throw new HealthMismatchError(nonce, retval);
    for (const s of this.streams) this.open(s);
  }

  /** Lets a stalled client start reading (after the producer has finished). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const call of this.calls.values()) call.resume();
  }

  /** Whether this client has every event `expected` says it should have. */
  hasAll(expected: number): boolean {
    return this.tracker.distinct >= expected;
  }

  /** Cancels the streams and closes the connection. */
  stop(): void {
    this.stopping = true;
    for (const [kind, call] of this.calls) {
      const s = this.streams.find((x) => x.kind === kind);
      if (s !== undefined && s.end === 'open') s.end = 'stopped';
      call.cancel();
    }
    this.calls.clear();
    this.client.close();
  }

  private open(s: StreamState): void {
    const { RequestMessage } = feederTypes();
    const metadata = new grpc.Metadata();
    metadata.set(filterMetadataKeys.clientName, this.settings.name);
    const path = s.kind === 'alerts' ? rpcPath.WatchAlerts : rpcPath.WatchLogs;
    const filter = s.kind === 'alerts' ? this.settings.alertFilter : this.settings.logFilter;
    const call = this.client.makeServerStreamRequest(
      path,
      (m: { Filter: string }) => Buffer.from(RequestMessage.encode(m).finish()),
      (b: Buffer) => b,
      { Filter: filter },
      metadata,
    );
    s.end = 'open';
    this.calls.set(s.kind, call);
    call.on('error', (err: grpc.ServiceError) => {
      if (this.stopping || err.code === grpc.status.CANCELLED) return;
      s.end = 'error';
      s.lastError = `${grpc.status[err.code] ?? err.code}: ${err.details}`;
      this.failures.push(`client ${this.settings.index} ${s.kind}: ${s.lastError}`);
      this.calls.delete(s.kind);
      setTimeout(() => {
        if (this.stopping) return;
        s.reconnects++;
        this.open(s);
      }, reconnectDelayMs);
    });
    call.on('status', (st: grpc.StatusObject) => {
      if (st.code === grpc.status.OK && s.end === 'open') s.end = 'eof';
    });
    this.attachReader(s, call);
  }

  private attachReader(s: StreamState, call: grpc.ClientReadableStream<Buffer>): void {
    const behaviour = this.settings.behaviour;
    const delayMs = behaviour.kind === 'slow' ? behaviour.delayUs / 1000 : 0;
    const burnMs = (this.settings.burnUsPerEvent ?? 0) / 1000;
    const peek = makeEventPeeker(s.kind === 'alerts' ? 'alert' : 'log');
    let nextFreeAt = 0;
    call.on('data', (bytes: Buffer) => {
      const now = epochMs();
      let ev: PeekedEvent;
      try {
        ev = peek(bytes);
      } catch (err) {
        // What a deserializer error would do: the stream fails (and is reopened).
        call.cancel();
        call.emit('error', Object.assign(new Error((err as Error).message), { code: grpc.status.INTERNAL, details: `bad message: ${(err as Error).message}` }));
        return;
      }
      this.record(s, ev, now);
      if (burnMs > 0) {
        const until = performance.now() + burnMs;
        while (performance.now() < until);
      }
      // A stalled client stops at its first event. It must pause from inside a 'data'
      // handler: a grpc-js stream paused before it ever flowed keeps pulling messages
      // off the connection into memory, so the broker would never see it stall.
      if (!this.released) {
        call.pause();
        return;
      }
      if (delayMs <= 0) return;
      // Work off the delay in pauses of at least 1 ms: timers cannot sleep less, and
      // sub-ms delays then still add up to the right consumer speed.
      nextFreeAt = Math.max(nextFreeAt, now) + delayMs;
      const wait = nextFreeAt - now;
      if (wait >= 1) {
        call.pause();
        setTimeout(() => call.resume(), wait);
      }
    });
    call.resume();
  }

  private record(s: StreamState, ev: PeekedEvent, now: number): void {
    s.received++;
    s.bytes += ev.bytes;
    this.received++;
    this.bytes += ev.bytes;
    if (Number.isNaN(this.firstReceiveAt)) this.firstReceiveAt = now;
    this.lastReceiveAt = now;
    const second = Math.max(0, Math.floor((now - this.timeOrigin) / 1000));
    while (this.receivedPerSecond.length <= second) this.receivedPerSecond.push(0);
    this.receivedPerSecond[second]++;
    if (!Number.isNaN(ev.updatedMicros)) {
      this.latencyFromUpdated.record(now * 1000 - ev.updatedMicros);
    }
    if (this.settings.trackSequence && ev.seq > 0) {
      this.tracker.add(ev.seq);
      const sentAt = this.settings.sendTimes?.sentAt(ev.seq) ?? Number.NaN;
      if (!Number.isNaN(sentAt)) this.latencyFromSend.record((now - sentAt) * 1000);
    }
  }

  /** Everything the main thread needs for the report; the sequence bitset's buffer can be transferred. */
  result(): SubscriberResult {
    return {
      index: this.settings.index,
      streams: this.streams.map((st) => ({ ...st })),
      failures: [...this.failures],
      received: this.received,
      bytes: this.bytes,
      firstReceiveAt: this.firstReceiveAt,
      lastReceiveAt: this.lastReceiveAt,
      receivedPerSecond: [...this.receivedPerSecond],
      sequence: this.tracker.state(),
      latencyFromUpdated: this.latencyFromUpdated.encode(),
      latencyFromSend: this.latencyFromSend.encode(),
    };
  }
}
