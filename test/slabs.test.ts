/**
 * Output slabs: the encoders write batches into shared slots that client queues and
 * writes hold references to. A slot reused too early would hand one client another
 * batch's bytes, so the integration test runs with very few slots, a stalled client
 * pinning some, and checks every byte the reader gets; and that when the clients are
 * gone every slot comes back (nothing leaks but writes a departed client left
 * unconfirmed, which wait out their grace period).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_SLAB, SlabPool } from '../src/encode/slabs';
import { ClientQueue, type QueueEntry } from '../src/fanout/clientQueue';
import type { Feeder } from '../src/feeder';
import { connect } from './helpers/client';
import { seqLog, seqs } from './helpers/events';
import { startFeeder } from './helpers/feeder';
import { waitUntil } from './helpers/wait';

test('slabs - a pool hands out each slot once, takes it back at the last release, and says when it is empty', () => {
  const pool = new SlabPool(2, 1024);
  const a = pool.acquire();
  const b = pool.acquire();
  assert.notEqual(a, NO_SLAB);
  assert.notEqual(b, NO_SLAB);
  assert.notEqual(a, b);
  assert.equal(pool.acquire(), NO_SLAB);
  assert.deepEqual(pool.stats(), { slabs: 2, slabBytes: 1024, inUse: 2, exhausted: 1, quarantined: 0 });

  pool.retain(a); // a client queue entry
  pool.release(a); // the task's own reference
  assert.equal(pool.acquire(), NO_SLAB, 'a slot some queue still views is not reused');
  pool.release(a); // the entry is written and confirmed
  assert.equal(pool.acquire(), a, 'reused once the last reference is gone');
  pool.release(a);
  assert.throws(() => pool.release(a), /released more often than retained/);

  // Views share the slot's memory: what an encoder writes there is what the fan-out sends.
  new Uint8Array(pool.sab)[b * 1024 + 10] = 42;
  assert.equal(pool.view(b, 8, 4)[2], 42);

  const none = new SlabPool(0, 1024);
  assert.equal(none.acquire(), NO_SLAB);
  assert.equal(none.stats().exhausted, 0, 'no slabs configured is not "exhausted"');
});

test('slabs - a queue takes one message at a time off a run in a slab, each with its own reference, and the run keeps one', () => {
  const pool = new SlabPool(1, 4096);
  const slab = pool.acquire();
  // Three gRPC-framed messages of 1, 2 and 3 bytes, as an encoder lays them out in the slab.
  const frames = [[7], [8, 8], [9, 9, 9]].map((body) => [0, 0, 0, 0, body.length, ...body]);
  const bytes = pool.view(slab, 0, frames.flat().length);
  bytes.set(frames.flat());
  const ends = Uint32Array.from([6, 13, 21]);
  const queue = new ClientQueue(10, pool);
  queue.offerRun({ count: 3, bytes, ends, ingestedUs: Float64Array.of(1, 2, 3), attrs: new Uint16Array(9), slab }, 0, 3);
  pool.release(slab); // the encoder task's own reference: the queue's keeps the slot
  const taken: QueueEntry[] = [];
  for (let i = 0; i < 3; i++) assert.equal(queue.takeOne(taken), 1);
  assert.equal(queue.takeOne(taken), 0, 'empty');
  assert.equal(queue.depth, 0);
  assert.deepEqual(taken.map((e) => [...e.bytes]), frames, 'one whole frame each, in order');
  assert.deepEqual(taken.map((e) => [...e.times]), [[1], [2], [3]]);
  assert.equal(pool.acquire(), NO_SLAB, 'the slot is held while a taken message may still be written');
  for (const e of taken) pool.release(e.slab);
  assert.equal(pool.acquire(), slab, 'each taken message held one reference, and no more');
});

function slabStats(feeder: Feeder): ReturnType<Feeder['stats']>['encoded']['outputSlabs'] {
  return feeder.stats().encoded.outputSlabs;
}

test('slabs - with 3 slots and a stalled client pinning them, the reader gets every byte right and no slot leaks', { timeout: 60_000 }, async (t) => {
  const N = 12_000;
  const CHUNK = 600;
  const feeder = await startFeeder({ outputSlabs: 3, queueSize: 1000, alertThrottling: false });
  const readerConn = connect(feeder.addresses.grpc);
  const stalledConn = connect(feeder.addresses.grpc);
  try {
    const reader = readerConn.watch('WatchLogs', 'all', { 'x-armorfeed-client': 'reader' });
    const stalled = stalledConn.watch('WatchLogs', 'all', { 'x-armorfeed-client': 'stalled' });
    stalled.pause();
    await waitUntil('both clients registered', () => feeder.stats().clients.filter((c) => c.open).length === 2, 10_000);

    for (let from = 1; from <= N; from += CHUNK) {
      for (let seq = from; seq < from + CHUNK; seq++) {
        assert.ok(feeder.push(seqLog(seq, { data: `syscall=SYS_OPENAT seq=${seq}` })), 'ring has room');
      }
      // Stay within the reader's queue, so any loss or damage is the broker's.
      await reader.waitFor(from + CHUNK - 1 - 400, 10_000);
    }
    await reader.waitFor(N, 10_000);

    assert.deepEqual(seqs(reader), Array.from({ length: N }, (_, i) => i + 1), 'every event once, in order');
    for (const [i, m] of reader.messages.entries()) {
      const seq = i + 1;
      if (m.Resource !== `/etc/file-${seq}` || m.Data !== `syscall=SYS_OPENAT seq=${seq}`) {
        assert.fail(`event ${seq} arrived with Resource=${String(m.Resource)} Data=${String(m.Data)}`);
      }
    }
    const during = slabStats(feeder);
    t.diagnostic(`slabs after the run: ${JSON.stringify(during)}`);
    assert.ok(during.exhausted > 0, 'the stalled client pinned slots and some batches used their own buffers');

    stalledConn.close();
    readerConn.close();
    await waitUntil('the clients removed', () => feeder.stats().clients.every((c) => !c.open), 10_000);
    // Everything comes back except slots under writes the stalled client never confirmed.
    await waitUntil('every slot released or quarantined', () => {
      const s = slabStats(feeder);
      return s.inUse === s.quarantined;
    }, 10_000, () => JSON.stringify(slabStats(feeder)));
    assert.ok(slabStats(feeder).quarantined <= 2, `at most the stalled client's two writes wait out the grace period: ${JSON.stringify(slabStats(feeder))}`);
  } finally {
    readerConn.close();
    stalledConn.close();
    await feeder.close();
  }
});

test('slabs - runs a filtered client gets are copied out of the slab, so a paused client still reads the right bytes later', { timeout: 60_000 }, async () => {
  const N = 6_400;
  const feeder = await startFeeder({ outputSlabs: 2, queueSize: 5000, alertThrottling: false });
  const conn = connect(feeder.addresses.grpc);
  try {
    // One event in eight passes the filter: every queued run is a single event, much
    // smaller than its batch, so the queue copies it out instead of viewing the slab.
    const w = conn.watch('WatchLogs', 'all', { 'x-armorfeed-client': 'filtered', 'x-armorfeed-namespace': '^keep$' });
    await waitUntil('the client registered', () => feeder.stats().clients.some((c) => c.open), 10_000);
    w.pause();
    for (let seq = 1; seq <= N; seq++) {
      assert.ok(feeder.push(seqLog(seq, { namespaceName: seq % 8 === 0 ? 'keep' : 'other' })), 'ring has room');
      // Let batches through one at a time, so both slabs are reused many times over
      // while the paused client's queue holds its runs.
      if (seq % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitUntil('everything encoded', () => feeder.stats().encoded.logs === N, 10_000);
    w.resume();
    await w.waitFor(N / 8, 10_000);
    const got = seqs(w);
    assert.deepEqual(got, Array.from({ length: N / 8 }, (_, i) => 8 * (i + 1)), 'every eighth event, once, in order');
    for (const m of w.messages) {
      assert.equal(m.Resource, `/etc/file-${String(m.HostPID)}`, `event ${String(m.HostPID)} arrived intact`);
    }
  } finally {
    conn.close();
    await feeder.close();
  }
});
