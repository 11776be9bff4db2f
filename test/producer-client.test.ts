/**
 * FrameProducer, the producer client shipped in the package: frames and batches events
 * into a real broker's ingest socket, waits when the other side stops reading, and
 * reconnects with what it had not written yet. Real sockets and a real in-process broker.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FrameProducer } from '../src/producer';
import { seqLog, seqs } from './helpers/events';
import { startFeeder, startWatched } from './helpers/feeder';
import { until, withTimeout } from './helpers/wait';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-producer-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('producer client', () => {
  test('producer client - frames and batches events; the broker ingests every one, in order', async () => {
    const w = await startWatched({ source: ['tcp'], tcp: '127.0.0.1:0' }, [['WatchLogs', 'system']], 'WatchLogs registered');
    const producer = new FrameProducer({ tcp: w.feeder.addresses.sources.tcp });
    try {
      for (let i = 1; i <= 3000; i++) await producer.send(seqLog(i));
      await withTimeout(producer.close(), 10_000, 'the producer to flush and close');
      const s = producer.stats();
      assert.equal(s.framed, 3000);
      assert.equal(s.written, 3000);
      assert.equal(s.queued, 0);
      assert.equal(s.unconfirmed, 0);
      await w.watchers[0].waitFor(3000, 10_000);
      assert.deepEqual(seqs(w.watchers[0]), Array.from({ length: 3000 }, (_, i) => i + 1));
      assert.equal(w.feeder.stats().ingest.tcp.events, 3000);
    } finally {
      producer.destroy();
      await w.close();
    }
  });

  test('producer client - send() waits past the high-water mark while the other side does not read, and resumes when it does', async () => {
    // A real listener that accepts and does not read: what a blocked broker looks like from outside.
    const held: net.Socket[] = [];
    let received = 0;
    const server = net.createServer((sock) => {
      sock.pause();
      held.push(sock);
      sock.on('data', (c: Buffer) => {
        received += c.length;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const producer = new FrameProducer({ tcp: `127.0.0.1:${port}` }, { highWaterBytes: 256 * 1024 });
    try {
      await new Promise<void>((resolve) => producer.once('connect', resolve));
      let waited: Promise<void> | undefined;
      let sent = 0;
      // Kernel buffers take a few MB at most; well before 50,000 events send() must wait.
      while (waited === undefined && sent < 50_000) {
        const p = producer.send(seqLog(++sent));
        const pending = await Promise.race([p.then(() => false), new Promise<boolean>((r) => setImmediate(() => r(true)))]);
        if (pending) waited = p;
      }
      assert.ok(waited !== undefined, `send() never waited in ${sent} events`);
      assert.ok(producer.stats().pushbacks >= 1, 'the socket pushed back');
      assert.ok(producer.stats().queuedBytes > 256 * 1024, 'events queue in the client while the other side is not reading');
      for (const s of held) s.resume();
      await withTimeout(waited, 10_000, 'send() to resume once the other side reads');
      await withTimeout(producer.flush(), 10_000, 'the flush');
      assert.equal(producer.stats().written, sent);
    } finally {
      producer.destroy();
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    assert.ok(received > 0);
  });

  test('producer client - reconnects after the broker goes away and sends what it had queued', async () => {
    const socket = path.join(dir, 'reconnect.sock');
    const first = await startFeeder({ source: ['socket'], socket });
    const producer = new FrameProducer({ socket }, { initialBackoffMs: 20, maxBackoffMs: 100 });
    let second: Awaited<ReturnType<typeof startFeeder>> | undefined;
    try {
      for (let i = 1; i <= 100; i++) await producer.send(seqLog(i));
      await withTimeout(producer.flush(), 10_000, 'the first flush');
      await until('the first broker to ingest 100', () => first.stats().ingest.socket.events === 100);
      const gone = new Promise<void>((resolve) => producer.once('disconnect', resolve));
      await first.close();
      await withTimeout(gone, 10_000, 'the producer to see the broker go');
      // Queued while there is no broker: kept, not dropped.
      for (let i = 101; i <= 200; i++) producer.write(seqLog(i));
      second = await startFeeder({ source: ['socket'], socket });
      await withTimeout(producer.flush(), 10_000, 'the flush after reconnecting');
      const s = producer.stats();
      assert.ok(s.connects >= 2, `connected again (${s.connects})`);
      assert.equal(s.framed, 200);
      assert.equal(s.written + s.unconfirmed, 200, 'every event is either written or counted as unconfirmed');
      const b = second;
      await until('the second broker to ingest what was queued while it was away', () => b.stats().ingest.socket.events >= 100);
      assert.equal(b.stats().ingest.socket.events + first.stats().ingest.socket.events, s.written);
    } finally {
      producer.destroy();
      await second?.close();
    }
  });
});
