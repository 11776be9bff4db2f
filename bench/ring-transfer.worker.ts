/**
 * The ingest side of the ring-vs-postMessage benchmark (runs in a worker thread). It
 * makes `events` synthetic msgpack events once, with SyntheticFrames as the synthetic
 * source does, so that iterations measure the hand-over and not event generation; on
 * each command it hands all of them to the main thread through the ring or with one
 * postMessage each. Protocol types live in ring-transfer.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import { RingProducer } from '../src/ring';
import { SyntheticFrames } from '../src/ingest/synthetic';
import { nowMicros } from '../src/wire/time';
import type { FromRingWorker, RingWorkerData, ToRingWorker } from './ring-transfer';

const data = workerData as RingWorkerData;
const port = parentPort;
if (port === null) throw new Error('ring-transfer.worker.ts must run in a worker thread');

const packr = new Packr({ useRecords: false });
const frames = new SyntheticFrames({ cluster: 'bench', host: 'bench-node', alertEvery: data.alertEvery }, (v) => packr.pack(v));
const startUs = nowMicros();
// frame() returns a view it rewrites on the next call: keep a copy of each (own buffer).
const events = Array.from({ length: data.events }, (_, i) => frames.frame(i, startUs + i).slice());
const producer = new RingProducer(data.ring);
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
let ringFullRetries = 0;
let sentBytes = 0;
let sentEvents = 0;

function viaRing(): void {
  for (let n = 0; n < events.length; ) {
    const bytes = events[n];
    if (!producer.offer(bytes, startUs + n, true)) {
      // Full ring: wait for the main thread as the unpaced synthetic source does.
      ringFullRetries++;
      Atomics.wait(sleepCell, 0, 0, 0.05);
      continue;
    }
    sentBytes += bytes.length;
    n++;
  }
  sentEvents += events.length;
}

function viaPostMessage(): void {
  for (const bytes of events) {
    // Structured clone copies the event's own buffer: one copy per event.
    port?.postMessage(bytes satisfies FromRingWorker);
    sentBytes += bytes.length;
  }
  sentEvents += events.length;
}

port.on('message', (m: ToRingWorker) => {
  if (m.type === 'ring') viaRing();
  else if (m.type === 'post') viaPostMessage();
  else port.postMessage({ type: 'stats', ringFullRetries, sentBytes, sentEvents } satisfies FromRingWorker);
});
