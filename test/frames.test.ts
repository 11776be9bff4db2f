/**
 * FrameReader on its own: frames reassembled from chunks, and the cost of doing it.
 * (Its properties over random input are in test/fuzz.test.ts.)
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { encodeFrame, FrameReader } from '../src/ingest/frames';

test('frames - a 1 MiB frame trickled in 16-byte chunks is reassembled in time linear in its size', () => {
  // Found while writing the FrameReader fuzz property: every chunk re-joined everything held
  // so far, so this took ~8 s of the ingest thread (64 KiB: 40 ms, 256 KiB: 0.5 s).
  const payload = Buffer.alloc(1 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
  const stream = encodeFrame(payload);
  const reader = new FrameReader(1 << 20);
  const frames: Buffer[] = [];
  const started = performance.now();
  for (let at = 0; at < stream.length; at += 16) {
    reader.push(stream.subarray(at, at + 16), (f) => frames.push(Buffer.from(f)));
    assert.ok(reader.buffered <= stream.length);
  }
  const ms = performance.now() - started;
  assert.equal(frames.length, 1);
  assert.ok(frames[0].equals(payload), 'the frame arrives intact');
  assert.equal(reader.buffered, 0);
  assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`);
});

test('frames - frames split anywhere, header included, come out whole and in order', () => {
  const payloads = [Buffer.from('a'), Buffer.alloc(300, 7), Buffer.from('bc'), Buffer.alloc(70_000, 9)];
  const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)));
  for (const size of [1, 2, 3, 5, 4096, stream.length]) {
    const reader = new FrameReader(1 << 20);
    const frames: Buffer[] = [];
    for (let at = 0; at < stream.length; at += size) reader.push(stream.subarray(at, at + size), (f) => frames.push(Buffer.from(f)));
    assert.deepStrictEqual(frames, payloads, `chunks of ${size}`);
    assert.equal(reader.buffered, 0);
  }
});
