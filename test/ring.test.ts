/**
 * The SharedArrayBuffer ring (src/ring): records come out whole, in order, exactly once,
 * across wrap-arounds of the data area and of the u32 position counters, with a real
 * worker thread as the producer; a full ring refuses and counts.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { allocateRing, forEachRecord, RingConsumer, RingProducer } from '../src/ring';
import { Slot } from '../src/ring/layout';
import { NOTIFY_BURST } from '../src/ring/producer';

function payloadOf(i: number): Uint8Array {
  const p = new Uint8Array(8 + (i % 97));
  new DataView(p.buffer).setUint32(0, i, true);
  p.fill(i & 0xff, 4);
  return p;
}

/** Drains every claimed record, checking each one's index, size and fill. Returns the next expected index. */
function drain(consumer: RingConsumer, expected: number): number {
  for (;;) {
    const span = consumer.claim(1000, 1 << 30);
    if (span === null) return expected;
    let seen = 0;
    forEachRecord(consumer.sab, span, (payload, stamp) => {
      const i = new DataView(payload.buffer, payload.byteOffset).getUint32(0, true);
      assert.equal(i, expected, 'records come out in order, exactly once');
      assert.equal(stamp, expected, 'the ingest time travels with the record');
      assert.equal(payload.length, 8 + (i % 97));
      assert.ok(payload.subarray(4).every((b) => b === (i & 0xff)), `record ${i} intact`);
      expected++;
      seen++;
    });
    assert.equal(seen, span.events);
    consumer.release(span.end);
  }
}

describe('ring - shared-memory queue', () => {
  test('ring - records survive many laps of the data area, in order', () => {
    const sab = allocateRing(1 << 16);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    let next = 0;
    let expected = 0;
    while (next < 50_000) {
      // Fill part of the ring, then drain: every lap ends at a different offset.
      for (let k = 0; k < 300 && next < 50_000; k++) {
        assert.ok(producer.offer(payloadOf(next), next));
        next++;
      }
      expected = drain(consumer, expected);
    }
    assert.equal(expected, 50_000);
    assert.equal(consumer.stats().eventsIn, 50_000);
    assert.equal(consumer.stats().droppedFull, 0);
    assert.ok(consumer.isDrained());
  });

  test('ring - positions that wrap past 2^32 keep working', () => {
    const sab = allocateRing(1 << 16);
    const header = new Int32Array(sab, 0, 16);
    // Both counters start 1 KiB below 2^32: the first laps cross the u32 wrap.
    const start = (2 ** 32 - 1024) | 0;
    Atomics.store(header, Slot.WRITE, start);
    Atomics.store(header, Slot.READ, start);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    let expected = 0;
    for (let next = 0; next < 5_000; ) {
      for (let k = 0; k < 100; k++, next++) assert.ok(producer.offer(payloadOf(next), next));
      expected = drain(consumer, expected);
    }
    assert.equal(expected, 5_000);
    assert.ok((Atomics.load(header, Slot.WRITE) >>> 0) < 2 ** 31, 'the write position wrapped');
  });

  test('ring - a full ring refuses, counts ring_full, and takes records again once released', () => {
    const sab = allocateRing(1 << 16);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    let accepted = 0;
    while (producer.offer(payloadOf(accepted), accepted)) accepted++;
    assert.ok(accepted > 100, `accepted ${accepted}`);
    assert.equal(consumer.stats().droppedFull, 1, 'the refused offer is counted');
    assert.equal(producer.offer(payloadOf(accepted), accepted, true), false);
    assert.equal(consumer.stats().droppedFull, 1, 'a retried offer is not counted');
    assert.equal(drain(consumer, 0), accepted);
    assert.ok(producer.offer(payloadOf(accepted), accepted), 'space is back after release');
  });

  test('ring - a waiting consumer is woken at once for a short burst, then at most once per hold; its own short wait picks up what the hold kept back', { timeout: 10_000 }, async (t) => {
    // A pending Atomics.waitAsync does not keep node's event loop alive; this timer does.
    const keepAlive = setInterval(() => undefined, 1000);
    t.after(() => clearInterval(keepAlive));
    const sab = allocateRing(1 << 16);
    const header = new Int32Array(sab, 0, 16);
    const wakes = (): number => Atomics.load(header, Slot.SIGNAL);
    const producer = new RingProducer(sab, 60_000); // a hold no test outlasts
    const consumer = new RingConsumer(sab);

    // Light traffic: back-to-back records each wake the consumer at once, up to the burst.
    let seq = 0;
    for (; seq < NOTIFY_BURST; seq++) {
      const before = wakes();
      const w = consumer.waitForData(60_000);
      assert.ok(producer.offer(payloadOf(seq), seq));
      assert.equal(wakes(), before + 1, `record ${seq} of the burst wakes the consumer`);
      await w;
      assert.equal(drain(consumer, seq), seq + 1);
    }

    // Sustained traffic, past the burst and within the hold: no wake-up. Traffic is
    // recent, so the consumer's wait is short (not the 60 s asked for) and returns by
    // itself with the record.
    const before = wakes();
    const held = consumer.waitForData(60_000);
    assert.ok(producer.offer(payloadOf(seq), seq));
    assert.equal(wakes(), before, 'a record past the burst, within the hold, does not wake the consumer');
    await held;
    assert.equal(drain(consumer, seq), seq + 1, 'the short wait picks the held record up');
    seq++;

    // Without a hold every record wakes a waiting consumer.
    const eager = new RingProducer(sab, 0);
    for (let i = seq; i < seq + 3; i++) {
      const before = wakes();
      const w = consumer.waitForData(60_000);
      assert.ok(eager.offer(payloadOf(i), i));
      assert.equal(wakes(), before + 1, `record ${i} wakes the consumer`);
      await w;
      assert.equal(drain(consumer, i), i + 1);
    }
  });

  test('ring - a consumer in a long wait is woken even when the hold would keep the wake-up back', { timeout: 10_000 }, async (t) => {
    const keepAlive = setInterval(() => undefined, 1000);
    t.after(() => clearInterval(keepAlive));
    const sab = allocateRing(1 << 16);
    const header = new Int32Array(sab, 0, 16);
    const wakes = (): number => Atomics.load(header, Slot.SIGNAL);
    const producer = new RingProducer(sab, 60_000);
    const busy = new RingConsumer(sab);
    let seq = 0;
    // Use up the burst with a consumer whose traffic is recent (its waits are short).
    for (; seq < NOTIFY_BURST; seq++) {
      const w = busy.waitForData(60_000);
      assert.ok(producer.offer(payloadOf(seq), seq));
      await w;
      assert.equal(drain(busy, seq), seq + 1);
    }
    // A consumer with no recent traffic waits long: it must not be left to its timeout.
    const idle = new RingConsumer(sab);
    const before = wakes();
    const w = idle.waitForData(60_000);
    assert.ok(producer.offer(payloadOf(seq), seq));
    assert.equal(wakes(), before + 1, 'the long-waiting consumer is woken');
    await w;
    assert.equal(drain(idle, seq), seq + 1);
  });

  test('ring - a worker thread producer and a main-thread consumer: every record once, in order', async () => {
    const COUNT = 100_000;
    const sab = allocateRing(1 << 16);
    const consumer = new RingConsumer(sab);
    const worker = new Worker(path.join(__dirname, 'workers', 'ring-producer.worker.js'), { workerData: { ring: sab, count: COUNT } });
    const exited = new Promise<number>((resolve) => worker.on('exit', resolve));
    let expected = 0;
    const deadline = Date.now() + 60_000;
    while (!(consumer.isClosed() && !consumer.hasUnclaimed())) {
      assert.ok(Date.now() < deadline, `only ${expected} of ${COUNT} records in 60 s`);
      expected = drain(consumer, expected);
      await consumer.waitForData(50);
    }
    expected = drain(consumer, expected);
    assert.equal(expected, COUNT);
    assert.equal(await exited, 0);
    assert.equal(consumer.stats().eventsIn, COUNT);
  });
});
