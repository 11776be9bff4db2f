/**
 * Drives one ring through the encoding strategy. It claims spans of records, gives each
 * an output slab (slabs.ts) and hands it to the EncodeStrategy (strategy.ts), and passes
 * the EncodedBatches on strictly in ring order, releasing ring space as each
 * head-of-line batch completes.
 *
 * Batches are as large as the backlog: a span is claimed as soon as fewer than
 * `maxInFlight` are out, so light traffic goes out one event at a time (no batching
 * delay) and heavy traffic accumulates while the encoders are busy (up to
 * maxBatchEvents per span). A span the strategy encoded at once, claimed while another
 * is still out on a worker, waits behind it, so batches always leave in ring order.
 *
 * The pump's reference to a span's output slab ends once the batch has been handed on:
 * client queues that kept views of the bytes took their own.
 */
import type { RingConsumer, RingSpan } from '../ring';
import type { EncodedBatch, EncodeTask } from './batch';
import type { SlabPool } from './slabs';
import type { EncodeStrategy } from './strategy';

export interface PumpLimits {
  maxBatchEvents: number;
  maxBatchBytes: number;
  /** Spans out at once (encoding or waiting for an earlier one). */
  maxInFlight: number;
}

export interface EncodeFailure {
  source: string;
  events: number;
  message: string;
}

/** Where a pump's output goes, in ring order. */
export interface BatchSink {
  batch(batch: EncodedBatch, source: string): void;
  failure(failure: EncodeFailure): void;
  /** Whether any subscriber filters on the server, i.e. whether batches need `attrs`. */
  needAttrs(): boolean;
}

interface InFlight {
  span: RingSpan;
  batch: EncodedBatch | undefined;
  error: string | undefined;
  done: boolean;
  /** Output slot acquired for this span (NO_SLAB: none was free). */
  slab: number;
}

/** Encoding done at once in one turn of the event loop before the pump yields (about 1 ms). */
const EVENTS_AT_ONCE_PER_TURN = 512;

/** Bound on a wait with no traffic (a missed wake-up; see RingConsumer.waitForData). */
const IDLE_WAIT_MS = 250;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class RingPump {
  private readonly inFlight: InFlight[] = [];
  private waiting = false;
  private stopped = false;
  private yieldScheduled = false;
  private idleResolvers: (() => void)[] = [];

  constructor(
    readonly source: string,
    readonly consumer: RingConsumer,
    private readonly strategy: EncodeStrategy,
    private readonly slabs: SlabPool,
    private readonly limits: PumpLimits,
    private readonly sink: BatchSink,
  ) {}

  pump(): void {
    if (this.stopped) return;
    this.yieldScheduled = false;
    const { maxBatchEvents, maxBatchBytes, maxInFlight } = this.limits;
    let atOnce = 0;
    while (this.inFlight.length < maxInFlight) {
      if (atOnce >= EVENTS_AT_ONCE_PER_TURN) {
        // Spans encoded at once finish at once, so under a steady flood this loop would
        // never return to the event loop, and nothing queued for the clients would be written.
        this.yieldToEventLoop();
        return;
      }
      const span = this.consumer.claim(maxBatchEvents, maxBatchBytes);
      if (span === null) break;
      const entry: InFlight = { span, batch: undefined, error: undefined, done: false, slab: this.slabs.acquire() };
      const task: EncodeTask = { ring: this.consumer.sab, start: span.start, end: span.end, attrs: this.sink.needAttrs(), slab: entry.slab };
      let result: EncodedBatch | Promise<EncodedBatch> | undefined;
      try {
        result = this.strategy.encode(task, span.events);
      } catch (err) {
        entry.error = messageOf(err);
      }
      if (result instanceof Promise) {
        this.inFlight.push(entry);
        result.then(
          (batch) => this.complete(entry, batch, undefined),
          (err: unknown) => this.complete(entry, undefined, messageOf(err)),
        );
        continue;
      }
      // Encoded already: behind a span still out on a worker it waits its turn (ring
      // order), but it does not count as one more task.
      entry.batch = result;
      entry.done = true;
      atOnce += span.events;
      if (this.inFlight.length === 0) this.finish(entry);
      else this.inFlight.push(entry);
    }
    if (this.inFlight.length === 0) {
      this.notifyIdle();
      if (!this.waiting && !this.consumer.isClosed()) {
        this.waiting = true;
        // Idle, the timeout only bounds how long a missed wake-up could stall; while
        // traffic is recent the consumer shortens it to pick up what the producer held back.
        void this.consumer.waitForData(IDLE_WAIT_MS).then(() => {
          this.waiting = false;
          this.pump();
        });
      }
    }
  }

  private yieldToEventLoop(): void {
    if (this.yieldScheduled) return;
    this.yieldScheduled = true;
    setImmediate(() => this.pump());
  }

  private complete(entry: InFlight, batch: EncodedBatch | undefined, error: string | undefined): void {
    entry.batch = batch;
    entry.error = error;
    entry.done = true;
    while (this.inFlight.length > 0 && this.inFlight[0].done) this.finish(this.inFlight.shift() as InFlight);
    this.pump();
  }

  /**
   * Hands a span's batch (or its failure) on and frees its ring space; spans finish in
   * ring order. Bytes a worker wrote into the output slab become a view of it here; the
   * pump's reference to the slab ends after the hand-over.
   */
  private finish(entry: InFlight): void {
    this.consumer.release(entry.span.end);
    const batch = entry.batch;
    if (batch !== undefined) {
      for (const s of [batch.alerts, batch.logs]) {
        if (s.slab !== undefined) s.bytes = this.slabs.view(s.slab, s.slabAt ?? 0, s.count > 0 ? s.ends[s.count - 1] : 0);
      }
      this.sink.batch(batch, this.source);
    } else this.sink.failure({ source: this.source, events: entry.span.events, message: entry.error ?? 'unknown' });
    this.slabs.release(entry.slab);
  }

  /** Resolves once everything published so far has been encoded and handed on. */
  whenIdle(): Promise<void> {
    if (this.inFlight.length === 0 && !this.consumer.hasUnclaimed()) return Promise.resolve();
    return new Promise((resolve) => {
      this.idleResolvers.push(resolve);
      this.pump();
    });
  }

  private notifyIdle(): void {
    if (this.consumer.hasUnclaimed()) return;
    const resolvers = this.idleResolvers;
    this.idleResolvers = [];
    for (const r of resolvers) r();
  }

  stop(): void {
    this.stopped = true;
    this.notifyIdle();
  }
}
