/**
 * A producer client for armorfeed's ingest sockets: it frames events (4-byte big-endian
 * length + msgpack map, src/ingest/frames.ts), gathers them into batched writes, honours
 * the broker's backpressure and reconnects. Producers use this instead of hand-rolling
 * frames.
 *
 *   send(event) ──> [ batch being filled ] ──> [ queued batches ] ──> socket.write ──> kernel ──> broker
 *                      up to batchBytes            up to highWaterBytes in all
 *
 * Backpressure: when the broker's ring is full it stops reading (ingestWhenFull: block),
 * the kernel's socket buffer fills, `socket.write` reports it, and batches queue here.
 * Past `highWaterBytes` queued, `send()` waits (its promise resolves once there is room)
 * and `write()` returns false: the caller slows down instead of anything being dropped.
 *
 * Loss window, up front: events still queued here survive a reconnect and are written on
 * the next connection. Events handed to a socket that breaks before Node has written
 * them to the kernel are counted in `stats().unconfirmed` and not resent (at most once
 * for those); bytes already in the kernel's buffer when the broker goes away are lost
 * with it, as with any stream socket.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { Packr } from 'msgpackr';
import type { IngestEvent } from '../event';

export interface ProducerTarget {
  /** Unix socket path of a `--source socket`. */
  socket?: string;
  /** host:port of a `--source tcp`. */
  tcp?: string;
}

export interface ProducerOptions {
  /** Events are gathered into writes of up to this many bytes (default 64 KiB). */
  batchBytes?: number;
  /** A partly filled batch is written after at most this many ms (default 0: at the end of the current tick). */
  lingerMs?: number;
  /** Bytes queued here (not yet taken by the kernel) above which send() waits (default 4 MiB). */
  highWaterBytes?: number;
  /** Reconnect after a broken or refused connection (default true), with capped, jittered backoff. */
  reconnect?: boolean;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ProducerStats {
  /** Events framed by send()/write(). */
  framed: number;
  /** Events written to the kernel. */
  written: number;
  /** Events queued here, not yet written. */
  queued: number;
  queuedBytes: number;
  /** Events handed to a socket that broke before they were written to the kernel (not resent). */
  unconfirmed: number;
  connects: number;
  /** Times a write found the socket full (the broker pushing back). */
  pushbacks: number;
}

const FRAME_HEADER_BYTES = 4;

interface Batch {
  bytes: Buffer;
  events: number;
}

/**
 * One producer connection. Events are sent in the order given; `close()` flushes what is
 * queued first.
 */
export class FrameProducer extends EventEmitter {
  private readonly packr = new Packr({ useRecords: false });
  private readonly batchBytes: number;
  private readonly lingerMs: number;
  private readonly highWaterBytes: number;
  private readonly reconnect: boolean;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private fill: Buffer;
  private fillPos = 0;
  private fillEvents = 0;
  private readonly queue: Batch[] = [];
  private queuedBytes = 0;
  private queuedEvents = 0;
  private socket: net.Socket | undefined;
  private connected = false;
  private writable = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private closing = false;
  private closed = false;
  private backoffMs: number;
  /** Events handed to the socket whose write has not completed yet. */
  private inSocket = 0;
  private readonly counts = { framed: 0, written: 0, unconfirmed: 0, connects: 0, pushbacks: 0 };
  private roomWaiters: (() => void)[] = [];
  private flushWaiters: (() => void)[] = [];

  constructor(
    private readonly target: ProducerTarget,
    options: ProducerOptions = {},
  ) {
    super();
    if ((target.socket === undefined) === (target.tcp === undefined)) throw new TypeError('FrameProducer: give exactly one of socket or tcp');
    this.batchBytes = options.batchBytes ?? 64 * 1024;
    this.lingerMs = options.lingerMs ?? 0;
    this.highWaterBytes = options.highWaterBytes ?? 4 * 1024 * 1024;
    this.reconnect = options.reconnect ?? true;
    this.initialBackoffMs = options.initialBackoffMs ?? 50;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.backoffMs = this.initialBackoffMs;
    this.fill = Buffer.allocUnsafe(this.batchBytes);
    this.connect();
  }

  /** Frames and queues one event; false when the queue is above its high-water mark (wait for 'room'). */
  write(event: IngestEvent | Record<string, unknown>): boolean {
    if (this.closing) throw new Error('FrameProducer: write() after close()');
    const body = this.packr.pack(event);
    const need = FRAME_HEADER_BYTES + body.length;
    if (this.fillPos + need > this.fill.length) {
      this.sealBatch();
      if (need > this.fill.length) this.fill = Buffer.allocUnsafe(need);
    }
    this.fill.writeUInt32BE(body.length, this.fillPos);
    body.copy(this.fill, this.fillPos + FRAME_HEADER_BYTES);
    this.fillPos += need;
    this.fillEvents++;
    this.counts.framed++;
    if (this.fillPos >= this.batchBytes) this.sealBatch();
    this.scheduleFlush();
    return this.queuedBytes + this.fillPos <= this.highWaterBytes;
  }

  /** Frames and queues one event; resolves at once, or once the queue is below its high-water mark. */
  send(event: IngestEvent | Record<string, unknown>): Promise<void> {
    if (this.write(event)) return Promise.resolve();
    return this.room();
  }

  /** Resolves when the queue is at or below its high-water mark. */
  room(): Promise<void> {
    if (this.queuedBytes + this.fillPos <= this.highWaterBytes) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Resolves once every event framed so far has been handed to the kernel. */
  flush(): Promise<void> {
    this.sealBatch();
    this.pump();
    if (this.queue.length === 0 && this.inSocket === 0) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  /** Flushes (waiting as long as the broker pushes back), then ends the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closing = true;
    this.closed = true;
    clearTimeout(this.flushTimer);
    const s = this.socket;
    if (s === undefined || s.destroyed) return;
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end();
    });
  }

  /** Drops the connection and whatever is queued at once. */
  destroy(): void {
    this.closing = true;
    this.closed = true;
    clearTimeout(this.flushTimer);
    this.socket?.destroy();
  }

  stats(): ProducerStats {
    return { ...this.counts, queued: this.queuedEvents + this.fillEvents, queuedBytes: this.queuedBytes + this.fillPos };
  }

  private connect(): void {
    const s = this.target.socket !== undefined ? net.connect(this.target.socket) : connectTcp(this.target.tcp as string);
    this.socket = s;
    s.setNoDelay?.(true);
    s.on('connect', () => {
      this.connected = true;
      this.writable = true;
      this.counts.connects++;
      this.backoffMs = this.initialBackoffMs;
      this.emit('connect');
      this.pump();
    });
    s.on('drain', () => {
      this.writable = true;
      this.pump();
    });
    // The broker answers only to say why it hangs up (one `armorfeed: ERR_...` line).
    s.on('data', (chunk: Buffer) => this.emit('notice', chunk.toString('utf8').trim()));
    s.on('error', (err) => this.emit('connectionError', err));
    s.on('close', () => {
      const wasConnected = this.connected;
      this.connected = false;
      this.writable = false;
      if (wasConnected) this.emit('disconnect');
      if (this.closed || !this.reconnect) {
        this.wakeAll();
        return;
      }
      const wait = Math.min(this.maxBackoffMs, this.backoffMs) * (0.5 + Math.random() / 2);
      this.backoffMs = Math.min(this.maxBackoffMs, this.backoffMs * 2);
      setTimeout(() => {
        if (!this.closed) this.connect();
      }, wait).unref();
    });
  }

  private sealBatch(): void {
    if (this.fillPos === 0) return;
    const bytes = Buffer.from(this.fill.subarray(0, this.fillPos));
    this.queue.push({ bytes, events: this.fillEvents });
    this.queuedBytes += bytes.length;
    this.queuedEvents += this.fillEvents;
    this.fillPos = 0;
    this.fillEvents = 0;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const run = (): void => {
      this.flushScheduled = false;
      this.sealBatch();
      this.pump();
    };
    if (this.lingerMs > 0) this.flushTimer = setTimeout(run, this.lingerMs);
    else queueMicrotask(run);
  }

  private pump(): void {
    const s = this.socket;
    while (this.connected && this.writable && this.queue.length > 0 && s !== undefined) {
      const batch = this.queue.shift() as Batch;
      this.queuedBytes -= batch.bytes.length;
      this.queuedEvents -= batch.events;
      this.inSocket += batch.events;
      const ok = s.write(batch.bytes, (err) => {
        this.inSocket -= batch.events;
        if (err) this.counts.unconfirmed += batch.events;
        else this.counts.written += batch.events;
        this.wakeAll();
      });
      if (!ok) {
        this.writable = false;
        this.counts.pushbacks++;
      }
    }
    this.wakeAll();
  }

  private wakeAll(): void {
    if (this.queuedBytes + this.fillPos <= this.highWaterBytes && this.roomWaiters.length > 0) {
      const w = this.roomWaiters;
      this.roomWaiters = [];
      for (const f of w) f();
    }
    if ((this.queue.length === 0 && this.fillPos === 0 && this.inSocket === 0) || this.closed) {
      const w = this.flushWaiters;
      this.flushWaiters = [];
      for (const f of w) f();
    }
  }
}

function connectTcp(address: string): net.Socket {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address);
  if (m === null) throw new TypeError(`FrameProducer: tcp must be host:port, got ${JSON.stringify(address)}`);
  return net.connect(Number(m[2]), m[1]);
}
