/**
 * Reads only what the load client needs from an encoded pb.Alert or pb.Log:
 * HostPID (field 9, our sequence number), UpdatedTime (field 2) and, as a
 * fallback for the sequence number, EventData["Seq"] (field 43 in Alert, 33 in Log).
 * A full protobufjs decode of every event would cost the client several times
 * more CPU, and the client shares the machine's cores with the broker it measures;
 * so the walk stops as soon as it has both (as the Go loadclient's lazy mode does).
 */
import { ArmorfeedError } from '../errors';
import { parseUpdatedTime } from '../wire/time';

export interface PeekedEvent {
  /** Sequence number; 0 when the event carries none (e.g. from another feeder's source). */
  seq: number;
  /** UpdatedTime as epoch microseconds; NaN if absent or unparsable. */
  updatedMicros: number;
  /** Encoded size in bytes (without the 5-byte gRPC prefix). */
  bytes: number;
}

const fieldUpdatedTime = 2;
const fieldHostPid = 9;
const fieldEventDataAlert = 43;
const fieldEventDataLog = 33;

/** Thrown on bytes that are not a protobuf message; grpc-js turns it into an INTERNAL stream error. */
export class WireFormatError extends ArmorfeedError {
  constructor(message: string) {
    super('ERR_LOAD_WIRE_FORMAT', message);
  }
}

/**
 * Parses UpdatedTime straight from the message bytes: "YYYY-MM-DDTHH:MM:SS" once per
 * second of input (while those 19 bytes repeat), the six fraction digits per event.
 * Other layouts fall back to parseUpdatedTime on a string.
 */
class UpdatedTimeParser {
  private readonly prefix = Buffer.alloc(19);
  private prefixMicros = Number.NaN;

  parse(buf: Buffer, start: number, end: number): number {
    if (end - start !== 27 || buf[start + 19] !== 46 /* . */ || buf[start + 26] !== 90 /* Z */) return this.parseText(buf, start, end);
    if (Number.isNaN(this.prefixMicros) || !this.samePrefix(buf, start)) {
      const base = parseUpdatedTime(`${buf.toString('latin1', start, start + 19)}Z`);
      if (Number.isNaN(base)) return this.parseText(buf, start, end);
      buf.copy(this.prefix, 0, start, start + 19);
      this.prefixMicros = base;
    }
    let frac = 0;
    for (let i = start + 20; i < start + 26; i++) {
      const d = buf[i] - 48;
      if (d < 0 || d > 9) return this.parseText(buf, start, end);
      frac = frac * 10 + d;
    }
    return this.prefixMicros + frac;
  }

  private samePrefix(buf: Buffer, start: number): boolean {
    // Compared from the end: the seconds change first.
    for (let i = 18; i >= 0; i--) if (buf[start + i] !== this.prefix[i]) return false;
    return true;
  }

  private parseText(buf: Buffer, start: number, end: number): number {
    return parseUpdatedTime(buf.toString('latin1', start, end));
  }
}

/** Reads one message at `buf[start..end)` (in place: a gRPC chunk holds many). */
export type EventPeeker = (buf: Buffer, start?: number, end?: number) => PeekedEvent;

export function makeEventPeeker(kind: 'alert' | 'log'): EventPeeker {
  const eventDataField = kind === 'alert' ? fieldEventDataAlert : fieldEventDataLog;
  const times = new UpdatedTimeParser();
  // The walk's cursor lives here, not in each call, so a message costs no closure.
  let pos = 0;
  let limit = 0;
  let bytes: Buffer = Buffer.alloc(0);
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= limit) throw new WireFormatError('truncated varint');
      const b = bytes[pos++];
      if (shift < 28) result |= (b & 0x7f) << shift;
      else result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new WireFormatError('varint too long');
    }
  };
  return (buf: Buffer, start = 0, end = buf.length): PeekedEvent => {
    bytes = buf;
    pos = start;
    limit = end;
    let seq = 0;
    let seqFromEventData = 0;
    let updatedMicros = Number.NaN;
    while (pos < end) {
      const tag = varint();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (wire === 0) {
        const v = varint();
        if (field === fieldHostPid) {
          seq = v;
          // Both are read (HostPID comes after UpdatedTime in field order): the rest of
          // the event, most of its bytes, is not walked.
          if (seq > 0 && seq < 2 ** 31 && !Number.isNaN(updatedMicros)) return { seq, updatedMicros, bytes: end - start };
        }
      } else if (wire === 2) {
        const len = varint();
        const from = pos;
        pos += len;
        if (pos > end) throw new WireFormatError('length past end of message');
        if (field === fieldUpdatedTime) updatedMicros = times.parse(buf, from, pos);
        else if (field === eventDataField && seq === 0) seqFromEventData = readSeqEntry(buf, from, pos) || seqFromEventData;
      } else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else throw new WireFormatError(`unsupported wire type ${wire}`);
    }
    if (pos > end) throw new WireFormatError('fixed-width field past end of message');
    return { seq: seq > 0 && seq < 2 ** 31 ? seq : seqFromEventData, updatedMicros, bytes: end - start };
  };
}

/** A map entry {1: key, 2: value}: returns Number(value) when key is "Seq", else 0. */
function readSeqEntry(buf: Buffer, start: number, end: number): number {
  let pos = start;
  let key = '';
  let value = '';
  while (pos < end) {
    const tag = buf[pos++];
    const len = buf[pos++];
    if ((tag & 7) !== 2 || len > 127) return 0;
    const s = buf.toString('latin1', pos, pos + len);
    pos += len;
    if (tag >>> 3 === 1) key = s;
    else if (tag >>> 3 === 2) value = s;
  }
  return key === 'Seq' && /^\d+$/.test(value) ? Number(value) : 0;
}
