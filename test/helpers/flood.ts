/**
 * A producer thread for backpressure tests (workers/flood.worker.ts): it keeps writing
 * while the test holds its own main thread, which is the in-process feeder's main
 * thread, so the feeder's rings stop draining and its sources fill up.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { until } from './wait';

/** Slots of the progress array the worker fills in. */
export const Progress = { CONNECTED: 0, FRAMED: 1, DONE: 2, WRITTEN: 3 } as const;

export interface FloodOptions {
  socket?: string;
  tcp?: string;
  count: number;
  /** hostPid of the first event (the rest count up from it). */
  first: number;
  /** Drop the connection once this many events are framed. */
  destroyAfter?: number;
}

export interface Flood {
  /** Resolves once the producer is connected (it sends nothing before go()). */
  connected(): Promise<void>;
  go(): void;
  framed(): number;
  written(): number;
  isDone(): boolean;
  finished(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export function startFlood(o: FloodOptions): Flood {
  const progress = new Int32Array(new SharedArrayBuffer(16));
  const goCell = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(path.join(__dirname, '..', 'workers', 'flood.worker.js'), {
    workerData: { ...o, progress: progress.buffer, go: goCell.buffer },
  });
  let failure: Error | undefined;
  worker.on('error', (err) => {
    failure = err;
  });
  const check = (): void => {
    if (failure !== undefined) throw failure;
  };
  return {
    connected: () => until('the flood producer to connect', () => (check(), Atomics.load(progress, Progress.CONNECTED) === 1)),
    go() {
      Atomics.store(goCell, 0, 1);
      Atomics.notify(goCell, 0);
    },
    framed: () => Atomics.load(progress, Progress.FRAMED),
    written: () => Atomics.load(progress, Progress.WRITTEN),
    isDone: () => Atomics.load(progress, Progress.DONE) === 1,
    finished: (timeoutMs = 20_000) => until('the flood producer to finish', () => (check(), Atomics.load(progress, Progress.DONE) === 1), timeoutMs),
    async stop() {
      await worker.terminate();
    },
  };
}

/** Holds the calling thread (the in-process feeder's main thread) for `ms`. */
export function holdMainThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
