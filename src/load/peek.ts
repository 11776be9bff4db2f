/**
 * Reads only what the load client needs from an encoded pb.Alert or pb.Log:
 * HostPID (field 9, our sequence number), UpdatedTime (field 2) and, as a
 * fallback for the sequence number, EventData["Seq"] (field 43 in Alert, 33 in Log).
 * A full protobufjs decode of every event would cost the client several times
 * more CPU, and the client shares the machine's cores with the broker it measures.
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

/** Parses "YYYY-MM-DDTHH:MM:SS" once per second of input; the fraction per event. */
class UpdatedTimeParser {
  private prefix = '';
  private prefixMicros = 0;

  parse(s: string): number {
    if (s.length === 27 && s.charCodeAt(19) === 46 /* . */ && s.charCodeAt(26) === 90 /* Z */) {
      const prefix = s.slice(0, 19);
      if (prefix !== this.prefix) {
        const base = parseUpdatedTime(`${prefix}Z`);
        if (Number.isNaN(base)) return parseUpdatedTime(s);
        this.prefix = prefix;
        this.prefixMicros = base;
      }
      const frac = Number(s.slice(20, 26));
      return Number.isNaN(frac) ? parseUpdatedTime(s) : this.prefixMicros + frac;
    }
    return parseUpdatedTime(s);
  }
}

export function makeEventPeeker(kind: 'alert' | 'log'): (buf: Buffer) => PeekedEvent {
  const eventDataField = kind === 'alert' ? fieldEventDataAlert : fieldEventDataLog;
  const times = new UpdatedTimeParser();
  return (buf: Buffer): PeekedEvent => {
    let pos = 0;
    let seq = 0;
    let seqFromEventData = 0;
    let updatedMicros = Number.NaN;
    const end = buf.length;
    const varint = (): number => {
      let result = 0;
      let shift = 0;
      for (;;) {
        if (pos >= end) throw new WireFormatError('truncated varint');
        const b = buf[pos++];
        if (shift < 28) result |= (b & 0x7f) << shift;
        else result += (b & 0x7f) * 2 ** shift;
        if ((b & 0x80) === 0) return result;
        shift += 7;
        if (shift > 63) throw new WireFormatError('varint too long');
      }
    };
    while (pos < end) {
      const tag = varint();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (wire === 0) {
        const v = varint();
        if (field === fieldHostPid) seq = v;
      } else if (wire === 2) {
        const len = varint();
        const start = pos;
        pos += len;
        if (pos > end) throw new WireFormatError('length past end of message');
        if (field === fieldUpdatedTime) updatedMicros = times.parse(buf.toString('latin1', start, pos));
        else if (field === eventDataField && seq === 0) seqFromEventData = readSeqEntry(buf, start, pos) || seqFromEventData;
      } else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else throw new WireFormatError(`unsupported wire type ${wire}`);
    }
    return { seq: seq > 0 && seq < 2 ** 31 ? seq : seqFromEventData, updatedMicros, bytes: end };
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
