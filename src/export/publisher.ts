/**
 * Asynchronous JetStream publishing with a bounded window, in the manner of the Go
 * client's PublishAsync: every publish carries a reply subject under one inbox of ours,
 * `<inbox>.<attempt>`, one wildcard subscription receives every PubAck, and one timer
 * sweeps the attempts whose ack is overdue. `js.publish()` is a request per message (a
 * promise, a timer and a mux entry each): measured on loopback it reached ~14,000
 * acked events/s against ~54,000 for this (bench/export.ts has the baseline).
 *
 * An attempt ends in one of:
 *   PubAck            the event settles as acked (`duplicate` when an earlier attempt was stored)
 *   PubAck error      503 (JetStream busy or electing): retried after a pause; else export_rejected
 *   no responders     nothing takes the subject now (the stream is gone or moving): retried after a pause
 *   timeout           retried; the exportMaxAttempts-th timeout on a live connection gives the
 *                     event up as export_timeout
 *   disconnect        retried on the next connection, not counted as a timeout (nothing
 *                     could have answered)
 * Retries carry the same Nats-Msg-Id, so within the stream's duplicate window an attempt
 * that was stored but whose ack was lost is not stored twice.
 *
 * An attempt that timed out or was cut off is remembered (`orphans`) until its event
 * settles: its ack may still come, late, and then settles the event if nothing else has.
 * The buffer settles an event once, so a late ack and the retry's ack never both count.
 */
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { ExportBuffer, ExportEntry } from './buffer';
import { Fifo } from './fifo';
import { exportHeaders, type ExportStreamKind } from './subjects';

export interface PublisherSettings {
  nodeId: string;
  subjects: Record<ExportStreamKind, string>;
  window: number;
  ackTimeoutMs: number;
  maxAttempts: number;
}

export interface PublisherCounts {
  /** Publishes sent (first attempts and retries). */
  published: number;
  /** Of those, retries of an event sent before. */
  retries: number;
  /** Acks that came for an event already settled (after its retry was acked, or it was given up). */
  lateAcks: number;
  /** Attempts that got no ack within exportAckTimeoutMs on a live connection. */
  ackTimeouts: number;
  /** Attempts answered "try again" (no responders, JetStream 503). */
  unavailable: number;
}

/** Why an event was rejected (for the daemon log). */
export type RejectListener = (entry: ExportEntry, why: string) => void;

interface Attempt {
  entry: ExportEntry;
  sentAt: number;
}

interface PubAckReply {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

const ERROR_KEY = Buffer.from('"error":');
const DUPLICATE_KEY = Buffer.from('"duplicate":true');

function includes(data: Uint8Array, what: Buffer): boolean {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf(what) >= 0;
}

/** A PubAck that is JSON and not an error (a stream name cannot hold a quote, so `"error":` is only ever the key). */
function isPlainPubAck(data: Uint8Array): boolean {
  return data.length > 1 && data[0] === 0x7b && !includes(data, ERROR_KEY);
}

/** First pause after a "try again" answer; doubles to MAX_PAUSE_MS while they go on. */
const FIRST_PAUSE_MS = 50;
const MAX_PAUSE_MS = 2000;

export class Publisher {
  readonly counts: PublisherCounts = { published: 0, retries: 0, lateAcks: 0, ackTimeouts: 0, unavailable: 0 };
  private readonly inbox = createInbox();
  private nextAttempt = 1;
  /** Attempts awaiting their ack: the window. */
  private readonly pending = new Map<number, Attempt>();
  /** Attempt ids in send order; the timeout sweep reads from the front. */
  private sendOrder = new Fifo<number>();
  /** Attempts that timed out or were cut off, whose event may still be settled by their late ack. */
  private readonly orphans = new Map<number, ExportEntry>();
  private subscribedOn: NatsConnection | undefined;
  private replies: Subscription | undefined;
  private nc: NatsConnection | undefined;
  private pausedUntil = 0;
  private pauseMs = FIRST_PAUSE_MS;
  private resumeTimer: NodeJS.Timeout | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly burst: number;

  constructor(
    private readonly settings: PublisherSettings,
    private readonly buffer: ExportBuffer,
    private readonly onReject: RejectListener,
  ) {
    this.burst = Math.max(1, Math.min(32, Math.floor(settings.window / 8)));
    // A quarter of the ack timeout: an overdue attempt is retried at most 25% late.
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(25, Math.min(250, settings.ackTimeoutMs / 4)));
    this.sweepTimer.unref();
  }

  /** Attempts awaiting an ack now. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Starts publishing on `nc` (a connection whose stream is checked). */
  attach(nc: NatsConnection): void {
    this.nc = nc;
    // One subscription per connection: the client renews it across reconnects, but a
    // connection closed for good (exporter.ts starts a new one) takes it along.
    if (this.subscribedOn !== nc) {
      this.subscribedOn = nc;
      this.replies = nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => { if (err === null) this.onReply(msg); } });
    }
    this.pump();
  }

  /**
   * The connection dropped: no ack can come on it, so every attempt in flight is retried on
   * the next connection (the subscription is renewed by the client). Not counted as timeouts.
   */
  detach(): void {
    this.nc = undefined;
    this.cutOffInFlight();
  }

  /**
   * Sends waiting events while the window has room. Cheap when there is nothing to do.
   * While publishes are in flight it waits for room for a burst (an eighth of the window,
   * up to 32): acks come a few at a time, and a publish per ack is a socket write per
   * ack (measured: a sixth of the export thread in writes at 20,000 events/s).
   */
  pump(): void {
    const nc = this.nc;
    if (nc === undefined || this.pending.size >= this.settings.window) return;
    if (this.pending.size > 0 && this.settings.window - this.pending.size < this.burst) return;
    if (this.pausedUntil > 0) {
      if (Date.now() < this.pausedUntil) return;
      this.pausedUntil = 0;
    }
    while (this.pending.size < this.settings.window) {
      const entry = this.buffer.next();
      if (entry === undefined) return;
      this.send(nc, entry);
    }
  }

  private send(nc: NatsConnection, entry: ExportEntry): void {
    const id = this.nextAttempt++;
    try {
      nc.publish(this.settings.subjects[entry.stream], entry.payload, {
        reply: `${this.inbox}.${id}`,
        headers: exportHeaders(this.settings.nodeId, entry.stream, entry.seq, entry.updatedTime),
      });
    } catch {
      // Closed or draining under us: the status watcher detaches; the event waits for the next connection.
      this.buffer.requeue(entry);
      this.nc = undefined;
      return;
    }
    if (entry.sends > 0) this.counts.retries++;
    entry.sends++;
    this.counts.published++;
    this.pending.set(id, { entry, sentAt: Date.now() });
    this.sendOrder.push(id);
  }

  private onReply(msg: Msg): void {
    const id = Number(msg.subject.slice(this.inbox.length + 1));
    const attempt = this.pending.get(id);
    let entry: ExportEntry | undefined;
    if (attempt !== undefined) {
      this.pending.delete(id);
      entry = attempt.entry;
    } else {
      entry = this.orphans.get(id);
      this.orphans.delete(id);
      if (entry === undefined) return;
    }
    const live = attempt !== undefined;
    const data = msg.data;
    // No responders comes as a status message without a body.
    if (data.length === 0 && msg.headers?.hasError === true) {
      this.retryLater(entry, live);
    } else if (isPlainPubAck(data)) {
      // The common case read without JSON.parse: {"stream":"S","seq":N[,"duplicate":true]}.
      if (!this.buffer.ack(entry, includes(data, DUPLICATE_KEY))) this.counts.lateAcks++;
      this.pauseMs = FIRST_PAUSE_MS;
    } else {
      let reply: PubAckReply;
      try {
        reply = msg.json<PubAckReply>();
      } catch {
        reply = { error: { description: `unreadable PubAck ${JSON.stringify(new TextDecoder().decode(msg.data.subarray(0, 200)))}` } };
      }
      if (reply.error === undefined) {
        if (!this.buffer.ack(entry, reply.duplicate === true)) this.counts.lateAcks++;
        this.pauseMs = FIRST_PAUSE_MS;
      } else if (reply.error.code === 503) {
        this.retryLater(entry, live);
      } else if (!entry.settled) {
        const why = `${reply.error.code ?? '?'}/${reply.error.err_code ?? '?'} ${reply.error.description ?? ''}`;
        if (this.buffer.drop(entry, 'export_rejected')) this.onReject(entry, why);
      }
    }
    this.pump();
  }

  /** A "try again" answer: the event is sent again after a pause that grows while the answers go on. */
  private retryLater(entry: ExportEntry, live: boolean): void {
    this.counts.unavailable++;
    // A late answer to an orphan says nothing about the retry that is already under way.
    if (!live) return;
    this.buffer.requeue(entry);
    if (this.pausedUntil === 0) {
      this.pausedUntil = Date.now() + this.pauseMs;
      this.pauseMs = Math.min(MAX_PAUSE_MS, this.pauseMs * 2);
      clearTimeout(this.resumeTimer);
      this.resumeTimer = setTimeout(() => this.pump(), this.pausedUntil - Date.now() + 1);
      this.resumeTimer.unref();
    }
  }

  /** Retries (or gives up) attempts whose ack is overdue; forgets orphans whose event has settled. */
  private sweep(): void {
    const now = Date.now();
    for (;;) {
      const id = this.sendOrder.peek();
      if (id === undefined) break;
      const attempt = this.pending.get(id);
      if (attempt === undefined) {
        this.sendOrder.shift();
        continue;
      }
      if (now - attempt.sentAt < this.settings.ackTimeoutMs) break;
      this.sendOrder.shift();
      this.pending.delete(id);
      this.counts.ackTimeouts++;
      const entry = attempt.entry;
      if (entry.settled) continue;
      this.orphans.set(id, entry);
      entry.timeouts++;
      if (entry.timeouts >= this.settings.maxAttempts) this.buffer.drop(entry, 'export_timeout');
      else this.buffer.requeue(entry);
    }
    for (const [id, entry] of this.orphans) if (entry.settled) this.orphans.delete(id);
    this.pump();
  }

  private cutOffInFlight(): void {
    for (const [id, attempt] of this.pending) {
      if (attempt.entry.settled) continue;
      this.orphans.set(id, attempt.entry);
      this.buffer.requeue(attempt.entry);
    }
    this.pending.clear();
    this.sendOrder = new Fifo<number>();
  }

  /** Shutdown: events still in flight are given up as export_shutdown; nothing is sent after. */
  abandon(): void {
    this.nc = undefined;
    for (const attempt of this.pending.values()) this.buffer.drop(attempt.entry, 'export_shutdown');
    this.pending.clear();
    this.orphans.clear();
    clearInterval(this.sweepTimer);
    clearTimeout(this.resumeTimer);
    this.replies?.unsubscribe();
  }
}
