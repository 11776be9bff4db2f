/**
 * Reassembly at ingest (src/ingest/frames.ts, src/ingest/lines.ts): frames and lines come
 * out whole and in order however the bytes were cut, and a large one arriving in many
 * small pieces costs time linear in its size, not in its size times the number of pieces.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { encodeFrame, FrameReader } from '../src/ingest/frames';
import { InputError } from '../src/errors';
import { LineReader } from '../src/ingest/lines';

const MiB = 1024 * 1024;

test('framing - a 1 MiB frame arriving in 4-byte pieces is reassembled in linear time', () => {
  const payload = Buffer.alloc(MiB - 64, 0x61);
  payload[0] = 0x01;
  const small = Buffer.of(0x80);
  const bytes = Buffer.concat([encodeFrame(small), encodeFrame(payload), encodeFrame(small)]);
  const reader = new FrameReader(MiB);
  const frames: Buffer[] = [];
  const started = performance.now();
  for (let at = 0; at < bytes.length; at += 4) reader.push(bytes.subarray(at, at + 4), (f) => frames.push(Buffer.from(f)));
  const ms = performance.now() - started;
  // Linear: milliseconds. Re-copying what was buffered for every piece took ~11 s here.
  assert.ok(ms < 3000, `reassembly took ${ms.toFixed(0)} ms`);
  assert.equal(frames.length, 3);
  assert.ok(frames[0].equals(small) && frames[1].equals(payload) && frames[2].equals(small));
  assert.equal(reader.buffered, 0);
});

test('framing - frames cut at every offset come out whole and in order, a length-0 one as an empty frame', () => {
  // A length-0 frame comes out empty, and the framing goes on after it.
  const payloads = [Buffer.of(0x81, 0xa1, 0x61, 0x01), Buffer.alloc(0), Buffer.alloc(300, 7), Buffer.of(0x90)];
  const bytes = Buffer.concat(payloads.map(encodeFrame));
  for (let cut = 1; cut < bytes.length; cut++) {
    const reader = new FrameReader(1024);
    const frames: Buffer[] = [];
    reader.push(bytes.subarray(0, cut), (f) => frames.push(Buffer.from(f)));
    reader.push(bytes.subarray(cut), (f) => frames.push(Buffer.from(f)));
    assert.deepEqual(frames, payloads, `cut at ${cut}`);
    assert.equal(reader.buffered, 0);
  }
});

test('framing - a length over the limit throws oversized after handing over the frames before it, and keeps nothing', () => {
  const reader = new FrameReader(16);
  const frames: Buffer[] = [];
  const tooLong = Buffer.alloc(4);
  tooLong.writeUInt32BE(17);
  const bytes = Buffer.concat([encodeFrame(Buffer.of(0x80)), encodeFrame(Buffer.of(0x90)), tooLong, Buffer.alloc(40)]);
  assert.throws(() => reader.push(bytes, (f) => frames.push(Buffer.from(f))), (err: unknown) => err instanceof InputError && err.code === 'ERR_INPUT_OVERSIZED');
  assert.deepEqual(frames, [Buffer.of(0x80), Buffer.of(0x90)]);
  assert.equal(reader.buffered, 0);
});

test('framing - a 1 MiB line arriving in 16-byte pieces is reassembled in linear time', () => {
  const long = `{"data":"${'x'.repeat(MiB - 64)}"}`;
  const text = `a\n${long}\nb`;
  const reader = new LineReader(MiB);
  const lines: string[] = [];
  let oversized = 0;
  const started = performance.now();
  for (let at = 0; at < text.length; at += 16) reader.push(text.slice(at, at + 16), (l) => lines.push(l), () => oversized++);
  reader.end((l) => lines.push(l));
  const ms = performance.now() - started;
  assert.ok(ms < 3000, `reassembly took ${ms.toFixed(0)} ms`);
  assert.deepEqual(lines, ['a', long, 'b']);
  assert.equal(oversized, 0);
});

test('framing - a line over the limit is reported once and skipped up to its newline', () => {
  const reader = new LineReader(100);
  const lines: string[] = [];
  let oversized = 0;
  for (const piece of ['one\ntw', 'o', 'x'.repeat(150), 'y'.repeat(150), 'z\nthree\n', 'four']) {
    reader.push(piece, (l) => lines.push(l), () => oversized++);
  }
  reader.end((l) => lines.push(l));
  assert.deepEqual(lines, ['one', 'three', 'four']);
  assert.equal(oversized, 1);
});
