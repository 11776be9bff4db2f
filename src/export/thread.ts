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
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EncodedBatch, EncodedStream } from '../encode';
import { ArmorfeedError } from '../errors';
import { GRPC_FRAME_HEADER } from '../wire/framing';
import type { ExportDropReason } from './buffer';
import { STARTUP_WAIT_MS, type ExportLog, type ExportSettings, type ExportState, type ExportStats } from './exporter';
import { ExportStatsCell, type ExportCellValues } from './statsCell';
import { makeNodeId, type ExportStreamKind } from './subjects';
import type { FromExportThread, ToExportThread } from './threadProtocol';

/** Between two looks at whether everything offered has settled (flush). */
const FLUSH_POLL_MS = 10;

export class ExportThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly exports = new Map<number, NodeExport>();
  private dead: string | undefined;
  private exited: Promise<void>;

  constructor(private readonly log: ExportLog) {
    // The export thread's young generation keeps V8's default (unlike the main thread's
    // 2 MiB): its scavenges pause nothing the gRPC clients wait for.
    this.worker = new Worker(path.resolve(__dirname, 'export.worker.js'));
    this.worker.unref();
    this.worker.on('message', (msg: FromExportThread) => this.onMessage(msg));
    this.worker.on('error', (err) => this.onDeath(`export thread failed: ${err.message}`));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.once('exit', (code) => this.onDeath(`export thread exited (code ${code})`));
  }

  /** Starts an export with `settings` on this thread; call started() on it to wait for NATS. */
  open(settings: ExportSettings, waitMs = STARTUP_WAIT_MS): NodeExport {
    const id = this.nextId++;
    const nodeId = makeNodeId(settings.host);
    const cell = ExportStatsCell.create();
    const e = new NodeExport(id, settings, nodeId, cell, (msg, transfer) => this.post(msg, transfer), () => this.closeOne(id));
    this.exports.set(id, e);
    this.post({ type: 'open', id, settings: { ...settings }, nodeId, cell: cell.buffer, waitMs });
    if (this.dead !== undefined) e.onDeath(this.dead);
    return e;
  }

  /** Closes every export (each flushed only as far as its own close does) and stops the thread. */
  async close(): Promise<void> {
    await Promise.all([...this.exports.values()].map((e) => e.close()));
    if (this.dead === undefined) {
      this.dead = 'closed';
      await this.worker.terminate();
    }
    await this.exited;
  }

  private post(msg: ToExportThread, transfer: ArrayBuffer[] = []): void {
    if (this.dead === undefined) this.worker.postMessage(msg, transfer);
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

  private onDeath(why: string): void {
    if (this.dead !== undefined) return;
    this.dead = why;
    this.log.error(`export: ${why}; the events it held are dropped as export_rejected and no more are exported`);
    for (const e of this.exports.values()) e.onDeath(why);
  }
}

/** One node's export (its subjects, node id, sequence numbers, buffer), run on an ExportThread. */
export class NodeExport {
  private readonly nextSeq: Record<ExportStreamKind, number> = { alerts: 0, logs: 0, messages: 0 };
  /** Events and bytes posted to the thread (received there, or in transit). */
  private postedEvents = 0;
  private postedBytes = 0;
  /** Dropped here, never posted. */
  private readonly refused: Record<ExportDropReason, number> = { export_buffer_full: 0, export_rejected: 0, export_timeout: 0, export_shutdown: 0 };
  private state: ExportState = 'connecting';
  private server = '';
  private lastError = '';
  private closing = false;
  private deadWhy: string | undefined;
  /** When the thread died: what was on its way to it, and all it held then (those and its buffer), dropped. */
  private transitAtDeath = 0;
  private lostAtDeath = 0;
  private startSignal!: { resolve: () => void; reject: (err: unknown) => void };
  private readonly startup: Promise<void>;
  private closedSignal!: () => void;
  private readonly closedDone: Promise<void>;

  /** @internal Made by ExportThread.open. */
  constructor(
    private readonly id: number,
    private readonly settings: ExportSettings,
    readonly nodeId: string,
    private readonly cell: ExportStatsCell,
    private readonly post: (msg: ToExportThread, transfer?: ArrayBuffer[]) => void,
    private readonly sendClose: () => void,
  ) {
    this.startup = new Promise<void>((resolve, reject) => (this.startSignal = { resolve, reject }));
    this.startup.catch(() => undefined);
    this.closedDone = new Promise<void>((resolve) => (this.closedSignal = resolve));
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
    const bytes = encoded.slice();
    this.send('messages', bytes, Uint32Array.of(0), Uint32Array.of(bytes.length), Float64Array.of(seq));
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
    const starts = new Uint32Array(s.count);
    const ends = new Uint32Array(s.count);
    const seqs = new Float64Array(s.count);
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
      starts[kept] = start;
      ends[kept] = end;
      seqs[kept] = seq;
      kept++;
    }
    if (kept === 0) return;
    // One copy per batch, from its first kept event to its last.
    const from = starts[0];
    const copy = s.bytes.slice(from, ends[kept - 1]);
    for (let i = 0; i < kept; i++) {
      starts[i] -= from;
      ends[i] -= from;
    }
    this.send(kind, copy, starts.subarray(0, kept), ends.subarray(0, kept), seqs.subarray(0, kept));
  }

  private send(kind: ExportStreamKind, bytes: Uint8Array, starts: Uint32Array, ends: Uint32Array, seqs: Float64Array): void {
    this.postedEvents += seqs.length;
    this.postedBytes += bytes.length;
    this.post({ type: 'offer', id: this.id, kind, bytes, starts, ends, seqs }, [bytes.buffer as ArrayBuffer, starts.buffer as ArrayBuffer, ends.buffer as ArrayBuffer, seqs.buffer as ArrayBuffer]);
  }

  private hasRoom(events: number, bytes: number, size: number): boolean {
    return events < this.settings.exportBufferEvents && bytes + size <= this.settings.exportBufferBytes;
  }

  /** Held in the thread's buffer plus in transit to it. */
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
    const inTransit = this.deadWhy === undefined ? this.postedEvents - c.received : this.transitAtDeath;
    const inTransitBytes = this.deadWhy === undefined ? this.postedBytes - c.receivedBytes : 0;
    const lost = this.lostAtDeath;
    const r = this.refused;
    return {
      servers: this.settings.export,
      stream: this.settings.exportStream,
      subjectPrefix: this.settings.exportSubjectPrefix,
      nodeId: this.nodeId,
      state: this.state,
      server: this.server,
      offered: c.offered + inTransit + r.export_buffer_full + r.export_rejected + r.export_timeout + r.export_shutdown,
      published: c.published,
      retries: c.retries,
      acked: c.acked,
      duplicates: c.duplicates,
      lateAcks: c.lateAcks,
      ackTimeouts: c.ackTimeouts,
      unavailable: c.unavailable,
      dropped: {
        export_buffer_full: c.export_buffer_full + r.export_buffer_full,
        export_rejected: c.export_rejected + r.export_rejected + lost,
        export_timeout: c.export_timeout + r.export_timeout,
        export_shutdown: c.export_shutdown + r.export_shutdown,
      },
      buffered: {
        events: this.deadWhy === undefined ? c.bufferedEvents + inTransit : 0,
        bytes: this.deadWhy === undefined ? c.bufferedBytes + inTransitBytes : 0,
        maxEvents: this.settings.exportBufferEvents,
        maxBytes: this.settings.exportBufferBytes,
      },
      inFlight: this.deadWhy === undefined ? c.inFlight : 0,
      window: this.settings.exportInFlight,
      connects: c.connects,
      disconnects: c.disconnects,
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
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      if (this.deadWhy === undefined) this.sendClose();
      else this.closedSignal();
    }
    await this.closedDone;
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

  /** @internal The thread is gone: what it held and what was on its way are lost, counted export_rejected. */
  onDeath(why: string): void {
    if (this.deadWhy !== undefined) return;
    const c = this.cell.read();
    this.transitAtDeath = this.postedEvents - c.received;
    this.lostAtDeath = c.bufferedEvents + this.transitAtDeath;
    this.deadWhy = why;
    this.lastError = why;
    if (this.state !== 'closed') this.state = 'failed';
    this.startSignal.reject(new ArmorfeedError('ERR_EXPORT_STREAM', why));
    this.closedSignal();
  }
}
