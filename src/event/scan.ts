/**
 * A zero-allocation reader of one msgpack event map: it checks every key and value
 * against the ingest schema and records where each value starts (the "tape"), without
 * building a JS object. Ingest threads use it to validate frames; encoder workers use
 * the same tape to transcode straight to protobuf. One reader, one set of rules.
 *
 *   frame bytes:  [map hdr][key "pid"][int 42][key "podName"][str "nginx-…"]…
 *   tape:         Int32Array, one slot per schema key: offset of the value's type byte,
 *                 or -1 when the key is absent (or nil / undefined)
 *
 * Only plain msgpack is accepted (maps, strings, ints, arrays, nil, msgpackr's
 * `undefined`); bin and ext values and keys that are not strings are rejected as
 * wrong_type, since no upstream key holds them. Bytes that are not msgpack at all are
 * malformed_frame.
 */
import { InputError } from '../errors';
import { EXEC_EVENT_KEYS, OWNER_KEYS } from './rules';
import { alertTypes, ingestFields, logTypes, type FieldKind } from './schema';

/** A constant's bytes, for comparing with msgpack strings without decoding them. */
export function ascii(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

export const FIELD_COUNT = ingestFields.length;

/** Index of each ingest key in the tape. */
export const K = Object.fromEntries(ingestFields.map(([key], i) => [key, i])) as { [P in (typeof ingestFields)[number][0]]: number };

const kinds: FieldKind[] = ingestFields.map(([, kind]) => kind);
const keyBytes: Uint8Array[] = ingestFields.map(([key]) => ascii(key));

// Key lookup without making a string: bucket by (length, first byte, last byte), then
// compare bytes. 45 keys spread over 256 buckets, so a bucket holds one or two.
const buckets: number[][] = Array.from({ length: 256 }, () => []);
function bucketOf(len: number, first: number, last: number): number {
  return (len * 31 + first * 7 + last) & 255;
}
keyBytes.forEach((k, i) => buckets[bucketOf(k.length, k[0], k[k.length - 1])].push(i));

// For bytes already validated (trusted), a key is known to be one of the schema's, and
// (length, first, middle, last byte) tells the 45 apart (checked below at load), so one
// probe of a small open-addressed table replaces the byte-by-byte comparison.
const SIG_SLOTS = 256;
const sigTable = new Int32Array(SIG_SLOTS).fill(-1);
const sigFields = new Int8Array(SIG_SLOTS);
function signature(len: number, first: number, middle: number, last: number): number {
  return ((len << 24) | (first << 16) | (middle << 8) | last) >>> 0;
}
function sigSlot(sig: number): number {
  return Math.imul(sig, 0x9e3779b1) >>> 24;
}
keyBytes.forEach((k, i) => {
  const sig = signature(k.length, k[0], k[k.length >> 1], k[k.length - 1]);
  let slot = sigSlot(sig);
  while (sigTable[slot] !== -1) {
    if (sigTable[slot] === (sig | 0)) throw new Error(`scan: keys ${ingestFields[sigFields[slot]][0]} and ${ingestFields[i][0]} share a signature`);
    slot = (slot + 1) & (SIG_SLOTS - 1);
  }
  sigTable[slot] = sig | 0;
  sigFields[slot] = i;
});

function trustedField(buf: Uint8Array, ks: number, kl: number): number {
  const sig = signature(kl, buf[ks], buf[ks + (kl >> 1)], buf[ks + kl - 1]) | 0;
  let slot = sigSlot(sig >>> 0);
  for (;;) {
    const t = sigTable[slot];
    if (t === sig) return sigFields[slot];
    if (t === -1) return -1;
    slot = (slot + 1) & (SIG_SLOTS - 1);
  }
}

export function createTape(): Int32Array {
  return new Int32Array(FIELD_COUNT);
}

/** Decoded position of a msgpack string: data starts at `start`, `length` bytes. */
export interface StrRef {
  start: number;
  length: number;
}

/** Reads a str header at `pos`; returns false when the value is not a string. */
export function readStr(buf: Uint8Array, pos: number, out: StrRef): boolean {
  const b = buf[pos];
  if (b >= 0xa0 && b <= 0xbf) {
    out.start = pos + 1;
    out.length = b & 0x1f;
  } else if (b === 0xd9) {
    out.start = pos + 2;
    // `| 0`: a header cut off at the end of the buffer reads as length 0 (its start is
    // then past the end, which callers check) rather than NaN, which every check passes.
    out.length = buf[pos + 1] | 0;
  } else if (b === 0xda) {
    out.start = pos + 3;
    out.length = (buf[pos + 1] << 8) | buf[pos + 2];
  } else if (b === 0xdb) {
    out.start = pos + 5;
    out.length = ((buf[pos + 1] << 24) | (buf[pos + 2] << 16) | (buf[pos + 3] << 8) | buf[pos + 4]) >>> 0;
  } else return false;
  return true;
}

/**
 * Reads an integer value at `pos` (NaN when not an integer: NaN and ±Infinity included).
 * Float64 is accepted when integral. 64-bit values past 2^53 come back rounded: callers
 * check the field's range (scanEvent) before trusting one.
 */
export function readInt(buf: Uint8Array, pos: number): number {
  const b = buf[pos];
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  switch (b) {
    case 0xcc: return buf[pos + 1];
    case 0xcd: return (buf[pos + 1] << 8) | buf[pos + 2];
    case 0xce: return ((buf[pos + 1] << 24) | (buf[pos + 2] << 16) | (buf[pos + 3] << 8) | buf[pos + 4]) >>> 0;
    case 0xd0: return (buf[pos + 1] << 24) >> 24;
    case 0xd1: return (((buf[pos + 1] << 8) | buf[pos + 2]) << 16) >> 16;
    case 0xd2: return (buf[pos + 1] << 24) | (buf[pos + 2] << 16) | (buf[pos + 3] << 8) | buf[pos + 4];
  }
  // 64-bit and float encodings are rare here (timestamps from some producers).
  const dv = new DataView(buf.buffer, buf.byteOffset + pos + 1);
  switch (b) {
    case 0xcf: return Number(dv.getBigUint64(0));
    case 0xd3: return Number(dv.getBigInt64(0));
    case 0xcb: {
      const f = dv.getFloat64(0);
      return Number.isInteger(f) ? f : Number.NaN;
    }
    case 0xca: {
      const f = dv.getFloat32(0);
      return Number.isInteger(f) ? f : Number.NaN;
    }
    default: return Number.NaN;
  }
}

/** Reads a map or array header: [count, offset of the first element], or null. */
function readContainer(buf: Uint8Array, pos: number, map: boolean): [number, number] | null {
  const b = buf[pos];
  if (map) {
    if (b >= 0x80 && b <= 0x8f) return [b & 0x0f, pos + 1];
    if (b === 0xde) return [(buf[pos + 1] << 8) | buf[pos + 2], pos + 3];
    if (b === 0xdf) return [((buf[pos + 1] << 24) | (buf[pos + 2] << 16) | (buf[pos + 3] << 8) | buf[pos + 4]) >>> 0, pos + 5];
  } else {
    if (b >= 0x90 && b <= 0x9f) return [b & 0x0f, pos + 1];
    if (b === 0xdc) return [(buf[pos + 1] << 8) | buf[pos + 2], pos + 3];
    if (b === 0xdd) return [((buf[pos + 1] << 24) | (buf[pos + 2] << 16) | (buf[pos + 3] << 8) | buf[pos + 4]) >>> 0, pos + 5];
  }
  return null;
}

export function readMapHeader(buf: Uint8Array, pos: number): [number, number] | null {
  return readContainer(buf, pos, true);
}

/**
 * Reads the map entry at `p` of a validated map of strings (Owner, ExecEvent,
 * EventData): its key into `key`, its value into `value`; returns the offset after it.
 */
export function readStringEntry(buf: Uint8Array, p: number, key: StrRef, value: StrRef): number {
  readStr(buf, p, key);
  readStr(buf, key.start + key.length, value);
  return value.start + value.length;
}

export function readArrayHeader(buf: Uint8Array, pos: number): [number, number] | null {
  return readContainer(buf, pos, false);
}

const NIL = 0xc0;
const skipScratch: StrRef = { start: 0, length: 0 };

function isUndefined(buf: Uint8Array, pos: number): boolean {
  return buf[pos] === 0xd4 && buf[pos + 1] === 0 && buf[pos + 2] === 0;
}

/** Offset past a value of the event map (level 1) at `pos`: strings and ints inline (the common case), the rest via skipValue. */
function valueEnd(buf: Uint8Array, pos: number, end: number): number {
  const b = buf[pos];
  let next: number;
  if (b >= 0xa0 && b <= 0xbf) next = pos + 1 + (b & 0x1f);
  else if (b === 0xd9) next = pos + 2 + buf[pos + 1];
  else if (b === 0xda) next = pos + 3 + ((buf[pos + 1] << 8) | buf[pos + 2]);
  else if (b <= 0x7f || b >= 0xe0) next = pos + 1;
  else if (b === 0xce || b === 0xd2) next = pos + 5;
  else if (b === 0xcd || b === 0xd1) next = pos + 3;
  else if (b === 0xcc || b === 0xd0) next = pos + 2;
  else return skipValue(buf, pos, end, 1);
  return next <= end ? next : -1;
}

/**
 * Deepest nesting of maps and arrays accepted, counting the event map (or whatever value
 * a frame holds) as level 1. Upstream's schema needs 2 (owner, execEvent, eventData);
 * the limit is what every reader after validation (the encoders' msgpack decoder,
 * recursive like any) can rely on.
 */
export const MAX_NESTING = 32;

function tooDeep(): InputError {
  return new InputError('ERR_INPUT_TOO_DEEP', `maps and arrays nest deeper than ${MAX_NESTING} levels (upstream's events need 2)`);
}

/** Items still to skip in each open container (skipValue); index = level - 1. */
const openItems = new Float64Array(MAX_NESTING);

/** Bytes of a bin or ext value's header and body at `pos` (msgpack spec), or 0 when it is neither. */
function binaryValueSize(buf: Uint8Array, pos: number): number {
  const b = buf[pos];
  if (b >= 0xd4 && b <= 0xd8) return 2 + (1 << (b - 0xd4)); // fixext 1..16: type, data
  switch (b) {
    case 0xc4: return 2 + buf[pos + 1];
    case 0xc5: return 3 + ((buf[pos + 1] << 8) | buf[pos + 2]);
    case 0xc6: return 5 + (((buf[pos + 1] << 24) | (buf[pos + 2] << 16) | (buf[pos + 3] << 8) | buf[pos + 4]) >>> 0);
    case 0xc7: return 3 + buf[pos + 1]; // ext 8: length, type, data
    case 0xc8: return 4 + ((buf[pos + 1] << 8) | buf[pos + 2]);
    case 0xc9: return 6 + (((buf[pos + 1] << 24) | (buf[pos + 2] << 16) | (buf[pos + 3] << 8) | buf[pos + 4]) >>> 0);
    default: return 0;
  }
}

/**
 * Offset just past the value at `pos`, or -1 if it is not plain msgpack (or, with
 * `binary`, not msgpack at all) or runs past `end`. `level` is how many containers are
 * already open around it. Iterative, with one counter per open container, so a hostile
 * frame cannot exhaust the stack: nesting past MAX_NESTING throws ERR_INPUT_TOO_DEEP.
 * `binary`: bin and ext values are skipped too (telling a value of a type no upstream key
 * holds from bytes that are not msgpack at all).
 */
export function skipValue(buf: Uint8Array, pos: number, end: number, level = 0, binary = false): number {
  const base = level;
  let p = pos;
  for (;;) {
    if (p >= end) return -1;
    const b = buf[p];
    if (b <= 0x7f || b >= 0xe0 || b === NIL || b === 0xc2 || b === 0xc3) p += 1;
    else if (b >= 0xa0 && b <= 0xbf) p += 1 + (b & 0x1f);
    else if (b === 0xd9 || b === 0xda || b === 0xdb) {
      readStr(buf, p, skipScratch);
      p = skipScratch.start + skipScratch.length;
    } else if (b === 0xcc || b === 0xd0) p += 2;
    else if (b === 0xcd || b === 0xd1) p += 3;
    else if (b === 0xce || b === 0xd2 || b === 0xca) p += 5;
    else if (b === 0xcf || b === 0xd3 || b === 0xcb) p += 9;
    else if (isUndefined(buf, p)) p += 3;
    else if (binary && binaryValueSize(buf, p) > 0) p += binaryValueSize(buf, p);
    else {
      const isMap = (b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf;
      const isArr = (b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd;
      if (!isMap && !isArr) return -1;
      const hdr = readContainer(buf, p, isMap) as [number, number];
      if (level === MAX_NESTING) throw tooDeep();
      p = hdr[1];
      const items = isMap ? hdr[0] * 2 : hdr[0];
      if (items > 0) {
        // Descend: the next value read is this container's first item.
        openItems[level++] = items;
        continue;
      }
    }
    if (p > end) return -1;
    // One value done: it counts against its container, which may be done too.
    while (level > base && --openItems[level - 1] === 0) level--;
    if (level === base) return p;
  }
}

/**
 * The same limit for a decoded value (a JSON line, a push()ed object), checked before it
 * is packed for the ring: msgpackr's pack recurses once per level and would overflow the
 * stack first. A cycle is infinitely deep, so it is refused too. Throws ERR_INPUT_TOO_DEEP.
 */
export function checkNesting(value: unknown): void {
  if (nestsDeeper(value, 1)) throw tooDeep();
}

/** True when `value`, a container at `level`, opens one past MAX_NESTING; recursion is bounded by the limit. */
function nestsDeeper(value: unknown, level: number): boolean {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return false;
  if (level > MAX_NESTING) return true;
  if (Array.isArray(value) || value instanceof Set) {
    for (const item of value) if (nestsDeeper(item, level + 1)) return true;
  } else if (value instanceof Map) {
    for (const [k, v] of value) if (nestsDeeper(k, level + 1) || nestsDeeper(v, level + 1)) return true;
  } else {
    const record = value as Record<string, unknown>;
    for (const key in record) if (nestsDeeper(record[key], level + 1)) return true;
  }
  return false;
}

/**
 * Length of the valid UTF-8 sequence at buf[i] (1-4), or 0 if the byte there does not
 * start one (stray continuation, overlong form, surrogate, above U+10FFFF, truncated).
 */
export function utf8SequenceLength(buf: Uint8Array, i: number, end: number): number {
  const b = buf[i];
  if (b < 0x80) return 1;
  let n: number;
  if (b >= 0xc2 && b <= 0xdf) n = 2;
  else if (b >= 0xe0 && b <= 0xef) n = 3;
  else if (b >= 0xf0 && b <= 0xf4) n = 4;
  else return 0;
  if (i + n > end) return 0;
  for (let k = 1; k < n; k++) if ((buf[i + k] & 0xc0) !== 0x80) return 0;
  const b1 = buf[i + 1];
  if (n === 3 && ((b === 0xe0 && b1 < 0xa0) || (b === 0xed && b1 >= 0xa0))) return 0;
  if (n === 4 && ((b === 0xf0 && b1 < 0x90) || (b === 0xf4 && b1 >= 0x90))) return 0;
  return n;
}

/** True when buf[start, start+length) is valid UTF-8 (ASCII takes the fast path). */
export function isValidUtf8(buf: Uint8Array, start: number, length: number): boolean {
  const end = start + length;
  let i = start;
  while (i < end) {
    if (buf[i] < 0x80) {
      i++;
      continue;
    }
    const n = utf8SequenceLength(buf, i, end);
    if (n === 0) return false;
    i += n;
  }
  return true;
}

function invalidUtf8(key: string): InputError {
  return new InputError('ERR_INPUT_INVALID_UTF8', `field "${key}" is not valid UTF-8 (protobuf strings must be)`);
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/**
 * Largest |timestamp| accepted, in seconds: the range of a JS Date (ECMA-262, ±10^8 days,
 * years -271821 to 275760). Timestamp is int64 on the wire, but UpdatedTime is derived
 * from it when absent, and every real Unix time is far inside this; beyond it a number
 * is no longer exact either, and past 2^64 it is not even a varint any more.
 */
export const TIMESTAMP_MAX_SECONDS = 8_640_000_000_000;

function outOfRange(key: string, range: string, n: number): InputError {
  return new InputError('ERR_INPUT_OUT_OF_RANGE', `field "${key}" must be ${range}, got ${n}`);
}

function typeName(buf: Uint8Array, pos: number): string {
  const b = buf[pos];
  if (b === NIL) return 'null';
  if (isUndefined(buf, pos)) return 'undefined';
  if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) return 'integer';
  if (b === 0xca || b === 0xcb) return 'number';
  if (b === 0xc2 || b === 0xc3) return 'boolean';
  if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)) return 'string';
  if ((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf) return 'map';
  if ((b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd) return 'array';
  return 'binary/ext';
}

function wrongType(key: string, want: string, buf: Uint8Array, pos: number): InputError {
  return new InputError('ERR_INPUT_WRONG_TYPE', `field "${key}" must be ${want}, got ${typeName(buf, pos)}`);
}

/**
 * True when buf[start, end) is exactly one well-formed msgpack value, bin and ext types
 * included. Asked only on the way to an error: a frame that is msgpack, but holds a value
 * (or a map key) of a type no upstream key takes, is one bad event; one that is not
 * msgpack at all means the peer does not speak the protocol.
 */
function isOneMsgpackValue(buf: Uint8Array, start: number, end: number): boolean {
  return skipValue(buf, start, end, 0, true) === end;
}

function notPlain(key: string): InputError {
  return new InputError('ERR_INPUT_WRONG_TYPE', `field "${key}" holds msgpack binary or extension data (upstream's keys hold strings, integers, arrays and maps)`);
}

const scratch: StrRef = { start: 0, length: 0 };

function checkStringMap(buf: Uint8Array, pos: number, end: number, key: string, allowed: readonly Uint8Array[] | null): void {
  const hdr = readMapHeader(buf, pos);
  if (hdr === null) throw wrongType(key, 'a map of strings', buf, pos);
  let p = hdr[1];
  for (let i = 0; i < hdr[0]; i++) {
    if (!readStr(buf, p, scratch) || scratch.start + scratch.length > end) throw wrongType(`${key} key`, 'a string', buf, p);
    if (allowed !== null) {
      const ks = scratch.start;
      const kl = scratch.length;
      let known = false;
      for (const a of allowed) {
        if (a.length !== kl) continue;
        let same = true;
        for (let j = 0; j < kl; j++) if (a[j] !== buf[ks + j]) { same = false; break; }
        if (same) { known = true; break; }
      }
      if (!known) {
        const k = Buffer.from(buf.buffer, buf.byteOffset + ks, kl).toString('utf8');
        throw new InputError('ERR_INPUT_UNKNOWN_FIELD', `field "${key}.${k}" is not part of ${key}`);
      }
    }
    if (!isValidUtf8(buf, scratch.start, scratch.length)) throw invalidUtf8(`${key} key`);
    p = scratch.start + scratch.length;
    if (!readStr(buf, p, scratch)) throw wrongType(`${key} value`, 'a string', buf, p);
    p = scratch.start + scratch.length;
    if (p > end) throw new InputError('ERR_INPUT_MALFORMED_FRAME', `field "${key}" runs past the end of the frame`);
    if (!isValidUtf8(buf, scratch.start, scratch.length)) throw invalidUtf8(`${key} value`);
  }
}

const ownerKeys = OWNER_KEYS.map(ascii);
const execEventKeys = EXEC_EVENT_KEYS.map(ascii);

/**
 * Validates the event map in buf[start, end) and fills `tape`. Throws InputError with
 * the first problem found. Does not check Type values (see `checkRouting`).
 * `trusted`: the bytes were validated by this same function before (an ingest thread did,
 * before the ring); only the tape is built, which halves the cost in the encoders.
 */
export function scanEvent(buf: Uint8Array, start: number, end: number, tape: Int32Array, trusted = false): void {
  tape.fill(-1);
  const hdr = readMapHeader(buf, start);
  if (hdr === null) {
    // One well-formed msgpack value of another type is a map that was expected; anything
    // else is not msgpack at all, and the peer is not speaking this protocol.
    if (!isOneMsgpackValue(buf, start, end)) {
      throw new InputError('ERR_INPUT_MALFORMED_FRAME', `frame is not one msgpack value (starts with byte 0x${(buf[start] ?? 0).toString(16)})`);
    }
    throw new InputError('ERR_INPUT_NOT_A_MAP', `an event must be a map of upstream log keys, got ${typeName(buf, start)}`);
  }
  let p = hdr[1];
  for (let i = 0; i < hdr[0]; i++) {
    if (p >= end || !readStr(buf, p, scratch)) {
      if (p < end && isOneMsgpackValue(buf, start, end)) throw new InputError('ERR_INPUT_WRONG_TYPE', `map keys must be strings, got ${typeName(buf, p)}`);
      throw new InputError('ERR_INPUT_MALFORMED_FRAME', 'map keys must be strings');
    }
    const ks = scratch.start;
    const kl = scratch.length;
    if (ks + kl > end) throw new InputError('ERR_INPUT_MALFORMED_FRAME', 'key runs past the end of the frame');
    let field = -1;
    if (trusted) field = trustedField(buf, ks, kl);
    else if (kl > 0) {
      for (const candidate of buckets[bucketOf(kl, buf[ks], buf[ks + kl - 1])]) {
        const kb = keyBytes[candidate];
        if (kb.length !== kl) continue;
        let same = true;
        for (let j = 0; j < kl; j++) if (kb[j] !== buf[ks + j]) { same = false; break; }
        if (same) { field = candidate; break; }
      }
    }
    const v = ks + kl;
    if (field < 0) {
      const name = Buffer.from(buf.buffer, buf.byteOffset + ks, kl).toString('utf8');
      throw new InputError('ERR_INPUT_UNKNOWN_FIELD', `field "${name}" is not an upstream log key (keys are lowerCamelCase, e.g. "namespaceName")`);
    }
    const next = valueEnd(buf, v, end);
    if (next < 0) {
      if (isOneMsgpackValue(buf, start, end)) throw notPlain(ingestFields[field][0]);
      throw new InputError('ERR_INPUT_MALFORMED_FRAME', `value of "${ingestFields[field][0]}" is not msgpack or runs past the end of the frame`);
    }
    const b = buf[v];
    if (trusted) {
      if (b !== NIL && !isUndefined(buf, v)) tape[field] = v;
      p = next;
      continue;
    }
    const key = ingestFields[field][0];
    const kind = kinds[field];
    if (isUndefined(buf, v)) {
      p = next;
      continue;
    }
    if (b === NIL) {
      // JSON null: allowed where upstream's Go type is nillable (slices, maps, pointers).
      if (kind !== 'strings' && kind !== 'stringMap' && kind !== 'owner') {
        throw wrongType(key, kind === 'int' ? 'an integer' : kind === 'string' ? 'a string' : 'a map', buf, v);
      }
      p = next;
      continue;
    }
    switch (kind) {
      case 'string':
        if (!readStr(buf, v, scratch)) throw wrongType(key, 'a string', buf, v);
        // Resource is the one string upstream repairs (invalid bytes deleted, in the
        // transcoder); any other invalid string would make Go's decoder drop the stream.
        if (field !== K.resource && !isValidUtf8(buf, scratch.start, scratch.length)) throw invalidUtf8(key);
        break;
      case 'int': {
        // The encoders write these as varints with no further check: the range is kept here.
        const n = readInt(buf, v);
        if (Number.isNaN(n)) throw wrongType(key, 'an integer', buf, v);
        if (field === K.timestamp) {
          if (n < -TIMESTAMP_MAX_SECONDS || n > TIMESTAMP_MAX_SECONDS) throw outOfRange(key, `Unix seconds within ±${TIMESTAMP_MAX_SECONDS}`, n);
        } else if (n < INT32_MIN || n > INT32_MAX) throw outOfRange(key, 'an int32', n);
        break;
      }
      case 'strings': {
        const a = readArrayHeader(buf, v);
        if (a === null) throw wrongType(key, 'an array of strings', buf, v);
        let q = a[1];
        for (let j = 0; j < a[0]; j++) {
          if (!readStr(buf, q, scratch)) throw wrongType(`${key} item`, 'a string', buf, q);
          if (!isValidUtf8(buf, scratch.start, scratch.length)) throw invalidUtf8(`${key} item`);
          q = scratch.start + scratch.length;
        }
        break;
      }
      case 'owner':
        checkStringMap(buf, v, end, key, ownerKeys);
        break;
      case 'execEvent':
        checkStringMap(buf, v, end, key, execEventKeys);
        break;
      case 'stringMap':
        checkStringMap(buf, v, end, key, null);
        break;
    }
    tape[field] = v;
    p = next;
  }
  if (p !== end) throw new InputError('ERR_INPUT_MALFORMED_FRAME', `${end - p} bytes after the event map`);
}

/** Compares the string value at `pos` with constant ASCII bytes. */
export function strEquals(buf: Uint8Array, pos: number, expected: Uint8Array): boolean {
  if (pos < 0 || !readStr(buf, pos, scratch) || scratch.length !== expected.length) return false;
  const s = scratch.start;
  for (let j = 0; j < expected.length; j++) if (buf[s + j] !== expected[j]) return false;
  return true;
}

/** Length of the string at `pos` (0 when absent). */
export function strLength(buf: Uint8Array, pos: number): number {
  return pos >= 0 && readStr(buf, pos, scratch) ? scratch.length : 0;
}

/** The string at `pos` as a JS string ('' when absent): for rare paths and messages. */
export function strValue(buf: Uint8Array, pos: number): string {
  if (pos < 0 || !readStr(buf, pos, scratch)) return '';
  return Buffer.from(buf.buffer, buf.byteOffset + scratch.start, scratch.length).toString('utf8');
}

const alertTypeBytes = [...alertTypes].map(ascii);
const logTypeBytes = [...logTypes].map(ascii);

/** True when the event goes to WatchAlerts: upstream routes on Type alone. */
export function isAlertTape(buf: Uint8Array, tape: Int32Array): boolean {
  const t = tape[K.type];
  for (const a of alertTypeBytes) if (strEquals(buf, t, a)) return true;
  return false;
}

/** Upstream's routing rules on a scanned event: a known Type, or at least a Source. */
export function checkRouting(buf: Uint8Array, tape: Int32Array): void {
  const t = tape[K.type];
  if (strLength(buf, t) === 0) {
    if (strLength(buf, tape[K.source]) === 0) {
      throw new InputError('ERR_INPUT_UNKNOWN_TYPE', 'event has neither "type" nor "source"; upstream drops such events');
    }
    return;
  }
  if (isAlertTape(buf, tape)) return;
  for (const l of logTypeBytes) if (strEquals(buf, t, l)) return;
  throw new InputError(
    'ERR_INPUT_UNKNOWN_TYPE',
    `type "${strValue(buf, t)}" is not one upstream emits (alerts: ${[...alertTypes].join(', ')}; logs: ${[...logTypes].join(', ')})`,
  );
}

/** scanEvent + checkRouting: the whole ingest validation of one msgpack event. */
export function validateFrame(buf: Uint8Array, start: number, end: number, tape: Int32Array): void {
  scanEvent(buf, start, end, tape);
  checkRouting(buf, tape);
}
