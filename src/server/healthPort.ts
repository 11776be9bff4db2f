/**
 * The grpc.health.v1 port (gRPCHealthPort), served from a thread of its own so that it
 * tells the truth when the main thread cannot: a main loop that is stalled (a long
 * synchronous task, a runaway GC, a bug) cannot answer a probe, and a probe that times
 * out tells a prober less than NOT_SERVING does. The thread reads two things the main
 * thread writes into a SharedArrayBuffer, and nothing else crosses:
 *
 *   Int32 slots   written by   meaning
 *   0 SERVING     main         1 while every part works (HealthWatch.refresh, feeder/health.ts), else 0
 *   1 MAIN_BEAT   main         +1 every MAIN_BEAT_MS from a main-thread timer
 *   2 STALLED     health       1 while the main thread has not beaten for stallMs
 *   3 STALLS      health       stalls seen so far
 *
 * The port answers SERVING only while SERVING is 1 and the main loop beats. Limits: the
 * main gRPC port's own grpc.health.v1 (kept for clients of upstream before v1.7.4) is on
 * the main thread and simply does not answer during a stall; and a stall shorter than
 * stallMs is not reported here (it is in the event-loop delay metric). The thread costs
 * one more isolate with grpc-js loaded (at idle, lost in run-to-run RSS noise here).
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../errors';

export const HealthSlot = { SERVING: 0, MAIN_BEAT: 1, STALLED: 2, STALLS: 3 } as const;
export const HEALTH_SLOTS = 4;
/** How often the main thread beats (HealthSlot.MAIN_BEAT). */
export const MAIN_BEAT_MS = 100;

export interface HealthWorkerData {
  state: SharedArrayBuffer;
  address: string;
  stallMs: number;
}

export type FromHealthWorker = { type: 'ready'; port: number } | { type: 'failed'; message: string } | { type: 'stopped' };

export class HealthPort {
  private readonly slots: Int32Array;
  private readonly beat: NodeJS.Timeout;

  private constructor(
    private readonly worker: Worker,
    state: SharedArrayBuffer,
    readonly port: number,
  ) {
    this.slots = new Int32Array(state);
    this.beat = setInterval(() => Atomics.add(this.slots, HealthSlot.MAIN_BEAT, 1), MAIN_BEAT_MS);
    this.beat.unref();
  }

  /** Starts the thread and binds `address` (HOST:PORT); rejects with a ConfigError naming gRPCHealthPort. */
  static start(address: string, stallMs: number, serving = true): Promise<HealthPort> {
    const state = new SharedArrayBuffer(HEALTH_SLOTS * 4);
    Atomics.store(new Int32Array(state), HealthSlot.SERVING, serving ? 1 : 0);
    const workerData: HealthWorkerData = { state, address, stallMs };
    const worker = new Worker(path.resolve(__dirname, 'health.worker.js'), { workerData, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    return new Promise((resolve, reject) => {
      worker.once('message', (msg: FromHealthWorker) => {
        if (msg.type === 'ready') resolve(new HealthPort(worker, state, msg.port));
        else {
          void worker.terminate();
          reject(new ConfigError('gRPCHealthPort', `cannot listen on ${address}: ${msg.type === 'failed' ? msg.message : 'stopped'}`));
        }
      });
      worker.once('error', (err) => reject(new ConfigError('gRPCHealthPort', `health thread failed: ${err.message}`)));
    });
  }

  setServing(serving: boolean): void {
    Atomics.store(this.slots, HealthSlot.SERVING, serving ? 1 : 0);
  }

  /** Main-loop stalls the health thread saw (each longer than stallMs). */
  get stalls(): number {
    return Atomics.load(this.slots, HealthSlot.STALLS);
  }

  async close(timeoutMs: number): Promise<void> {
    clearInterval(this.beat);
    const stopped = new Promise<void>((resolve) => {
      this.worker.on('message', (msg: FromHealthWorker) => {
        if (msg.type === 'stopped') resolve();
      });
      this.worker.once('exit', () => resolve());
    });
    this.worker.postMessage({ type: 'stop', timeoutMs });
    await Promise.race([stopped, new Promise<void>((r) => setTimeout(r, timeoutMs + 500).unref())]);
    await this.worker.terminate();
  }
}
