/**
 * One ingest thread: starts a source's worker (source.worker.ts) on its ring, with the
 * config keys it reads, and tells the main thread's SourceEvents what the thread reports:
 * readiness, rejections (as counts and samples), disconnects, the end, and its failure.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { parseFileMode, socketGid, whenFullFor, type FeederConfig, type SourceKind } from '../config';
import { ArmorfeedError, IngestThreadError } from '../errors';
import { SOURCE_CONFIG_KEYS, type FromSource, type SourceWorkerData } from './protocol';

export interface SourceEvents {
  onRejected(source: string, msg: Extract<FromSource, { type: 'rejected' }>): void;
  onDisconnected(source: string, msg: Extract<FromSource, { type: 'disconnected' }>): void;
  onFinished(source: string, msg: Extract<FromSource, { type: 'finished' }>): void;
  onRotated(source: string, msg: Extract<FromSource, { type: 'rotated' }>): void;
  onFatal(source: string, msg: Extract<FromSource, { type: 'fatal' }>): void;
  /**
   * The source stopped working while the broker runs (its thread exited, or it failed
   * after it was ready): nothing more will come from it. `why` says what happened.
   */
  onFailed(source: string, why: string): void;
}

function pick<T, K extends keyof T>(from: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) out[k] = from[k];
  return out;
}

export class IngestThread {
  address = '';
  finished = false;
  /** The source stopped working while the broker ran (see SourceEvents.onFailed). */
  failed = false;
  private readonly worker: Worker;
  private stopping = false;
  private exited = false;
  /** Set by terminate(): why the thread was ended from outside (a wedged thread). */
  private terminatedWhy: string | undefined;
  private readonly ready: Promise<void>;
  private stoppedResolve: (() => void) | undefined;

  constructor(
    readonly name: string,
    readonly kind: Exclude<SourceKind, 'none'>,
    readonly ring: SharedArrayBuffer,
    config: FeederConfig,
    gated: boolean,
    events: SourceEvents,
  ) {
    const workerData: SourceWorkerData = {
      ...pick(config, SOURCE_CONFIG_KEYS),
      kind,
      name,
      ring,
      whenFull: whenFullFor(config, kind),
      socketMode: parseFileMode(config.socketMode),
      socketGid: socketGid(config),
      gated,
    };
    // Sources hold almost nothing on their heap (events go straight to the ring).
    this.worker = new Worker(path.resolve(__dirname, 'source.worker.js'), { workerData, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    let isReady = false;
    let lastError: Error | undefined;
    const fail = (why: string): void => {
      if (this.failed || this.stopping) return;
      this.failed = true;
      events.onFailed(name, why);
    };
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (msg: FromSource) => {
        switch (msg.type) {
          case 'ready':
            this.address = msg.address;
            isReady = true;
            resolve();
            break;
          case 'rejected':
            events.onRejected(name, msg);
            break;
          case 'disconnected':
            events.onDisconnected(name, msg);
            break;
          case 'finished':
            this.finished = true;
            events.onFinished(name, msg);
            break;
          case 'rotated':
            events.onRotated(name, msg);
            break;
          case 'fatal':
            if (isReady) fail(`source ${name} failed: ${msg.code}: ${msg.message}`);
            else {
              events.onFatal(name, msg);
              // The thread's error, by its code (classes do not cross threads).
              reject(new ArmorfeedError(msg.code, msg.message));
            }
            break;
          case 'stopped':
            this.stoppedResolve?.();
            break;
        }
      });
      // An uncaught exception in the thread: 'error', then 'exit'.
      this.worker.on('error', (err) => {
        lastError = err;
      });
      this.worker.on('exit', (code) => {
        this.exited = true;
        if (this.stopping) return;
        const why =
          this.terminatedWhy ?? `ingest thread of source ${name} exited unexpectedly (${lastError !== undefined ? `${lastError.name}: ${lastError.message}` : `exit code ${code}`})`;
        if (isReady) fail(why);
        else reject(new IngestThreadError(why));
      });
    });
  }

  whenReady(): Promise<void> {
    return this.ready;
  }

  /** Whether the thread has ended (exited, crashed or terminated). */
  get ended(): boolean {
    return this.exited;
  }

  /**
   * Ends a thread that no longer answers (wedged); its exit is reported to onFailed with
   * `why`. Worker.terminate() stops even a thread spinning in a loop, and the thread's
   * listeners and connections close with it.
   */
  terminate(why: string): Promise<void> {
    this.terminatedWhy ??= why;
    return this.worker.terminate().then(() => undefined);
  }

  /** Lets a gated source (synthetic, jsonl) begin. */
  start(): void {
    this.worker.postMessage({ type: 'start' });
  }

  /** Stops the source (closes listeners, ends the ring) and ends the thread. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.exited) return;
    const stopped = new Promise<void>((resolve) => {
      this.stoppedResolve = resolve;
      this.worker.once('exit', () => resolve());
    });
    this.worker.postMessage({ type: 'stop' });
    const timer = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([stopped, timer]);
    await this.worker.terminate();
  }
}
