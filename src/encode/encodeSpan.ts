/**
 * Turns a claimed ring span into one EncodedBatch: scan each msgpack record in place in
 * shared memory, transcode it to a protobuf Alert or Log straight into a reusable
 * stream buffer, frame it once. One encoder instance per thread: each piscina worker
 * has one (encoder.worker.ts), and the main thread has one for the light-traffic path
 * (see strategy.ts). The main thread releases the span only after the batch is returned.
 */
import { Unpackr } from 'msgpackr';
import { forEachRecord } from '../ring';
import { createTape, isAlertTape, readStr, scanEvent, type StrRef } from '../event/scan';
import { logLine, type IngestEvent } from '../event';
import { NOT_THROTTLED, throttleBucket } from '../throttle';
import { GRPC_FRAME_HEADER, writeFrameHeader } from '../wire/framing';
import { ATTRS_PER_EVENT, MAX_MESSAGE_BYTES, type EncodeTask, type EncodedBatch, type EncodedStream, type EncoderSettings } from './batch';
import { ProtoWriter } from './protoWriter';
import { NO_SLAB, type SlabArea } from './slabs';
import { Transcoder, type EventFacts } from './transcode';

const str: StrRef = { start: 0, length: 0 };

/**
 * Attribute strings (namespace, operation, type) for server-side filters and throttle
 * keys. The same few values repeat for every event of a workload, so recent values are
 * found by comparing bytes and a JS string is made only for a value not seen lately.
 */
class RecentStrings {
  private readonly bytes: Uint8Array[] = [];
  private readonly values: string[] = [];
  private next = 0;

  get(buf: Uint8Array, pos: number): string {
    if (pos < 0 || !readStr(buf, pos, str) || str.length === 0) return '';
    const { start, length } = str;
    for (let i = 0; i < this.bytes.length; i++) {
      const b = this.bytes[i];
      if (b.length !== length) continue;
      let same = true;
      for (let j = 0; j < length; j++) if (b[j] !== buf[start + j]) { same = false; break; }
      if (same) return this.values[i];
    }
    const value = Buffer.from(buf.buffer, buf.byteOffset + start, length).toString('utf8');
    const slot = this.next;
    this.next = (this.next + 1) % 64;
    this.bytes[slot] = buf.slice(start, start + length);
    this.values[slot] = value;
    return value;
  }
}

class StreamBuilder {
  readonly w = new ProtoWriter(1 << 18);
  private count = 0;
  private ends = new Uint32Array(1024);
  private times = new Float64Array(1024);
  private attrs = new Uint16Array(1024 * ATTRS_PER_EVENT);

  begin(): number {
    const at = this.w.pos;
    this.w.ensure(GRPC_FRAME_HEADER);
    this.w.pos += GRPC_FRAME_HEADER;
    return at;
  }

  end(at: number, ingestedUs: number, ns: number, op: number, ty: number): void {
    writeFrameHeader(this.w.buf, at, this.w.pos - at - GRPC_FRAME_HEADER);
    if (this.count === this.ends.length) this.grow();
    const i = this.count++;
    this.ends[i] = this.w.pos;
    this.times[i] = ingestedUs;
    this.attrs[i * ATTRS_PER_EVENT] = ns;
    this.attrs[i * ATTRS_PER_EVENT + 1] = op;
    this.attrs[i * ATTRS_PER_EVENT + 2] = ty;
  }

  private grow(): void {
    const n = this.ends.length * 2;
    const ends = new Uint32Array(n);
    ends.set(this.ends);
    const times = new Float64Array(n);
    times.set(this.times);
    const attrs = new Uint16Array(n * ATTRS_PER_EVENT);
    attrs.set(this.attrs);
    this.ends = ends;
    this.times = times;
    this.attrs = attrs;
  }

  /** Bytes written so far (frames of this batch, back to back). */
  get size(): number {
    return this.w.pos;
  }

  /**
   * The batch's bytes. A mostly full buffer is handed over whole (and transferred to the
   * main thread without a copy) and the writer starts a new one; a small batch is copied
   * out, so a one-event batch does not cost a fresh 256 KiB buffer.
   */
  private takeBytes(): Uint8Array {
    const { buf, pos } = this.w;
    if (pos * 2 < buf.length) return buf.slice(0, pos);
    this.w.buf = new Uint8Array(buf.length);
    return buf.subarray(0, pos);
  }

  /**
   * Ends the batch. With `into`, the bytes are copied to `into[at..]` (an output slab)
   * and the writer keeps its buffer; without, they leave in a buffer of their own.
   */
  take(into?: { bytes: Uint8Array; slab: number; base: number; at: number }): EncodedStream {
    const n = this.count;
    const out: EncodedStream = {
      count: n,
      bytes: NO_BYTES,
      ends: this.ends.slice(0, n),
      ingestedUs: this.times.slice(0, n),
      attrs: this.attrs.slice(0, n * ATTRS_PER_EVENT),
    };
    if (into !== undefined) {
      into.bytes.set(this.w.buf.subarray(0, this.w.pos), into.base + into.at);
      out.slab = into.slab;
      out.slabAt = into.at;
    } else {
      out.bytes = this.takeBytes();
    }
    this.w.pos = 0;
    this.count = 0;
    return out;
  }
}

const NO_BYTES = new Uint8Array(0);

export type SpanEncoder = (task: EncodeTask) => EncodedBatch;

/** Writes both streams of a batch into output slot `slab` when they fit (else: own buffers). */
function takeStreams(alerts: StreamBuilder, logs: StreamBuilder, slabs: SlabOut | undefined, slab: number): [EncodedStream, EncodedStream] {
  if (slabs !== undefined && slab >= 0) {
    const logsAt = (alerts.size + 7) & ~7;
    if (logsAt + logs.size <= slabs.slabBytes) {
      const base = slab * slabs.slabBytes;
      return [alerts.take({ bytes: slabs.bytes, slab, base, at: 0 }), logs.take({ bytes: slabs.bytes, slab, base, at: logsAt })];
    }
  }
  return [alerts.take(), logs.take()];
}

interface SlabOut {
  bytes: Uint8Array;
  slabBytes: number;
}

/** One encoder; with `slabs`, tasks that name a slot write their bytes there (slabs.ts). */
export function createSpanEncoder(settings: EncoderSettings, slabs?: SlabArea): SpanEncoder {
  const out: SlabOut | undefined = slabs === undefined ? undefined : { bytes: new Uint8Array(slabs.sab), slabBytes: slabs.slabBytes };
  const transcoder = new Transcoder(settings);
  const tape = createTape();
  const facts: EventFacts = { namespace: -1, operation: -1, type: -1, typeOverride: undefined };
  const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
  const recent = new RecentStrings();
  const alerts = new StreamBuilder();
  const logs = new StreamBuilder();
  return (task) => encodeSpan(task, settings, transcoder, tape, facts, unpackr, recent, alerts, logs, out);
}

function encodeSpan(
  task: EncodeTask,
  settings: EncoderSettings,
  transcoder: Transcoder,
  tape: Int32Array,
  facts: EventFacts,
  unpackr: Unpackr,
  recent: RecentStrings,
  alerts: StreamBuilder,
  logs: StreamBuilder,
  slabs: SlabOut | undefined,
): EncodedBatch {
  const strings: string[] = [];
  const index = new Map<string, number>();
  const intern = (s: string): number => {
    let i = index.get(s);
    if (i === undefined) {
      i = strings.length;
      strings.push(s);
      index.set(s, i);
    }
    return i;
  };
  const throttleKeys: number[] = [];
  const lines: string[] = [];
  let failed = 0;
  let failure = '';
  let oversized = 0;
  let oversizedBytes = 0;

  forEachRecord(task.ring, task, (payload, ingestedUs) => {
    try {
      // Sources validated every record before the ring; here only the tape is built.
      scanEvent(payload, 0, payload.length, tape, true);
    } catch (err) {
      // Sources validate before the ring; this only catches a broken producer.
      failed++;
      failure = err instanceof Error ? err.message : String(err);
      return;
    }
    if (settings.logLines) lines.push(logLine(unpackr.unpack(payload) as IngestEvent, settings.host, ingestedUs));
    const alert = isAlertTape(payload, tape);
    const stream = alert ? alerts : logs;
    const at = stream.begin();
    transcoder.encode(payload, tape, alert, ingestedUs, stream.w, facts);
    const size = stream.w.pos - at - GRPC_FRAME_HEADER;
    if (size > MAX_MESSAGE_BYTES) {
      // No client could take it: taken back out of the batch, and counted.
      stream.w.pos = at;
      oversized++;
      oversizedBytes = Math.max(oversizedBytes, size);
      return;
    }
    let ns = 0;
    let op = 0;
    let ty = 0;
    if (task.attrs) {
      ns = intern(recent.get(payload, facts.namespace));
      op = intern(recent.get(payload, facts.operation));
      ty = intern(facts.typeOverride ?? recent.get(payload, facts.type));
    }
    stream.end(at, ingestedUs, ns, op, ty);
    if (alert) {
      const bucket = settings.throttling ? throttleBucket(payload, tape) : NOT_THROTTLED;
      throttleKeys.push(bucket === NOT_THROTTLED ? -1 : intern(recent.get(payload, bucket)));
    }
  });

  const [alertStream, logStream] = takeStreams(alerts, logs, slabs, task.slab ?? NO_SLAB);
  return {
    alerts: alertStream,
    logs: logStream,
    attrsValid: task.attrs,
    throttleKeys: Int32Array.from(throttleKeys),
    strings,
    logLines: lines.length > 0 ? lines.join('\n') + '\n' : '',
    failed,
    failure,
    oversized,
    oversizedBytes,
  };
}

