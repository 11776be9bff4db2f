/**
 * One load client: one gRPC connection (its own subchannel, like a separate karmor)
 * with a WatchAlerts and/or WatchLogs stream. It records what arrives by sequence
 * number, the latency from UpdatedTime and from the producer's send, and events
 * per second.
 *
 * It runs inside a worker thread (src/load/load.worker.ts) with a few other clients
 * at most, and reads without decoding events: the gRPC calls are made on node:http2
 * directly (../wire/h2-grpc.ts says why not grpc-js), each message is found in place in the
 * HTTP/2 chunk, and a top-level protobuf wire walk (./peek.ts) reads only the sequence
 * number (HostPID) and UpdatedTime, as the Go loadclient's lazy mode does. An event's
 * receive time is when the client reads it (as loadclient takes it after RecvMsg), in
 * epoch ms (performance.timeOrigin + performance.now()), which every thread of the
 * process shares.
 *
 * Slow clients really stop reading: after an event the reading stops at that event
 * (the rest of the chunk waits, the HTTP/2 stream is paused, flow control closes the
 * window and the broker's per-client queue fills) and goes on once the per-event delay
 * has passed. Stalled clients stop after their first event until the producer has
 * finished; then they drain, so that every event is either received or counted as
 * dropped by the broker.
 */
import { HealthMismatchError } from '../errors';
import { filterMetadataKeys, rpcPath, type EventStreamKind } from '../wire/proto';
import { formatHostPort, type HostPort } from './addresses';
import { FeederSession, grpcStatus, statusName, type GrpcResponseReader, type GrpcStatus } from '../wire/h2-grpc';
import { LatencyRecorder } from './latency';
import { makeEventPeeker, type PeekedEvent } from './peek';
import { epochMs, type SendTimes } from './send-times';
import { SequenceTracker, type SequenceState } from './sequence';

export type ClientBehaviour = { kind: 'fast' } | { kind: 'slow'; delayUs: number } | { kind: 'stalled' };
export type StreamEnd = 'open' | 'stopped' | 'eof' | 'error';

export interface LoadClientSettings {
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

/** What a load client hands back to the main thread at the end of a run. */
export interface LoadClientResult {
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

export class LoadClient {
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
  private readonly session: FeederSession;
  private readonly calls = new Map<EventStreamKind, GrpcResponseReader>();
  private released: boolean;
  private stopping = false;

  constructor(readonly settings: LoadClientSettings) {
    // A fast client gets an HTTP/2 window like the one grpc-go's BDP estimator grows for
    // a karmor reading at full speed on loopback, so that a scheduling hiccup of its thread
    // is absorbed as it is in a Go client. Slow and stalled clients keep the 64 KB default:
    // they model consumers that push back on the broker's queue.
    // (So does a debug client that burns CPU per event: it shows a client's own limit.)
    const fast = settings.behaviour.kind === 'fast' && (settings.burnUsPerEvent ?? 0) === 0;
    // One session per load client, as separate karmor processes would have.
    this.session = new FeederSession(formatHostPort(settings.addr), {
      windowBytes: fast ? fastClientWindowBytes : undefined,
      metadata: { [filterMetadataKeys.clientName]: settings.name },
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
    const { nonce, retval } = await this.session.healthCheck(healthDeadlineMs);
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
    this.session.close();
  }

  private open(s: StreamState): void {
    const path = s.kind === 'alerts' ? rpcPath.WatchAlerts : rpcPath.WatchLogs;
    const filter = s.kind === 'alerts' ? this.settings.alertFilter : this.settings.logFilter;
    s.end = 'open';
    const call = this.session.watch(path, filter, this.reader(s), (st) => this.ended(s, st));
    this.calls.set(s.kind, call);
  }

  private ended(s: StreamState, st: GrpcStatus): void {
    this.calls.delete(s.kind);
    if (this.stopping || st.code === grpcStatus.CANCELLED) return;
    if (st.code === grpcStatus.OK) {
      if (s.end === 'open') s.end = 'eof';
      return;
    }
    s.end = 'error';
    s.lastError = `${statusName(st.code)}: ${st.details}`;
    this.failures.push(`client ${this.settings.index} ${s.kind}: ${s.lastError}`);
    setTimeout(() => {
      if (this.stopping) return;
      s.reconnects++;
      this.open(s);
    }, reconnectDelayMs);
  }

  /**
   * The visitor of one stream's messages: records each, and returns false to stop
   * reading after it (a stalled client's first event, a slow client's pause).
   */
  private reader(s: StreamState): (buf: Buffer, start: number, end: number) => boolean {
    const behaviour = this.settings.behaviour;
    const delayMs = behaviour.kind === 'slow' ? behaviour.delayUs / 1000 : 0;
    const burnMs = (this.settings.burnUsPerEvent ?? 0) / 1000;
    const peek = makeEventPeeker(s.kind === 'alerts' ? 'alert' : 'log');
    let nextFreeAt = 0;
    const resume = (): void => this.calls.get(s.kind)?.resume();
    return (buf, start, end) => {
      const now = epochMs();
      const ev: PeekedEvent = peek(buf, start, end);
      this.record(s, ev, now);
      if (burnMs > 0) {
        const until = performance.now() + burnMs;
        while (performance.now() < until);
      }
      if (!this.released) return false;
      if (delayMs <= 0) return true;
      // Work off the delay in pauses of at least 1 ms: timers cannot sleep less, and
      // sub-ms delays then still add up to the right consumer speed.
      nextFreeAt = Math.max(nextFreeAt, now) + delayMs;
      const wait = nextFreeAt - now;
      if (wait < 1) return true;
      setTimeout(resume, wait);
      return false;
    };
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
  result(): LoadClientResult {
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
