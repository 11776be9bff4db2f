/**
 * One node's export to NATS JetStream, run in the export thread (export.worker.ts): its
 * connection, stream check, buffer and publisher. The main thread's NodeExport (thread.ts)
 * numbers the events and posts copies of their bytes; they arrive here as offerPayloads.
 *
 *   NodeExport ──postMessage──> Exporter.offerPayloads ──> ExportBuffer ──> Publisher ──> NATS
 *                                                          (bounded)       (window, PubAcks)
 *
 * A slow or absent NATS fills the buffer, and past it events are dropped and counted
 * (export_buffer_full), never waited for.
 *
 * What is exported: every Alert, Log and daemon Message the node produced, as it produced
 * it, before the alert throttle and the clients' filters. Throttling is upstream's
 * protection of live gRPC watchers (karmor in a terminal) against a noisy container; the
 * stream is the durable record, bounded by its own limits (max age, max bytes), and a
 * consumer there can throttle for itself but cannot recover what was never stored. The
 * AlertThreshold notice, which exists only to tell a watcher that alerts were held back,
 * is therefore not exported.
 *
 * Connection states:
 *   connecting ──> checking ──> ready <──> disconnected      (the client reconnects by itself)
 *                      └──────> failed  (stream mismatch or error; checked again every 10 s)
 *   any ──close()──> closed
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { ArmorfeedError } from '../errors';
import { notShown, RateLimitedNotice } from '../messages';
import { warmUpPublishPath } from './warmUp';
import { ExportBuffer, newEntry, type ExportDropReason, type ExportEntry } from './buffer';
import { connectionOptions } from './connection';
import type { ExportConfig } from './options';
import { Publisher } from './publisher';
import { WakeableSleep } from './pause';
import { describeStream, ensureStream, isTransient, streamSettingsFor, type StreamSettings } from './stream';
import { makeNodeId, subjectsFor, type ExportStreamKind } from './subjects';
import { readUpdatedTime } from './updatedTime';
import type { ExportCellValues } from './statsCell';

export type ExportState = 'connecting' | 'checking' | 'ready' | 'disconnected' | 'failed' | 'closed';

export interface ExportSettings extends ExportConfig {
  cluster: string;
  host: string;
}

/** What the daemon log needs to offer: the export reports on itself there. */
export interface ExportLog {
  info(text: string): void;
  warn(text: string): void;
  error(text: string): void;
}

export interface ExportStats {
  servers: string;
  stream: string;
  subjectPrefix: string;
  /** `<host>@<start ms>-<4 hex>`: the Armorfeed-Node-Id header and the start of every Nats-Msg-Id of this run. */
  nodeId: string;
  state: ExportState;
  /** The server connected to now ('' when none). */
  server: string;
  /** Events handed to the export (Alerts, Logs, Messages): offered = acked + dropped + buffered.events. */
  offered: number;
  /** Publishes sent, retries included. */
  published: number;
  retries: number;
  /** Events JetStream acknowledged as stored. */
  acked: number;
  /** Of `acked`: acknowledged as duplicates of an earlier attempt that had been stored. */
  duplicates: number;
  /** Acks for events already settled (given up, or acked through another attempt): not counted again. */
  lateAcks: number;
  ackTimeouts: number;
  /** "Try again" answers: no responders, JetStream 503. */
  unavailable: number;
  dropped: Record<ExportDropReason, number>;
  /** Events held (waiting, waiting for a retry, or in flight) and their payload bytes. */
  buffered: { events: number; bytes: number; maxEvents: number; maxBytes: number };
  /** Publishes awaiting an ack, of `window`. */
  inFlight: number;
  window: number;
  connects: number;
  disconnects: number;
  /** Times the export thread died and was started again (thread.ts); its held events count export_rejected. */
  threadRestarts: number;
  lastError: string;
}

/**
 * How long start-up waits for NATS before serving without it. A reachable server answers
 * in milliseconds; one that is down costs the start this much, after which the export keeps
 * trying in the background while gRPC serves and events wait in the buffer.
 */
export const STARTUP_WAIT_MS = 2000;
/** Between two attempts at a first connection (later, the client's own reconnect policy: connection.ts). */
const CONNECT_RETRY_MS = 500;
/** Between two checks of a stream that was missing its subjects or could not be made. */
const FAILED_RECHECK_MS = 10_000;
/** Between two checks that JetStream answered "not now" (a cluster electing its leader). */
const TRANSIENT_RECHECK_MS = 1000;

export class Exporter {
  readonly nodeId: string;
  private readonly buffer: ExportBuffer;
  private readonly publisher: Publisher;
  private readonly subjects: Record<ExportStreamKind, string>;
  private readonly stream: StreamSettings;
  private state: ExportState = 'connecting';
  private nc: NatsConnection | undefined;
  private streamChecked = false;
  private connects = 0;
  private disconnects = 0;
  private lastError = '';
  private closed = false;
  private readonly rejectNotice = new RateLimitedNotice(1000);
  private readonly connectNotice = new RateLimitedNotice(10_000);
  /** Settles once: 'ready', 'unreachable' after a first failed connect, or a stream error (fails the start). */
  private startupSignal: { resolve: (outcome: 'ready' | 'unreachable') => void; reject: (err: unknown) => void } | undefined;
  private readonly startup: Promise<'ready' | 'unreachable'>;
  private readonly running: Promise<void>;
  /** Retry waits, cut short by close(). */
  private readonly idle = new WakeableSleep();

  constructor(
    private readonly settings: ExportSettings,
    private readonly log: ExportLog,
    nodeId: string = makeNodeId(settings.host),
  ) {
    this.nodeId = nodeId;
    this.subjects = subjectsFor(settings.exportSubjectPrefix, settings.cluster, settings.host);
    this.stream = streamSettingsFor(settings);
    this.buffer = new ExportBuffer(settings.exportBufferEvents, settings.exportBufferBytes);
    this.publisher = new Publisher(
      { nodeId: this.nodeId, subjects: this.subjects, window: settings.exportInFlight, ackTimeoutMs: settings.exportAckTimeoutMs, maxAttempts: settings.exportMaxAttempts },
      this.buffer,
      (entry, why) => this.onRejected(entry, why),
    );
    this.startup = new Promise<'ready' | 'unreachable'>((resolve, reject) => (this.startupSignal = { resolve, reject }));
    this.startup.catch(() => undefined);
    this.running = this.run();
  }

  /** Starts an export and waits for it (started()). */
  static async start(settings: ExportSettings, log: ExportLog, waitMs = STARTUP_WAIT_MS): Promise<Exporter> {
    const exporter = new Exporter(settings, log);
    await exporter.started(waitMs);
    return exporter;
  }

  /**
   * Waits up to `waitMs` for the stream to be ready. A stream that is there but does not
   * take our subjects, or cannot be created, rejects (and closes the export); a NATS that
   * does not answer does not: the export goes on trying.
   */
  async started(waitMs = STARTUP_WAIT_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      this.startup,
      new Promise<'unreachable'>((resolve) => (timer = setTimeout(() => resolve('unreachable'), waitMs))),
    ]).catch(async (err: unknown) => {
      await this.close();
      throw err;
    }).finally(() => clearTimeout(timer));
    if (outcome === 'unreachable') {
      this.log.warn(
        `export: NATS at ${this.settings.export} is not reachable (${this.lastError || `no answer in ${waitMs} ms`}); serving without it: events wait in the export buffer (up to ${this.settings.exportBufferEvents}) while the export keeps trying`,
      );
    }
  }

  /**
   * Offers events of one stream: event i is bytes[starts[i], ends[i]) with sequence number
   * seqs[i] (numbered by the caller, kept or not, so a consumer sees a drop as a gap).
   * `bytes` is the export's own copy: entries are views of it. Never waits.
   */
  offerPayloads(kind: ExportStreamKind, bytes: Uint8Array, starts: Uint32Array, ends: Uint32Array, seqs: Float64Array): void {
    const n = seqs.length;
    const refused = this.refusing();
    if (refused !== undefined) {
      this.buffer.refuse(n, refused);
      return;
    }
    for (let i = 0; i < n; i++) {
      const start = starts[i];
      const end = ends[i];
      if (!this.buffer.hasRoom(end - start)) {
        this.buffer.refuse(1, 'export_buffer_full');
        continue;
      }
      this.buffer.take(newEntry(kind, seqs[i], bytes.subarray(start, end), readUpdatedTime(bytes, start, end)));
    }
    this.publisher.pump();
  }

  /** Why an offer is refused outright now, if it is. */
  private refusing(): ExportDropReason | undefined {
    if (this.closed) return 'export_shutdown';
    if (this.state === 'failed') return 'export_rejected';
    return undefined;
  }

  /** The counters, as the export thread writes them to its shared cell (statsCell.ts); `received*` are the thread's. */
  counters(received: number, receivedBytes: number): ExportCellValues {
    const c = this.buffer.counts;
    const p = this.publisher.counts;
    return {
      received,
      receivedBytes,
      offered: c.offered,
      published: p.published,
      retries: p.retries,
      acked: c.acked,
      duplicates: c.duplicates,
      lateAcks: p.lateAcks,
      ackTimeouts: p.ackTimeouts,
      unavailable: p.unavailable,
      ...c.dropped,
      bufferedEvents: this.buffer.events,
      bufferedBytes: this.buffer.bytes,
      inFlight: this.publisher.inFlight,
      connects: this.connects,
      disconnects: this.disconnects,
    };
  }

  /** The connection state, the server connected to ('' when none) and the last error. */
  status(): { state: ExportState; server: string; lastError: string } {
    return { state: this.state, server: this.state === 'ready' || this.state === 'checking' ? (this.nc?.getServer() ?? '') : '', lastError: this.lastError };
  }

  /** Resolves once every event offered so far is settled (acked or dropped), or at `deadline` (ms since the epoch). */
  async flush(deadline: number): Promise<void> {
    while (this.buffer.events > 0 && Date.now() < deadline && this.state !== 'failed') {
      await sleep(Math.min(10, Math.max(1, deadline - Date.now())));
    }
  }

  /**
   * Stops the export: what is still held is dropped as export_shutdown (counted, so the
   * identity closes), later offers too, and the connection is closed.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.publisher.abandon();
    const left = this.buffer.dropWaiting('export_shutdown');
    const shutdownDrops = this.buffer.counts.dropped.export_shutdown;
    if (shutdownDrops > 0) this.log.warn(`export: ${shutdownDrops} events not acknowledged by JetStream before the grace period ended (dropped as export_shutdown${left > 0 ? `, ${left} of them never sent` : ''})`);
    this.state = 'closed';
    this.idle.wake();
    const nc = this.nc;
    this.nc = undefined;
    this.startupSignal?.reject(new ArmorfeedError('ERR_FEEDER_CLOSED', 'export closed'));
    if (nc === undefined) return;
    // Not waited for without a connection: a connect under way ends by its own timeout.
    await nc.close().catch(() => undefined);
    await this.running;
  }

  /** Connects, checks the stream, publishes; after a connection closes for good, starts over. */
  private async run(): Promise<void> {
    const options = connectionOptions(this.settings, `armorfeed ${this.settings.host}`);
    while (!this.closed) {
      this.state = 'connecting';
      let nc: NatsConnection;
      try {
        nc = await connect(options);
      } catch (err) {
        // Until a first connection, each attempt is this loop's (so close() can stop it
        // between two); once connected, the client reconnects by itself.
        this.noteError(err);
        this.startupSignal?.resolve('unreachable');
        const suppressed = this.connectNotice.take();
        if (suppressed >= 0) this.log.warn(`export: cannot connect to NATS at ${this.settings.export}: ${this.lastError}; trying again every ${CONNECT_RETRY_MS} ms${notShown(suppressed)}`);
        await this.idle.sleep(CONNECT_RETRY_MS);
        continue;
      }
      if (this.closed) {
        await nc.close().catch(() => undefined);
        return;
      }
      this.nc = nc;
      this.connects++;
      const watching = this.watchStatus(nc);
      await this.checkStream(nc);
      await nc.closed();
      await watching;
      this.publisher.detach();
      if (this.closed) return;
      this.nc = undefined;
      this.streamChecked = false;
      this.log.warn(`export: the NATS connection closed (${this.lastError || 'no reason given'}); connecting again`);
    }
  }

  private async checkStream(nc: NatsConnection): Promise<void> {
    if (this.state !== 'failed') this.state = 'checking';
    while (!this.closed && !nc.isClosed()) {
      try {
        const jsm = await jetstreamManager(nc);
        const check = await ensureStream(jsm, this.stream);
        if (this.closed) return;
        // Before the first real event goes out: see warmUp.ts. Bounded; a failure only leaves it cold.
        await warmUpPublishPath(nc, check.info.config.subjects ?? [], this.settings.exportInFlight).catch(() => undefined);
        if (this.closed) return;
        this.streamChecked = true;
        this.state = 'ready';
        this.log.info(`export: publishing to JetStream stream ${this.stream.name} ${check.created ? '(created)' : '(existing)'} on ${nc.getServer()} as ${this.subjects.logs.replace(/\.logs$/, '')}.*, node id ${this.nodeId}: ${describeStream(check.info)}`);
        this.startupSignal?.resolve('ready');
        this.publisher.attach(nc);
        return;
      } catch (err) {
        this.noteError(err);
        if (isTransient(err)) {
          await this.idle.sleep(TRANSIENT_RECHECK_MS);
          continue;
        }
        this.startupSignal?.reject(err);
        if (this.state !== 'failed') {
          this.state = 'failed';
          const code = err instanceof ArmorfeedError ? `${err.code}: ` : '';
          const dropped = this.buffer.dropWaiting('export_rejected');
          this.log.error(`export: ${code}${this.lastError}; events are dropped as export_rejected (${dropped} so far) until it is fixed; checking again every ${FAILED_RECHECK_MS / 1000} s`);
        }
        // Still failed (offers refused) while it checks again; logged again only after a recovery.
        await this.idle.sleep(FAILED_RECHECK_MS);
      }
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.closed) continue;
      if (s.type === 'disconnect') {
        this.disconnects++;
        this.publisher.detach();
        if (this.state === 'ready') this.state = 'disconnected';
        this.log.warn(`export: disconnected from NATS ${s.server}; events wait in the export buffer (${this.buffer.events} held, up to ${this.buffer.maxEvents}) and are sent again on reconnect`);
      } else if (s.type === 'reconnect') {
        this.connects++;
        if (this.streamChecked) {
          this.state = 'ready';
          this.publisher.attach(nc);
        }
        this.log.info(`export: reconnected to NATS ${s.server}; ${this.buffer.events} events to send`);
      } else if (s.type === 'error') {
        this.noteError(s.error);
      }
    }
  }

  private onRejected(entry: ExportEntry, why: string): void {
    this.lastError = `rejected: ${why}`;
    const suppressed = this.rejectNotice.take();
    if (suppressed >= 0) this.log.warn(`export: JetStream rejected ${entry.stream} #${entry.seq} (dropped as export_rejected): ${why}${notShown(suppressed)}`);
  }

  private noteError(err: unknown): void {
    this.lastError = err instanceof Error ? err.message : String(err);
  }

}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
