/**
 * A protobuf wire walker written for the tests, independent of protobufjs and of the
 * code under test, so that field presence can be checked on the raw bytes.
 */

export interface WireField {
  field: number;
  wireType: number;
  varint?: bigint;
  bytes?: Buffer;
}

/** The top-level fields of one message, in wire order; throws on bytes that are not a message. */
export function walk(buf: Uint8Array): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  };
  while (pos < buf.length) {
    const key = Number(readVarint());
    const field = key >>> 3;
    const wireType = key & 7;
    if (wireType === 0) out.push({ field, wireType, varint: readVarint() });
    else if (wireType === 2) {
      const len = Number(readVarint());
      if (pos + len > buf.length) throw new Error(`field ${field}: length ${len} past the end`);
      out.push({ field, wireType, bytes: Buffer.from(buf.subarray(pos, pos + len)) });
      pos += len;
    } else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else throw new Error(`field ${field}: unexpected wire type ${wireType}`);
  }
  return out;
}

/** Every occurrence of one field number: asserting on presence and repetition. */
export function fieldsOf(raw: Uint8Array, field: number): WireField[] {
  return walk(raw).filter((f) => f.field === field);
}

/** Field number -> length (length-delimited fields) or -1 (varints); the last occurrence wins. */
export function fieldLengths(raw: Uint8Array): Map<number, number> {
  const out = new Map<number, number>();
  for (const f of walk(raw)) if (f.wireType === 0 || f.wireType === 2) out.set(f.field, f.bytes?.length ?? -1);
  return out;
}
