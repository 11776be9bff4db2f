/**
 * Drives the rings through the encoder workers. For each ring it claims spans of
 * records, runs them on the piscina pool, and hands the EncodedBatches to the fan-out
 * strictly in ring order, releasing ring space as each head-of-line batch completes.
 *
 * Batches are as large as the backlog: a span is dispatched as soon as an encoder slot
 * is free, so light traffic goes out one event at a time (no batching delay) and heavy
 * traffic accumulates while the slots are busy (up to maxBatchEvents per task).
 *
 * Small spans skip the workers altogether: a span of at most `inlineMaxEvents` events
 * (about 100 us of transcoding at 64) is encoded on the main thread. Two thread
 * hand-offs cost more than that, and on a busy 2-core node each can wait a scheduler
 * slice (a worker round trip measured 1.5-2 ms at p50 at 4 x 50k/s, against 0.1 ms
 * inline). Spans are as large as the backlog, so light and steady traffic is encoded
 * here, and once the main thread falls behind (ring backlog above the bound) the
 * workers take the large spans. An inline batch claimed while a worker task is still
 * out waits behind it, so batches always reach the fan-out in ring order.
 *
 * The bound follows the main thread's own load (InlineBudget): with one client at
 * 50,000 events/s on the socket path the main thread is ~40% busy, and encoding spans of
 * up to 256 events itself cut the broker's p90 from 2.3-2.8 ms to 0.6-0.7 ms (worker
 * round trips avoided); with four clients the same thread is busy writing, and a bound of
 * 256 doubled p99 where 64 kept it. So the bound is `inlineMaxEvents` while the main
 * thread's event loop was under half busy over the last 100 ms, and a quarter of it above.
 *
 * Each span takes an output slab (slabs.ts) that its encoder, worker or main thread,
 * writes the batch's bytes into; the pool's reference ends once the batch has been
 * offered to every client, whose queues hold their own.
 */
import * as path from 'node:path';
import { Piscina } from 'piscina';
import { RingConsumer, type RingSpan } from '../ring';
import type { EncodeTask, EncodedBatch, EncoderSettings } from './batch';
import { createSpanEncoder, type SpanEncoder } from './encodeSpan';
import { SlabPool } from './slabs';

export interface EncoderPoolOptions {
  threads: number;
  maxBatchEvents: number;
  maxBatchBytes: number;
  /** Largest idle-time backlog encoded on the main thread (0 = always use the workers). */
  inlineMaxEvents: number;
  /** Output slabs (slabs.ts); 0 = every batch in a buffer of its own. */
  outputSlabs: number;
}

export interface EncodeFailure {
  source: string;
  events: number;
  message: string;
}

interface InFlight {
  span: RingSpan;
  batch: EncodedBatch | undefined;
  error: string | undefined;
  done: boolean;
  /** Output slot acquired for this span (NO_SLAB: none was free). */
  slab: number;
}

/**
 * The main thread's inline-encoding bound, from its event-loop utilisation over the last
 * ~100 ms (performance.eventLoopUtilization: a few hundred ns to read): the full bound
 * while it is under half busy, a quarter of it above.
 */
export class InlineBudget {
  private last = performance.eventLoopUtilization();
  private nextCheckMs = 0;
  private current: number;

  constructor(private readonly max: number) {
    this.current = max;
  }

  limit(): number {
    const now = performance.now();
    if (now >= this.nextCheckMs) {
      const delta = performance.eventLoopUtilization(this.last);
      this.last = performance.eventLoopUtilization();
      this.nextCheckMs = now + ELU_WINDOW_MS;
      this.current = delta.utilization < 0.5 ? this.max : Math.floor(this.max / 4);
    }
    return this.current;
  }
}

const ELU_WINDOW_MS = 100;
const WARM_UP_ROUNDS = 6;
/** Inline encoding done in one turn of the event loop before it yields (about 1 ms). */
const INLINE_EVENTS_PER_TURN = 512;

function warmUpTask(sample: SharedArrayBuffer): EncodeTask | undefined {
  const span = new RingConsumer(sample).claim(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return span === null ? undefined : { ring: sample, start: span.start, end: span.end, attrs: true };
}

/** Bound on a wait with no traffic (a missed wake-up; see RingConsumer.waitForData). */
const IDLE_WAIT_MS = 250;

class RingPump {
  private readonly inFlight: InFlight[] = [];
  private waiting = false;
  private stopped = false;
  private idleResolvers: (() => void)[] = [];

  constructor(
    readonly source: string,
    readonly consumer: RingConsumer,
    private readonly pool: EncoderPool,
  ) {}

  pump(): void {
    if (this.stopped) return;
    this.yieldScheduled = false;
    const { maxBatchEvents, maxBatchBytes, maxInFlight } = this.pool.limits;
    let inlined = 0;
    while (this.inFlight.length < maxInFlight) {
      if (inlined >= INLINE_EVENTS_PER_TURN) {
        // Inline spans finish at once, so under a steady flood this loop would never
        // return to the event loop, and nothing queued for the clients would be written.
        this.yieldToEventLoop();
        return;
      }
      const span = this.consumer.claim(maxBatchEvents, maxBatchBytes);
      if (span === null) break;
      const entry: InFlight = { span, batch: undefined, error: undefined, done: false, slab: this.pool.slabs.acquire() };
      if (span.events <= this.pool.inlineBudget.limit() || !this.pool.workersReady()) {
        // The backlog is small: encode it here. Behind a task still in the workers it
        // waits its turn (ring order), but it does not make one more task.
        this.pool.encodeInline(this.consumer, entry);
        inlined += span.events;
        if (this.inFlight.length === 0) this.finish(entry);
        else this.inFlight.push(entry);
        continue;
      }
      this.inFlight.push(entry);
      const task: EncodeTask = { ring: this.consumer.sab, start: span.start, end: span.end, attrs: this.pool.needAttrs(), slab: entry.slab };
      this.pool.run(task).then(
        (batch) => this.complete(entry, batch, undefined),
        (err: unknown) => this.complete(entry, undefined, err instanceof Error ? err.message : String(err)),
      );
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

  private yieldScheduled = false;

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
   * ring order. The pool's reference to the output slot ends here: client queues that
   * kept views of the bytes took their own during delivery.
   */
  private finish(entry: InFlight): void {
    this.consumer.release(entry.span.end);
    if (entry.batch !== undefined) this.pool.deliver(entry.batch, this.source);
    else this.pool.fail({ source: this.source, events: entry.span.events, message: entry.error ?? 'unknown' });
    this.pool.slabs.release(entry.slab);
  }

  /** Resolves once everything published so far has been encoded and delivered. */
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

/** One slot holds a batch's two streams; 512 events of ~450 bytes need about 230 KiB. */
const OUTPUT_SLAB_BYTES = 512 * 1024;

export class EncoderPool {
  readonly slabs: SlabPool;
  readonly limits: { maxBatchEvents: number; maxBatchBytes: number; maxInFlight: number; inlineMaxEvents: number };
  readonly inlineBudget: InlineBudget;
  private readonly inline: SpanEncoder;
  private inlineBatches = 0;
  /**
   * The encoder threads, started and warmed up before the broker listens (workersWarm).
   * Starting them later (when the first client connected) saved ~40 MB of RSS while idle
   * but cost every first burst its p99: the two isolates' start and warm-up took both
   * cores for a few hundred ms just as traffic began (bench:peers target 3: p99 47-86 ms
   * and lost events, against 8-20 ms and none started up front).
   */
  private piscina: Piscina | undefined;
  private ready = false;
  private starting: Promise<void> | undefined;
  private sample: SharedArrayBuffer | undefined;
  private readonly pumps = new Map<string, RingPump>();
  private encodedBatches = 0;
  /** Tasks in the encoder threads now, with when they started (performance.now()). */
  private readonly runningTasks = new Map<AbortController, number>();
  private overdue = 0;
  private wedgedTasks = 0;

  constructor(
    private readonly settings: EncoderSettings,
    options: EncoderPoolOptions,
    private readonly onBatch: (batch: EncodedBatch, source: string) => void,
    private readonly onFailure: (failure: EncodeFailure) => void,
    /** Whether any subscriber filters on the server, i.e. whether batches need `attrs`. */
    readonly needAttrs: () => boolean = () => true,
  ) {
    this.limits = {
      maxBatchEvents: options.maxBatchEvents,
      maxBatchBytes: options.maxBatchBytes,
      // Two tasks per thread keep every encoder busy while the main thread fans out.
      maxInFlight: options.threads * 2,
      inlineMaxEvents: options.inlineMaxEvents,
    };
    this.inlineBudget = new InlineBudget(options.inlineMaxEvents);
    this.slabs = new SlabPool(options.outputSlabs, OUTPUT_SLAB_BYTES);
    this.inline = createSpanEncoder(settings, this.slabs.area);
    this.threadCount = options.threads;
  }

  private readonly threadCount: number;

  /** Whether encoder threads are up and warmed; until then every span is encoded inline. */
  workersReady(): boolean {
    if (this.ready) return true;
    this.startWorkers();
    return false;
  }

  /** Starts the encoder threads and warms them up (see warmUp); until they are ready every span is encoded inline. */
  private startWorkers(): void {
    if (this.starting !== undefined) return;
    const piscina = new Piscina({
      filename: path.resolve(__dirname, 'encoder.worker.js'),
      minThreads: this.threadCount,
      maxThreads: this.threadCount,
      idleTimeout: Infinity,
      workerData: { encoder: this.settings, slabs: this.slabs.area },
      // An encoder keeps little on its heap (batch buffers are transferred away), so a
      // small young generation costs nothing and keeps the node's RSS down.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    this.piscina = piscina;
    this.starting = (async () => {
      if (this.sample !== undefined) await this.warmWorkers(piscina, this.sample, WARM_UP_ROUNDS);
      if (this.piscina === piscina) this.ready = true;
    })();
  }

  /** Starts the encoder threads now and resolves once they are warmed up. */
  async workersWarm(): Promise<void> {
    this.startWorkers();
    await this.starting;
  }

  private async stopWorkers(): Promise<void> {
    const piscina = this.piscina;
    this.piscina = undefined;
    this.ready = false;
    this.starting = undefined;
    await piscina?.destroy();
  }

  get batches(): number {
    return this.encodedBatches;
  }

  /** Batches the main thread encoded itself (light traffic). */
  get inlined(): number {
    return this.inlineBatches;
  }

  /** Encodes a span on the main thread (light traffic), filling the entry's batch or error. */
  encodeInline(consumer: RingConsumer, entry: InFlight): void {
    this.inlineBatches++;
    try {
      entry.batch = this.inline({ ring: consumer.sab, start: entry.span.start, end: entry.span.end, attrs: this.needAttrs(), slab: entry.slab });
    } catch (err) {
      entry.error = err instanceof Error ? err.message : String(err);
    }
    entry.done = true;
  }

  /** Encoder threads running now. */
  get threads(): number {
    return this.piscina?.threads.length ?? 0;
  }

  /**
   * Runs the encode path on the main thread over a ring of sample records before the
   * first real event, and keeps the sample to warm the encoder threads when they start.
   * V8 compiles hot code only after it has run a while; without this, the first ~100 ms
   * of traffic pays for the compiler and every client sees tens of milliseconds of
   * latency at start. The batches are discarded.
   */
  warmUp(sample: SharedArrayBuffer): void {
    this.sample = sample;
    const task = warmUpTask(sample);
    if (task === undefined) return;
    for (let r = 0; r < WARM_UP_ROUNDS; r++) this.inline(task);
  }

  private async warmWorkers(piscina: Piscina, sample: SharedArrayBuffer, rounds: number): Promise<void> {
    const task = warmUpTask(sample);
    if (task === undefined) return;
    for (let r = 0; r < rounds; r++) {
      await Promise.all(Array.from({ length: this.limits.maxInFlight }, () => piscina.run(task)));
    }
  }

  /** Starts encoding a ring's records as they are published. */
  addRing(source: string, sab: SharedArrayBuffer): RingConsumer {
    const consumer = new RingConsumer(sab);
    const pump = new RingPump(source, consumer, this);
    this.pumps.set(source, pump);
    pump.pump();
    return consumer;
  }

  run(task: EncodeTask): Promise<EncodedBatch> {
    const abort = new AbortController();
    this.runningTasks.set(abort, performance.now());
    return ((this.piscina as Piscina).run(task, { signal: abort.signal }) as Promise<EncodedBatch>).finally(() => this.runningTasks.delete(abort));
  }

  /** Whether a task has been running for longer than the last bound given to abortOverdueTasks. */
  hasOverdueTask(): boolean {
    return this.overdue > 0;
  }

  /**
   * Aborts every task running for longer than `limitMs` (0: none): piscina ends the
   * thread running it and starts another, and the task fails, so its span is released
   * in ring order and its events are counted encode_error. A task is at most batchSize
   * events, milliseconds of work, so one this late is in a thread that no longer runs.
   * Returns how many were aborted.
   */
  abortOverdueTasks(limitMs: number): number {
    this.overdue = 0;
    if (limitMs <= 0) return 0;
    const now = performance.now();
    let aborted = 0;
    for (const [abort, startedMs] of this.runningTasks) {
      if (now - startedMs < limitMs) continue;
      // Counted until its thread is gone and the task has failed (runningTasks drops it).
      this.overdue++;
      if (abort.signal.aborted) continue;
      abort.abort(new Error(`encoder task running for ${Math.round(now - startedMs)} ms (encoderTaskTimeoutMs ${limitMs}): its thread was replaced`));
      this.wedgedTasks++;
      aborted++;
    }
    return aborted;
  }

  /** Encoder tasks aborted as wedged (abortOverdueTasks): each one replaced a thread. */
  get encoderRestarts(): number {
    return this.wedgedTasks;
  }

  deliver(batch: EncodedBatch, source: string): void {
    this.encodedBatches++;
    for (const s of [batch.alerts, batch.logs]) {
      if (s.slab !== undefined) s.bytes = this.slabs.view(s.slab, s.slabAt ?? 0, s.count > 0 ? s.ends[s.count - 1] : 0);
    }
    this.onBatch(batch, source);
  }

  fail(failure: EncodeFailure): void {
    this.onFailure(failure);
  }

  /** Resolves when every ring's published records have been encoded and delivered. */
  async drain(): Promise<void> {
    await Promise.all([...this.pumps.values()].map((p) => p.whenIdle()));
  }

  async close(): Promise<void> {
    for (const p of this.pumps.values()) p.stop();
    await this.starting?.catch(() => undefined);
    await this.stopWorkers();
  }
}
