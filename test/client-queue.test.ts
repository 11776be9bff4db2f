/**
 * ClientQueue's own counters and its slow-client signal, without a server: every event
 * offered ends in exactly one outcome, filtered and throttled events never reach the
 * queue, and the overflow signal fires once per crossing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientQueue, type QueueEntry } from '../src/fanout/clientQueue';
import type { EncodedStream } from '../src/encode/batch';
import { frameMessage } from '../src/wire/framing';

function stream(count: number): EncodedStream {
  const frames = Array.from({ length: count }, (_, i) => frameMessage(Buffer.from(`message-${i}`)));
  const ends = new Uint32Array(count);
  let at = 0;
  frames.forEach((f, i) => (ends[i] = at += f.length));
  return { count, bytes: Buffer.concat(frames), ends, ingestedUs: new Float64Array(count), attrs: new Uint16Array(count * 3) };
}

test('client queue - every offered event is counted once: filtered and throttled never reach the queue', () => {
  const q = new ClientQueue(10);
  const s = stream(20);
  q.countFiltered(3);
  q.countThrottled(2);
  assert.equal(q.offerRun(s, 0, 15), 10);
  assert.equal(q.depth, 10);
  const taken: QueueEntry[] = [];
  const w = q.takeWrite(1 << 20, taken);
  assert.equal(w.events, 10);
  q.settleWrite(w);
  q.delivered += w.events;
  assert.equal(q.offerRun(s, 15, 20), 5);
  q.discard();
  assert.deepEqual(q.dropped, { client_queue_full: 5, throttled: 2, filtered: 3, client_closed: 5, shutdown_grace_expired: 0 });
  assert.equal(q.received, 3 + 2 + 15 + 5);
  assert.equal(q.received, q.filtered + q.throttled + q.queueFull + q.queued);
  assert.equal(q.queued, q.written + q.depth + q.closed);
});

test('client queue - the shutdown grace period: one-event writes, what is left counted shutdown_grace_expired, queued or written', () => {
  const q = new ClientQueue(10);
  const s = stream(8);
  assert.equal(q.offerRun(s, 0, 8), 8);
  const taken: QueueEntry[] = [];
  // A slow client during shutdown is written one event at a time (splitting the run).
  const one = q.takeWrite(1 << 20, taken, true);
  assert.equal(one.events, 1);
  assert.deepEqual(Buffer.from(one.bytes), frameMessage(Buffer.from('message-0')));
  q.settleWrite(one);
  q.delivered += one.events;
  taken.length = 0;
  const unconfirmed = q.takeWrite(1 << 20, taken, true);
  assert.equal(unconfirmed.events, 1);
  // The grace period runs out: 6 still queued, 1 written and never confirmed.
  assert.equal(q.discard('shutdown_grace_expired'), 6);
  q.abandonWrite(unconfirmed);
  q.countLost('shutdown_grace_expired', unconfirmed.events);
  assert.deepEqual(q.dropped, { client_queue_full: 0, throttled: 0, filtered: 0, client_closed: 0, shutdown_grace_expired: 7 });
  const lost = Object.values(q.dropped).reduce((a, b) => a + b, 0);
  assert.equal(q.delivered + lost, q.received);
  assert.equal(q.written, q.delivered + q.graceExpired - 6);
});

test('client queue - the slow-client signal fires once per crossing and re-arms below half the capacity', () => {
  const q = new ClientQueue(8);
  let fired = 0;
  q.slow.onCrossing(() => fired++);
  const one = frameMessage(Buffer.from('m'));
  const taken: QueueEntry[] = [];
  for (let i = 0; i < 12; i++) q.offerOne(one, 0);
  for (let i = 0; i < 5; i++) q.offerOne(one, 0);
  assert.equal(fired, 1, 'overflowing again while still full is the same crossing');
  // Down to 4 of 8: not below half, still the same crossing.
  q.take(4 * one.length, taken);
  assert.equal(q.depth, 4);
  for (let i = 0; i < 8; i++) q.offerOne(one, 0);
  assert.equal(fired, 1);
  // Below half: re-armed, and the next overflow is a new crossing.
  q.take(5 * one.length, taken);
  assert.equal(q.depth, 3);
  for (let i = 0; i < 8; i++) q.offerOne(one, 0);
  assert.equal(fired, 2);
  assert.equal(q.queueFull, 4 + 5 + 4 + 3);
});
