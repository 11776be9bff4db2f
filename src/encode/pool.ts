/**
 * The encoder threads (piscina) and the output slabs they write into; nothing else.
 * Which spans go to the threads is the strategy's choice (strategy.ts), and the order
 * batches leave in is the pump's (pump.ts).
 */
import * as path from 'node:path';
import { Piscina } from 'piscina';
import { RingConsumer } from '../ring';
import type { EncodeTask, EncodedBatch, EncoderSettings } from './batch';
import { SlabPool } from './slabs';

/** One slot holds a batch's two streams; 512 events of ~450 bytes need about 230 KiB. */
const OUTPUT_SLAB_BYTES = 512 * 1024;

export const WARM_UP_ROUNDS = 6;

/** One task over a whole ring of sample records (warm-up), or undefined when it is empty. */
export function warmUpTask(sample: SharedArrayBuffer): EncodeTask | undefined {
  const span = new RingConsumer(sample).claim(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  return span === null ? undefined : { ring: sample, start: span.start, end: span.end, attrs: true };
}

export class EncoderPool {
  readonly slabs: SlabPool;
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
  /** Tasks in the encoder threads now, with when they started (performance.now()). */
  private readonly runningTasks = new Map<AbortController, number>();
  private overdue = 0;
  private wedgedTasks = 0;

  constructor(
    private readonly settings: EncoderSettings,
    private readonly threadCount: number,
    outputSlabs: number,
    /** Tasks run at once while warming up: as many as the pump keeps out. */
    private readonly warmUpTasks: number,
  ) {
    this.slabs = new SlabPool(outputSlabs, OUTPUT_SLAB_BYTES);
  }

  /** Whether encoder threads are up and warmed; asking starts them. */
  workersReady(): boolean {
    if (this.ready) return true;
    this.startWorkers();
    return false;
  }

  /** The sample records the threads are warmed up on when they start. */
  warmUpOn(sample: SharedArrayBuffer): void {
    this.sample = sample;
  }

  /** Starts the encoder threads and warms them up (see warmUpOn). */
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
      if (this.sample !== undefined) await this.warmWorkers(piscina, this.sample);
      if (this.piscina === piscina) this.ready = true;
    })();
  }

  private async warmWorkers(piscina: Piscina, sample: SharedArrayBuffer): Promise<void> {
    const task = warmUpTask(sample);
    if (task === undefined) return;
    for (let r = 0; r < WARM_UP_ROUNDS; r++) {
      await Promise.all(Array.from({ length: this.warmUpTasks }, () => piscina.run(task)));
    }
  }

  /** Starts the encoder threads now and resolves once they are warmed up. */
  async workersWarm(): Promise<void> {
    this.startWorkers();
    await this.starting;
  }

  /** Encoder threads running now. */
  get threads(): number {
    return this.piscina?.threads.length ?? 0;
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

  async close(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const piscina = this.piscina;
    this.piscina = undefined;
    this.ready = false;
    this.starting = undefined;
    await piscina?.destroy();
  }
}
