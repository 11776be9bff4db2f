/**
 * Ingest backpressure (ingestWhenFull): a source whose ring is full stops reading, so the
 * producer's writes wait, and nothing it sent is lost (`block`, the default); with
 * `drop`, what does not fit is dropped and counted exactly as ring_full.
 *
 * The pipeline is made slower than the producer by holding the test's main thread, which
 * is the in-process feeder's main thread: its rings stop draining while the sources (their
 * own threads) and the producers (worker threads here) keep running. Real sockets, real
 * worker threads, a real gRPC client.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { seqs } from './helpers/events';
import { startWatched, type WatchedFeeder } from './helpers/feeder';
import { holdMainThread, startFlood, type Flood } from './helpers/flood';
import { until } from './helpers/wait';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-bp-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Far more than a 64 KiB ring, the kernel's socket buffers and the producer's own queue hold. */
const FLOOD = 8000;
const HOLD_MS = 400;

let n = 0;
function socketPath(): string {
  return path.join(dir, `in-${n++}.sock`);
}

async function watchedSocketFeeder(extra: Record<string, unknown> = {}): Promise<{ w: WatchedFeeder; socket: string }> {
  const socket = socketPath();
  const w = await startWatched({ source: ['socket'], socket, ringSize: 65_536, maxEventBytes: 4096, ...extra }, [['WatchLogs', 'system']], 'WatchLogs registered');
  return { w, socket };
}

function isRun(xs: number[], first: number): boolean {
  return xs.every((x, i) => x === first + i);
}

describe('backpressure', () => {
  test('backpressure - block (default): a producer faster than the pipeline loses nothing and is slowed', async () => {
    const { w, socket } = await watchedSocketFeeder();
    const flood: Flood = startFlood({ socket, count: FLOOD, first: 1 });
    try {
      await flood.connected();
      flood.go();
      holdMainThread(HOLD_MS);
      // Read before the main thread lets the ring drain again: the source is waiting now.
      const held = w.feeder.stats().ingest.socket;
      const framedWhileHeld = flood.framed();
      assert.equal(held.whenFull, 'block');
      assert.ok(held.backpressure.waits >= 1, `the source waited for room while the ring was full: ${JSON.stringify(held)}`);
      assert.ok(framedWhileHeld < FLOOD, `the producer was slowed: it framed ${framedWhileHeld} of ${FLOOD} while the pipeline was held`);
      assert.equal(held.dropped.ring_full, 0);

      await flood.finished();
      await w.watchers[0].waitFor(FLOOD, 20_000);
      const s = w.feeder.stats().ingest.socket;
      assert.equal(s.events, FLOOD, 'every event the producer wrote was ingested');
      assert.equal(s.dropped.ring_full, 0);
      assert.equal(flood.written(), FLOOD);
      assert.ok(isRun(seqs(w.watchers[0]), 1), 'the client got 1..N in order, nothing missing or repeated');
      assert.ok(s.backpressure.seconds > 0);
    } finally {
      await flood.stop();
      await w.close();
    }
  });

  test('backpressure - drop: what does not fit is dropped and counted exactly as ring_full', async () => {
    const { w, socket } = await watchedSocketFeeder({ ingestWhenFull: 'drop' });
    const flood = startFlood({ socket, count: FLOOD, first: 1 });
    try {
      await flood.connected();
      flood.go();
      holdMainThread(HOLD_MS);
      await flood.finished();
      await until('every ingested event delivered', () => {
        const s = w.feeder.stats().ingest.socket;
        return s.events + s.dropped.ring_full === FLOOD && w.watchers[0].messages.length === s.events;
      }, 20_000);
      const s = w.feeder.stats().ingest.socket;
      assert.equal(s.whenFull, 'drop');
      assert.ok(s.dropped.ring_full > 0, 'the held pipeline made the ring overflow');
      assert.equal(s.events + s.dropped.ring_full, FLOOD, 'ingested + ring_full = sent, exactly');
      assert.equal(s.backpressure.waits, 0, 'a drop source never waits');
      const got = seqs(w.watchers[0]);
      assert.ok(got.every((x, i) => i === 0 || x > got[i - 1]), 'what was kept arrives in order');
      assert.equal(w.feeder.stats().dropped.ring_full, s.dropped.ring_full);
    } finally {
      await flood.stop();
      await w.close();
    }
  });

  test('backpressure - a producer that disconnects while blocked leaves nothing half-written in the ring', async () => {
    const { w, socket } = await watchedSocketFeeder();
    const flood = startFlood({ socket, count: FLOOD, first: 1, destroyAfter: 3000 });
    try {
      await flood.connected();
      flood.go();
      holdMainThread(HOLD_MS);
      await flood.finished();
      await until('the ring drained and every ingested event delivered', () => {
        const s = w.feeder.stats();
        return s.ingest.socket.ring.usedBytes === 0 && w.watchers[0].messages.length === s.ingest.socket.events;
      }, 20_000);
      const s = w.feeder.stats();
      const got = seqs(w.watchers[0]);
      assert.ok(got.length > 0 && got.length <= 3000, `some events got through before the hang-up: ${got.length}`);
      assert.ok(isRun(got, 1), 'a gapless run 1..k: no record was half-written or skipped');
      assert.equal(s.dropped.encode_error, 0, 'every record in the ring decoded');
      assert.equal(s.ingest.socket.dropped.ring_full, 0);
      assert.ok(s.ingest.socket.backpressure.waits >= 1);
    } finally {
      await flood.stop();
      await w.close();
    }
  });

  test('backpressure - another source and the clients keep flowing while one socket source is blocked', async () => {
    const socket = socketPath();
    const w = await startWatched(
      { source: ['socket', 'tcp'], socket, tcp: '127.0.0.1:0', ringSize: 65_536, maxEventBytes: 4096 },
      [['WatchLogs', 'system']],
      'WatchLogs registered',
    );
    const flood = startFlood({ socket, count: 1_000_000, first: 1 });
    const trickle = startFlood({ tcp: w.feeder.addresses.sources.tcp, count: 50, first: 10_000_001 });
    try {
      await Promise.all([flood.connected(), trickle.connected()]);
      flood.go();
      trickle.go();
      holdMainThread(HOLD_MS);
      const held = w.feeder.stats().ingest;
      assert.ok(held.socket.backpressure.waits >= 1, 'the flooded socket source is blocked');
      assert.equal(held.tcp.events, 50, 'the tcp source took all its events while the socket source was blocked');
      assert.equal(held.tcp.backpressure.waits, 0);
      // The flood goes on; the client gets the tcp events through the same fan-out.
      await until('the tcp events at the client', () => seqs(w.watchers[0]).filter((x) => x > 10_000_000).length === 50, 10_000);
      assert.ok(!flood.isDone(), 'the socket flood was still running');
      assert.equal(w.feeder.stats().ingest.socket.dropped.ring_full, 0);
    } finally {
      await flood.stop();
      await trickle.stop();
      await w.close();
    }
  });

  test('backpressure - a jsonl file larger than the ring is read whole, nothing dropped', async () => {
    const file = path.join(dir, 'events.jsonl');
    const LINES = 3000;
    const lines: string[] = [];
    for (let i = 1; i <= LINES; i++) {
      lines.push(JSON.stringify({ type: 'ContainerLog', source: '/bin/sh', operation: 'File', resource: `/etc/file-${i}`, hostPid: i, namespaceName: 'default', podName: 'p' }));
    }
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const { startFeeder } = await import('./helpers/feeder');
    const feeder = await startFeeder({ source: ['jsonl'], jsonl: file, ringSize: 65_536, maxEventBytes: 4096 });
    try {
      holdMainThread(HOLD_MS);
      await feeder.sourcesFinished();
      const s = feeder.stats().ingest.jsonl;
      assert.equal(s.events, LINES);
      assert.equal(s.dropped.ring_full, 0);
      assert.ok(s.backpressure.waits >= 1, 'the file source waited for room instead of dropping');
    } finally {
      await feeder.close();
    }
  });
});

