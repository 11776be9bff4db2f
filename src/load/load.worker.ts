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
import { SendTimes, type SendTimesBuffers } from './send-times';
import { Subscriber, type SubscriberResult, type SubscriberSettings } from './subscriber';
import { ThreadMeter, type ThreadSummary } from './thread-meter';

export type WorkerInit =
  | { role: 'subscribers'; clients: Omit<SubscriberSettings, 'sendTimes'>[]; sendTimes: SendTimesBuffers | null }
  | { role: 'producer'; settings: ProducerSettings; sendTimes: SendTimesBuffers };

export type ToWorker = { type: 'start'; timeOrigin: number } | { type: 'release' } | { type: 'run' } | { type: 'stop' };

export interface ClientProgress {
  index: number;
  received: number;
  distinct: number;
  lastReceiveAt: number;
}

export type FromWorker =
  | { type: 'connected'; errors: (string | null)[] }
  | { type: 'progress'; clients: ClientProgress[]; sent: number }
  | { type: 'subscribers-result'; clients: SubscriberResult[]; thread: ThreadSummary }
  | { type: 'producer-result'; result: ProducerResult; thread: ThreadSummary };

const port = parentPort;
if (port === null) throw new Error('load.worker.ts must run as a worker thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
const meter = new ThreadMeter();

if (init.role === 'subscribers') {
  const sendTimes = init.sendTimes !== null ? new SendTimes(init.sendTimes) : undefined;
  const subscribers = init.clients.map((c) => new Subscriber({ ...c, sendTimes }));
  let progress: NodeJS.Timeout | undefined;
  void Promise.allSettled(subscribers.map((s) => s.connect())).then((rs) => {
    post({ type: 'connected', errors: rs.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : null)) });
  });
  const sendProgress = (): void =>
    post({
      type: 'progress',
      sent: 0,
      clients: subscribers.map((s) => ({ index: s.settings.index, received: s.received, distinct: s.tracker.distinct, lastReceiveAt: s.lastReceiveAt })),
    });
  port.on('message', (m: ToWorker) => {
    if (m.type === 'start') {
      for (const s of subscribers) s.setTimeOrigin(m.timeOrigin);
      meter.start();
      progress = setInterval(sendProgress, 250);
    } else if (m.type === 'release') {
      for (const s of subscribers) s.release();
      sendProgress();
    } else if (m.type === 'stop') {
      if (progress !== undefined) clearInterval(progress);
      for (const s of subscribers) s.stop();
      const thread = meter.finish();
      const clients = subscribers.map((s) => s.result());
      post({ type: 'subscribers-result', clients, thread }, clients.map((c) => c.sequence.bits.buffer as ArrayBuffer));
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
