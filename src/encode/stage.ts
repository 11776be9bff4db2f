/**
 * The encode stage as the feeder wires it: one RingPump per ring (pump.ts), all calling
 * one EncodeStrategy (strategy.ts: small spans inline, large ones on the EncoderPool's
 * threads, pool.ts), handing batches on in ring order.
 */
import { RingConsumer } from '../ring';
import type { EncodedBatch, EncoderSettings } from './batch';
import { createSpanEncoder, type SpanEncoder } from './encodeSpan';
import { EncoderPool, WARM_UP_ROUNDS, warmUpTask } from './pool';
import { RingPump, type BatchSink, type EncodeFailure, type PumpLimits } from './pump';
import type { SlabPool } from './slabs';
import { InlineOrWorkers } from './strategy';

export interface EncodeStageOptions {
  threads: number;
  maxBatchEvents: number;
  maxBatchBytes: number;
  /** Largest idle-time backlog encoded on the main thread (0 = always use the workers). */
  inlineMaxEvents: number;
  /** Output slabs (slabs.ts); 0 = every batch in a buffer of its own. */
  outputSlabs: number;
}

export class EncodeStage {
  private readonly pool: EncoderPool;
  private readonly inline: SpanEncoder;
  private readonly strategy: InlineOrWorkers;
  private readonly limits: PumpLimits;
  private readonly sink: BatchSink;
  private readonly pumps = new Map<string, RingPump>();
  private encodedBatches = 0;

  constructor(
    settings: EncoderSettings,
    options: EncodeStageOptions,
    onBatch: (batch: EncodedBatch, source: string) => void,
    onFailure: (failure: EncodeFailure) => void,
    /** Whether any subscriber filters on the server, i.e. whether batches need `attrs`. */
    needAttrs: () => boolean = () => true,
  ) {
    // Two tasks per thread keep every encoder busy while the main thread fans out.
    const maxInFlight = options.threads * 2;
    this.limits = { maxBatchEvents: options.maxBatchEvents, maxBatchBytes: options.maxBatchBytes, maxInFlight };
    this.pool = new EncoderPool(settings, options.threads, options.outputSlabs, maxInFlight);
    this.inline = createSpanEncoder(settings, this.pool.slabs.area);
    this.strategy = new InlineOrWorkers(this.inline, this.pool, options.inlineMaxEvents);
    this.sink = {
      batch: (batch, source) => {
        this.encodedBatches++;
        onBatch(batch, source);
      },
      failure: onFailure,
      needAttrs,
    };
  }

  /** The output slabs, which client queues and writes hold references to. */
  get slabs(): SlabPool {
    return this.pool.slabs;
  }

  get batches(): number {
    return this.encodedBatches;
  }

  /** Batches the main thread encoded itself (light traffic). */
  get inlined(): number {
    return this.strategy.inlined;
  }

  /** Encoder threads running now. */
  get threads(): number {
    return this.pool.threads;
  }

  /** Whether an encoder task has run over the last bound given to abortOverdueTasks. */
  hasOverdueTask(): boolean {
    return this.pool.hasOverdueTask();
  }

  /** Aborts encoder tasks running over `limitMs` (0: none), replacing their threads (pool.ts). */
  abortOverdueTasks(limitMs: number): number {
    return this.pool.abortOverdueTasks(limitMs);
  }

  /** Encoder threads replaced because a task ran over encoderTaskTimeoutMs. */
  get encoderRestarts(): number {
    return this.pool.encoderRestarts;
  }

  /**
   * Runs the encode path on the main thread over a ring of sample records before the
   * first real event, and keeps the sample to warm the encoder threads when they start.
   * V8 compiles hot code only after it has run a while; without this, the first ~100 ms
   * of traffic pays for the compiler and every client sees tens of milliseconds of
   * latency at start. The batches are discarded.
   */
  warmUp(sample: SharedArrayBuffer): void {
    this.pool.warmUpOn(sample);
    const task = warmUpTask(sample);
    if (task === undefined) return;
    for (let r = 0; r < WARM_UP_ROUNDS; r++) this.inline(task);
  }

  /** Starts the encoder threads now and resolves once they are warmed up. */
  workersWarm(): Promise<void> {
    return this.pool.workersWarm();
  }

  /** Starts encoding a ring's records as they are published. */
  addRing(source: string, sab: SharedArrayBuffer): RingConsumer {
    const consumer = new RingConsumer(sab);
    const pump = new RingPump(source, consumer, this.strategy, this.pool.slabs, this.limits, this.sink);
    this.pumps.set(source, pump);
    pump.pump();
    return consumer;
  }

  /** Resolves when every ring's published records have been encoded and handed on. */
  async drain(): Promise<void> {
    await Promise.all([...this.pumps.values()].map((p) => p.whenIdle()));
  }

  async close(): Promise<void> {
    for (const p of this.pumps.values()) p.stop();
    await this.pool.close();
  }
}
