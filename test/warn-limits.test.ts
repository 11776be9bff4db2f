/**
 * WARN lines are rate limited, and what they leave out is counted: a burst of garbage
 * producers (each one disconnected) gives about one `disconnected` WARN per second on
 * WatchMessages, and the shown lines plus their "(N more not shown)" counts add up to
 * every disconnect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from './helpers/client';
import { openCount, startFeeder } from './helpers/feeder';
import { connectTo, write } from './helpers/tcp';
import { delay, until } from './helpers/wait';

const PRODUCERS = 300;
const AT_ONCE = 25;

/** One producer that sends bytes that are not msgpack and is hung up on. */
async function garbageProducer(address: string): Promise<void> {
  const sock = await connectTo(address);
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => undefined);
  sock.on('data', () => undefined);
  await write(sock, Buffer.of(0, 0, 0, 3, 0xc1, 0xc1, 0xc1)).catch(() => undefined);
  await Promise.race([closed, delay(5_000)]);
  sock.destroy();
}

test('warn limits - 300 garbage producers in a burst give about one disconnected WARN a second, with the rest counted as not shown', { timeout: 60_000 }, async () => {
  const feeder = await startFeeder({ source: ['tcp'], tcp: '127.0.0.1:0' });
  const tc = connect(feeder.addresses.grpc);
  try {
    const messages = tc.watch('WatchMessages', '');
    await until('the messages stream to register', () => openCount(feeder, 'messages') === 1);
    const started = Date.now();
    for (let i = 0; i < PRODUCERS; i += AT_ONCE) {
      await Promise.all(Array.from({ length: AT_ONCE }, () => garbageProducer(feeder.addresses.sources.tcp)));
    }
    await until('every producer counted', () => feeder.stats().ingest.tcp.malformedByReason.malformed_frame === PRODUCERS, 10_000);
    const burstSec = (Date.now() - started) / 1000;
    const disconnectWarns = (): string[] => messages.messages.filter((m) => m.Level === 'WARN' && String(m.Message).startsWith('disconnected')).map((m) => String(m.Message));
    // The suppressed count of the last interval is reported within about a second.
    const accounted = (): number => disconnectWarns().reduce((n, text) => n + (/^disconnected: /.test(text) ? 0 : 1) + Number(/\((\d+) more not shown\)/.exec(text)?.[1] ?? 0), 0);
    await until(`${PRODUCERS} disconnects accounted for`, () => accounted() === PRODUCERS, 5_000).catch(() => undefined);
    const warns = disconnectWarns();
    assert.ok(warns.length <= Math.ceil(burstSec) + 3, `${warns.length} disconnected WARNs for a ${burstSec.toFixed(1)} s burst:\n${warns.slice(0, 10).join('\n')}`);
    assert.equal(accounted(), PRODUCERS, warns.join('\n'));
  } finally {
    tc.close();
    await feeder.close();
  }
});
