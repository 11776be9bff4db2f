/**
 * Bounded resources per producer on the socket and TCP sources: a connection limit,
 * a timeout for a frame begun and not finished, an optional idle timeout, and a cap on
 * the bytes of incomplete frames a source holds. Each closes (or refuses) with one
 * `armorfeed: ERR_...` line, is counted per code in /stats, and costs other producers
 * nothing. Real TCP connections to an in-process broker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { encodeFrame } from '../src/ingest/frames';
import { pack } from 'msgpackr';
import type { Feeder } from '../src/feeder';
import { startFeeder } from './helpers/feeder';
import { until, withTimeout } from './helpers/wait';

const event = (i: number): Buffer => encodeFrame(pack({ type: 'ContainerLog', source: '/bin/sh', operation: 'File', resource: `/etc/f-${i}`, hostPid: i }));

function open(feeder: Feeder): Promise<{ sock: net.Socket; said: () => string; closed: Promise<void> }> {
  const [host, port] = [feeder.addresses.sources.tcp.replace(/:\d+$/, ''), Number(/:(\d+)$/.exec(feeder.addresses.sources.tcp)?.[1])];
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    let text = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => {
      text += c;
    });
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.on('error', () => undefined);
    sock.once('connect', () => resolve({ sock, said: () => text, closed }));
    sock.once('error', reject);
  });
}

const base = { source: ['tcp' as const], tcp: '127.0.0.1:0' };

test('ingest limits - past ingestMaxConnections a producer is refused with a line and counted; the others keep sending', async () => {
  const f = await startFeeder({ ...base, ingestMaxConnections: 3 });
  try {
    const kept = await Promise.all([open(f), open(f), open(f)]);
    await until('three connections open', () => f.stats().ingest.tcp.connections === 3);
    const extra = await open(f);
    await withTimeout(extra.closed, 5000, 'the fourth connection to be closed');
    assert.match(extra.said(), /^armorfeed: ERR_INGEST_TOO_MANY_CONNECTIONS: /);
    await until('the refusal counted', () => f.stats().ingest.tcp.disconnects.ERR_INGEST_TOO_MANY_CONNECTIONS === 1);
    kept[0].sock.write(event(1));
    await until('the kept connection still ingests', () => f.stats().ingest.tcp.events === 1);
    kept[1].sock.destroy();
    await kept[1].closed;
    await until('the broker to see the connection go', () => f.stats().ingest.tcp.connections === 2);
    // A place is free again.
    const next = await open(f);
    next.sock.write(event(2));
    await until('a new connection is accepted once one closed', () => f.stats().ingest.tcp.events === 2, 5000);
    for (const k of [...kept, next]) k.sock.destroy();
  } finally {
    await f.close();
  }
});

test('ingest limits - a frame begun and not finished within ingestFrameTimeoutMs closes that connection, counted as truncated', async () => {
  const f = await startFeeder({ ...base, ingestFrameTimeoutMs: 300 });
  try {
    const slow = await open(f);
    const good = await open(f);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1000);
    slow.sock.write(Buffer.concat([header, Buffer.alloc(10, 0x20)]));
    await withTimeout(slow.closed, 5000, 'the stuck connection to be closed');
    assert.match(slow.said(), /^armorfeed: ERR_INGEST_FRAME_TIMEOUT: /);
    good.sock.write(event(1));
    await until('the other producer ingests', () => f.stats().ingest.tcp.events === 1);
    const s = f.stats().ingest.tcp;
    assert.equal(s.disconnects.ERR_INGEST_FRAME_TIMEOUT, 1);
    assert.equal(s.malformedByReason.truncated, 1);
    good.sock.destroy();
  } finally {
    await f.close();
  }
});

test('ingest limits - with ingestIdleTimeoutMs a silent connection is closed; without it (the default) it stays', async () => {
  const quiet = await startFeeder(base);
  const strict = await startFeeder({ ...base, ingestIdleTimeoutMs: 300 });
  try {
    const stays = await open(quiet);
    const goes = await open(strict);
    await withTimeout(goes.closed, 5000, 'the silent connection to be closed');
    assert.match(goes.said(), /^armorfeed: ERR_INGEST_IDLE_TIMEOUT: /);
    assert.equal(strict.stats().ingest.tcp.disconnects.ERR_INGEST_IDLE_TIMEOUT, 1);
    assert.ok(!stays.sock.destroyed, 'a quiet producer keeps its connection by default');
    stays.sock.write(event(1));
    await until('the quiet producer still ingests', () => quiet.stats().ingest.tcp.events === 1);
    stays.sock.destroy();
  } finally {
    await quiet.close();
    await strict.close();
  }
});

test('ingest limits - incomplete frames past ingestBufferedBytes close the connection that passed it', async () => {
  const f = await startFeeder({ ...base, maxEventBytes: 40_000, ingestBufferedBytes: 65_536 });
  try {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(39_000);
    const partial = Buffer.concat([header, Buffer.alloc(30_000, 0x20)]);
    const a = await open(f);
    a.sock.write(partial);
    await until('the first partial frame held', () => f.stats().ingest.tcp.disconnects.ERR_INGEST_BUFFER_CAP === undefined && !a.sock.destroyed);
    await new Promise((r) => setTimeout(r, 100));
    const b = await open(f);
    b.sock.write(partial);
    await new Promise((r) => setTimeout(r, 100));
    const c = await open(f);
    c.sock.write(partial);
    await withTimeout(c.closed, 5000, 'the connection past the cap to be closed');
    assert.match(c.said(), /^armorfeed: ERR_INGEST_BUFFER_CAP: /);
    assert.equal(f.stats().ingest.tcp.disconnects.ERR_INGEST_BUFFER_CAP, 1);
    assert.ok(!a.sock.destroyed && !b.sock.destroyed, 'the connections under the cap are kept');
    a.sock.destroy();
    b.sock.destroy();
  } finally {
    await f.close();
  }
});
