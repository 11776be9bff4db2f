/**
 * Stage 4, fan-out on the main thread: one encoded batch of BATCH events offered to
 * CLIENTS client queues and taken back out, as Subscriber.pump takes it. Candidate:
 * ClientQueue.offerRun, whose entries are subarray views of the shared batch (zero
 * copy). Baseline: the same queues, but each client first gets its own copy of the
 * batch (bytes.slice and times.slice per client).
 */
import { defaultConfig } from '../src/config';
import type { EncodedStream } from '../src/encode/batch';
import { ClientQueue, type QueueEntry } from '../src/fanout/clientQueue';
import { BATCH, RingBatchEncoder, msgpackBatch } from './encode';
import { check, runPair, type BenchSettings, type PairResult } from './common';

export const CLIENTS = 8;
/** Subscriber's MAX_CHUNK_BYTES: the most one pump write takes. */
const MAX_CHUNK_BYTES = 256 * 1024;

/** One stream holding all BATCH events, framed back to back (alerts first, then logs). */
function encodedStream(): EncodedStream {
  const encoded = new RingBatchEncoder(msgpackBatch()).encode();
  const bytes = new Uint8Array(encoded.alerts.bytes.length + encoded.logs.bytes.length);
  bytes.set(encoded.alerts.bytes, 0);
  bytes.set(encoded.logs.bytes, encoded.alerts.bytes.length);
  const ends = Uint32Array.from([...encoded.alerts.ends, ...Array.from(encoded.logs.ends, (e) => e + encoded.alerts.bytes.length)]);
  check(ends.length === BATCH, `encoded ${ends.length} messages, expected ${BATCH}`);
  return { count: BATCH, bytes, ends, ingestedUs: new Float64Array(BATCH).fill(Date.now() * 1000), attrs: new Uint16Array(BATCH * 3) };
}

export async function benchFanout(settings: BenchSettings): Promise<PairResult> {
  const stream = encodedStream();
  const queues = Array.from({ length: CLIENTS }, () => new ClientQueue(defaultConfig().queueSize));
  const taken: QueueEntry[] = [];
  let takenBytes = 0;

  const drain = (q: ClientQueue): void => {
    while (q.depth > 0) {
      taken.length = 0;
      q.take(MAX_CHUNK_BYTES, taken);
      for (const e of taken) takenBytes += e.bytes.length;
    }
  };

  const shared = (): void => {
    for (const q of queues) q.offerRun(stream, 0, stream.count);
    for (const q of queues) drain(q);
  };
  const copied = (): void => {
    for (const q of queues) q.offerRun({ ...stream, bytes: stream.bytes.slice(), ingestedUs: stream.ingestedUs.slice() }, 0, stream.count);
    for (const q of queues) drain(q);
  };

  // Both must hand every client the whole batch.
  for (const f of [shared, copied]) {
    takenBytes = 0;
    f();
    check(takenBytes === CLIENTS * stream.bytes.length, `fan-out took ${takenBytes} bytes, expected ${CLIENTS * stream.bytes.length}`);
  }
  check(queues.every((q) => q.dropped.client_queue_full === 0), 'fan-out queues dropped events');

  const result = await runPair(
    'shared fan-out vs per-client copies',
    settings.cpu,
    'batch',
    1,
    { name: `ClientQueue.offerRun (shared subarray) + take, ${BATCH} events x ${CLIENTS} clients`, fn: shared, async: false },
    { name: `bytes.slice() per client + offerRun + take, ${BATCH} events x ${CLIENTS} clients`, fn: copied, async: false },
  );
  result.notes.push(`batch ${stream.bytes.length} framed protobuf bytes; the baseline copies ${((CLIENTS * stream.bytes.length) / 1024).toFixed(0)} KiB per batch`);
  return result;
}
