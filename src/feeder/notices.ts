/**
 * The feeder's WARN and ERROR lines about what peers and data did to it. Every line a
 * peer can cause is rate limited (one a second per kind), counting what it leaves out,
 * and the count of what was left out is told within a second or two by tick(), so a
 * flood of bad input costs a counter, not a flood of messages.
 */
import type { EncodedBatch, EncodeFailure } from '../encode';
import { MAX_MESSAGE_BYTES } from '../encode';
import { ClientDropReporter, type FanoutHub } from '../fanout';
import type { FromSource } from '../ingest';
import { notShown, RateLimitedNotice, type DaemonLog } from '../messages';

type SourceMessage<T extends FromSource['type']> = Extract<FromSource, { type: T }>;

export class FeederNotices {
  private readonly malformed = new RateLimitedNotice(1000);
  private readonly disconnect = new RateLimitedNotice(1000);
  private readonly encodeError = new RateLimitedNotice(1000);
  private readonly oversized = new RateLimitedNotice(1000);
  // Whoever may rewrite a followed file can rotate it as often as the 100 ms poll sees.
  private readonly rotation = new RateLimitedNotice(1000);
  /** Client queue drops: once per crossing, at most once per 10 s (fanout/stats.ts). */
  private readonly clientDrops: ClientDropReporter;
  private ticker: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: DaemonLog,
    hub: FanoutHub,
  ) {
    this.clientDrops = new ClientDropReporter(hub, log);
  }

  rejected(source: string, msg: SourceMessage<'rejected'>): void {
    const suppressed = this.malformed.take();
    if (suppressed >= 0) this.log.warn(`malformed_input from ${source} (${msg.peer}): ${msg.code}: ${msg.message}${notShown(suppressed)}`);
  }

  disconnected(source: string, msg: SourceMessage<'disconnected'>): void {
    const suppressed = this.disconnect.take();
    if (suppressed >= 0) this.log.warn(`disconnected ${msg.peer} from ${source}: ${msg.code}: ${msg.message}${notShown(suppressed)}`);
  }

  rotated(source: string, msg: SourceMessage<'rotated'>): void {
    const suppressed = this.rotation.take();
    if (suppressed >= 0) this.log.info(`source ${source}: ${msg.path} was ${msg.how === 'renamed' ? 'replaced (renamed or removed)' : 'truncated'}; reading the new file from its start${notShown(suppressed)}`);
  }

  /** Ring records an encoder could not decode (counted encode_error). */
  undecodable(batch: EncodedBatch): void {
    const suppressed = this.encodeError.take();
    if (suppressed >= 0) this.log.error(`encoder could not decode ${batch.failed} ring records (dropped as encode_error): ${batch.failure}${notShown(suppressed)}`);
  }

  /** An encoder task that failed as a whole (counted encode_error). */
  taskFailed(failure: EncodeFailure): void {
    const suppressed = this.encodeError.take();
    if (suppressed >= 0) this.log.error(`encoder task failed for ${failure.events} events from ${failure.source} (dropped as encode_error): ${failure.message}${notShown(suppressed)}`);
  }

  /** Events encoded larger than a client accepts (counted encoded_oversized). */
  encodedOversized(batch: EncodedBatch): void {
    const suppressed = this.oversized.take();
    if (suppressed >= 0) {
      this.log.warn(
        `dropped ${batch.oversized} events as encoded_oversized: encoded to up to ${batch.oversizedBytes} bytes, over the ${MAX_MESSAGE_BYTES} a gRPC client (karmor) accepts${notShown(suppressed)}`,
      );
    }
  }

  /** Tells, once a second, what the rate limits left out, and the client queues that overflowed. */
  start(): void {
    this.ticker = setInterval(() => this.tick(), 1000);
    this.ticker.unref();
  }

  stop(): void {
    clearInterval(this.ticker);
  }

  private tick(): void {
    // The tail of a burst of rate-limited lines is told within a second or two.
    let n = this.malformed.takeSuppressed();
    if (n > 0) this.log.warn(`malformed_input:${notShown(n)}`);
    n = this.disconnect.takeSuppressed();
    if (n > 0) this.log.warn(`disconnected:${notShown(n)}`);
    n = this.encodeError.takeSuppressed();
    if (n > 0) this.log.error(`encode_error:${notShown(n)}`);
    n = this.oversized.takeSuppressed();
    if (n > 0) this.log.warn(`encoded_oversized:${notShown(n)}`);
    n = this.rotation.takeSuppressed();
    if (n > 0) this.log.info(`file rotations:${notShown(n)}`);
    this.clientDrops.tick();
  }
}
