/**
 * The main thread's side of the export: what the fan-out calls, and the thread that does
 * the NATS work (export.worker.ts).
 *
 *   fan-out ──batch──> NodeExport.offerBatch ──copy, postMessage──> export thread: Exporter ──> NATS
 *   daemon log ──────> NodeExport.offerMessage ─┘                          │
 *                      NodeExport.stats() <──── shared counter cell <──────┘
 *
 * On the main thread an offer costs one copy of the kept events' bytes per batch (the
 * encoders reuse their output slabs once the fan-out is done) and one message. Admission
 * happens here, so the bound holds for what is on its way too: an event is taken while
 * held (in the thread's buffer, per the last snapshot) + in transit (posted, not yet
 * received there) stays within exportBufferEvents and exportBufferBytes; past that it is
 * dropped and counted export_buffer_full without being posted. The snapshot is at most
 * ~20 ms old and can only overstate what is held (acks free room, nothing else adds), so
 * the bound is never exceeded. Sequence numbers are given here, kept or not: a consumer
 * sees a drop as a gap.
 *
 * One thread serves every NodeExport of a process (`relay --export` has one per node).
 * A thread that dies (a bug) is started again, at most MAX_RESTARTS a minute, with every
 * export reopened under the same node id, so sequence numbers go on: what it held and
 * what was on its way to it are counted export_rejected (they leave a gap; those that
 * were in flight may have been stored all the same, so this can overcount by the window).
 * Past the limit the exports stay `failed` and refuse what they are offered, counted.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EncodedBatch, EncodedStream } from '../encode';
import { ArmorfeedError } from '../errors';
import { MAX_RESTARTS, RestartBudget } from '../restarts';
import { GRPC_FRAME_HEADER } from '../wire/framing';
import type { ExportDropReason } from './buffer';
import { STARTUP_WAIT_MS, type ExportLog, type ExportSettings, type ExportState, type ExportStats } from './exporter';
import { EXPORT_CELL_FIELDS, ExportStatsCell, type ExportCellValues } from './statsCell';
import { makeNodeId, type ExportStreamKind } from './subjects';
import type { FromExportThread, ToExportThread } from './threadProtocol';

/** Between two looks at whether everything offered has settled (flush). */
const FLUSH_POLL_MS = 10;

/** An offer's arrays, views of one ArrayBuffer: seqs (8-byte aligned first), starts, ends, then the bytes. */
interface PackedOffer {
  seqs: Float64Array;
  starts: Uint32Array;
  ends: Uint32Array;
  bytes: Uint8Array;
}

function packOffer(count: number, byteLength: number): PackedOffer {
  const buffer = new ArrayBuffer(16 * count + byteLength);
  return {
    seqs: new Float64Array(buffer, 0, count),
    starts: new Uint32Array(buffer, 8 * count, count),
    ends: new Uint32Array(buffer, 12 * count, count),
    bytes: new Uint8Array(buffer, 16 * count, byteLength),
  };
}

/** Scratch for offerStream's admission pass, grown as needed, reused (one main thread). */
let keptIndexes = new Uint32Array(1024);
let keptSeqs = new Float64Array(1024);

function scratchIndexes(n: number): Uint32Array {
  if (keptIndexes.length < n) keptIndexes = new Uint32Array(Math.max(n, 2 * keptIndexes.length));
  return keptIndexes;
}

function scratchSeqs(n: number): Float64Array {
  if (keptSeqs.length < n) keptSeqs = new Float64Array(Math.max(n, 2 * keptSeqs.length));
  return keptSeqs;
}

export class ExportThread {
  private worker: Worker;
  private nextId = 1;
  private readonly exports = new Map<number, NodeExport>();
  /** Set when the thread is stopped for good: closed, or dead past the restart limit. */
  private stopped: string | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly restarts = new RestartBudget();

  constructor(private readonly log: ExportLog) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    // Its garbage collections (the process's 2 MiB semi-spaces apply to every thread) pause
    // only this thread, nothing the gRPC clients wait for.
    const worker = new Worker(path.resolve(__dirname, 'export.worker.js'));
    worker.unref();
    worker.on('message', (msg: FromExportThread) => this.onMessage(msg));
    worker.on('error', (err) => this.onDeath(worker, `export thread failed: ${err.message}`));
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.once('exit', (code) => this.onDeath(worker, `export thread exited (code ${code})`));
    return worker;
  }

  /** Starts an export with `settings` on this thread; call started() on it to wait for NATS. */
  open(settings: ExportSettings, waitMs = STARTUP_WAIT_MS): NodeExport {
    const id = this.nextId++;
    const e = new NodeExport(id, settings, makeNodeId(settings.host), waitMs, (msg, transfer) => this.post(msg, transfer), () => this.closeOne(id));
    this.exports.set(id, e);
    if (this.stopped !== undefined) e.onThreadLost(this.stopped, false);
    else this.post(e.openMessage());
    return e;
  }

  /** A thread with one export (serve's), which stops the thread when it closes. */
  static openOwned(settings: ExportSettings, log: ExportLog, waitMs = STARTUP_WAIT_MS): NodeExport {
    const thread = new ExportThread(log);
    const e = thread.open(settings, waitMs);
    e.afterClose = () => thread.stop();
    return e;
  }

  /** Closes every export (each flushed only as far as its own close does) and stops the thread. */
  async close(): Promise<void> {
    await Promise.all([...this.exports.values()].map((e) => e.close()));
    await this.stop();
  }

  private async stop(): Promise<void> {
    if (this.stopped === undefined) {
      this.stopped = 'closed';
      await this.worker.terminate();
    }
    await this.exited;
  }

  private post(msg: ToExportThread, transfer: ArrayBuffer[] = []): void {
    if (this.stopped === undefined) this.worker.postMessage(msg, transfer);
  }

  private closeOne(id: number): void {
    this.post({ type: 'close', id, last: this.exports.size === 1 });
  }

  private onMessage(msg: FromExportThread): void {
    if (msg.type === 'log') {
      this.log[msg.level](msg.text);
      return;
    }
    const e = this.exports.get(msg.id);
    if (e === undefined) return;
    if (msg.type === 'closed') this.exports.delete(msg.id);
    e.onMessage(msg);
  }

  private onDeath(worker: Worker, why: string): void {
    if (worker !== this.worker || this.stopped !== undefined) return;
    const restart = this.restarts.take();
    let lost = 0;
    for (const e of this.exports.values()) lost += e.onThreadLost(why, restart);
    if (!restart) {
      this.stopped = why;
      this.log.error(`export: ${why}, the ${MAX_RESTARTS + 1}th time within a minute; not started again: ${lost} events it held are dropped as export_rejected, and so is every later one`);
      return;
    }
    this.worker = this.spawn();
    for (const e of this.exports.values()) this.post(e.openMessage());
    // Logged once the new thread takes offers: the log line is itself a daemon message to export.
    this.log.error(`export: ${why}; starting it again (${lost} events it held are dropped as export_rejected: a gap in their sequence)`);
  }
}

/** One node's export (its subjects, node id, sequence numbers, buffer), run on an ExportThread. */
export class NodeExport {
  private readonly nextSeq: Record<ExportStreamKind, number> = { alerts: 0, logs: 0, messages: 0 };
  /** The current thread's counter cell, and what earlier threads counted (the same fields, added). */
  private cell = ExportStatsCell.create();
  private readonly base = Object.fromEntries(EXPORT_CELL_FIELDS.map((f) => [f, 0])) as ExportCellValues;
  /** Events and bytes posted to the current thread (received there, or in transit). */
  private postedEvents = 0;
  private postedBytes = 0;
  /** Dropped here, never posted. */
  private readonly refused: Record<ExportDropReason, number> = { export_buffer_full: 0, export_rejected: 0, export_timeout: 0, export_shutdown: 0 };
  private state: ExportState = 'connecting';
  private server = '';
  private lastError = '';
  private threadRestarts = 0;
  private closing = false;
  /** Set when no thread will run this export again. */
  private deadWhy: string | undefined;
  private startSignal!: { resolve: () => void; reject: (err: unknown) => void };
  private readonly startup: Promise<void>;
  private closedSignal!: () => void;
  private readonly closedDone: Promise<void>;
  private closeRun: Promise<void> | undefined;
  /** @internal What else closing it stops (openOwned: its thread). */
  afterClose: (() => Promise<void>) | undefined;

  /** @internal Made by ExportThread.open. */
  constructor(
    private readonly id: number,
    private readonly settings: ExportSettings,
    readonly nodeId: string,
    private readonly waitMs: number,
    private readonly post: (msg: ToExportThread, transfer?: ArrayBuffer[]) => void,
    private readonly sendClose: () => void,
  ) {
    this.startup = new Promise<void>((resolve, reject) => (this.startSignal = { resolve, reject }));
    this.startup.catch(() => undefined);
    this.closedDone = new Promise<void>((resolve) => (this.closedSignal = resolve));
  }

  /** @internal What starts this export on a (new) thread. */
  openMessage(): ToExportThread {
    return { type: 'open', id: this.id, settings: { ...this.settings }, nodeId: this.nodeId, cell: this.cell.buffer, waitMs: this.waitMs };
  }

  /**
   * Waits for the stream to be ready, or for the thread to give up waiting (then the
   * export goes on trying and events wait in its buffer). A stream that does not take our
   * subjects rejects, and the export closes.
   */
  async started(): Promise<void> {
    try {
      await this.startup;
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Offers a batch's Alerts and Logs; never waits. */
  offerBatch(batch: EncodedBatch): void {
    if (batch.alerts.count > 0) this.offerStream('alerts', batch.alerts);
    if (batch.logs.count > 0) this.offerStream('logs', batch.logs);
  }

  /** Offers one daemon Message (its protobuf, as published on WatchMessages). */
  offerMessage(encoded: Uint8Array): void {
    const seq = ++this.nextSeq.messages;
    const refused = this.refusing();
    if (refused !== undefined) {
      this.refused[refused]++;
      return;
    }
    const held = this.held(this.cell.read());
    if (!this.hasRoom(held.events, held.bytes, encoded.length)) {
      this.refused.export_buffer_full++;
      return;
    }
    const offer = packOffer(1, encoded.length);
    offer.bytes.set(encoded);
    offer.ends[0] = encoded.length;
    offer.seqs[0] = seq;
    this.send('messages', offer);
  }

  private offerStream(kind: ExportStreamKind, s: EncodedStream): void {
    const refused = this.refusing();
    if (refused !== undefined) {
      this.nextSeq[kind] += s.count;
      this.refused[refused] += s.count;
      return;
    }
    const held = this.held(this.cell.read());
    let events = held.events;
    let bytes = held.bytes;
    // First which events are kept (indexes and sequence numbers in scratch arrays), then
    // one buffer for all that is posted, sized exactly: one allocation and one transfer
    // per batch and stream instead of four (the gRPC client's p99 at 20,000 ev/s with the
    // export on: median 5.2 against 5.4 ms over alternating runs, within noise).
    const keptAt = scratchIndexes(s.count);
    const keptSeq = scratchSeqs(s.count);
    let kept = 0;
    for (let i = 0; i < s.count; i++) {
      const seq = ++this.nextSeq[kind];
      const start = (i === 0 ? 0 : s.ends[i - 1]) + GRPC_FRAME_HEADER;
      const end = s.ends[i];
      if (!this.hasRoom(events, bytes, end - start)) {
        this.refused.export_buffer_full++;
        continue;
      }
      events++;
      bytes += end - start;
      keptAt[kept] = i;
      keptSeq[kept] = seq;
      kept++;
    }
    if (kept === 0) return;
    // The bytes from the first kept event to the last: one copy (the encoders reuse their
    // output slabs once the fan-out is done).
    const startOf = (i: number): number => (i === 0 ? 0 : s.ends[i - 1]) + GRPC_FRAME_HEADER;
    const from = startOf(keptAt[0]);
    const to = s.ends[keptAt[kept - 1]];
    const offer = packOffer(kept, to - from);
    offer.bytes.set(s.bytes.subarray(from, to));
    for (let k = 0; k < kept; k++) {
      offer.starts[k] = startOf(keptAt[k]) - from;
      offer.ends[k] = s.ends[keptAt[k]] - from;
      offer.seqs[k] = keptSeq[k];
    }
    this.send(kind, offer);
  }

  private send(kind: ExportStreamKind, o: PackedOffer): void {
    this.postedEvents += o.seqs.length;
    this.postedBytes += o.bytes.length;
    this.post({ type: 'offer', id: this.id, kind, bytes: o.bytes, starts: o.starts, ends: o.ends, seqs: o.seqs }, [o.bytes.buffer as ArrayBuffer]);
  }

  private hasRoom(events: number, bytes: number, size: number): boolean {
    return events < this.settings.exportBufferEvents && bytes + size <= this.settings.exportBufferBytes;
  }

  /** Held in the current thread's buffer plus in transit to it. */
  private held(c: ExportCellValues): { events: number; bytes: number } {
    return { events: c.bufferedEvents + (this.postedEvents - c.received), bytes: c.bufferedBytes + (this.postedBytes - c.receivedBytes) };
  }

  private refusing(): ExportDropReason | undefined {
    if (this.closing) return 'export_shutdown';
    if (this.deadWhy !== undefined || this.state === 'failed') return 'export_rejected';
    return undefined;
  }

  stats(): ExportStats {
    const c = this.cell.read();
    const b = this.base;
    const r = this.refused;
    const held = this.held(c);
    const sum = (f: (typeof EXPORT_CELL_FIELDS)[number]): number => b[f] + c[f];
    return {
      servers: this.settings.export,
      stream: this.settings.exportStream,
      subjectPrefix: this.settings.exportSubjectPrefix,
      nodeId: this.nodeId,
      state: this.state,
      server: this.server,
      offered: sum('offered') + (this.postedEvents - c.received) + r.export_buffer_full + r.export_rejected + r.export_timeout + r.export_shutdown,
      published: sum('published'),
      retries: sum('retries'),
      acked: sum('acked'),
      duplicates: sum('duplicates'),
      lateAcks: sum('lateAcks'),
      ackTimeouts: sum('ackTimeouts'),
      unavailable: sum('unavailable'),
      dropped: {
        export_buffer_full: sum('export_buffer_full') + r.export_buffer_full,
        export_rejected: sum('export_rejected') + r.export_rejected,
        export_timeout: sum('export_timeout') + r.export_timeout,
        export_shutdown: sum('export_shutdown') + r.export_shutdown,
      },
      buffered: { events: held.events, bytes: held.bytes, maxEvents: this.settings.exportBufferEvents, maxBytes: this.settings.exportBufferBytes },
      inFlight: c.inFlight,
      window: this.settings.exportInFlight,
      connects: sum('connects'),
      disconnects: sum('disconnects'),
      threadRestarts: this.threadRestarts,
      lastError: this.lastError,
    };
  }

  /** Resolves once every event offered so far is settled (acked or dropped), or at `deadline` (ms since the epoch). */
  async flush(deadline: number): Promise<void> {
    for (;;) {
      if (this.deadWhy !== undefined || this.state === 'failed' || Date.now() >= deadline) return;
      if (this.held(this.cell.read()).events === 0) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(FLUSH_POLL_MS, Math.max(1, deadline - Date.now()))));
    }
  }

  /**
   * Stops the export: what is still held is dropped as export_shutdown (counted, so the
   * identity closes), later offers too, and the connection is closed.
   */
  close(): Promise<void> {
    this.closeRun ??= (async () => {
      this.closing = true;
      if (this.deadWhy === undefined) this.sendClose();
      else this.closedSignal();
      await this.closedDone;
      await this.afterClose?.();
    })();
    return this.closeRun;
  }

  /** @internal */
  onMessage(msg: FromExportThread): void {
    switch (msg.type) {
      case 'started':
        if (msg.error === undefined) this.startSignal.resolve();
        else this.startSignal.reject(msg.error.code !== undefined ? new ArmorfeedError(msg.error.code, msg.error.message) : new Error(msg.error.message));
        return;
      case 'status':
        this.state = msg.state;
        this.server = msg.server;
        this.lastError = msg.lastError;
        return;
      case 'closed':
        this.state = 'closed';
        this.server = '';
        this.closedSignal();
        return;
      case 'log':
        return;
    }
  }

  /**
   * @internal The thread running this export died. What it held and what was on its way to
   * it are dropped as export_rejected; its counts move to `base`. With `restarting`, a new
   * thread opens this export again (openMessage) with a fresh cell; else the export is
   * failed for good. Returns how many events were dropped.
   */
  onThreadLost(why: string, restarting: boolean): number {
    const c = this.cell.read();
    const transit = this.postedEvents - c.received;
    const lost = c.bufferedEvents + transit;
    for (const f of EXPORT_CELL_FIELDS) this.base[f] += c[f];
    // Those in transit were never offered there: offered here, and dropped with the rest.
    this.base.offered += transit;
    this.base.export_rejected += lost;
    this.base.bufferedEvents = 0;
    this.base.bufferedBytes = 0;
    this.base.inFlight = 0;
    this.base.received = 0;
    this.base.receivedBytes = 0;
    this.cell = ExportStatsCell.create();
    this.postedEvents = 0;
    this.postedBytes = 0;
    this.lastError = why;
    if (this.closing) {
      this.deadWhy = why;
      this.closedSignal();
    } else if (restarting) {
      this.threadRestarts++;
      this.state = 'connecting';
      this.server = '';
    } else {
      this.deadWhy = why;
      this.state = 'failed';
      this.startSignal.reject(new ArmorfeedError('ERR_EXPORT_STREAM', why));
      this.closedSignal();
    }
    return lost;
  }
}
