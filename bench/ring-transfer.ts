/**
 * Stage 1, ingest thread -> main thread: the same synthetic msgpack events (640-870
 * bytes, every 5th an alert) made once in a real worker thread (ring-transfer.worker.ts)
 * and handed to the main thread either through a SharedArrayBuffer ring
 * (RingProducer.offer in the worker; claim / forEachRecord / release here) or as one
 * structured-clone postMessage per event. One iteration = EVENTS events seen here.
 *
 * What crosses the boundary is defined here, once; the worker imports the types.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { defaultConfig, ringSizeFor } from '../src/config';
import { RingConsumer, allocateRing, forEachRecord } from '../src/ring';
import { ALERT_EVERY } from './encode';
import { check, runPair, type BenchSettings, type PairResult } from './common';

export const EVENTS = 10_000;
/**
 * Production's defaults (the 2 MiB ring a socket source gets, claims of batchSize events):
 * 10,000 events of ~700 bytes fill it about three times, so this measures the hand-over
 * with some full-ring back-off, as the unpaced synthetic source meets it.
 */
const RING_BYTES = ringSizeFor(defaultConfig(), 'socket');
const CLAIM_EVENTS = defaultConfig().batchSize;

export interface RingWorkerData {
  ring: SharedArrayBuffer;
  events: number;
  alertEvery: number;
}

/** Main -> worker: send one iteration's events by `ring` or `post`; `stats` asks for counters. */
export type ToRingWorker = { type: 'ring' } | { type: 'post' } | { type: 'stats' };

/** Worker -> main: an event (postMessage path) is a bare Uint8Array; everything else is tagged. */
export type FromRingWorker = Uint8Array | { type: 'stats'; ringFullRetries: number; sentBytes: number; sentEvents: number };

interface Counted {
  events: number;
  bytes: number;
  firstBytes: number;
}

export async function benchRingTransfer(settings: BenchSettings): Promise<PairResult> {
  const ring = allocateRing(RING_BYTES);
  const consumer = new RingConsumer(ring);
  const workerData: RingWorkerData = { ring, events: EVENTS, alertEvery: ALERT_EVERY };
  const worker = new Worker(path.join(__dirname, 'ring-transfer.worker.js'), { workerData });
  const seen: Counted = { events: 0, bytes: 0, firstBytes: 0 };
  // The visitor reads the bytes it is given, as an encoder would, on both paths.
  const visit = (payload: Uint8Array): void => {
    seen.events++;
    seen.bytes += payload.length;
    seen.firstBytes += payload[0];
  };

  let onEvent: (() => void) | undefined;
  let onStats: ((s: Extract<FromRingWorker, { type: 'stats' }>) => void) | undefined;
  worker.on('message', (m: FromRingWorker) => {
    if (m instanceof Uint8Array) {
      visit(m);
      onEvent?.();
    } else onStats?.(m);
  });
  const failed = new Promise<never>((_, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`ring-transfer worker exited early (code ${code})`)));
  });
  const send = (m: ToRingWorker): void => worker.postMessage(m);

  const viaRing = async (): Promise<void> => {
    const target = seen.events + EVENTS;
    send({ type: 'ring' });
    while (seen.events < target) {
      const span = consumer.claim(CLAIM_EVENTS, RING_BYTES);
      if (span === null) {
        await Promise.race([consumer.waitForData(1000), failed]);
        continue;
      }
      forEachRecord(ring, span, visit);
      consumer.release(span.end);
    }
  };

  const viaPostMessage = (): Promise<void> => {
    const target = seen.events + EVENTS;
    const arrived = new Promise<void>((resolve) => {
      onEvent = () => {
        if (seen.events >= target) {
          onEvent = undefined;
          resolve();
        }
      };
    });
    send({ type: 'post' });
    return Promise.race([arrived, failed]);
  };

  const stats = (): Promise<Extract<FromRingWorker, { type: 'stats' }>> => {
    const p = new Promise<Extract<FromRingWorker, { type: 'stats' }>>((resolve) => (onStats = resolve));
    send({ type: 'stats' });
    return Promise.race([p, failed]);
  };

  try {
    // Both paths must deliver every event, byte for byte the same amount.
    const before = { ...seen };
    await viaRing();
    const ringBytes = seen.bytes - before.bytes;
    await viaPostMessage();
    check(seen.events - before.events === 2 * EVENTS, `ring + postMessage delivered ${seen.events - before.events} events, expected ${2 * EVENTS}`);
    check(Math.abs(seen.bytes - before.bytes - 2 * ringBytes) < EVENTS * 8, 'ring and postMessage delivered different byte counts');

    const result = await runPair(
      'ring vs postMessage',
      settings.thread,
      'event',
      EVENTS,
      { name: `RingProducer.offer (worker) -> claim/forEachRecord/release (main), ${EVENTS} events`, fn: viaRing, async: true },
      { name: `parentPort.postMessage(bytes) per event (copy), ${EVENTS} events`, fn: viaPostMessage, async: true },
    );
    const s = await stats();
    result.notes.push(
      `mean event ${(s.sentBytes / s.sentEvents).toFixed(0)} bytes msgpack; ring ${RING_BYTES >> 10} KiB, claims of <= ${CLAIM_EVENTS}; ` +
        `ring-full retries in the worker over the whole run: ${s.ringFullRetries}`,
    );
    return result;
  } finally {
    worker.removeAllListeners('exit');
    await worker.terminate();
  }
}
