/**
 * The fuzz property of the ingest path, shared by test/fuzz.test.ts (a bounded run in
 * CI) and bench/fuzz.ts (the long run, `npm run fuzz`).
 *
 * Property: any byte string, as one frame's payload or as a stream of chunks through
 * FrameReader, ends as exactly one of
 *   - a counted rejection: an InputError whose code has a reason in inputReasons, counted
 *     once in the ring's per-reason counters (Admission.admitFrame);
 *   - a framing error: an InputError (ERR_INPUT_MALFORMED_FRAME / ERR_INPUT_OVERSIZED)
 *     thrown by FrameReader, after which the peer would be disconnected;
 *   - an accepted event, which the span encoder (the encoder workers' code, on a real
 *     ring span) turns into one gRPC-framed message on the stream Type routes it to, that
 *     protobufjs decodes as feeder.Alert / feeder.Log, and that a strict walk of the
 *     wire bytes finds made only of the proto's field numbers and wire types, with every
 *     string valid UTF-8 (what Go's decoder insists on).
 * Anything else (a RangeError, a TypeError, a stack overflow, a case over its time
 * budget) fails the property. The generators are (i) random bytes, (ii) msgpack maps
 * built from the schema's keys with values of any msgpack type in any encoding width,
 * (iii) mutations of the synthetic events, and (iv) streams of those in random chunks.
 */
import { MessageChannel } from 'node:worker_threads';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import * as protobuf from 'protobufjs';
import type { EncodedStream } from '../../src/encode/batch';
import { GRPC_FRAME_HEADER } from '../../src/wire/framing';
import { createSpanEncoder, type SpanEncoder } from '../../src/encode/encodeSpan';
import { InputError, inputReason, inputReasons } from '../../src/errors';
import { alertTypes, ingestFields, logTypes, type FieldKind } from '../../src/event/schema';
import { Admission } from '../../src/ingest/admission';
import { encodeFrame, FRAME_HEADER_BYTES, FrameReader } from '../../src/ingest/frames';
import { syntheticEvent, warmUpEvents } from '../../src/ingest/synthetic';
import { allocateRing, RingConsumer } from '../../src/ring';
import { formatUpdatedTime } from '../../src/wire/time';
import { feederTypes } from '../../src/wire/proto';

/** A broken property: the message names what broke; the runner prints the input. */
export class PropertyViolation extends Error {}

function violated(what: string): never {
  throw new PropertyViolation(what);
}

const INGESTED_US = 1_764_170_000_123_456;
const FRAMING_CODES: ReadonlySet<string> = new Set(['ERR_INPUT_MALFORMED_FRAME', 'ERR_INPUT_OVERSIZED']);

// ---- strict protobuf walk (independent of protobufjs's decoder and of the encoder) ----

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readVarint(buf: Uint8Array, at: { pos: number }, end: number, where: string): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at.pos >= end) violated(`${where}: truncated varint`);
    const b = buf[at.pos++];
    result += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return result;
    scale *= 128;
  }
  return violated(`${where}: varint longer than 10 bytes`);
}

/**
 * Walks one message of `type` in buf[start, end): every field number must be one of the
 * type's, with its wire type (Go's decoder rejects a wrong wire type for a known field),
 * every string valid UTF-8, every sub-message and map entry well formed.
 */
export function checkStrictMessage(buf: Uint8Array, start: number, end: number, type: protobuf.Type, where = type.name): void {
  const at = { pos: start };
  while (at.pos < end) {
    const tag = readVarint(buf, at, end, where);
    const id = Math.floor(tag / 8);
    const wire = tag % 8;
    const field = type.fieldsById[id];
    if (field === undefined) violated(`${where}: field number ${id} is not in ${type.name}`);
    const name = `${where}.${field.name}`;
    const lengthDelimited = field.map || field.type === 'string' || field.type === 'bytes' || field.resolvedType instanceof protobuf.Type;
    if (!lengthDelimited) {
      if (wire !== 0) violated(`${name}: wire type ${wire}, the proto says varint`);
      readVarint(buf, at, end, name);
      continue;
    }
    if (wire !== 2) violated(`${name}: wire type ${wire}, the proto says length-delimited`);
    const len = readVarint(buf, at, end, name);
    if (at.pos + len > end) violated(`${name}: length ${len} runs past the end of the message`);
    const from = at.pos;
    at.pos += len;
    if (field.map) checkMapEntry(buf, from, at.pos, name);
    else if (field.type === 'string') checkUtf8(buf, from, at.pos, name);
    else if (field.resolvedType instanceof protobuf.Type) checkStrictMessage(buf, from, at.pos, field.resolvedType, name);
  }
  if (at.pos !== end) violated(`${where}: runs ${at.pos - end} bytes past its length`);
}

/** A map<string,string> entry: field 1 the key, field 2 the value, both strings. */
function checkMapEntry(buf: Uint8Array, start: number, end: number, where: string): void {
  const at = { pos: start };
  while (at.pos < end) {
    const tag = readVarint(buf, at, end, where);
    if (tag !== ((1 << 3) | 2) && tag !== ((2 << 3) | 2)) violated(`${where}: map entry field ${Math.floor(tag / 8)} wire type ${tag % 8}`);
    const len = readVarint(buf, at, end, where);
    if (at.pos + len > end) violated(`${where}: map entry length ${len} runs past the end`);
    checkUtf8(buf, at.pos, at.pos + len, `${where}[${tag === 10 ? 'key' : 'value'}]`);
    at.pos += len;
  }
}

function checkUtf8(buf: Uint8Array, start: number, end: number, where: string): void {
  try {
    utf8.decode(buf.subarray(start, end));
  } catch {
    violated(`${where}: not valid UTF-8: ${Buffer.from(buf.subarray(start, end)).toString('hex')}`);
  }
}

// ---- the harness: admission -> ring -> span encoder -> decode ----

export interface FuzzTally {
  /** Frame payloads judged (one per frame, whether it came alone or out of a stream). */
  frames: number;
  alerts: number;
  logs: number;
  /** Counted rejections, by reason (inputReasons). */
  rejected: Record<string, number>;
  /** FrameReader errors (the peer would be hung up on), by code. */
  framing: Record<string, number>;
  /** Chunked streams pushed through FrameReader. */
  streams: number;
  /** Longest single case, ms. */
  slowestCaseMs: number;
}

export interface HarnessOptions {
  /** maxEventBytes: the FrameReader limit (default 1 MiB, the serve default). */
  maxFrameBytes?: number;
  /** A case (one frame, or one stream) over this many ms fails the property: a hang. */
  maxCaseMs?: number;
}

export class FuzzHarness {
  readonly maxFrameBytes: number;
  readonly maxCaseMs: number;
  readonly tally: FuzzTally = { frames: 0, alerts: 0, logs: 0, rejected: {}, framing: {}, streams: 0, slowestCaseMs: 0 };
  private readonly channel = new MessageChannel();
  private readonly ring: SharedArrayBuffer;
  private readonly admission: Admission;
  private readonly consumer: RingConsumer;
  private readonly encode: SpanEncoder;
  private readonly unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
  private readonly types = feederTypes();

  constructor(options: HarnessOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? 1 << 20;
    this.maxCaseMs = options.maxCaseMs ?? 2000;
    // Room for the largest frame twice over: every accepted record is consumed at once.
    let ringBytes = 1 << 16;
    while (ringBytes < 4 * this.maxFrameBytes) ringBytes *= 2;
    this.ring = allocateRing(ringBytes);
    this.admission = new Admission(this.ring, this.channel.port1, 'drop');
    this.consumer = new RingConsumer(this.ring);
    // logLines on: the encoders then also msgpack-decode every record (upstream's logPath line).
    this.encode = createSpanEncoder({ cluster: 'fuzz', host: 'fuzz-node', nodeID: 'fuzz-machine', dropResourceFromProcessLogs: false, throttling: true, logLines: true });
  }

  /** One frame payload through admission and, when accepted, the encoder. */
  checkPayload(payload: Uint8Array): void {
    const started = performance.now();
    this.judge(payload);
    this.timed(started, `payload of ${payload.length} bytes`);
  }

  /** A byte stream cut into `chunks`, through FrameReader, each frame judged as checkPayload does. */
  checkStream(chunks: readonly Uint8Array[]): void {
    const started = performance.now();
    this.tally.streams++;
    const reader = new FrameReader(this.maxFrameBytes);
    for (const chunk of chunks) {
      try {
        reader.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length), (frame) => this.judge(frame));
      } catch (err) {
        if (err instanceof PropertyViolation) throw err;
        this.framingError(err);
        break;
      }
      if (reader.buffered > this.maxFrameBytes + FRAME_HEADER_BYTES - 1) violated(`FrameReader holds ${reader.buffered} bytes, over maxFrameBytes ${this.maxFrameBytes} + a header`);
    }
    this.timed(started, `stream of ${chunks.length} chunks`);
  }

  close(): void {
    this.admission.close();
    this.channel.port1.close();
    this.channel.port2.close();
  }

  private timed(started: number, what: string): void {
    const ms = performance.now() - started;
    if (ms > this.tally.slowestCaseMs) this.tally.slowestCaseMs = ms;
    if (ms > this.maxCaseMs) violated(`${what} took ${ms.toFixed(0)} ms, over the ${this.maxCaseMs} ms budget of one case`);
  }

  private framingError(err: unknown): void {
    if (!(err instanceof InputError) || !FRAMING_CODES.has(err.code)) throw err;
    this.tally.framing[err.code] = (this.tally.framing[err.code] ?? 0) + 1;
  }

  private judge(payload: Uint8Array): void {
    this.tally.frames++;
    const before = this.consumer.stats();
    const result = this.admission.admitFrame(payload, INGESTED_US, 'fuzz');
    if (result instanceof InputError) {
      const reason = inputReason[result.code];
      const slot = inputReasons.indexOf(reason);
      if (reason === undefined || slot < 0) violated(`rejection with code ${result.code}, which has no reason in inputReasons`);
      const after = this.consumer.stats();
      if (after.droppedMalformed !== before.droppedMalformed + 1 || after.malformedByReason[slot] !== before.malformedByReason[slot] + 1) {
        violated(`rejection ${result.code} was not counted once as ${reason}`);
      }
      this.tally.rejected[reason] = (this.tally.rejected[reason] ?? 0) + 1;
      return;
    }
    if (result !== 'queued') violated(`admission answered ${String(result)} with an empty ring`);
    const span = this.consumer.claim(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    if (span === null || span.events !== 1) violated(`the ring holds ${span?.events ?? 0} records after one was queued`);
    let batch;
    try {
      batch = this.encode({ ring: this.ring, start: span.start, end: span.end, attrs: true });
    } finally {
      this.consumer.release(span.end);
    }
    if (batch.failed !== 0) violated(`the encoder could not read an accepted record: ${batch.failure}`);
    const alert = batch.alerts.count === 1;
    if (batch.alerts.count + batch.logs.count !== 1) violated(`${batch.alerts.count} alerts and ${batch.logs.count} logs for one event`);
    const T = alert ? this.types.Alert : this.types.Log;
    const body = this.messageBody(alert ? batch.alerts : batch.logs);
    let decoded: Record<string, unknown>;
    try {
      decoded = T.toObject(T.decode(body), { longs: Number }) as Record<string, unknown>;
    } catch (err) {
      return violated(`protobufjs cannot decode the ${T.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    checkStrictMessage(body, 0, body.length, T);
    // Routing, on what was sent: an alert carries an alert Type (or the NetworkFirewall rewrite), a log a log Type or none.
    const sent = typeof decoded.Type === 'string' ? decoded.Type : '';
    const routed = alert ? alertTypes.has(sent) || (sent === 'MatchedNetworkPolicy' && decoded.Operation === 'NetworkFirewall') : sent === '' || logTypes.has(sent);
    if (!routed) violated(`an ${T.name} with Type ${JSON.stringify(sent)}`);
    // And on what came in, decoded by msgpackr (not by the scanner). A repeated key whose last
    // value is msgpackr's `undefined` leaves no string here: the scanner keeps the earlier value.
    const event = this.unpackr.unpack(payload) as Record<string, unknown>;
    const repeatedAsUndefined = (key: string): boolean => Object.prototype.hasOwnProperty.call(event, key) && event[key] === undefined;
    if (typeof event.type === 'string' && !repeatedAsUndefined('operation')) {
      if (alert !== alertTypes.has(event.type)) violated(`type ${JSON.stringify(event.type)} went out as an ${T.name}`);
      const want = alert && event.operation === 'NetworkFirewall' ? 'MatchedNetworkPolicy' : event.type;
      if (sent !== want) violated(`${T.name}.Type is ${JSON.stringify(sent)}, the event's type ${JSON.stringify(event.type)}`);
    }
    if (alert) this.tally.alerts++;
    else this.tally.logs++;
  }

  /** The one message of a stream, after its 5-byte gRPC header (checked against the bytes). */
  private messageBody(stream: EncodedStream): Uint8Array {
    const bytes = stream.bytes;
    const end = stream.ends[0];
    if (bytes.length !== end || end < GRPC_FRAME_HEADER) violated(`encoded stream of ${bytes.length} bytes, message ends at ${end}`);
    const length = ((bytes[1] << 24) | (bytes[2] << 16) | (bytes[3] << 8) | bytes[4]) >>> 0;
    if (bytes[0] !== 0 || length !== end - GRPC_FRAME_HEADER) violated(`gRPC frame header ${Buffer.from(bytes.subarray(0, 5)).toString('hex')} for a ${end - GRPC_FRAME_HEADER}-byte message`);
    return bytes.subarray(GRPC_FRAME_HEADER, end);
  }
}

// ---- FrameReader properties (no admission) ----

/** Cuts `bytes` at the given offsets (any values: taken modulo the length, sorted). */
export function cut(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const c of at) {
    out.push(bytes.subarray(from, c));
    from = c;
  }
  out.push(bytes.subarray(from));
  return out;
}

interface Framed {
  frames: Buffer[];
  error: string | undefined;
  /** Largest `buffered` seen after a push. */
  maxBuffered: number;
}

function readAll(chunks: readonly Uint8Array[], maxFrameBytes: number): Framed {
  const reader = new FrameReader(maxFrameBytes);
  const out: Framed = { frames: [], error: undefined, maxBuffered: 0 };
  for (const chunk of chunks) {
    try {
      reader.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length), (frame) => {
        // A length-0 frame is handed over (the source counts it and reads on): only the limit is checked.
        if (frame.length > maxFrameBytes) violated(`FrameReader handed over a frame of ${frame.length} bytes (limit ${maxFrameBytes})`);
        out.frames.push(Buffer.from(frame));
      });
    } catch (err) {
      if (!(err instanceof InputError) || !FRAMING_CODES.has(err.code)) throw err;
      out.error = err.code;
      break;
    }
    out.maxBuffered = Math.max(out.maxBuffered, reader.buffered);
  }
  return out;
}

/** Any split of a stream of well-formed frames yields exactly those frames, and holds back at most one frame. */
export function checkFrameSplit(payloads: readonly Uint8Array[], cuts: readonly number[], maxFrameBytes: number): void {
  const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)));
  const got = readAll(cut(stream, cuts), maxFrameBytes);
  if (got.error !== undefined) violated(`well-formed frames gave ${got.error}`);
  if (got.frames.length !== payloads.length) violated(`${payloads.length} frames in, ${got.frames.length} out`);
  got.frames.forEach((f, i) => {
    if (!f.equals(payloads[i])) violated(`frame ${i} differs after the split`);
  });
  if (got.maxBuffered > maxFrameBytes + FRAME_HEADER_BYTES - 1) violated(`buffered ${got.maxBuffered} bytes (limit ${maxFrameBytes})`);
}

/**
 * Any bytes, in any split: only InputError (framing codes) is thrown, never more than
 * maxFrameBytes + a header is held back, and the split changes neither the frames nor
 * the error (the stream read in one chunk is the reference).
 */
export function checkFrameStream(bytes: Uint8Array, cuts: readonly number[], maxFrameBytes: number): void {
  const whole = readAll([bytes], maxFrameBytes);
  const split = readAll(cut(bytes, cuts), maxFrameBytes);
  if (split.maxBuffered > maxFrameBytes + FRAME_HEADER_BYTES - 1) violated(`buffered ${split.maxBuffered} bytes (limit ${maxFrameBytes})`);
  if (split.error !== whole.error) violated(`split stream ended with ${String(split.error)}, whole stream with ${String(whole.error)}`);
  if (split.frames.length !== whole.frames.length || split.frames.some((f, i) => !f.equals(whole.frames[i]))) {
    violated(`split stream gave ${split.frames.length} frames, whole stream ${whole.frames.length} (or different bytes)`);
  }
}

// ---- msgpack, written by hand so that every encoding width and every wrong type can be made ----

const concat = (parts: readonly Uint8Array[]): Uint8Array => Buffer.concat(parts);

function u32be(n: number): number[] {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

/** A str header for `len` bytes: `width` 0 = the smallest that fits, 1-3 = str8/16/32 when it fits. */
function strHeader(len: number, width: number): number[] {
  if (width === 0 && len < 32) return [0xa0 | len];
  if (width <= 1 && len < 256) return [0xd9, len];
  if (width <= 2 && len < 65536) return [0xda, len >>> 8, len & 255];
  return [0xdb, ...u32be(len)];
}

function containerHeader(count: number, width: number, map: boolean): number[] {
  if (width === 0 && count < 16) return [(map ? 0x80 : 0x90) | count];
  if (width <= 1 && count < 65536) return [map ? 0xde : 0xdc, count >>> 8, count & 255];
  return [map ? 0xdf : 0xdd, ...u32be(count)];
}

export function mpStr(bytes: Uint8Array, width = 0): Uint8Array {
  return concat([Uint8Array.from(strHeader(bytes.length, width)), bytes]);
}

export function mpMap(entries: readonly (readonly [Uint8Array, Uint8Array])[], width = 0, countDelta = 0): Uint8Array {
  return concat([Uint8Array.from(containerHeader(Math.max(0, entries.length + countDelta), width, true)), ...entries.flat()]);
}

export function mpArray(items: readonly Uint8Array[], width = 0): Uint8Array {
  return concat([Uint8Array.from(containerHeader(items.length, width, false)), ...items]);
}

/** An integer in one of msgpack's encodings (`enc`), truncated to that width as a careless encoder would. */
function mpInt(n: bigint, enc: number): Uint8Array {
  const b = Buffer.alloc(9);
  switch (enc % 10) {
    case 0: b[0] = 0xcc; b.writeUInt8(Number(BigInt.asUintN(8, n)), 1); return b.subarray(0, 2);
    case 1: b[0] = 0xcd; b.writeUInt16BE(Number(BigInt.asUintN(16, n)), 1); return b.subarray(0, 3);
    case 2: b[0] = 0xce; b.writeUInt32BE(Number(BigInt.asUintN(32, n)), 1); return b.subarray(0, 5);
    case 3: b[0] = 0xcf; b.writeBigUInt64BE(BigInt.asUintN(64, n), 1); return b;
    case 4: b[0] = 0xd0; b.writeInt8(Number(BigInt.asIntN(8, n)), 1); return b.subarray(0, 2);
    case 5: b[0] = 0xd1; b.writeInt16BE(Number(BigInt.asIntN(16, n)), 1); return b.subarray(0, 3);
    case 6: b[0] = 0xd2; b.writeInt32BE(Number(BigInt.asIntN(32, n)), 1); return b.subarray(0, 5);
    case 7: b[0] = 0xd3; b.writeBigInt64BE(BigInt.asIntN(64, n), 1); return b;
    case 8: b[0] = 0xcb; b.writeDoubleBE(Number(n), 1); return b;
    default: b[0] = 0xca; b.writeFloatBE(Number(n), 1); return b.subarray(0, 5);
  }
}

const ascii = (s: string): Uint8Array => Buffer.from(s, 'utf8');

// ---- generators ----

const edgeInts = [
  0n, 1n, -1n, 127n, 128n, -32n, -33n, 255n, 256n, 65535n, 65536n,
  2n ** 31n - 1n, 2n ** 31n, -(2n ** 31n), -(2n ** 31n) - 1n, 2n ** 32n - 1n, 2n ** 32n,
  2n ** 53n - 1n, 2n ** 53n + 1n, 8_640_000_000_000n, 8_640_000_000_001n, -8_640_000_000_000n, -8_640_000_000_001n,
  2n ** 63n - 1n, 2n ** 63n, -(2n ** 63n), 2n ** 64n - 1n, 1_700_000_000n,
];

const intValue: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.integer({ min: -32, max: 127 }).map((n) => Uint8Array.of(n & 0xff)) },
  { weight: 2, arbitrary: fc.tuple(fc.integer().map(BigInt), fc.constantFrom(2, 3, 6, 7, 8)).map(([n, enc]) => mpInt(n, enc)) },
  { weight: 1, arbitrary: fc.tuple(fc.oneof(fc.constantFrom(...edgeInts), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })), fc.nat(9)).map(([n, enc]) => mpInt(n, enc)) },
);

const floatValue: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.double().map((d) => {
    const b = Buffer.alloc(9);
    b[0] = 0xcb;
    b.writeDoubleBE(d, 1);
    return Uint8Array.from(b);
  }),
  fc.float().map((f) => {
    const b = Buffer.alloc(5);
    b[0] = 0xca;
    b.writeFloatBE(f, 1);
    return Uint8Array.from(b);
  }),
  fc.constantFrom(0, -0, 1.5, 1e12, 8.64e12, 8.64e12 + 1, -8.64e12, 2 ** 31, 2 ** 53, 2 ** 64, Number.NaN, Infinity, -Infinity).map((d) => {
    const b = Buffer.alloc(9);
    b[0] = 0xcb;
    b.writeDoubleBE(d, 1);
    return Uint8Array.from(b);
  }),
);

/** Byte strings meant as UTF-8: mostly valid, with the classic invalid forms mixed in. */
const badUtf8 = [
  [0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80], [0xf0, 0x9f, 0x98], [0xef, 0xbf, 0xbd], [0xef, 0xbb, 0xbf],
].map((b) => Uint8Array.from(b));

const textBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 16, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map(ascii) },
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.string({ maxLength: 6 }).map(ascii), fc.constantFrom(...badUtf8)), { maxLength: 8 }).map(concat) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 4, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 256, max: 70_000 }), fc.constantFrom(0x61, 0x3d, 0x2c, 0x20, 0xff)).map(([n, b]) => new Uint8Array(n).fill(b)) },
);

/** `k=v` tokens with ASCII and other whitespace, as Data and Resource carry them. */
const pairsBytes: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.tuple(fc.oneof(fc.constantFrom('syscall', 'fd', 'remoteip', 'port', 'Syscall', 'ß', 'é', ''), fc.string({ maxLength: 5 })), fc.oneof(textBytes, fc.constantFrom(...badUtf8)), fc.constantFrom(' ', '\t', '\n', '\r', '  ', '\v', '\f', '\u00a0', '\u2028', '\u0085')),
    { maxLength: 6 },
  )
  .map((tokens) => concat(tokens.flatMap(([k, v, sep]) => [ascii(k), ascii('='), v, ascii(sep)])));

const strValue = (bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> => fc.tuple(bytes, fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(3) })).map(([b, w]) => mpStr(b, w));

const scalarValue: fc.Arbitrary<Uint8Array> = fc.oneof(
  strValue(textBytes),
  intValue,
  floatValue,
  fc.constantFrom(Uint8Array.of(0xc0), Uint8Array.of(0xc2), Uint8Array.of(0xc3), Uint8Array.of(0xc1), Uint8Array.of(0xd4, 0, 0)),
  // bin 8/16/32
  fc.tuple(fc.uint8Array({ maxLength: 20 }), fc.nat(2)).map(([b, w]) => concat([Uint8Array.from(w === 0 ? [0xc4, b.length] : w === 1 ? [0xc5, 0, b.length] : [0xc6, 0, 0, 0, b.length]), b])),
  // fixext 1/2/4/8/16 and ext 8
  fc.tuple(fc.constantFrom(1, 2, 4, 8, 16), fc.integer({ min: -128, max: 127 })).chain(([n, t]) =>
    fc.uint8Array({ minLength: n, maxLength: n }).map((b) => concat([Uint8Array.of({ 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 }[n] as number, t & 255), b])),
  ),
  fc.tuple(fc.uint8Array({ maxLength: 20 }), fc.integer({ min: -128, max: 127 })).map(([b, t]) => concat([Uint8Array.of(0xc7, b.length, t & 255), b])),
);

/** Any msgpack value, nested a few levels (maps with string keys mostly). */
const anyValue: fc.Arbitrary<Uint8Array> = fc.letrec<{ value: Uint8Array }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 6, arbitrary: scalarValue },
    { weight: 1, arbitrary: fc.tuple(fc.array(tie('value'), { maxLength: 4 }), fc.nat(2)).map(([items, w]) => mpArray(items, w)) },
    { weight: 1, arbitrary: fc.tuple(fc.array(fc.tuple(fc.oneof(strValue(textBytes), tie('value')), tie('value')), { maxLength: 4 }), fc.nat(2)).map(([e, w]) => mpMap(e, w)) },
  ),
})).value;

/** Containers nested around the limit (MAX_NESTING = 32), as arrays or maps. */
const deepValue: fc.Arbitrary<Uint8Array> = fc.tuple(fc.integer({ min: 28, max: 40 }), fc.boolean()).map(([depth, maps]) =>
  maps ? concat([...Array.from({ length: depth }, () => Uint8Array.of(0x81, 0xa1, 0x6b)), Uint8Array.of(0xc0)]) : concat([new Uint8Array(depth).fill(0x91), Uint8Array.of(0xc0)]),
);

const typeNames = [...alertTypes, ...logTypes, '', 'Bogus', 'matchedpolicy'];
const operations = ['Process', 'File', 'Network', 'NetworkFirewall', 'Device', 'Syscall', ''];

function stringMapOf(keys: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.array(fc.tuple(strValue(keys), strValue(textBytes)), { maxLength: 5 }), fc.nat(2)).map(([e, w]) => mpMap(e, w));
}

const updatedTimes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.integer({ min: -8_640_000_000_000, max: 8_640_000_000_000 }).map((s) => ascii(formatUpdatedTime(s * 1e6))),
  fc.constantFrom('0000-00-00T00:00:00Z', '9999-99-99T99:99:99.999999999Z', '2024-02-30T25:61:61.1Z', '1970-01-01T00:00:00Z').map(ascii),
  textBytes,
);

/** A value of the field's own kind (with the interesting contents), or nil where Go allows it. */
function valueOfKind(key: string, kind: FieldKind): fc.Arbitrary<Uint8Array> {
  switch (kind) {
    case 'int':
      return fc.oneof(intValue, { weight: 1, arbitrary: floatValue });
    case 'string':
      if (key === 'type') return strValue(fc.constantFrom(...typeNames).map(ascii));
      if (key === 'operation') return strValue(fc.constantFrom(...operations).map(ascii));
      if (key === 'data' || key === 'resource') return strValue(fc.oneof(pairsBytes, textBytes, fc.uint8Array({ maxLength: 40 })));
      if (key === 'updatedTime') return strValue(updatedTimes);
      if (key === 'severity') return strValue(fc.oneof(fc.constantFrom('0', '5', '').map(ascii), textBytes));
      if (key === 'enforcer') return strValue(fc.oneof(fc.constantFrom('eBPF Monitor', 'AppArmor', 'BPFLSM').map(ascii), textBytes));
      if (key === 'action') return strValue(fc.oneof(fc.constantFrom('Audit', 'Block', 'Audit (Block)').map(ascii), textBytes));
      return strValue(textBytes);
    case 'strings':
      return fc.oneof(fc.constant(Uint8Array.of(0xc0)), fc.array(strValue(textBytes), { maxLength: 4 }).map((items) => mpArray(items)));
    case 'owner':
      return fc.oneof(fc.constant(Uint8Array.of(0xc0)), stringMapOf(fc.oneof(fc.constantFrom('ref', 'name', 'namespace').map(ascii), textBytes)));
    case 'execEvent':
      return stringMapOf(fc.oneof(fc.constantFrom('ExecID', 'ExecutableName').map(ascii), textBytes));
    case 'stringMap':
      return fc.oneof(fc.constant(Uint8Array.of(0xc0)), stringMapOf(textBytes));
  }
}

const schemaEntry: fc.Arbitrary<readonly [Uint8Array, Uint8Array]> = fc.oneof(
  ...ingestFields.map(([key, kind]) =>
    fc.tuple(
      fc.oneof({ weight: 9, arbitrary: fc.constant(mpStr(ascii(key))) }, { weight: 1, arbitrary: fc.nat(3).map((w) => mpStr(ascii(key), w)) }),
      fc.oneof(
        { weight: 40, arbitrary: valueOfKind(key, kind) },
        { weight: 2, arbitrary: anyValue },
        { weight: 1, arbitrary: deepValue },
        { weight: 1, arbitrary: fc.constant(Uint8Array.of(0xd4, 0, 0)) },
      ),
    ),
  ),
);

const strayEntry: fc.Arbitrary<readonly [Uint8Array, Uint8Array]> = fc.tuple(
  fc.oneof(strValue(fc.constantFrom('Type', 'ref', 'ExecID', '__proto__', 'constructor', '').map(ascii)), strValue(textBytes), anyValue),
  fc.oneof(anyValue, deepValue),
);

/**
 * (ii) An event map from the schema's keys: a routable type and source most of the
 * time (so that most maps get as far as the encoder), values mostly of their field's
 * kind and sometimes of any type, in any encoding width; now and then a stray key, a
 * wrong entry count or trailing bytes.
 */
export const structuredEvent: fc.Arbitrary<Uint8Array> = fc
  .record({
    route: fc.option(fc.tuple(fc.constantFrom(...typeNames.slice(0, 7)), fc.constantFrom('/bin/sh', '')), { freq: 5, nil: undefined }),
    entries: fc.array(fc.oneof({ weight: 40, arbitrary: schemaEntry }, { weight: 1, arbitrary: strayEntry }), { maxLength: 24 }),
    width: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(2) }),
    countDelta: fc.oneof({ weight: 20, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -2, max: 2 }) }),
    trailer: fc.oneof({ weight: 20, arbitrary: fc.constant(new Uint8Array(0)) }, { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
  })
  .map(({ route, entries, width, countDelta, trailer }) => {
    const all = route === undefined ? entries : [[mpStr(ascii('type')), mpStr(ascii(route[0]))] as const, [mpStr(ascii('source')), mpStr(ascii(route[1]))] as const, ...entries];
    return concat([mpMap(all, width, countDelta), trailer]);
  });

/** (i) Random bytes, some starting with a map header so that the scanner goes further in. */
export const randomPayload: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 256 }),
  fc.tuple(fc.integer({ min: 0x80, max: 0x8f }), fc.uint8Array({ maxLength: 256 })).map(([h, b]) => concat([Uint8Array.of(h), b])),
);

const packr = new Packr({ useRecords: false });

/** Valid events to mutate: every synthetic shape (with and without times and defaults), plus a few of the edge shapes. */
export const seedEvents: readonly Uint8Array[] = [
  ...warmUpEvents({ cluster: 'c', host: 'h', alertEvery: 3 }, INGESTED_US, (v) => packr.pack(v)),
  ...[0, 1, 2].map((i) => Uint8Array.from(packr.pack({ ...syntheticEvent(i, INGESTED_US, { cluster: 'c', host: 'h', alertEvery: 1 }), operation: 'Network', resource: 'remoteip=10.0.0.1 port=80', eventData: undefined }))),
  Uint8Array.from(packr.pack({ type: 'MatchedPolicy', source: 's', operation: 'NetworkFirewall', tags: 'a,,b', severity: '0', owner: { name: 'x' }, execEvent: { ExecID: 'e' } })),
  Uint8Array.from(packr.pack({ type: 'HostLog', source: 's', timestamp: -8_640_000_000_000, atags: ['x'], pid: -(2 ** 31) })),
];

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'repeat'; at: number; length: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.nat(255), fc.constantFrom(0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xc4, 0xd4, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff)) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 8 }), anyValue) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 32 }) }) },
);

export function mutate(seed: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b = Buffer.from(seed);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    switch (m.kind) {
      case 'flip': if (b.length > 0) b[at] ^= 1 << m.bit; break;
      case 'set': if (b.length > 0) b[at] = m.value; break;
      case 'truncate': b = b.subarray(0, at); break;
      case 'insert': b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]); break;
      case 'delete': b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]); break;
      case 'repeat': b = Buffer.concat([b.subarray(0, at + m.length), b.subarray(at)]); break;
    }
  }
  return b.length === 0 ? Uint8Array.of(0xc0) : b;
}

/** (iii) A synthetic event with 1-6 mutations. */
export const mutatedEvent: fc.Arbitrary<Uint8Array> = fc.tuple(fc.constantFrom(...seedEvents), fc.array(mutation, { minLength: 1, maxLength: 6 })).map(([seed, ms]) => mutate(seed, ms));

/** Any one frame payload, from all three generators. */
export const anyPayload: fc.Arbitrary<Uint8Array> = fc.oneof(randomPayload, structuredEvent, mutatedEvent);

/**
 * (iv) A stream: payloads framed with their own length (or, now and then, a wrong or
 * random one, or none), then cut into chunks at random places.
 */
export const chunkedStream: fc.Arbitrary<Uint8Array[]> = fc
  .tuple(
    fc.array(
      fc.tuple(anyPayload, fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }, { weight: 1, arbitrary: fc.constant(Number.NaN) })),
      { minLength: 1, maxLength: 8 },
    ),
    fc.array(fc.nat(), { maxLength: 12 }),
  )
  .map(([frames, cuts]) => {
    const parts = frames.map(([payload, delta]) => {
      if (Number.isNaN(delta)) return payload;
      const head = Buffer.alloc(FRAME_HEADER_BYTES);
      head.writeUInt32BE(Math.max(0, payload.length + delta), 0);
      return concat([head, payload]);
    });
    return cut(concat(parts), cuts);
  });

/** For the FrameReader properties: a small limit, so that random lengths land on both sides of it. */
export const SMALL_FRAME_LIMIT = 64;

/** Well-formed frame payloads under SMALL_FRAME_LIMIT, and cut points. */
export const splitCase = fc.tuple(fc.array(fc.uint8Array({ minLength: 1, maxLength: SMALL_FRAME_LIMIT }), { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 40 }));

/** Byte streams made of headers with lengths around SMALL_FRAME_LIMIT (0 included) and random bodies, and cut points. */
export const lengthPrefixCase = fc.tuple(
  fc
    .array(
      fc.oneof(
        fc.tuple(fc.oneof(fc.integer({ min: 0, max: SMALL_FRAME_LIMIT + 8 }), fc.nat()), fc.uint8Array({ maxLength: SMALL_FRAME_LIMIT + 8 })).map(([n, body]) => {
          const head = Buffer.alloc(FRAME_HEADER_BYTES);
          head.writeUInt32BE(n >>> 0, 0);
          return concat([head, body]);
        }),
        fc.uint8Array({ maxLength: 16 }),
      ),
      { maxLength: 8 },
    )
    .map(concat),
  fc.array(fc.nat(), { maxLength: 40 }),
);
