/**
 * The load tool's worker threads: one runs the producer, the others each run a
 * small group of subscribers. Each meters its own thread (./thread-meter.ts), and
 * talks to the main thread (./run-load.ts) only a few times a second: progress every
 * 250 ms, and at the end the results (sequence bitsets transferred, histograms encoded).
 *
 *   main -> worker: start {timeOrigin} | release | stop          (subscribers)
 *                   run | stop                                   (producer)
 *   worker -> main: connected {errors} | progress | result
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Producer, type ProducerResult, type ProducerSettings } from './producer';
import { epochMs, SendTimes, type SendTimesBuffers } from './send-times';
import { LoadClient, type LoadClientResult, type LoadClientSettings } from './load-client';
import { ThreadMeter, type ThreadSummary } from './thread-meter';

export type WorkerInit =
  | { role: 'subscribers'; clients: Omit<LoadClientSettings, 'sendTimes'>[]; sendTimes: SendTimesBuffers | null }
  | { role: 'producer'; settings: ProducerSettings; sendTimes: SendTimesBuffers };

export type ToWorker = { type: 'start'; timeOrigin: number } | { type: 'release' } | { type: 'run' } | { type: 'stop' };

export interface ClientProgress {
  index: number;
  received: number;
  distinct: number;
  lastReceiveAt: number;
  /** Epoch ms when the worker took this report: its thread was free to report then, so `lastReceiveAt` was current. */
  at: number;
}

export type FromWorker =
  | { type: 'connected'; errors: (string | null)[] }
  | { type: 'progress'; clients: ClientProgress[]; sent: number }
  | { type: 'clients-result'; clients: LoadClientResult[]; thread: ThreadSummary }
  | { type: 'producer-result'; result: ProducerResult; thread: ThreadSummary };

const port = parentPort;
if (port === null) throw new Error('load.worker.ts must run as a worker thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
const meter = new ThreadMeter();

if (init.role === 'subscribers') {
  const sendTimes = init.sendTimes !== null ? new SendTimes(init.sendTimes) : undefined;
  const clients = init.clients.map((c) => new LoadClient({ ...c, sendTimes }));
  let progress: NodeJS.Timeout | undefined;
  void Promise.allSettled(clients.map((s) => s.connect())).then((rs) => {
    post({ type: 'connected', errors: rs.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : null)) });
  });
  const sendProgress = (): void =>
    post({
      type: 'progress',
      sent: 0,
      clients: clients.map((s) => ({ index: s.settings.index, received: s.received, distinct: s.tracker.distinct, lastReceiveAt: s.lastReceiveAt, at: epochMs() })),
    });
  port.on('message', (m: ToWorker) => {
    if (m.type === 'start') {
      for (const c of clients) c.setTimeOrigin(m.timeOrigin);
      meter.start();
      progress = setInterval(sendProgress, 250);
    } else if (m.type === 'release') {
      for (const c of clients) c.release();
      sendProgress();
    } else if (m.type === 'stop') {
      if (progress !== undefined) clearInterval(progress);
      for (const c of clients) c.stop();
      const thread = meter.finish();
      const results = clients.map((s) => s.result());
      post({ type: 'clients-result', clients: results, thread }, results.map((c) => c.sequence.bits.buffer as ArrayBuffer));
    }
  });
} else {
  const producer = new Producer(init.settings, new SendTimes(init.sendTimes));
  let progress: NodeJS.Timeout | undefined;
  producer.connect().then(
    () => post({ type: 'connected', errors: [null] }),
    (err: Error) => post({ type: 'connected', errors: [err.message] }),
  );
  port.on('message', (m: ToWorker) => {
    if (m.type === 'run') {
      meter.start();
      progress = setInterval(() => post({ type: 'progress', sent: producer.sent, clients: [] }), 250);
      void producer.run().then((result) => {
        if (progress !== undefined) clearInterval(progress);
        producer.close();
        post({ type: 'producer-result', result, thread: meter.finish() });
      });
    } else if (m.type === 'stop') {
      producer.stop();
    }
  });
}
