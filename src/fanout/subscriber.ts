/**
 * One Watch* stream as the fan-out sees it: its bounded queue, its filter, its
 * counters and latency histogram, and the sink that writes to the wire. The pump keeps
 * at most MAX_WRITES_IN_FLIGHT chunks handed to gRPC and unconfirmed, so a client that
 * stops reading holds its queue plus two chunks, never more.
 */
import * as hdr from 'hdr-histogram-js';
import { ClientQueue, type DropCounts, type QueueEntry, type Write } from './clientQueue';
import { ATTR_NAMESPACE, ATTR_OPERATION, ATTR_TYPE, ATTRS_PER_EVENT } from '../encode';
import { noSlabs, type SlabRefs } from '../encode';
import { summarizeLatency, type LatencySummary } from '../latency';
import type { StreamKind } from '../wire/proto';
import { nowMicros } from '../wire/time';


/** Where a subscriber's bytes go: a run of gRPC-framed messages per call. */
export interface FramedSink {
  write(chunk: Uint8Array, done: (err?: Error | null) => void): void;
}

/** A compiled filter pattern, as the fan-out uses it; which engine compiled it is the server's business. */
export interface AttrMatcher {
  test(value: string): boolean;
}

/** Server-side filter (armorfeed extension): one pattern per attribute, karmor's rules (see server/index.ts). */
export interface AttrFilter {
  namespace?: AttrMatcher;
  operation?: AttrMatcher;
  logType?: AttrMatcher;
}

/** Per-batch filter verdicts: not yet known, or known. */
const UNKNOWN = 0;
const PASS = 1;
const REJECT = 2;


/** karmor's rule: an empty (omitted) attribute never matches a pattern set for it. */
function passes(m: AttrMatcher | undefined, value: string): boolean {
  return m === undefined || (value !== '' && m.test(value));
}

const MAX_WRITES_IN_FLIGHT = 2;
/** Upper bound of one write: large enough to amortise grpc-js's per-write cost. */
const MAX_CHUNK_BYTES = 256 * 1024;
/**
 * During shutdown, a client whose write took longer than this to be confirmed is sent
 * one event per write until the end (a 256 KiB write taking 100 ms is a client below
 * ~2.5 MB/s). Why: grpc-js confirms a write only once all of it is on the socket, and
 * says nothing about a part, so when the grace period cuts a client off, a write of
 * many events that it had received in part would be counted lost though some arrived.
 * One event per write leaves no part to miss; it costs grpc-js's per-write path (~10 us)
 * per event, which a client this slow does not notice, and a fast client never pays.
 */
const SLOW_WRITE_US = 100_000;

export interface SubscriberInfo {
  id: string;
  name: string;
  stream: StreamKind;
  filter: string;
  peer: string;
  serverFilter: AttrFilter | undefined;
  /** Per-node view (x-armorfeed-node): only events whose HostName is one of these. */
  nodes?: ReadonlySet<string>;
}

export class Subscriber {
  readonly queue: ClientQueue;
  /** Ingest-to-write latency (us); dropped on close, when only its summary is kept. */
  private latencyUs: hdr.Histogram | undefined = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  private finalLatency: LatencySummary | undefined;
  open = true;
  readonly openedAt = Date.now();
  closedAt: number | undefined;
  private writesInFlight = 0;
  private eventsInFlight = 0;
  private abandoned = false;
  /** Shutdown has begun (beginShutdown): slow clients get one event per write. */
  private shuttingDown = false;
  private oneEventPerWrite = false;
  /** How long the last confirmed write took (us). */
  private lastWriteUs = 0;
  /** The grace period ran out (expireGrace): nothing more is written. */
  private graceExpired = false;
  private readonly taken: QueueEntry[] = [];
  private readonly pending = new Set<Write>();
  /**
   * Filter verdicts for the batch being offered, one per (attribute string, attribute):
   * slot `ATTRS_PER_EVENT * index + ATTR_*`, index into `verdictStrings`. The encoders
   * intern each batch's attribute values, so a pattern runs once per distinct value per
   * batch, not once per event, and no key string is built per event.
   */
  private verdicts = new Uint8Array(ATTRS_PER_EVENT * 64);
  private verdictStrings: readonly string[] | undefined;
  private drainResolvers: (() => void)[] = [];

  constructor(
    readonly info: SubscriberInfo,
    queueSize: number,
    private readonly sink: FramedSink,
    slabs: SlabRefs = noSlabs,
  ) {
    this.queue = new ClientQueue(queueSize, slabs);
  }

  get hasFilter(): boolean {
    return this.info.serverFilter !== undefined;
  }

  /** Whether this subscriber wants events of node `node` (its HostName); true without a node view. */
  acceptsNode(node: string): boolean {
    return this.info.nodes === undefined || this.info.nodes.has(node);
  }

  /** Whether this subscriber wants an event with these attributes (not cached: for rare, one-off events). */
  accepts(namespace: string, operation: string, type: string): boolean {
    const f = this.info.serverFilter;
    if (f === undefined) return true;
    return passes(f.namespace, namespace) && passes(f.operation, operation) && passes(f.logType, type);
  }

  /**
   * Whether this subscriber wants event `i` of a batch, whose attributes are indexes
   * (`attrs[ATTRS_PER_EVENT * i + ATTR_*]`) into the batch's interned `strings`. Verdicts are kept per
   * distinct string until a batch with other strings comes.
   */
  acceptsEvent(strings: readonly string[], attrs: Uint16Array, i: number): boolean {
    const f = this.info.serverFilter;
    if (f === undefined) return true;
    if (strings !== this.verdictStrings) {
      this.verdictStrings = strings;
      const need = ATTRS_PER_EVENT * strings.length;
      if (this.verdicts.length < need) this.verdicts = new Uint8Array(need);
      else this.verdicts.fill(UNKNOWN, 0, need);
    }
    const a = i * ATTRS_PER_EVENT;
    return (
      this.verdict(f.namespace, strings, attrs[a + ATTR_NAMESPACE], ATTR_NAMESPACE) &&
      this.verdict(f.operation, strings, attrs[a + ATTR_OPERATION], ATTR_OPERATION) &&
      this.verdict(f.logType, strings, attrs[a + ATTR_TYPE], ATTR_TYPE)
    );
  }

  private verdict(m: AttrMatcher | undefined, strings: readonly string[], index: number, attr: number): boolean {
    if (m === undefined) return true;
    const slot = index * ATTRS_PER_EVENT + attr;
    let v = this.verdicts[slot];
    if (v === UNKNOWN) {
      v = passes(m, strings[index]) ? PASS : REJECT;
      this.verdicts[slot] = v;
    }
    return v === PASS;
  }

  /** Moves queued messages to the sink while fewer than two writes are unconfirmed. */
  pump(): void {
    while (this.open && !this.graceExpired && this.writesInFlight < MAX_WRITES_IN_FLIGHT && this.queue.depth > 0) {
      const taken = this.taken;
      taken.length = 0;
      const queue = this.queue;
      const write = queue.takeWrite(MAX_CHUNK_BYTES, taken, this.oneEventPerWrite);
      const events = write.events;
      this.pending.add(write);
      const now = nowMicros();
      const h = this.latencyUs as hdr.Histogram;
      for (const e of taken) {
        for (let i = 0; i < e.count; i++) h.recordValue(Math.max(1, now - e.times[i]));
      }
      taken.length = 0;
      this.writesInFlight++;
      this.eventsInFlight += events;
      this.sink.write(write.bytes, (err) => {
        this.lastWriteUs = nowMicros() - now;
        if (this.shuttingDown && this.lastWriteUs > SLOW_WRITE_US) this.oneEventPerWrite = true;
        // Confirmed (or failed) by grpc-js: node is done with the bytes.
        if (queue.settleWrite(write)) this.pending.delete(write);
        if (this.abandoned) return;
        this.writesInFlight--;
        this.eventsInFlight -= events;
        if (err) {
          queue.countLost(this.graceExpired ? 'shutdown_grace_expired' : 'client_closed', events);
          return;
        }
        queue.delivered += events;
        if (this.queue.depth > 0) this.pump();
        else if (this.writesInFlight === 0) this.notifyDrained();
      });
    }
    if (this.queue.depth === 0 && this.writesInFlight === 0) this.notifyDrained();
  }

  /** Resolves once the queue is empty and every write is confirmed (or the client is gone). */
  drained(): Promise<void> {
    if (!this.open || (this.queue.depth === 0 && this.writesInFlight === 0)) return Promise.resolve();
    return new Promise((resolve) => this.drainResolvers.push(resolve));
  }

  private notifyDrained(): void {
    const r = this.drainResolvers;
    this.drainResolvers = [];
    for (const f of r) f();
  }

  /** Percentiles of the ingest-to-write latency, in microseconds. */
  latency(): LatencySummary {
    if (this.finalLatency !== undefined) return this.finalLatency;
    return summarizeLatency(this.latencyUs as hdr.Histogram);
  }

  /** The client went away (or shutdown ends it): whatever it had queued is counted as client_closed (shutdown_grace_expired). */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.closedAt = Date.now();
    // Closed clients stay listed in stats for a while; keep their summary, not ~100 KiB of buckets.
    this.finalLatency = this.latency();
    this.latencyUs = undefined;
    this.queue.discard(this.graceExpired ? 'shutdown_grace_expired' : 'client_closed');
    for (const w of this.pending) this.queue.abandonWrite(w);
    this.pending.clear();
    this.notifyDrained();
  }

  /** Still taking new messages: open, and not ended by the shutdown's grace period. */
  get accepting(): boolean {
    return this.open && !this.graceExpired;
  }

  /** Shutdown has begun: from now on a slow client (see SLOW_WRITE_US) is sent one event per write. */
  beginShutdown(): void {
    this.shuttingDown = true;
    if (this.lastWriteUs > SLOW_WRITE_US) this.oneEventPerWrite = true;
  }

  /**
   * The grace period is over: nothing more is written, and what is still queued is
   * counted shutdown_grace_expired. Returns how many events that is (0: the client
   * drained in time, though a last write may still be unconfirmed).
   */
  expireGrace(): number {
    if (!this.open) return 0;
    this.graceExpired = true;
    return this.queue.discard('shutdown_grace_expired');
  }

  /**
   * Final accounting at shutdown: writes gRPC never confirmed are counted as
   * shutdown_grace_expired (client_closed if the client had gone), and a confirmation
   * arriving later is ignored, so no event is counted twice.
   */
  abandonInFlight(): void {
    this.close();
    if (this.abandoned) return;
    this.abandoned = true;
    this.queue.countLost(this.graceExpired ? 'shutdown_grace_expired' : 'client_closed', this.eventsInFlight);
    this.eventsInFlight = 0;
    this.writesInFlight = 0;
  }

  /** Events handed to gRPC (queue.written: the counters live on the queue). */
  get written(): number {
    return this.queue.written;
  }

  /** Events whose write gRPC confirmed. */
  get delivered(): number {
    return this.queue.delivered;
  }

  get dropped(): Readonly<DropCounts> {
    return this.queue.dropped;
  }
}
