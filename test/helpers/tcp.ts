/**
 * A msgpack producer for the tcp and socket ingest sources: frames (u32 BE length +
 * msgpack map) and the few socket steps the tests take to send them.
 */
import * as net from 'node:net';
import { pack } from 'msgpackr';
import { encodeFrame } from '../../src/ingest/frames';

/** One ingest frame holding `value` packed as msgpack. */
export function frameOf(value: unknown): Buffer {
  return encodeFrame(pack(value));
}

/** Connects to HOST:PORT, or to a Unix socket path when `address` is not HOST:PORT. */
export function connectTo(address: string, noDelay = true): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const m = /^(.*):(\d+)$/.exec(address);
    const sock = m === null ? net.connect(address) : net.connect(Number(m[2]), m[1]);
    if (noDelay) sock.setNoDelay(true);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

/** Writes `bytes` and resolves once they are handed to the kernel. */
export function write(sock: net.Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => sock.write(bytes, (err) => (err ? reject(err) : resolve())));
}

/** A producer that sends one batch and leaves: connects, writes `bytes`, half-closes once they are flushed. */
export async function sendAndEnd(address: string, bytes: Uint8Array): Promise<void> {
  const sock = await connectTo(address, false);
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.end(bytes, () => resolve());
  });
}

/**
 * msgpack bytes of `depth` one-element arrays nested around nil, built by hand: msgpackr's
 * pack (like any recursive encoder) would overflow this process's stack first.
 */
export function nestedArrays(depth: number): Buffer {
  return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.of(0xc0)]);
}

/** A msgpack map of `fields`, plus `key` whose value is `raw` msgpack bytes, as is. */
export function mapWithRawValue(fields: Record<string, unknown>, key: string, raw: Uint8Array): Buffer {
  const entries = Object.entries(fields);
  if (entries.length + 1 > 15) throw new RangeError('mapWithRawValue: at most 14 fields (a fixmap)');
  return Buffer.concat([Buffer.of(0x80 | (entries.length + 1)), ...entries.flatMap(([k, v]) => [pack(k), pack(v)]), pack(key), raw]);
}
