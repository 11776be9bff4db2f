/**
 * The producer side of a load run: numbered events into armorfeed's msgpack
 * ingest socket (TCP or Unix), each frame a 4-byte big-endian length then a
 * msgpack map with the ingest keys (src/event/schema.ts).
 *
 * Pacing uses absolute due times (event i is due at start + i/rate), so short
 * stalls are caught up and the long-run rate is exact. Frames due together are
 * written as one chunk; the producer waits for 'drain' when the socket's buffer
 * is full, so at --rate 0 it goes exactly as fast as the broker reads.
 *
 * It runs in its own worker thread (src/load/load.worker.ts), so building and
 * encoding frames competes with no subscriber for its event loop.
 */
import * as net from 'node:net';
import { Packr } from 'msgpackr';
import type { IngestTarget } from './addresses';
import { firstSeq, kindOfSeq, LoadFrames } from './events';
import { epochMs, type SendTimes } from './send-times';
import { nowMicros } from '../wire/time';

export interface ProducerSettings {
  target: IngestTarget;
  rate: number;
  burst: number;
  count: number;
  durationMs: number;
  alertEvery: number;
}

export interface ProducerResult {
  sent: number;
  alerts: number;
  logs: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  elapsedMs: number;
  /** secondStarts[s] = first seq sent in second s after the start. */
  secondStarts: number[];
  /** Events sent per second after the start. */
  sentPerSecond: number[];
  error?: string;
}

/** Most frames in one socket write: keeps each chunk under ~300 KB and lets subscribers' I/O run between chunks. */
const maxFramesPerChunk = 512;

export class Producer {
  private socket: net.Socket | undefined;
  private readonly frames = new LoadFrames((v) => new Packr({ useRecords: false }).pack(v));
  private error: string | undefined;
  private stopped = false;
  sent = 0;
  alerts = 0;
  logs = 0;
  bytes = 0;

  constructor(
    private readonly settings: ProducerSettings,
    private readonly sendTimes: SendTimes,
  ) {}

  async connect(): Promise<void> {
    const t = this.settings.target;
    const socket = t.kind === 'tcp' ? net.createConnection({ host: t.host, port: t.port }) : net.createConnection({ path: t.path });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', (err) => {
      this.error ??= `ingest socket: ${err.message}`;
    });
    socket.on('close', () => {
      if (!this.stopped) this.error ??= 'ingest socket closed by the broker';
    });
    this.socket = socket;
  }

  /** Asks a running `run()` to stop after its current chunk. */
  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<ProducerResult> {
    const socket = this.socket;
    if (socket === undefined) throw new Error('Producer.run before connect');
    const { rate, burst, count, durationMs, alertEvery } = this.settings;
    const start = performance.now();
    const secondStarts: number[] = [];
    const sentPerSecond: number[] = [];
    let nextSeq = firstSeq;
    const lastAllowed = firstSeq + count - 1;
    for (;;) {
      const elapsed = performance.now() - start;
      if (this.stopped || this.error !== undefined || nextSeq > lastAllowed || elapsed >= durationMs) break;
      const due = dueCount(elapsed, rate, burst);
      const n = Math.min(due - this.sent, maxFramesPerChunk, lastAllowed - nextSeq + 1);
      if (n <= 0) {
        await sleep(Math.max(1, nextDueMs(this.sent, rate, burst) - elapsed));
        continue;
      }
      const second = Math.floor(elapsed / 1000);
      while (secondStarts.length <= second) {
        secondStarts.push(nextSeq);
        sentPerSecond.push(0);
      }
      sentPerSecond[second] += n;
      const first = nextSeq;
      const chunk = this.buildChunk(first, n, alertEvery);
      nextSeq += n;
      // Marked before the write: the subscribers run on other threads and may read an
      // event before a write callback here could run. The socket writes at once when it can.
      this.sendTimes.markSent(first, first + n - 1, epochMs());
      const flushed = socket.write(chunk);
      if (!flushed) await waitDrain(socket);
      else if (rate === 0 || due - this.sent > maxFramesPerChunk) await yieldToIo();
    }
    this.stopped = true;
    await new Promise<void>((resolve) => {
      if (socket.destroyed) resolve();
      else socket.write(Buffer.alloc(0), () => resolve());
    });
    return {
      sent: this.sent,
      alerts: this.alerts,
      logs: this.logs,
      bytes: this.bytes,
      firstSeq,
      lastSeq: nextSeq - 1,
      elapsedMs: performance.now() - start,
      secondStarts,
      sentPerSecond,
      error: this.error,
    };
  }

  /** Frames `first..first+n-1` in one buffer, from pre-encoded templates (./events.ts LoadFrames). */
  private buildChunk(first: number, n: number, alertEvery: number): Buffer {
    let total = 0;
    for (let seq = first; seq < first + n; seq++) total += 4 + this.frames.size(seq, kindOfSeq(seq, alertEvery));
    const chunk = Buffer.allocUnsafe(total);
    const now = nowMicros();
    let off = 0;
    for (let seq = first; seq < first + n; seq++) {
      const kind = kindOfSeq(seq, alertEvery);
      const body = this.frames.frame(seq, kind, now);
      chunk.writeUInt32BE(body.length, off);
      chunk.set(body, off + 4);
      off += 4 + body.length;
      if (kind === 'alert') this.alerts++;
      else this.logs++;
    }
    this.bytes += total;
    this.sent += n;
    return chunk;
  }

  close(): void {
    this.stopped = true;
    this.socket?.end();
  }
}

/** How many events should have been sent `elapsedMs` after the start. */
function dueCount(elapsedMs: number, rate: number, burst: number): number {
  if (rate === 0) return Number.MAX_SAFE_INTEGER;
  if (burst > 0) return (Math.floor((elapsedMs * rate) / 1000 / burst) + 1) * burst;
  return Math.floor((elapsedMs * rate) / 1000) + 1;
}

/** When (ms after the start) the event after `sent` becomes due. */
function nextDueMs(sent: number, rate: number, burst: number): number {
  if (burst > 0) return (Math.ceil(sent / burst) * burst * 1000) / rate;
  return (sent * 1000) / rate;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function waitDrain(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}
