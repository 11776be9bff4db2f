/**
 * What the relay reads of each JetStream message, without the NATS client's per-message
 * strings: the delivery (stream and consumer sequences, pending) from the reply subject,
 * the kind from the subject's last token, and the Armorfeed-Seq and Armorfeed-Node-Id
 * headers, all read from the protocol bytes the client already holds.
 *
 * Why: the client's Msg decodes its subject, reply and headers with a TextDecoder each
 * time they are asked for, and its JsMsg parses the reply into an object: measured on a
 * 300,000-message stream (one thread, loopback), an ordered consumer that reads those the
 * public way costs 7.2-8.1 us of CPU per message, the same reads from the bytes 3.0-3.8
 * (bench/README.md, "Relay from JetStream").
 *
 * The bytes are those of nats-core's MsgImpl (`_msg.subject`, `_msg.reply`, `_msg.hdr`,
 * `_rdata`; @nats-io/transport-node is pinned). A message of any other shape is read the
 * public way, with the same results (test/relay-nats-msg.test.ts checks both, and fails
 * loudly if the pinned client's messages stop having that shape).
 */
import type { Msg } from '@nats-io/transport-node';
import type { EventKind } from './scan';

/** The fields of nats-core's MsgImpl read here. */
interface MsgInternals {
  _msg?: { subject?: unknown; reply?: unknown; hdr?: unknown };
  _rdata?: unknown;
}

/** The message's protocol bytes, when it has the shape this was written for. */
interface RawMsg {
  subject: Uint8Array;
  reply: Uint8Array;
  hdr: number;
  rdata: Uint8Array | undefined;
}

const scratch: RawMsg = { subject: new Uint8Array(0), reply: new Uint8Array(0), hdr: -1, rdata: undefined };

/** Fills `scratch` and returns it, or undefined when `msg` is not a MsgImpl of the known shape. */
function rawOf(msg: Msg): RawMsg | undefined {
  const m = (msg as unknown as MsgInternals)._msg;
  if (m === undefined || !(m.subject instanceof Uint8Array) || typeof m.hdr !== 'number') return undefined;
  const reply = m.reply;
  if (reply !== undefined && !(reply instanceof Uint8Array)) return undefined;
  const rdata = (msg as unknown as MsgInternals)._rdata;
  if (rdata !== undefined && !(rdata instanceof Uint8Array)) return undefined;
  scratch.subject = m.subject;
  scratch.reply = reply ?? EMPTY;
  scratch.hdr = m.hdr;
  scratch.rdata = rdata;
  return scratch;
}

const EMPTY = new Uint8Array(0);

/** Whether the pinned client's messages are read from their bytes (test/relay-nats-msg.test.ts). */
export function readsBytes(msg: Msg): boolean {
  return rawOf(msg) !== undefined;
}

/** A JetStream delivery, from `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>[...]`. */
export interface Delivery {
  streamSeq: number;
  deliverySeq: number;
  /** Times delivered (1: first delivery). */
  delivered: number;
  pending: number;
}

const ACK_PREFIX = [0x24, 0x4a, 0x53, 0x2e, 0x41, 0x43, 0x4b, 0x2e]; // "$JS.ACK."

/**
 * Index of the <delivered> token: the 9-token form (nats-server 2.9), or the 11/12-token
 * form with domain and account hash (2.10+). -1 for anything else.
 */
function deliveredToken(tokens: number): number {
  if (tokens === 9) return 4;
  if (tokens === 11 || tokens === 12) return 6;
  return -1;
}

/** Reads the delivery of a JetStream message into `out`; false when it is not one (a status, or a plain message). */
export function readDelivery(msg: Msg, out: Delivery): boolean {
  const raw = rawOf(msg);
  if (raw === undefined) return readDeliveryString(msg.reply ?? '', out);
  const r = raw.reply;
  if (r.length < ACK_PREFIX.length) return false;
  for (let i = 0; i < ACK_PREFIX.length; i++) if (r[i] !== ACK_PREFIX[i]) return false;
  let dots = 0;
  for (let i = 0; i < r.length; i++) if (r[i] === 0x2e) dots++;
  const first = deliveredToken(dots + 1);
  if (first < 0) return false;
  let token = 0;
  let delivered = 0;
  let sseq = 0;
  let dseq = 0;
  let pending = 0;
  let digits = 0;
  for (let i = 0; i < r.length; i++) {
    const c = r[i];
    if (c === 0x2e) {
      token++;
      continue;
    }
    const k = token - first;
    if (k < 0 || k > 4 || k === 3) continue;
    if (c < 0x30 || c > 0x39) return false;
    const d = c - 0x30;
    digits++;
    if (k === 0) delivered = delivered * 10 + d;
    else if (k === 1) sseq = sseq * 10 + d;
    else if (k === 2) dseq = dseq * 10 + d;
    else pending = pending * 10 + d;
  }
  if (digits === 0) return false;
  out.delivered = delivered;
  out.streamSeq = sseq;
  out.deliverySeq = dseq;
  out.pending = pending;
  return true;
}

function readDeliveryString(reply: string, out: Delivery): boolean {
  if (!reply.startsWith('$JS.ACK.')) return false;
  const tokens = reply.split('.');
  const first = deliveredToken(tokens.length);
  if (first < 0) return false;
  const numbers = [tokens[first], tokens[first + 1], tokens[first + 2], tokens[first + 4]].map((t) => (/^\d+$/.test(t) ? Number(t) : NaN));
  if (numbers.some((n) => !Number.isFinite(n))) return false;
  [out.delivered, out.streamSeq, out.deliverySeq, out.pending] = numbers;
  return true;
}

const KIND_BYTES: [EventKind, Uint8Array][] = (['alerts', 'logs', 'messages'] as const).map((k) => [k, Buffer.from(`.${k}`)]);
/** A token of one of the kinds (a Map: "constructor" or "__proto__" is no kind). */
const KINDS = new Map<string, EventKind>([
  ['alerts', 'alerts'],
  ['logs', 'logs'],
  ['messages', 'messages'],
]);

/** alerts, logs or messages: the last token of `<prefix>.<cluster>.<node>.<kind>`. */
export function kindOfSubject(subject: string): EventKind | undefined {
  return KINDS.get(subject.slice(subject.lastIndexOf('.') + 1));
}

/** kindOfSubject of the message's subject, read from its bytes. */
export function kindOfMsg(msg: Msg): EventKind | undefined {
  const raw = rawOf(msg);
  if (raw === undefined) return kindOfSubject(msg.subject);
  const s = raw.subject;
  for (const [kind, bytes] of KIND_BYTES) {
    const at = s.length - bytes.length;
    if (at < 0) continue;
    let same = true;
    for (let i = 0; i < bytes.length && same; i++) same = s[at + i] === bytes[i];
    if (same) return kind;
  }
  // A subject of one token only ("alerts") has no dot before its kind.
  return s.indexOf(0x2e) < 0 ? kindOfSubject(Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString('latin1')) : undefined;
}

/** Where header `name`'s value is in the message's header block: [start, end), or undefined. */
function headerSpan(raw: RawMsg, name: Uint8Array): [number, number] | undefined {
  const block = raw.rdata;
  if (block === undefined || raw.hdr <= 0) return undefined;
  const end = Math.min(raw.hdr, block.length);
  // Lines after "NATS/1.0...\r\n": "Name: value\r\n".
  let line = 0;
  while (line < end && block[line] !== 0x0a) line++;
  line++;
  while (line < end) {
    let match = line + name.length < end && block[line + name.length] === 0x3a;
    for (let i = 0; i < name.length && match; i++) match = block[line + i] === name[i];
    let eol = line;
    while (eol < end && block[eol] !== 0x0a) eol++;
    if (match) {
      let start = line + name.length + 1;
      while (start < eol && (block[start] === 0x20 || block[start] === 0x09)) start++;
      let stop = eol;
      while (stop > start && (block[stop - 1] === 0x0d || block[stop - 1] === 0x20)) stop--;
      return [start, stop];
    }
    line = eol + 1;
  }
  return undefined;
}

/** A header whose value is a sequence number (Armorfeed-Seq): NaN when absent or not a number. */
export class NumberHeader {
  private readonly name: Uint8Array;

  constructor(private readonly key: string) {
    this.name = Buffer.from(key, 'latin1');
  }

  read(msg: Msg): number {
    const raw = rawOf(msg);
    if (raw === undefined) return Number(msg.headers?.get(this.key) ?? '');
    const span = headerSpan(raw, this.name);
    if (span === undefined || span[0] === span[1]) return NaN;
    const block = raw.rdata as Uint8Array;
    let n = 0;
    for (let i = span[0]; i < span[1]; i++) {
      const c = block[i];
      if (c < 0x30 || c > 0x39) return Number(Buffer.from(block.buffer, block.byteOffset + span[0], span[1] - span[0]).toString('latin1'));
      n = n * 10 + (c - 0x30);
    }
    return n;
  }
}

/**
 * A header whose value repeats from message to message (Armorfeed-Node-Id): the last value
 * read is kept with its bytes, so the same value is not decoded again. '' when absent.
 */
export class RepeatedHeader {
  private readonly name: Uint8Array;
  private lastBytes = new Uint8Array(0);
  private lastValue = '';

  constructor(private readonly key: string) {
    this.name = Buffer.from(key, 'latin1');
  }

  read(msg: Msg): string {
    const raw = rawOf(msg);
    if (raw === undefined) return msg.headers?.get(this.key) ?? '';
    const span = headerSpan(raw, this.name);
    if (span === undefined) return '';
    const block = raw.rdata as Uint8Array;
    const [start, stop] = span;
    const last = this.lastBytes;
    if (stop - start === last.length && last.length > 0) {
      let same = true;
      for (let i = 0; i < last.length && same; i++) same = block[start + i] === last[i];
      if (same) return this.lastValue;
    }
    this.lastBytes = block.slice(start, stop);
    this.lastValue = Buffer.from(this.lastBytes.buffer, this.lastBytes.byteOffset, this.lastBytes.byteLength).toString('utf8');
    return this.lastValue;
  }
}
