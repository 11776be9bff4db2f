/**
 * The single entry point of an ingest thread: validates an event, and either puts it
 * in the ring or counts why not. Rejections are counted exactly (by reason) and
 * reported to the main thread as samples, at most SAMPLES_PER_SECOND, so a flood of
 * garbage costs a counter increment, not a message per event.
 */
import type { MessagePort } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import { InputError, inputReason } from '../errors';
import { validateEvent } from '../event/validate';
import { RingProducer } from '../ring/producer';
import type { FromSource } from './protocol';

const SAMPLES_PER_SECOND = 5;

export class Admission {
  readonly producer: RingProducer;
  private readonly packr = new Packr({ useRecords: false });
  private readonly counts: Record<string, number> = {};
  private countsDirty = false;
  private sampleWindow = 0;
  private samplesInWindow = 0;
  private readonly flushTimer: NodeJS.Timeout;

  constructor(
    ring: SharedArrayBuffer,
    private readonly port: MessagePort,
  ) {
    this.producer = new RingProducer(ring);
    this.flushTimer = setInterval(() => this.flushCounts(), 250);
    this.flushTimer.unref();
  }

  /** Admits a decoded value; `original` is its msgpack encoding when the source already has one. */
  admit(value: unknown, ingestedUs: number, peer: string, original?: Uint8Array): boolean {
    try {
      const event = validateEvent(value);
      return this.producer.offer(original ?? this.packr.pack(event), ingestedUs);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      this.reject(err, peer);
      return false;
    }
  }

  /** Puts an event that needs no validation (the synthetic source) in the ring. */
  offerTrusted(value: unknown, ingestedUs: number): boolean {
    return this.producer.offer(this.packr.pack(value), ingestedUs);
  }

  reject(err: InputError, peer: string): void {
    this.producer.countMalformed();
    const reason = inputReason[err.code] ?? 'malformed';
    this.counts[reason] = (this.counts[reason] ?? 0) + 1;
    this.countsDirty = true;
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.sampleWindow) {
      this.sampleWindow = second;
      this.samplesInWindow = 0;
    }
    if (this.samplesInWindow++ < SAMPLES_PER_SECOND) {
      this.post({ type: 'rejected', code: err.code, reason, message: err.message, peer });
    }
  }

  post(msg: FromSource): void {
    this.port.postMessage(msg);
  }

  flushCounts(): void {
    if (!this.countsDirty) return;
    this.countsDirty = false;
    this.post({ type: 'rejectCounts', counts: { ...this.counts } });
  }

  close(): void {
    clearInterval(this.flushTimer);
    this.flushCounts();
    this.producer.close();
  }
}
