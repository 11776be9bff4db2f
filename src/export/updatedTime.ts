/**
 * Reads an encoded event's UpdatedTime without decoding it. Message, Alert and Log all
 * carry it as field 2 (a string) of their top level (proto/kubearmor.proto), and the
 * encoders write fields in number order, so the walk stops after the Timestamp: two
 * varints instead of a decode of some thirty fields per exported event. (An event with an
 * empty UpdatedTime, which proto3 leaves out, costs a walk over every field.)
 */

const UPDATED_TIME_FIELD = 2;
const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const latin1 = new TextDecoder('latin1');

/** UpdatedTime of the protobuf message in bytes[start, end), or '' when it has none or the bytes are not protobuf. */
export function readUpdatedTime(bytes: Uint8Array, start: number, end: number): string {
  let at = start;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10 && at < end; i++) {
      const b = bytes[at++];
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    return -1;
  };
  while (at < end) {
    const key = varint();
    if (key < 0) return '';
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === WIRE_LEN) {
      const length = varint();
      if (length < 0 || at + length > end) return '';
      // RFC 3339 time: ASCII, so latin1 is exact and skips UTF-8 validation.
      if (field === UPDATED_TIME_FIELD) return latin1.decode(bytes.subarray(at, at + length));
      at += length;
    } else if (wire === WIRE_VARINT) {
      if (varint() < 0) return '';
    } else if (wire === WIRE_FIXED64) {
      at += 8;
    } else if (wire === WIRE_FIXED32) {
      at += 4;
    } else {
      return '';
    }
  }
  return '';
}
