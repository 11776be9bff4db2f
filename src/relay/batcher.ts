/**
 * Upstream events to fan-out batches, without re-encoding: each event's protobuf bytes
 * (as grpc-js handed them over, its frame header stripped) are framed again and laid
 * back to back in an EncodedBatch, the format the encoders produce (encode/batch.ts):
 *
 *   arrivals in one tick:   node-a: [Alert][Log][Log]   node-b: [Log][Alert]
 *   one batch per node:     alerts.bytes [0|len|Alert]...   logs.bytes [0|len|Log][0|len|Log]...
 *
 * Arrivals are gathered until the end of the current turn of the event loop
 * (setImmediate), so a burst read from one socket is one batch and every client gets it
 * as one run (one queue entry, one write) instead of one per event.
 *
 * A batch holds the events of one node (their HostName), so per-node views are decided
 * per batch; the order of one node's events on one stream is the order they arrived in.
 * `ingestedUs` is the arrival time at the relay: client latency in /stats is the relay's
 * own share. `throttleKeys` are -1: the node already throttled its alerts.
 */
import type { NodeCounts } from '../stats';
import { ATTRS_PER_EVENT, type EncodedBatch, type EncodedStream } from '../encode';
import { GRPC_FRAME_HEADER, writeFrameHeader } from '../wire/framing';
import type { FanoutHub } from '../fanout';
import { MAX_BATCH_EVENTS, readEventBatch, type NodeEvents, type RelayEventBatch } from './eventBatch';
import { FIELD_HOST, FIELD_NAMESPACE, FIELD_OPERATION, FIELD_TYPE, fieldString, newEventFields, scanEvent, type EventKind } from './scan';

/** Events of one node and one stream gathered in this tick. */
interface PendingStream {
  messages: Buffer[];
  arrivedUs: number[];
  /** With attrs: namespace, operation, type per event (ATTRS_PER_EVENT each). */
  attrs: string[];
  bytes: number;
}

interface PendingNode {
  alerts: PendingStream;
  logs: PendingStream;
}


const emptyPending = (): PendingStream => ({ messages: [], arrivedUs: [], attrs: [], bytes: 0 });

/** Distinct HostNames counted one by one; past this, in the row `(other)` (a hostile upstream cannot grow the map). */
const MAX_NODES = 10_000;
export const OTHER_NODES = '(other)';

export class RelayBatcher {
  private pending = new Map<string, PendingNode>();
  private scheduled = false;
  /** Whether this tick's events carry filter attributes (decided at the tick's first event). */
  private withAttrs = false;
  private readonly fields = newEventFields();
  readonly nodes = new Map<string, NodeCounts>();
  batches = 0;
  /** Events whose bytes were not a well-formed message (dropped: clients could not decode them either). */
  malformed = 0;

  /**
   * `observer`: sees every batch and daemon message with its node after the hub (relay
   * --export offers them to the node's exporter).
   */
  constructor(
    private readonly hub: FanoutHub,
    private readonly observer?: { batch(batch: EncodedBatch, node: string): void; message(message: Buffer, node: string): void },
  ) {}

  /**
   * One event as it arrived. Returns false when its bytes are not a well-formed message
   * (dropped, counted as malformed here and by the caller per upstream).
   */
  add(kind: EventKind, message: Buffer, arrivedUs: number): boolean {
    const fields = this.fields;
    if (!scanEvent(kind, message, 0, message.length, fields)) {
      this.malformed++;
      return false;
    }
    const node = fieldString(message, fields, FIELD_HOST);
    this.count(node, kind);
    if (kind === 'messages') {
      // Rare (daemon messages): the hub frames and offers each one.
      this.hub.publishMessage(message, arrivedUs, node);
      this.observer?.message(message, node);
      return true;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.withAttrs = this.hub.hasFilteredSubscribers();
      setImmediate(() => this.flush());
    }
    let p = this.pending.get(node);
    if (p === undefined) {
      p = { alerts: emptyPending(), logs: emptyPending() };
      this.pending.set(node, p);
    }
    const s = p[kind];
    s.messages.push(message);
    s.arrivedUs.push(arrivedUs);
    s.bytes += message.length + GRPC_FRAME_HEADER;
    if (this.withAttrs) {
      s.attrs.push(fieldString(message, fields, FIELD_NAMESPACE), fieldString(message, fields, FIELD_OPERATION), fieldString(message, fields, FIELD_TYPE));
    }
    if (s.messages.length >= MAX_BATCH_EVENTS) this.flushNode(node, p);
    return true;
  }

  private count(node: string, kind: EventKind, n = 1): void {
    let c = this.nodes.get(node);
    if (c === undefined) {
      if (this.nodes.size >= MAX_NODES) node = OTHER_NODES;
      c = this.nodes.get(node) ?? { alerts: 0, logs: 0, messages: 0 };
      this.nodes.set(node, c);
    }
    c[kind] += n;
  }

  /** A batch from the JetStream thread: each node's events published, the malformed counted. */
  publishEvents(batch: RelayEventBatch): void {
    this.malformed += batch.malformed;
    for (const node of readEventBatch(batch)) this.publishNode(node, batch.strings, batch.attrsValid);
  }

  /**
   * Events gathered and framed elsewhere (the JetStream thread, eventBatch.ts), one node's
   * at a time: counted and published as add() and flush() would have, without a copy.
   */
  publishNode(events: NodeEvents, strings: string[], attrsValid: boolean): void {
    const { node, alerts, logs, messages } = events;
    if (messages.payloads.length > 0) {
      this.count(node, 'messages', messages.payloads.length);
      for (let i = 0; i < messages.payloads.length; i++) {
        const message = messages.payloads[i];
        this.hub.publishMessage(message, messages.arrivedUs[i], node);
        this.observer?.message(message, node);
      }
    }
    if (alerts.count === 0 && logs.count === 0) return;
    if (alerts.count > 0) this.count(node, 'alerts', alerts.count);
    if (logs.count > 0) this.count(node, 'logs', logs.count);
    this.publish(node, { alerts, logs, throttleKeys: new Int32Array(alerts.count).fill(-1), strings, logLines: '', attrsValid, failed: 0, failure: '', oversized: 0, oversizedBytes: 0 });
  }

  /** Publishes everything gathered so far (the tick's end, and shutdown). */
  flush(): void {
    this.scheduled = false;
    const pending = this.pending;
    if (pending.size === 0) return;
    this.pending = new Map();
    for (const [node, p] of pending) this.flushNode(node, p);
  }

  private flushNode(node: string, p: PendingNode): void {
    if (p.alerts.messages.length === 0 && p.logs.messages.length === 0) return;
    const strings: string[] = [];
    const interned = new Map<string, number>();
    const batch: EncodedBatch = {
      alerts: this.buildStream(p.alerts, strings, interned),
      logs: this.buildStream(p.logs, strings, interned),
      throttleKeys: new Int32Array(p.alerts.messages.length).fill(-1),
      strings,
      logLines: '',
      attrsValid: this.withAttrs,
      failed: 0,
      failure: '',
      oversized: 0,
      oversizedBytes: 0,
    };
    p.alerts = emptyPending();
    p.logs = emptyPending();
    this.publish(node, batch);
  }

  private publish(node: string, batch: EncodedBatch): void {
    this.batches++;
    this.hub.publishBatch(batch, node);
    this.observer?.batch(batch, node);
  }

  private buildStream(s: PendingStream, strings: string[], interned: Map<string, number>): EncodedStream {
    const count = s.messages.length;
    const bytes = Buffer.allocUnsafe(s.bytes);
    const ends = new Uint32Array(count);
    const attrs = new Uint16Array(s.attrs.length === count * ATTRS_PER_EVENT ? count * ATTRS_PER_EVENT : 0);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const m = s.messages[i];
      writeFrameHeader(bytes, at, m.length);
      m.copy(bytes, at + GRPC_FRAME_HEADER);
      at += m.length + GRPC_FRAME_HEADER;
      ends[i] = at;
    }
    for (let i = 0; i < attrs.length; i++) {
      const v = s.attrs[i];
      let k = interned.get(v);
      if (k === undefined) {
        k = strings.length;
        strings.push(v);
        interned.set(v, k);
      }
      attrs[i] = k;
    }
    return { count, bytes, ends, ingestedUs: Float64Array.from(s.arrivedUs), attrs };
  }
}
