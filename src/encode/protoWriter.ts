/**
 * A growable protobuf byte writer that the transcoder writes straight into: one buffer
 * per stream per worker, reused for every batch, so encoding allocates nothing per event.
 */
export class ProtoWriter {
  buf: Uint8Array;
  pos = 0;

  constructor(initial = 1 << 18) {
    this.buf = new Uint8Array(initial);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
  }

  /** Unsigned varint of a non-negative safe integer. */
  varint(v: number): void {
    this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    while (v > 0x7f) {
      buf[p++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[p++] = v;
    this.pos = p;
  }

  /** int32/int64 field value: negative numbers take 10 bytes (two's complement, sign-extended). */
  signedVarint(v: number): void {
    if (v >= 0) {
      this.varint(v);
      return;
    }
    this.ensure(10);
    let lo = v | 0;
    let hi = v < -0x80000000 ? Math.floor(v / 0x100000000) | 0 : -1;
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = (lo >>> 7) | (hi << 25);
      hi >>= 7;
    }
    this.buf[this.pos++] = 1;
  }

  bytes(src: Uint8Array, start: number, length: number): void {
    this.ensure(length);
    if (length < 64) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = 0; i < length; i++) buf[p++] = src[start + i];
      this.pos = p;
    } else {
      this.buf.set(src.subarray(start, start + length), this.pos);
      this.pos += length;
    }
  }

  /** A length-delimited field from raw bytes (string, bytes). */
  lenField(tag: number, src: Uint8Array, start: number, length: number): void {
    this.varint(tag);
    this.varint(length);
    this.bytes(src, start, length);
  }

  /** An ASCII string field (constants, formatted times). */
  asciiField(tag: number, s: string): void {
    this.varint(tag);
    this.varint(s.length);
    this.ensure(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
  }
}

/** Bytes a varint of v takes. */
export function varintSize(v: number): number {
  let n = 1;
  while (v > 0x7f) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}
