/**
 * The fan-out: every encoded batch is offered to every subscriber of its stream as
 * runs of the same shared bytes, never re-encoded per client. A full queue drops for
 * that client only; nothing here ever waits for a client.
 */
import { ATTR_NAMESPACE, ATTRS_PER_EVENT, type EncodedBatch, type EncodedStream } from '../encode';
import { AlertThrottle, NOTICE_OPERATION, NOTICE_TYPE, ThrottleDecision, type ThrottleSettings } from '../throttle';
import { frameMessage, GRPC_FRAME_HEADER } from '../wire/framing';
import type { StreamKind } from '../wire/proto';
import { Subscriber } from './subscriber';

export interface HubCounters {
  alertsEncoded: number;
  logsEncoded: number;
  messagesPublished: number;
  throttled: number;
  notices: number;
}

const RETAIN_CLOSED = 256;

export class FanoutHub {
  private readonly subscribers: Record<StreamKind, Set<Subscriber>> = {
    alerts: new Set(),
    logs: new Set(),
    messages: new Set(),
  };
  /**
   * Subscribers fed by something else (a relay client replaying from JetStream on its own
   * consumer): counted, listed, drained and shut down with the rest, never offered this
   * hub's batches.
   */
  private readonly ownFeed = new Set<Subscriber>();
  private readonly closed: Subscriber[] = [];
  private readonly throttle: AlertThrottle | undefined;
  readonly counters: HubCounters = { alertsEncoded: 0, logsEncoded: 0, messagesPublished: 0, throttled: 0, notices: 0 };
  private nextId = 1;
  private shuttingDown = false;
  private readonly listeners: ((kind: StreamKind, delta: number) => void)[] = [];
  private readonly slowListeners: ((sub: Subscriber) => void)[] = [];

  /**
   * `localNode`: the HostName of what this process encodes itself (serve's --host); a
   * batch published without a node is this node's. Per-node views (x-armorfeed-node)
   * compare against it.
   */
  constructor(
    throttleSettings: ThrottleSettings,
    private readonly localNode = '',
  ) {
    this.throttle = throttleSettings.enabled ? new AlertThrottle(throttleSettings) : undefined;
  }

  newId(stream: StreamKind): string {
    return `${stream}-${this.nextId++}`;
  }

  /** `ownFeed`: the subscriber is fed elsewhere (see `ownFeed`); this hub only accounts for it. */
  add(sub: Subscriber, ownFeed = false): void {
    if (this.shuttingDown) sub.beginShutdown();
    (ownFeed ? this.ownFeed : this.subscribers[sub.info.stream]).add(sub);
    sub.queue.slow.onCrossing(() => {
      for (const l of this.slowListeners) l(sub);
    });
    for (const l of this.listeners) l(sub.info.stream, 1);
  }

  remove(sub: Subscriber): void {
    if (!this.subscribers[sub.info.stream].delete(sub) && !this.ownFeed.delete(sub)) return;
    sub.close();
    this.closed.push(sub);
    if (this.closed.length > RETAIN_CLOSED) this.closed.shift();
    for (const l of this.listeners) l(sub.info.stream, -1);
  }

  /** Called with +1/-1 as Watch* streams open and close (wait-clients, messages). */
  onSubscribersChanged(listener: (kind: StreamKind, delta: number) => void): void {
    this.listeners.push(listener);
  }

  /** Called when a client's queue overflows, once per crossing (SlowNotifier). */
  onSlowClient(listener: (sub: Subscriber) => void): void {
    this.slowListeners.push(listener);
  }

  count(kind?: StreamKind): number {
    let own = 0;
    for (const s of this.ownFeed) if (kind === undefined || s.info.stream === kind) own++;
    if (kind !== undefined) return this.subscribers[kind].size + own;
    return this.subscribers.alerts.size + this.subscribers.logs.size + this.subscribers.messages.size + own;
  }

  /** Open subscribers first, then recently closed ones (kept for stats). */
  all(): Subscriber[] {
    return [...this.subscribers.messages, ...this.subscribers.alerts, ...this.subscribers.logs, ...this.ownFeed, ...this.closed];
  }

  openSubscribers(): Subscriber[] {
    return [...this.subscribers.messages, ...this.subscribers.alerts, ...this.subscribers.logs, ...this.ownFeed];
  }

  /**
   * Offers a batch to every alert and log subscriber. `node` is the HostName of every
   * event in it (a relay publishes one batch per node); absent, the local node's.
   */
  publishBatch(batch: EncodedBatch, node: string = this.localNode): void {
    this.counters.alertsEncoded += batch.alerts.count;
    this.counters.logsEncoded += batch.logs.count;
    if (batch.alerts.count > 0) this.publishAlerts(batch, node);
    if (batch.logs.count > 0) this.offerRange(this.subscribers.logs, batch, batch.logs, 0, batch.logs.count, node);
  }

  private publishAlerts(batch: EncodedBatch, node: string): void {
    const stream = batch.alerts;
    const keys = batch.throttleKeys;
    const subs = this.subscribers.alerts;
    if (this.throttle === undefined) {
      this.offerRange(subs, batch, stream, 0, stream.count, node);
      return;
    }
    let runStart = 0;
    for (let i = 0; i < stream.count; i++) {
      const k = keys[i];
      if (k < 0) continue;
      const decision = this.throttle.check(batch.strings[k], stream.ingestedUs[i]);
      if (decision === ThrottleDecision.Pass) continue;
      this.offerRange(subs, batch, stream, runStart, i, node);
      runStart = i + 1;
      if (decision === ThrottleDecision.Drop) {
        this.counters.throttled++;
        for (const s of subs) s.queue.countThrottled(1);
      } else {
        this.counters.notices++;
        this.offerNotice(this.throttle, subs, batch, stream, i, node);
      }
    }
    this.offerRange(subs, batch, stream, runStart, stream.count, node);
  }

  /** The alert that crosses the threshold goes out as the AlertThreshold notice (upstream 2.6). */
  private offerNotice(throttle: AlertThrottle, subs: Set<Subscriber>, batch: EncodedBatch, stream: EncodedStream, i: number, node: string): void {
    const start = (i === 0 ? 0 : stream.ends[i - 1]) + GRPC_FRAME_HEADER;
    const framed = throttle.thresholdNotice(stream.bytes.subarray(start, stream.ends[i]));
    const ns = batch.attrsValid ? batch.strings[stream.attrs[i * ATTRS_PER_EVENT + ATTR_NAMESPACE]] : '';
    for (const s of subs) {
      if (!s.acceptsNode(node) || (batch.attrsValid && !s.accepts(ns, NOTICE_OPERATION, NOTICE_TYPE))) s.queue.countFiltered(1);
      else if (s.queue.offerOne(framed, stream.ingestedUs[i])) s.pump();
    }
  }

  /** True while some subscriber asks for server-side filtering (the encoders then fill attrs). */
  hasFilteredSubscribers(): boolean {
    for (const s of this.subscribers.alerts) if (s.hasFilter) return true;
    for (const s of this.subscribers.logs) if (s.hasFilter) return true;
    return false;
  }

  private offerRange(subs: Set<Subscriber>, batch: EncodedBatch, stream: EncodedStream, from: number, to: number, node: string): void {
    if (from >= to) return;
    for (const s of subs) {
      if (!s.acceptsNode(node)) {
        // A per-node view: the whole range is another node's.
        s.queue.countFiltered(to - from);
        continue;
      }
      // A batch encoded before the first filtered client arrived has no attrs: it passes
      // unfiltered (armorfeed log filters client-side as well).
      if (!s.hasFilter || !batch.attrsValid) {
        s.queue.offerRun(stream, from, to);
      } else {
        // Split the range into runs this subscriber accepts; the rest count as filtered.
        let runStart = -1;
        for (let i = from; i < to; i++) {
          const ok = s.acceptsEvent(batch.strings, stream.attrs, i);
          if (ok && runStart < 0) runStart = i;
          if (!ok) {
            s.queue.countFiltered(1);
            if (runStart >= 0) s.queue.offerRun(stream, runStart, i);
            runStart = -1;
          }
        }
        if (runStart >= 0) s.queue.offerRun(stream, runStart, to);
      }
      s.pump();
    }
  }

  /** Publishes one Message (already encoded) of node `node` (absent: the local node) to every WatchMessages stream. */
  publishMessage(encoded: Uint8Array, ingestedUs: number, node: string = this.localNode): void {
    this.counters.messagesPublished++;
    if (this.subscribers.messages.size === 0) return;
    const framed = frameMessage(encoded);
    for (const s of this.subscribers.messages) {
      // A stream the shutdown is ending is not offered the daemon's lines about it.
      if (!s.accepting) continue;
      if (!s.acceptsNode(node)) s.queue.countFiltered(1);
      else if (s.queue.offerOne(framed, ingestedUs)) s.pump();
    }
  }

  /** Shutdown has begun: see Subscriber.beginShutdown. */
  beginShutdown(): void {
    this.shuttingDown = true;
    for (const s of this.openSubscribers()) s.beginShutdown();
  }

  /** Resolves when every open subscriber's queue has been written out (shutdown). */
  async drainAll(): Promise<void> {
    await Promise.all(this.openSubscribers().map((s) => s.drained()));
  }
}
