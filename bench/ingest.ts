/**
 * Stage 6, the ingest thread as it runs on the socket path: frames in, records in the
 * ring, per event. Input: BATCH producer-shaped events (no timestamps or cluster: the
 * feeder fills those in) framed as a producer writes them, arriving in 64 KiB socket
 * chunks. Candidate: what source.worker.ts does per chunk (FrameReader.push, then
 * Admission.admitFrame: scanEvent + checkRouting in place, one copy into the ring).
 * Baseline: the straightforward ingest, each frame decoded to an object with msgpackr
 * and packed again into the ring (and it does not even check the schema). The ring is
 * drained between iterations, as the main thread does.
 */
import { MessageChannel } from 'node:worker_threads';
import { Packr, Unpackr } from 'msgpackr';
import { Admission } from '../src/ingest/admission';
import { encodeFrame, FrameReader } from '../src/ingest/frames';
import { warmUpEvents } from '../src/ingest/synthetic';
import { allocateRing, RingConsumer, RingProducer } from '../src/ring';
import { nowMicros } from '../src/wire/time';
import { BATCH } from './encode';
import { check, runPair, type BenchSettings, type PairResult } from './common';

const CHUNK_BYTES = 64 * 1024;

/** BATCH producer-shaped frames, cut into socket-sized chunks (frames split across chunks). */
function socketChunks(): Buffer[] {
  const packr = new Packr({ useRecords: false });
  const samples = warmUpEvents({ cluster: 'bench', host: 'bench-node', alertEvery: 5 }, nowMicros(), (v) => packr.pack(v));
  // warmUpEvents alternates complete and producer-shaped events; take the producer's.
  const bare = samples.filter((_, i) => i % 2 === 1);
  const stream = Buffer.concat(Array.from({ length: BATCH }, (_, i) => encodeFrame(bare[i % bare.length])));
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; at += CHUNK_BYTES) chunks.push(stream.subarray(at, at + CHUNK_BYTES));
  return chunks;
}

export async function benchIngest(settings: BenchSettings): Promise<PairResult> {
  const chunks = socketChunks();
  const { port1, port2 } = new MessageChannel();
  const ring = allocateRing(4 << 20);
  const consumer = new RingConsumer(ring);
  const admission = new Admission(ring, port1, 'drop');
  const reader = new FrameReader(1 << 20);
  const drain = (): number => {
    const span = consumer.claim(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    if (span === null) return 0;
    consumer.release(span.end);
    return span.events;
  };

  const baselineRing = allocateRing(4 << 20);
  const baselineConsumer = new RingConsumer(baselineRing);
  const baselineProducer = new RingProducer(baselineRing);
  const baselineReader = new FrameReader(1 << 20);
  const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
  const packr = new Packr({ useRecords: false });

  let queued = 0;
  let baselineQueued = 0;
  const result = await runPair(
    'socket ingest: frames to ring records',
    settings.cpu,
    'event',
    BATCH,
    {
      name: `FrameReader + admitFrame (validate in place, copy), ${BATCH} events in ${chunks.length} chunks`,
      fn: () => {
        const now = nowMicros();
        for (const c of chunks) {
          reader.push(c, (frame) => {
            if (admission.admitFrame(frame, now, 'bench') === 'queued') queued++;
          });
        }
        drain();
      },
      async: false,
    },
    {
      name: `FrameReader + msgpackr unpack + pack + offer (no validation), ${BATCH} events`,
      fn: () => {
        const now = nowMicros();
        for (const c of chunks) {
          baselineReader.push(c, (frame) => {
            if (baselineProducer.offer(packr.pack(unpackr.unpack(frame)), now)) baselineQueued++;
          });
        }
        const span = baselineConsumer.claim(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
        if (span !== null) baselineConsumer.release(span.end);
      },
      async: false,
    },
  );
  port1.close();
  port2.close();
  check(queued > 0 && baselineQueued > 0, 'ingest queued nothing');
  check(admission.producer !== undefined && consumer.stats().droppedMalformed === 0, 'the candidate rejected sample events');
  const ns = (side: { meanMs: number }): string => ((side.meanMs * 1e6) / BATCH).toFixed(0);
  result.notes.push(`ns/event: candidate ${ns(result.candidate)}, baseline ${ns(result.baseline)}`);
  return result;
}
