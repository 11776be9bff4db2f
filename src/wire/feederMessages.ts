/**
 * The three small messages a feeder's client sends or reads besides events (the load
 * client and the relay's upstreams, FeederSession.healthCheck and watch), encoded by hand
 * (proto/kubearmor.proto: NonceMessage{int32 nonce = 1}, ReplyMessage{int32 Retval = 1},
 * RequestMessage{string Filter = 1}) so that a load worker does not load and parse the
 * .proto with protobufjs (~50 ms of CPU per thread). test/load-h2-grpc.test.ts checks them
 * against protobufjs.
 */

function varintBytes(v: number): number[] {
  const out: number[] = [];
  // int32: a negative value is sign-extended to 10 bytes, as protobuf does.
  let n = BigInt.asUintN(64, BigInt(v));
  do {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    out.push(n > 0n ? b | 0x80 : b);
  } while (n > 0n);
  return out;
}

export function encodeNonceMessage(nonce: number): Uint8Array {
  return Uint8Array.from([0x08, ...varintBytes(nonce)]);
}

export function encodeRequestMessage(filter: string): Uint8Array {
  const text = Buffer.from(filter, 'utf8');
  return Buffer.concat([Uint8Array.from([0x0a, ...varintBytes(text.length)]), text]);
}

/** Retval (field 1) of a ReplyMessage; 0 when absent, as proto3 reads it. Other fields, of any wire type, are skipped as a proto3 reader skips unknown ones. */
export function decodeReplyMessage(buf: Buffer): number {
  let retval = 0;
  let pos = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length || shift > 63n) throw new Error('truncated ReplyMessage');
      const b = buf[pos++];
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
  };
  while (pos < buf.length) {
    const tag = varint();
    const wireType = Number(tag & 7n);
    if (wireType === 0) {
      const v = varint();
      if (tag >> 3n === 1n) retval = Number(BigInt.asIntN(32, v));
      continue;
    }
    const skip = wireType === 1 ? 8 : wireType === 5 ? 4 : wireType === 2 ? Number(varint()) : -1;
    if (skip < 0) throw new Error(`unexpected wire type ${wireType} in ReplyMessage (tag ${tag})`);
    if (pos + skip > buf.length) throw new Error('truncated ReplyMessage');
    pos += skip;
  }
  return retval;
}
