/**
 * Stage 2, encoder worker: one batch of BATCH synthetic events (every 5th an alert) from
 * msgpack bytes to gRPC-framed protobuf. Candidate: the encoder workers' own span encoder
 * (createSpanEncoder: scanEvent + Transcoder into one ProtoWriter per stream, framed in
 * place) on a real ring span. Baseline: the reference path, msgpackr unpack + toAlert/toLog + protobufjs
 * encode().finish() + a framed copy per event. Stage 5 (scan only vs unpack) shares the
 * batch.
 */
import { Packr, Unpackr } from 'msgpackr';
import { GRPC_FRAME_HEADER, frameMessage } from '../src/wire/framing';
import { type EncodeTask, type EncodedBatch, type EncodedStream } from '../src/encode/batch';
import { createSpanEncoder } from '../src/encode/encodeSpan';
import { allocateRing, RingConsumer, RingProducer } from '../src/ring';
import { createTape, validateFrame } from '../src/event/scan';
import type { IngestEvent } from '../src/event/schema';
import { isAlert, toAlert, toLog } from '../test/helpers/referenceEncoder';
import type { EventContext } from '../src/event/rules';
import { syntheticEvent } from '../src/ingest/synthetic';
import { feederTypes } from '../src/wire/proto';
import { nowMicros } from '../src/wire/time';
import { check, runPair, type BenchSettings, type PairResult } from './common';

export const BATCH = 512;
export const ALERT_EVERY = 5;

const ctx: EventContext = { cluster: 'bench', host: 'bench-node', nodeID: 'bench-machine-id', dropResourceFromProcessLogs: false };
const unpackOptions = { mapsAsObjects: true, useRecords: false, int64AsType: 'number' } as const;

/** BATCH msgpack events as the ring holds them: one after another, with their offsets. */
export interface MsgpackBatch {
  bytes: Uint8Array;
  starts: Uint32Array;
  ends: Uint32Array;
  ingestedUs: number;
}

export function msgpackBatch(count = BATCH, alertEvery = ALERT_EVERY): MsgpackBatch {
  const packr = new Packr({ useRecords: false });
  const now = nowMicros();
  const parts = Array.from({ length: count }, (_, i) => Uint8Array.from(packr.pack(syntheticEvent(i, now + i, { cluster: 'bench', host: 'bench-node', alertEvery }))));
  const starts = new Uint32Array(count);
  const ends = new Uint32Array(count);
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  parts.forEach((p, i) => {
    starts[i] = at;
    bytes.set(p, at);
    at += p.length;
    ends[i] = at;
  });
  return { bytes, starts, ends, ingestedUs: now };
}

/**
 * The encoder's real per-batch work: the batch published in a ring, claimed as one span,
 * and encoded by the same span encoder the piscina workers run (createSpanEncoder).
 */
export class RingBatchEncoder {
  private readonly encodeSpan = createSpanEncoder({ ...ctx, throttling: true, logLines: false });
  private readonly task: EncodeTask;

  constructor(batch: MsgpackBatch) {
    const ring = allocateRing(batch.bytes.length * 2);
    const producer = new RingProducer(ring);
    for (let i = 0; i < batch.starts.length; i++) {
      check(producer.offer(batch.bytes.subarray(batch.starts[i], batch.ends[i]), batch.ingestedUs), 'bench ring too small');
    }
    const span = new RingConsumer(ring).claim(batch.starts.length, Number.MAX_SAFE_INTEGER);
    if (span === null || span.events !== batch.starts.length) throw new Error('bench: the span does not hold the whole batch');
    // attrs off: the default, with no server-side filtered subscriber (the reference path computes none either).
    this.task = { ring, start: span.start, end: span.end, attrs: false };
  }

  encode(): EncodedBatch {
    return this.encodeSpan(this.task);
  }
}

/** The reference path: a fresh framed Buffer per event. */
export function encodeReference(batch: MsgpackBatch, unpackr: Unpackr): { alerts: Buffer[]; logs: Buffer[] } {
  const { Alert, Log } = feederTypes();
  const alerts: Buffer[] = [];
  const logs: Buffer[] = [];
  for (let i = 0; i < batch.starts.length; i++) {
    const e = unpackr.unpack(batch.bytes.subarray(batch.starts[i], batch.ends[i])) as IngestEvent;
    if (isAlert(e)) alerts.push(frameMessage(Alert.encode(toAlert(e, ctx, batch.ingestedUs)).finish()));
    else logs.push(frameMessage(Log.encode(toLog(e, ctx, batch.ingestedUs)).finish()));
  }
  return { alerts, logs };
}

/** Both paths must produce the same messages (as decoded by protobufjs), or the ratio means nothing. */
function checkSameMessages(batch: MsgpackBatch): void {
  const { Alert, Log } = feederTypes();
  const got = new RingBatchEncoder(batch).encode();
  const ref = encodeReference(batch, new Unpackr(unpackOptions));
  check(got.alerts.count === ref.alerts.length && got.logs.count === ref.logs.length, 'transcoder and reference split alerts/logs differently');
  const same = (T: typeof Alert, stream: EncodedStream, b: Buffer[]): void =>
    b.forEach((m, i) => {
      const body = stream.bytes.subarray((i === 0 ? 0 : stream.ends[i - 1]) + GRPC_FRAME_HEADER, stream.ends[i]);
      const x = JSON.stringify(T.toObject(T.decode(body), { longs: Number }));
      const y = JSON.stringify(T.toObject(T.decode(m.subarray(GRPC_FRAME_HEADER)), { longs: Number }));
      check(x === y, `message ${i} differs between transcoder and reference`);
    });
  same(Alert, got.alerts, ref.alerts);
  same(Log, got.logs, ref.logs);
}

export async function benchEncode(settings: BenchSettings): Promise<PairResult> {
  const batch = msgpackBatch();
  checkSameMessages(batch);
  const encoder = new RingBatchEncoder(batch);
  const unpackr = new Unpackr(unpackOptions);
  let sink = 0;
  const result = await runPair(
    'batch encode vs per-event encode',
    settings.cpu,
    'event',
    BATCH,
    {
      name: `span encoder (scanEvent + Transcoder, framed in place) on a ring span, ${BATCH} events`,
      fn: () => {
        const out = encoder.encode();
        sink += out.alerts.count + out.logs.count;
      },
      async: false,
    },
    {
      name: `msgpackr unpack + toAlert/toLog + protobufjs encode().finish() + frame copy, ${BATCH} events`,
      fn: () => {
        const out = encodeReference(batch, unpackr);
        sink += out.alerts.length + out.logs.length;
      },
      async: false,
    },
  );
  check(sink > 0, 'encode produced nothing');
  const nsPerEvent = (side: { meanMs: number }): string => ((side.meanMs * 1e6) / BATCH).toFixed(0);
  result.notes.push(
    `ns/event: candidate ${nsPerEvent(result.candidate)}, baseline ${nsPerEvent(result.baseline)}; ` +
      `batch ${batch.bytes.length} msgpack bytes (${(batch.bytes.length / BATCH).toFixed(0)} per event), 1 alert in ${ALERT_EVERY}`,
  );
  return result;
}

/** Stage 5: the ingest thread's validation (scan + routing check) against a full msgpackr decode. */
export async function benchScan(settings: BenchSettings): Promise<PairResult> {
  const batch = msgpackBatch();
  const tape = createTape();
  const unpackr = new Unpackr(unpackOptions);
  let sink = 0;
  const result = await runPair(
    'scan-only vs msgpackr unpack',
    settings.cpu,
    'event',
    BATCH,
    {
      name: `validateFrame (scanEvent + checkRouting), ${BATCH} events`,
      fn: () => {
        for (let i = 0; i < BATCH; i++) {
          validateFrame(batch.bytes, batch.starts[i], batch.ends[i], tape);
          sink += tape[0];
        }
      },
      async: false,
    },
    {
      name: `msgpackr unpack to an object, ${BATCH} events`,
      fn: () => {
        for (let i = 0; i < BATCH; i++) {
          const e = unpackr.unpack(batch.bytes.subarray(batch.starts[i], batch.ends[i])) as IngestEvent;
          sink += e.pid ?? 0;
        }
      },
      async: false,
    },
  );
  check(sink !== 0, 'scan produced nothing');
  const ns = (side: { meanMs: number }): string => ((side.meanMs * 1e6) / BATCH).toFixed(0);
  result.notes.push(`ns/event: candidate ${ns(result.candidate)}, baseline ${ns(result.baseline)}`);
  return result;
}
