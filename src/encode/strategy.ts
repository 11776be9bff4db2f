/**
 * The encoding policy, behind one interface (in the spirit of piscina's TaskQueue): the
 * ring pump (pump.ts) hands every claimed span to an EncodeStrategy and gets a batch
 * back, at once or later; where the work runs is the strategy's business.
 *
 * InlineOrWorkers, the feeder's strategy: small spans skip the workers altogether. A
 * span of at most `inlineMaxEvents` events (about 100 us of transcoding at 64) is
 * encoded on the main thread. Two thread hand-offs cost more than that, and on a busy
 * 2-core node each can wait a scheduler slice (a worker round trip measured 1.5-2 ms at
 * p50 at 4 x 50k/s, against 0.1 ms inline). Spans are as large as the backlog, so light
 * and steady traffic is encoded here, and once the main thread falls behind (ring
 * backlog above the bound) the workers take the large spans.
 *
 * The bound follows the main thread's own load (InlineBudget): with one client at
 * 50,000 events/s on the socket path the main thread is ~40% busy, and encoding spans of
 * up to 256 events itself cut the broker's p90 from 2.3-2.8 ms to 0.6-0.7 ms (worker
 * round trips avoided); with four clients the same thread is busy writing, and a bound of
 * 256 doubled p99 where 64 kept it. So the bound is `inlineMaxEvents` while the main
 * thread's event loop was under half busy over the last 100 ms, and a quarter of it above.
 */
import type { EncodeTask, EncodedBatch } from './batch';
import type { SpanEncoder } from './encodeSpan';
import type { EncoderPool } from './pool';

export interface EncodeStrategy {
  /**
   * Encodes one claimed span (`events` records): the batch itself when it was encoded
   * on this thread, or a promise of it from a worker. A failure throws or rejects.
   */
  encode(task: EncodeTask, events: number): EncodedBatch | Promise<EncodedBatch>;
}

const ELU_WINDOW_MS = 100;

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

/** Small spans on the main thread, large ones on the encoder workers (and every span until they are warm). */
export class InlineOrWorkers implements EncodeStrategy {
  private readonly budget: InlineBudget;
  /** Batches the main thread encoded itself (light traffic). */
  inlined = 0;

  constructor(
    private readonly inline: SpanEncoder,
    private readonly pool: EncoderPool,
    inlineMaxEvents: number,
  ) {
    this.budget = new InlineBudget(inlineMaxEvents);
  }

  encode(task: EncodeTask, events: number): EncodedBatch | Promise<EncodedBatch> {
    if (events <= this.budget.limit() || !this.pool.workersReady()) {
      this.inlined++;
      return this.inline(task);
    }
    return this.pool.run(task);
  }
}
