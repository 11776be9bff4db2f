/**
 * What the JetStream thread hands the main thread (relay --from): the events one turn of
 * its loop gathered for one target (the shared feed, or one replay), as ONE ArrayBuffer
 * transferred with one postMessage, already laid out as the fan-out sends them, so the
 * main thread only makes views of it (no copy, no scan, nothing per event but the
 * sequence check):
 *
 *   buffer  [framed events, grouped by node then kind | pad to 8 | arrivedUs f64 x events |
 *            seqs f64 x seqCount | groups u32 x GROUP_SLOTS*groups | ends u32 x events |
 *            attrs u16 x 3*events (or none) | seqNodes u16 x seqCount | seqKinds u8 x seqCount]
 *
 *   framed events:  node-a alerts [0|len|Alert][0|len|Alert]  node-a logs [0|len|Log]...  node-b ...
 *   groups[g]:      kind, node (index into `nodes`), first event, event count, byte start, byte end
 *   ends[i]:        end of event i's frame, from its group's byte start (an EncodedStream's `ends`)
 *   attrs:          namespace, operation, type of event i, indexes into `strings` (server-side filters)
 *   seq*:           every message of a known kind, in arrival order (malformed ones too): its
 *                   Armorfeed-Node-Id (index into `nodeIds`), kind and Armorfeed-Seq (NaN when
 *                   absent), for the per-node sequence check on the main thread (sequence.ts).
 *                   Only the shared feed fills them; a replay's events are not checked.
 *
 * Events of one node and kind keep their arrival order in their group, so a group is one
 * run for every client (one queue entry, one write), as RelayBatcher's batches are. A
 * batch holds at most MAX_BATCH_EVENTS events, which keeps attribute indexes within 16 bits.
 *
 * EventBatchBuilder (the thread) writes it; readEventBatch (the main thread) makes the views.
 */
import { ATTRS_PER_EVENT, type EncodedStream } from '../encode';
import { GRPC_FRAME_HEADER, writeFrameHeader } from '../wire/framing';
import { FIELD_HOST, FIELD_NAMESPACE, FIELD_OPERATION, FIELD_TYPE, fieldString, newEventFields, scanEvent, type EventKind } from './scan';

/** Most events in one batch: attribute indexes are 16-bit (3 distinct strings per event at worst). */
export const MAX_BATCH_EVENTS = 16_384;
/** Past this many payload bytes a batch is posted without waiting for the turn's end. */
export const MAX_BATCH_BYTES = 8 * 1024 * 1024;

/** Slots of one group in `groups`. */
export const GroupSlot = { KIND: 0, NODE: 1, FIRST: 2, COUNT: 3, BYTE_START: 4, BYTE_END: 5 } as const;
export const GROUP_SLOTS = 6;

export const KIND_CODES: readonly EventKind[] = ['alerts', 'logs', 'messages'];
const KIND_CODE: Record<EventKind, number> = { alerts: 0, logs: 1, messages: 2 };
/** seqNodes value of a message without Armorfeed-Node-Id. */
const NO_NODE_ID = 0xffff;

/** One post of events (thread -> main). Only `buffer` is transferred; the rest is cloned (small). */
export interface RelayEventBatch {
  buffer: ArrayBuffer;
  /** Framed event bytes at the buffer's start. */
  bytes: number;
  events: number;
  groups: number;
  seqCount: number;
  /** Whether `attrs` were filled (a client with a server-side filter was there when the batch began). */
  attrsValid: boolean;
  /** HostName of each node index. */
  nodes: string[];
  /** Attribute values the `attrs` indexes point at. */
  strings: string[];
  /** Armorfeed-Node-Id of each seqNodes index. */
  nodeIds: string[];
  /** Messages whose bytes were not a well-formed event: dropped (malformed_upstream). */
  malformed: number;
  /** Messages on a subject whose last token is not alerts, logs or messages: dropped. */
  unknownSubject: number;
}

interface Sections {
  arrivedUs: number;
  seqs: number;
  groups: number;
  ends: number;
  attrs: number;
  seqNodes: number;
  seqKinds: number;
  total: number;
}

/** Where each section starts: the one layout both sides compute. */
function sections(bytes: number, events: number, groups: number, seqCount: number, attrs: boolean): Sections {
  const arrivedUs = Math.ceil(bytes / 8) * 8;
  const seqs = arrivedUs + 8 * events;
  const groupsAt = seqs + 8 * seqCount;
  const ends = groupsAt + 4 * GROUP_SLOTS * groups;
  const attrsAt = ends + 4 * events;
  const seqNodes = attrsAt + (attrs ? 2 * ATTRS_PER_EVENT * events : 0);
  const seqKinds = seqNodes + 2 * seqCount;
  return { arrivedUs, seqs, groups: groupsAt, ends, attrs: attrsAt, seqNodes, seqKinds, total: seqKinds + seqCount };
}

/** Events of one node and kind, gathered. */
interface PendingGroup {
  payloads: Uint8Array[];
  arrivedUs: number[];
  /** ATTRS_PER_EVENT strings per event, when attrs are wanted. */
  attrs: string[];
}

/**
 * The thread's side: gathers a turn's messages, then lays them out (take). Each payload is
 * copied once, into the batch; the message buffers are let go when the batch is taken.
 */
export class EventBatchBuilder {
  private nodes = new Map<string, PendingGroup[]>();
  private count = 0;
  private payloadBytes = 0;
  private attrs = false;
  private readonly fields = newEventFields();
  private seqNodes: number[] = [];
  private seqKinds: number[] = [];
  private seqs: number[] = [];
  private nodeIds = new Map<string, number>();
  private malformed = 0;
  private unknownSubject = 0;

  /** `attrsWanted` is asked at each batch's first event (see RelayEventBatch.attrsValid). */
  constructor(private readonly attrsWanted: () => boolean) {}

  /** Events and sequence entries held. */
  get size(): number {
    return this.count + this.seqs.length + this.malformed + this.unknownSubject;
  }

  /** Whether the batch should be posted now rather than at the turn's end. */
  get full(): boolean {
    return this.count >= MAX_BATCH_EVENTS || this.payloadBytes >= MAX_BATCH_BYTES || this.seqs.length >= MAX_BATCH_EVENTS;
  }

  /** One event as it arrived. Returns false (and counts it) when its bytes are not a well-formed message. */
  add(kind: EventKind, payload: Uint8Array, arrivedUs: number): boolean {
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const fields = this.fields;
    if (!scanEvent(kind, buf, 0, buf.length, fields)) {
      this.malformed++;
      return false;
    }
    if (this.count === 0) this.attrs = this.attrsWanted();
    const node = fieldString(buf, fields, FIELD_HOST);
    let groups = this.nodes.get(node);
    if (groups === undefined) {
      groups = [emptyGroup(), emptyGroup(), emptyGroup()];
      this.nodes.set(node, groups);
    }
    const g = groups[KIND_CODE[kind]];
    g.payloads.push(payload);
    g.arrivedUs.push(arrivedUs);
    if (this.attrs) g.attrs.push(fieldString(buf, fields, FIELD_NAMESPACE), fieldString(buf, fields, FIELD_OPERATION), fieldString(buf, fields, FIELD_TYPE));
    this.count++;
    this.payloadBytes += payload.length;
    return true;
  }

  /** A message on a subject of no known kind (dropped, counted). */
  addUnknownSubject(): void {
    this.unknownSubject++;
  }

  /** One message's Armorfeed-Node-Id ('' when absent) and Armorfeed-Seq (NaN when absent), in arrival order. */
  addSequence(nodeId: string, kind: EventKind, seq: number): void {
    let index = NO_NODE_ID;
    if (nodeId !== '') {
      const known = this.nodeIds.get(nodeId);
      if (known !== undefined) index = known;
      else {
        index = this.nodeIds.size;
        this.nodeIds.set(nodeId, index);
      }
    }
    this.seqNodes.push(index);
    this.seqKinds.push(KIND_CODE[kind]);
    this.seqs.push(seq);
  }

  /** Lays out what was gathered and starts a new batch; undefined when nothing was. */
  take(): { batch: RelayEventBatch; transfer: ArrayBuffer[] } | undefined {
    if (this.size === 0) return undefined;
    let groupCount = 0;
    let bytes = 0;
    for (const groups of this.nodes.values()) {
      for (const g of groups) {
        if (g.payloads.length === 0) continue;
        groupCount++;
        bytes += g.payloads.length * GRPC_FRAME_HEADER;
      }
    }
    bytes += this.payloadBytes;
    const events = this.count;
    const seqCount = this.seqs.length;
    const at = sections(bytes, events, groupCount, seqCount, this.attrs);
    // Its own ArrayBuffer, uninitialised (every byte is written below), and transferable.
    const out = Buffer.allocUnsafeSlow(at.total);
    const buffer = out.buffer as ArrayBuffer;
    const arrivedUs = new Float64Array(buffer, at.arrivedUs, events);
    const groupsOut = new Uint32Array(buffer, at.groups, GROUP_SLOTS * groupCount);
    const ends = new Uint32Array(buffer, at.ends, events);
    const attrs = this.attrs ? new Uint16Array(buffer, at.attrs, ATTRS_PER_EVENT * events) : undefined;
    const strings: string[] = [];
    const interned = new Map<string, number>();
    const nodes: string[] = [];
    let event = 0;
    let offset = 0;
    let group = 0;
    for (const [node, groups] of this.nodes) {
      const nodeIndex = nodes.length;
      nodes.push(node);
      for (let kind = 0; kind < groups.length; kind++) {
        const g = groups[kind];
        const n = g.payloads.length;
        if (n === 0) continue;
        const start = offset;
        for (let i = 0; i < n; i++) {
          const p = g.payloads[i];
          writeFrameHeader(out, offset, p.length);
          out.set(p, offset + GRPC_FRAME_HEADER);
          offset += p.length + GRPC_FRAME_HEADER;
          ends[event + i] = offset - start;
          arrivedUs[event + i] = g.arrivedUs[i];
        }
        if (attrs !== undefined) {
          for (let i = 0; i < n * ATTRS_PER_EVENT; i++) {
            const v = g.attrs[i];
            let k = interned.get(v);
            if (k === undefined) {
              k = strings.length;
              strings.push(v);
              interned.set(v, k);
            }
            attrs[event * ATTRS_PER_EVENT + i] = k;
          }
        }
        const slot = group * GROUP_SLOTS;
        groupsOut[slot + GroupSlot.KIND] = kind;
        groupsOut[slot + GroupSlot.NODE] = nodeIndex;
        groupsOut[slot + GroupSlot.FIRST] = event;
        groupsOut[slot + GroupSlot.COUNT] = n;
        groupsOut[slot + GroupSlot.BYTE_START] = start;
        groupsOut[slot + GroupSlot.BYTE_END] = offset;
        event += n;
        group++;
      }
    }
    new Float64Array(buffer, at.seqs, seqCount).set(this.seqs);
    new Uint16Array(buffer, at.seqNodes, seqCount).set(this.seqNodes);
    new Uint8Array(buffer, at.seqKinds, seqCount).set(this.seqKinds);
    const batch: RelayEventBatch = {
      buffer,
      bytes,
      events,
      groups: groupCount,
      seqCount,
      attrsValid: this.attrs,
      nodes,
      strings,
      nodeIds: [...this.nodeIds.keys()],
      malformed: this.malformed,
      unknownSubject: this.unknownSubject,
    };
    this.nodes = new Map();
    this.count = 0;
    this.payloadBytes = 0;
    this.seqNodes = [];
    this.seqKinds = [];
    this.seqs = [];
    this.nodeIds = new Map();
    this.malformed = 0;
    this.unknownSubject = 0;
    return { batch, transfer: [buffer] };
  }
}

const emptyGroup = (): PendingGroup => ({ payloads: [], arrivedUs: [], attrs: [] });

/** One node's events in a batch, as the fan-out takes them (views of the batch's buffer). */
export interface NodeEvents {
  node: string;
  alerts: EncodedStream;
  logs: EncodedStream;
  /** Daemon messages: each one's protobuf (frame header stripped) and arrival time. */
  messages: { payloads: Buffer[]; arrivedUs: number[] };
}

/** The main thread's side: the batch's events per node, in the order the batch holds them. */
export function readEventBatch(batch: RelayEventBatch): NodeEvents[] {
  const buffer = batch.buffer;
  const at = sections(batch.bytes, batch.events, batch.groups, batch.seqCount, batch.attrsValid);
  const groups = new Uint32Array(buffer, at.groups, GROUP_SLOTS * batch.groups);
  const ends = new Uint32Array(buffer, at.ends, batch.events);
  const arrivedUs = new Float64Array(buffer, at.arrivedUs, batch.events);
  const attrs = batch.attrsValid ? new Uint16Array(buffer, at.attrs, ATTRS_PER_EVENT * batch.events) : new Uint16Array(0);
  const out: NodeEvents[] = [];
  let current: NodeEvents | undefined;
  for (let g = 0; g < batch.groups; g++) {
    const slot = g * GROUP_SLOTS;
    const node = batch.nodes[groups[slot + GroupSlot.NODE]];
    if (current === undefined || current.node !== node) {
      current = { node, alerts: emptyStream(), logs: emptyStream(), messages: { payloads: [], arrivedUs: [] } };
      out.push(current);
    }
    const first = groups[slot + GroupSlot.FIRST];
    const count = groups[slot + GroupSlot.COUNT];
    const start = groups[slot + GroupSlot.BYTE_START];
    const bytes = Buffer.from(buffer, start, groups[slot + GroupSlot.BYTE_END] - start);
    const kind = KIND_CODES[groups[slot + GroupSlot.KIND]];
    if (kind === 'messages') {
      for (let i = 0; i < count; i++) {
        const from = (i === 0 ? 0 : ends[first + i - 1]) + GRPC_FRAME_HEADER;
        current.messages.payloads.push(bytes.subarray(from, ends[first + i]));
        current.messages.arrivedUs.push(arrivedUs[first + i]);
      }
      continue;
    }
    current[kind] = {
      count,
      bytes,
      ends: ends.subarray(first, first + count),
      ingestedUs: arrivedUs.subarray(first, first + count),
      attrs: batch.attrsValid ? attrs.subarray(first * ATTRS_PER_EVENT, (first + count) * ATTRS_PER_EVENT) : attrs,
    };
  }
  return out;
}

/** The batch's sequence entries, in arrival order (see the layout above). */
export function forEachSequence(batch: RelayEventBatch, visit: (nodeId: string, kind: EventKind, seq: number) => void): void {
  if (batch.seqCount === 0) return;
  const at = sections(batch.bytes, batch.events, batch.groups, batch.seqCount, batch.attrsValid);
  const seqs = new Float64Array(batch.buffer, at.seqs, batch.seqCount);
  const nodes = new Uint16Array(batch.buffer, at.seqNodes, batch.seqCount);
  const kinds = new Uint8Array(batch.buffer, at.seqKinds, batch.seqCount);
  for (let i = 0; i < batch.seqCount; i++) {
    visit(nodes[i] === NO_NODE_ID ? '' : batch.nodeIds[nodes[i]], KIND_CODES[kinds[i]], seqs[i]);
  }
}

const emptyStream = (): EncodedStream => ({ count: 0, bytes: Buffer.alloc(0), ends: new Uint32Array(0), ingestedUs: new Float64Array(0), attrs: new Uint16Array(0) });
