/**
 * The single entry point of an event into a ring, in an ingest thread and in
 * Feeder.push() on the main thread alike: validates the event, and either puts it in
 * the ring or counts why not. Rejections are counted exactly, by reason, in the
 * ring's shared header, and reported to the main thread as samples, at most
 * SAMPLES_PER_SECOND, so a flood of garbage costs a counter increment, not a message.
 */
import type { WhenFull } from '../config';
import { Packr } from 'msgpackr';
import { InputError, inputReason, inputReasonSlot } from '../errors';
import { checkNesting, createTape, validateFrame } from '../event/scan';
import { RingProducer } from '../ring';
import type { FromSource } from './protocol';

const SAMPLES_PER_SECOND = 5;

/** What became of an event: queued, refused for a full ring (counted), or rejected (and counted) as bad input. */
export type Admitted = 'queued' | 'ring_full' | InputError;

/**
 * Where an Admission reports to: an ingest thread's port to the main thread, or, for the
 * main thread's own ring (Feeder.push), a sink of its own.
 */
export interface SourceReport {
  postMessage(msg: FromSource): void;
}

export class Admission {
  readonly producer: RingProducer;
  private readonly packr = new Packr({ useRecords: false });
  private readonly tape = createTape();
  private sampleWindow = 0;
  private samplesInWindow = 0;
  /** What became of the events offered here: put in the ring, refused for a full ring, rejected as bad input. */
  readonly counts = { queued: 0, ringFull: 0, rejected: 0 };

  /**
   * `whenFull`: `block` makes admitFrame wait for room in the ring (this thread stops
   * reading meanwhile, so producers' writes wait); `giveUp` is asked while it waits (the
   * source is stopping and its grace has run out) and turns the wait into a counted drop.
   */
  constructor(
    ring: SharedArrayBuffer,
    private readonly port: SourceReport,
    private readonly whenFull: WhenFull = 'drop',
    private readonly giveUp: () => boolean = () => false,
  ) {
    this.producer = new RingProducer(ring);
  }

  /**
   * Admits one msgpack-encoded event (a frame's payload): validated in place against
   * the schema, then copied into the ring as is.
   */
  admitFrame(frame: Uint8Array, ingestedUs: number, peer: string): Admitted {
    try {
      validateFrame(frame, 0, frame.length, this.tape);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      this.reject(err, peer);
      return err;
    }
    const queued = this.whenFull === 'block' ? this.producer.offerWaiting(frame, ingestedUs, this.giveUp) : this.producer.offer(frame, ingestedUs);
    if (queued) this.counts.queued++;
    else this.counts.ringFull++;
    return queued ? 'queued' : 'ring_full';
  }

  /** Admits a decoded value (a JSON line): encoded to msgpack, then admitted like a frame. */
  admit(value: unknown, ingestedUs: number, peer: string): Admitted {
    try {
      checkNesting(value);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      this.reject(err, peer);
      return err;
    }
    return this.admitFrame(this.packr.pack(value), ingestedUs, peer);
  }

  /** msgpack encoding as the ring expects it (plain maps, no records). */
  pack(value: unknown): Uint8Array {
    return this.packr.pack(value);
  }

  /** Counts `events` (1 unless told) rejected for `err`, and samples it for the main thread's WARN. */
  reject(err: InputError, peer: string, events = 1): void {
    const reason = inputReason[err.code];
    this.producer.countMalformed(inputReasonSlot(err.code), events);
    this.counts.rejected += events;
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

  close(): void {
    this.producer.close();
  }
}
